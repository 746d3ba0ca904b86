"""Deterministic order-file generator for benchmarks and the demo.

Same arguments, same bytes: the benchmark compares tools on identical input.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import polars as pl

from orderpipe.atomic import atomic_output
from orderpipe.core.rules import DEFAULT_CATEGORIES

CATEGORIES = list(DEFAULT_CATEGORIES)
ROWS_PER_CHUNK = 1_000_000


def generate(path: Path, rows: int, *, days: int = 365, seed: int = 7, start: str = "2025-01-01") -> None:
    """Write `rows` valid orders: unique ids, ~20 % distinct customers, ~10 % returned."""
    first_day = dt.date.fromisoformat(start)
    customers = max(1, rows // 5)
    with atomic_output(path) as out:  # a failed run leaves no cut file behind
        out.write(b"order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned\n")
        for offset in range(0, rows, ROWS_PER_CHUNK):
            n = min(ROWS_PER_CHUNK, rows - offset)
            i = pl.int_range(offset, offset + n, eager=True).alias("i")
            # A cheap deterministic hash of the row number drives every column.
            h = ((i.cast(pl.UInt64) + seed) * 0x9E3779B97F4A7C15).alias("h")
            frame = (
                pl.DataFrame([i, h])
                .select(
                    ("ORD" + pl.col("i").cast(pl.String).str.zfill(9)).alias("order_id"),
                    ("CUST" + ((pl.col("h") // 128) % customers).cast(pl.String).str.zfill(8)).alias("customer_id"),
                    (pl.lit(first_day) + pl.duration(days=(pl.col("h") // 131072) % days))
                    .cast(pl.Date)
                    .dt.strftime("%Y-%m-%d")
                    .alias("order_date"),
                    pl.lit(pl.Series(CATEGORIES))
                    .get(((pl.col("h") // 134217728) % len(CATEGORIES)).cast(pl.Int64))
                    .alias("category"),
                    ("PROD" + ((pl.col("h") // 2147483648) % 5000).cast(pl.String).str.zfill(5)).alias("product_id"),
                    (((pl.col("h") // 2199023255552) % 5) + 1).cast(pl.String).alias("quantity"),
                    (((pl.col("h") // 17592186044416) % 49_999 + 1).cast(pl.Int64)).alias("cents"),
                    pl.when((pl.col("h") // 1125899906842624) % 10 == 0)
                    .then(pl.lit("true"))
                    .otherwise(pl.lit("false"))
                    .alias("returned"),
                )
                .with_columns(
                    (
                        (pl.col("cents") // 100).cast(pl.String)
                        + "."
                        + (pl.col("cents") % 100).cast(pl.String).str.zfill(2)
                    ).alias("unit_price")
                )
                .select(
                    "order_id",
                    "customer_id",
                    "order_date",
                    "category",
                    "product_id",
                    "quantity",
                    "unit_price",
                    "returned",
                )
            )
            frame.write_csv(out, include_header=False)


#: The line-item file's header, as a shop export writes it; its settings are LINE_CONFIG.
LINE_HEADER = (
    "Name,Email,Financial Status,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,Vendor"
)
LINE_CONFIG = """\
[input]
grain = "line"
timezone = "Europe/Berlin"
[input.columns]
order_id = "Name"
customer_id = "Email"
order_timestamp = "Created at"
quantity = "Lineitem quantity"
unit_price = "Lineitem price"
product_id = "Lineitem sku"
category = "Vendor"
[input.returned]
column = "Financial Status"
values = ["refunded"]
"""


def generate_lines(path: Path, rows: int, *, days: int = 365, seed: int = 7, start: str = "2025-01-01") -> None:
    """The same lines as `generate` (products, quantities, prices, categories), as a shop export
    writes them: orders of 1, 2 and 3 lines in turn, column names of its own, a timestamp with
    an offset, a financial status, and the order's own fields only on its first line."""
    first_day = dt.date.fromisoformat(start)
    customers = max(1, rows // 5)
    # row i % 6 -> (order within the 6-row block, first line of its order?)
    block = {0: (0, True), 1: (1, True), 2: (1, False), 3: (2, True), 4: (2, False), 5: (2, False)}
    with atomic_output(path) as out:  # a failed run leaves no cut file behind
        out.write(LINE_HEADER.encode() + b"\n")
        for offset in range(0, rows, ROWS_PER_CHUNK):
            n = min(ROWS_PER_CHUNK, rows - offset)
            i = pl.int_range(offset, offset + n, eager=True).alias("i")
            h = ((i.cast(pl.UInt64) + seed) * 0x9E3779B97F4A7C15).alias("h")
            r = (pl.col("i") % 6).alias("r")
            order = pl.col("i") // 6 * 3 + r.replace_strict({k: v[0] for k, v in block.items()}, return_dtype=pl.Int64)
            first = r.replace_strict({k: v[1] for k, v in block.items()}, return_dtype=pl.Boolean)
            cents = ((pl.col("h") // 17592186044416) % 49_999 + 1).cast(pl.Int64)
            day = (pl.lit(first_day) + pl.duration(days=(pl.col("h") // 131072) % days)).cast(pl.Date)
            clock = ((pl.col("h") // 7) % 86_400).cast(pl.Int64)
            stamp = (
                day.dt.strftime("%Y-%m-%d")
                + " "
                + (clock // 3600).cast(pl.String).str.zfill(2)
                + ":"
                + (clock // 60 % 60).cast(pl.String).str.zfill(2)
                + ":"
                + (clock % 60).cast(pl.String).str.zfill(2)
                + " +0200"
            )
            status = (
                pl.when((pl.col("h") // 1125899906842624) % 10 == 0).then(pl.lit("refunded")).otherwise(pl.lit("paid"))
            )

            def order_level(expr: pl.Expr, first: pl.Expr = first) -> pl.Expr:
                return pl.when(first).then(expr)  # null: written as an empty, unquoted field

            frame = pl.DataFrame([i, h]).select(
                ("#" + order.cast(pl.String)).alias("Name"),
                order_level("cust" + ((pl.col("h") // 128) % customers).cast(pl.String) + "@example.com").alias(
                    "Email"
                ),
                order_level(status).alias("Financial Status"),
                order_level(stamp).alias("Created at"),
                (((pl.col("h") // 2199023255552) % 5) + 1).cast(pl.String).alias("Lineitem quantity"),
                ("Product " + ((pl.col("h") // 2147483648) % 5000).cast(pl.String)).alias("Lineitem name"),
                ((cents // 100).cast(pl.String) + "." + (cents % 100).cast(pl.String).str.zfill(2)).alias(
                    "Lineitem price"
                ),
                ("SKU-" + pl.col("i").cast(pl.String)).alias("Lineitem sku"),
                pl.lit(pl.Series(CATEGORIES))
                .get(((pl.col("h") // 134217728) % len(CATEGORIES)).cast(pl.Int64))
                .alias("Vendor"),
            )
            frame.write_csv(out, include_header=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2025-01-01")
    parser.add_argument("--lines", action="store_true", help="a shop export's line items (settings: LINE_CONFIG)")
    args = parser.parse_args()
    make = generate_lines if args.lines else generate
    make(args.path, args.rows, days=args.days, seed=args.seed, start=args.start)


if __name__ == "__main__":
    main()
