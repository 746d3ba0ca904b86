"""The vectorised screen: the rules of `rules.py` as Polars expressions.

It answers one question fast — is every row certainly valid? — and yields the typed facts.
It is deliberately stricter than the exact validator: anything it flags sends the file to
`validate.py`, whose verdict is final.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from orderpipe.core.rules import (
    BLANK_PATTERN,
    BOOLEAN_VALUES,
    COLUMNS,
    DATE_PATTERN,
    DECIMAL_PATTERN,
    EDGE_PATTERN,
    INTEGER_PATTERN,
    MAX_PRICE_INTEGER_DIGITS,
    MAX_QUANTITY_DIGITS,
    WHITESPACE,
)

__all__ = ["FACT_SCHEMA", "screen_columns"]

#: true and false as files usually spell them (pandas writes True and False).
_USUAL_TRUE = ["true", "True", "TRUE"]
_USUAL_BOOLEANS = [spelled for value in BOOLEAN_VALUES for spelled in (value, value.title(), value.upper())]

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


def screen_columns(categories: Sequence[str], trimmed: bool = True) -> list[pl.Expr]:
    """Typed fact columns plus `ok` (every rule holds), `complete` (the last field is not empty,
    which a short row would leave it) and `blank` (a blank line).

    Expects the 8 columns as strings, trimmed, and the header's last column (which a short row
    leaves empty) untrimmed as `__last`. `trimmed=False`: the columns as read. Trimming every
    value is most of the screen's cost, and machine-written files have nothing to trim: a value
    that starts or ends with white space or an invisible character (or is empty) then fails
    `ok`, and the caller screens again, trimmed.
    """
    c = pl.col
    quantity = c("quantity").cast(pl.Int64, strict=False)
    price = c("unit_price").cast(pl.Decimal(38, 4), strict=False)
    date = c("order_date").str.to_date("%Y-%m-%d", strict=False)
    texts = ("order_id", "customer_id", "product_id")
    if trimmed:
        # Blank means empty or only invisible characters; the typed columns' patterns already
        # refuse anything but ASCII digits, '-', '.' and true/false.
        seen = [~c(name).str.contains(BLANK_PATTERN) for name in (*texts, "category")]
        allowed = list(categories)
        lowered = c("returned").str.to_lowercase()
        boolean, true = lowered.is_in(list(BOOLEAN_VALUES)), lowered == "true"
    else:  # a value free of edge characters is neither blank nor changed by trimming
        seen = [~c(name).str.contains(EDGE_PATTERN) for name in texts]
        edge = re.compile(EDGE_PATTERN)  # such a name is matched only by the trimmed screen
        allowed = [name for name in categories if not edge.search(name)]
        # The usual spellings as written, rather than every value lowercased (measured 5x
        # faster); any other spelling of true or false goes to the trimmed screen.
        boolean, true = c("returned").is_in(_USUAL_BOOLEANS), c("returned").is_in(_USUAL_TRUE)
    ok = pl.all_horizontal(
        *seen,
        c("category").is_in(allowed),
        c("order_date").str.contains(DATE_PATTERN),
        date.dt.year() >= 1,
        # The patterns allow ASCII digits only, so the digit bounds (leading zeros aside) are
        # bounds on the values; a value too long for the cast is null, so it fails.
        c("quantity").str.contains(INTEGER_PATTERN),
        quantity > 0,
        quantity < 10**MAX_QUANTITY_DIGITS,
        c("unit_price").str.contains(DECIMAL_PATTERN),
        price > 0,
        price < 10**MAX_PRICE_INTEGER_DIGITS,  # an integer: a Decimal literal makes Polars import numpy
        boolean,
    ).fill_null(False)
    last = c("__last").str.strip_chars(WHITESPACE) if trimmed else c("__last")
    blank = pl.all_horizontal(*(c(name) == "" for name in COLUMNS)) & (last == "")
    return [
        c("order_id"),
        c("customer_id"),
        c("category"),
        c("product_id"),
        date.alias("order_date"),
        quantity.alias("quantity"),
        price.alias("unit_price"),
        true.alias("returned"),
        ok.alias("ok"),
        (c("__last") != "").alias("complete"),
        blank.alias("blank"),
    ]
