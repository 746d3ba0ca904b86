"""The other baseline a user would write: the same validating job in Polars.

`pl.read_csv` with the ids and the date as text, one boolean expression per rule, `group_by` for
the KPIs, as the Polars user guide writes them. It validates and aggregates only (no facts, no
archive, no ledger), and rejects the whole file on any bad row, as the pandas baseline does.
"""

from __future__ import annotations

import sys

import polars as pl

CATEGORIES = ["Electronics", "Books", "Clothing", "Home", "Toys", "Sports", "Beauty", "Grocery"]


def main(path: str) -> None:
    text = {name: pl.String for name in ("order_id", "customer_id", "product_id", "order_date", "returned")}
    df = pl.read_csv(path, schema_overrides=text)
    returned = pl.col("returned").str.to_lowercase()
    bad = (
        pl.col("order_date").str.to_date("%Y-%m-%d", strict=False).is_null()
        | (pl.col("quantity") <= 0)
        | (pl.col("unit_price") <= 0)
        | ~pl.col("category").is_in(CATEGORIES)
        | ~returned.is_in(["true", "false"])
        | pl.any_horizontal(pl.col("order_id", "customer_id", "product_id").is_null())
    )
    checks = df.select(bad.sum().alias("bad"), pl.col("order_id").is_duplicated().any().alias("duplicated"))
    if checks["bad"][0] or checks["duplicated"][0]:
        print("invalid", checks["bad"][0])
        sys.exit(1)
    df = df.with_columns(
        (returned == "true").alias("returned"), (pl.col("quantity") * pl.col("unit_price")).alias("revenue")
    )
    category = (
        df.group_by("category", "order_date")
        .agg(
            pl.col("revenue").sum().alias("daily_revenue"),
            pl.col("order_id").n_unique().alias("orders"),
            pl.col("returned").sum(),
        )
        .with_columns(
            (pl.col("daily_revenue") / pl.col("orders")).round(2).alias("avg_order_value"),
            (pl.col("returned") / pl.col("orders")).round(6).alias("avg_return_rate"),
        )
    )
    daily = (
        df.group_by("order_date")
        .agg(
            pl.col("order_id").n_unique().alias("total_orders"),
            pl.col("revenue").sum().alias("total_revenue"),
            pl.col("quantity").sum().alias("total_items_sold"),
            pl.col("returned").sum(),
            pl.col("customer_id").n_unique().alias("unique_customers"),
        )
        .with_columns((pl.col("returned") / pl.col("total_orders")).round(6).alias("return_rate"))
    )
    print(len(category), "category rows;", len(daily), "daily rows;", daily["total_orders"].sum(), "orders")


if __name__ == "__main__":
    main(sys.argv[1])
