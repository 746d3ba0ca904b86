"""The vectorised screen: the rules of `rules.py` as Polars expressions.

It answers one question fast — is every row certainly valid? — and yields the typed facts.
It is deliberately stricter than the exact validator: anything it flags sends the file to
`validate.py`, whose verdict is final.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from orderpipe.core.rules import (
    BLANK_PATTERN,
    BOOLEAN_VALUES,
    COLUMNS,
    DATE_PATTERN,
    DECIMAL_PATTERN,
    INTEGER_PATTERN,
    MAX_PRICE_INTEGER_DIGITS,
    MAX_QUANTITY_DIGITS,
    WHITESPACE,
)

__all__ = ["FACT_SCHEMA", "screen_columns"]

#: The staged facts, one row per order. Each file also carries its date (constant, so nearly
#: free in Parquet): readers never parse it from a path.
FACT_SCHEMA: dict[str, pl.DataType] = {
    "order_date": pl.Date(),
    "order_id": pl.String(),
    "customer_id": pl.String(),
    "category": pl.String(),
    "product_id": pl.String(),
    "quantity": pl.Int64(),
    "unit_price": pl.Decimal(38, 4),
    "returned": pl.Boolean(),
}


def screen_columns(categories: Sequence[str]) -> list[pl.Expr]:
    """Typed fact columns plus `ok` (every rule holds), `complete` (the last field is not empty,
    which a short row would leave it) and `blank` (a blank line).

    Expects the 8 columns as trimmed strings, and the header's last column (which a short row
    leaves empty) untrimmed as `__last`.
    """
    c = pl.col
    quantity = c("quantity").cast(pl.Int64, strict=False)
    price = c("unit_price").cast(pl.Decimal(38, 4), strict=False)
    date = c("order_date").str.to_date("%Y-%m-%d", strict=False)
    returned = c("returned").str.to_lowercase()
    ok = pl.all_horizontal(
        # Blank means empty or only invisible characters; the typed columns' patterns already
        # refuse anything but ASCII digits, '-', '.' and true/false.
        ~c("order_id").str.contains(BLANK_PATTERN),
        ~c("customer_id").str.contains(BLANK_PATTERN),
        ~c("product_id").str.contains(BLANK_PATTERN),
        ~c("category").str.contains(BLANK_PATTERN),
        c("category").is_in(list(categories)),
        c("order_date").str.contains(DATE_PATTERN),
        date.dt.year() >= 1,
        c("quantity").str.contains(INTEGER_PATTERN),
        c("quantity").str.strip_chars_start("0").str.len_bytes() <= MAX_QUANTITY_DIGITS,
        quantity > 0,
        c("unit_price").str.contains(DECIMAL_PATTERN),
        c("unit_price").str.split(".").list.first().str.strip_chars_start("0").str.len_bytes()
        <= MAX_PRICE_INTEGER_DIGITS,
        price > 0,
        returned.is_in(list(BOOLEAN_VALUES)),
    ).fill_null(False)
    blank = pl.all_horizontal(*(c(name) == "" for name in COLUMNS)) & (c("__last").str.strip_chars(WHITESPACE) == "")
    return [
        c("order_id"),
        c("customer_id"),
        c("category"),
        c("product_id"),
        date.alias("order_date"),
        quantity.alias("quantity"),
        price.alias("unit_price"),
        (returned == "true").alias("returned"),
        ok.alias("ok"),
        (c("__last") != "").alias("complete"),
        blank.alias("blank"),
    ]
