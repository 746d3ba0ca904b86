"""The vectorised screen: the rules of `rules.py` as Polars expressions, for a file of any shape.

It answers one question fast — is every row certainly valid? — and yields the typed rows. It is
deliberately stricter than the exact validator: anything it flags sends the file to the exact
validator (`exact.py`), whose verdict is final. One screen serves every shape: the seed's 8
columns are the default, a configured shape adds its renamed columns, a date from a timestamp,
`returned` from a status and, at line grain, order-level fields inherited from an order's first
line; a catalog file is read by the same rules of its two columns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
from orderpipe.core.shape import UNKNOWN, InputShape
from orderpipe.core.timestamps import with_local_date
from orderpipe.core.window import DateWindow

__all__ = [
    "CATALOG_COLUMNS",
    "FACT_SCHEMA",
    "Screen",
    "field_rules",
    "inherit",
    "returned_from_status",
    "screen",
    "screen_columns",
]

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
#: A catalog batch's staged rows.
CATALOG_COLUMNS = ("product_id", "category")
#: Printable ASCII but capitals: text `str.lower` leaves as it is, with nothing to trim.
_LOWER_ASCII = r"^[!-@\[-~]+$"


def field_rules(categories: Sequence[str], trimmed: bool = True) -> dict[str, tuple[pl.Expr, pl.Expr]]:
    """Each of the 8 columns (as strings, under their own names) → (its typed value, its rules
    hold: never null).

    `trimmed=False`: the values as read. Trimming every value is most of the screen's cost, and
    machine-written files have nothing to trim: a value that starts or ends with white space or
    an invisible character (or is empty) then fails, and the caller screens again, trimmed.
    """
    c = pl.col
    quantity = c("quantity").cast(pl.Int64, strict=False)
    price = c("unit_price").cast(pl.Decimal(38, 4), strict=False)
    date = c("order_date").str.to_date("%Y-%m-%d", strict=False)
    if trimmed:
        # Blank means empty or only invisible characters; the typed columns' patterns already
        # refuse anything but ASCII digits, '-', '.' and true/false.
        def seen(name: str) -> pl.Expr:
            return ~c(name).str.contains(BLANK_PATTERN)

        category = seen("category") & c("category").is_in(list(categories))
        lowered = c("returned").str.to_lowercase()
        boolean, true = lowered.is_in(list(BOOLEAN_VALUES)), lowered == "true"
    else:  # a value free of edge characters is neither blank nor changed by trimming

        def seen(name: str) -> pl.Expr:
            return ~c(name).str.contains(EDGE_PATTERN)

        edge = re.compile(EDGE_PATTERN)  # such a name is matched only by the trimmed screen
        category = c("category").is_in([name for name in categories if not edge.search(name)])
        # The usual spellings as written, rather than every value lowercased (measured 5x
        # faster); any other spelling of true or false goes to the trimmed screen.
        boolean, true = c("returned").is_in(_USUAL_BOOLEANS), c("returned").is_in(_USUAL_TRUE)
    rules = {
        "order_id": (c("order_id"), seen("order_id")),
        "customer_id": (c("customer_id"), seen("customer_id")),
        "order_date": (date, c("order_date").str.contains(DATE_PATTERN) & (date.dt.year() >= 1)),
        "category": (c("category"), category),
        "product_id": (c("product_id"), seen("product_id")),
        # The patterns allow ASCII digits only, so the digit bounds (leading zeros aside) are
        # bounds on the values; a value too long for the cast is null, so it fails.
        "quantity": (
            quantity,
            c("quantity").str.contains(INTEGER_PATTERN) & (quantity > 0) & (quantity < 10**MAX_QUANTITY_DIGITS),
        ),
        "unit_price": (
            price,
            # an integer bound: a Decimal literal makes Polars import numpy
            c("unit_price").str.contains(DECIMAL_PATTERN) & (price > 0) & (price < 10**MAX_PRICE_INTEGER_DIGITS),
        ),
        "returned": (true, boolean),
    }
    return {name: (typed, valid.fill_null(False)) for name, (typed, valid) in rules.items()}


def screen_columns(categories: Sequence[str], trimmed: bool = True) -> list[pl.Expr]:
    """The 8 columns typed, plus `ok` (every rule holds), `complete` (the last field is not
    empty, which a short row would leave it) and `blank` (a blank line).

    Expects the 8 columns as strings (trimmed unless `trimmed=False`, see `field_rules`) and the
    header's last column (which a short row leaves empty) untrimmed as `__last`.
    """
    c = pl.col
    rules = field_rules(categories, trimmed)
    last = c("__last").str.strip_chars(WHITESPACE) if trimmed else c("__last")
    blank = pl.all_horizontal(*(c(name) == "" for name in COLUMNS)) & (last == "")
    return [
        *(rules[name][0].alias(name) for name in ("order_id", "customer_id", "category", "product_id")),
        *(rules[name][0].alias(name) for name in ("order_date", "quantity", "unit_price", "returned")),
        pl.all_horizontal(*(valid for _, valid in rules.values())).alias("ok"),
        (c("__last") != "").alias("complete"),
        blank.alias("blank"),
    ]


def returned_from_status(status: pl.Expr, values: Sequence[str], trimmed: bool = True) -> pl.Expr:
    """`returned` as text from a status column: "true" when the status is one of `values` in
    any case (`InputShape.is_returned`), else "false"; empty, so the row fails the screen, for a
    status this screen leaves to another reading.

    "Any case" is Python's `str.lower`. Polars lowercases by a newer Unicode than Python's
    (letters such as 'Ꟛ' have a lower case in one and not the other), so the trimmed screen maps
    only statuses written in ASCII, where the two agree, and not a blank one (nor one with an
    invisible character at an edge). The untrimmed screen maps only statuses as exports write
    them, printable ASCII without capitals, which `str.lower` leaves as they are: no value is
    lowercased (a status with a capital or white space goes to the trimmed screen).
    """
    lowered = [v.lower() for v in values]
    if not trimmed:
        as_written = status.str.contains(_LOWER_ASCII)
        mapped = pl.when(status.is_in(lowered)).then(pl.lit("true")).otherwise(pl.lit("false"))
        return pl.when(as_written).then(mapped).otherwise(pl.lit(""))
    mapped = pl.when(status.str.to_lowercase().is_in(lowered)).then(pl.lit("true")).otherwise(pl.lit("false"))
    unsure = status.str.contains(EDGE_PATTERN) | (status.str.len_bytes() != status.str.len_chars())
    return pl.when(unsure).then(pl.lit("")).otherwise(mapped)


@dataclass(frozen=True, slots=True)
class Screen:
    """A file's rows as the screen reads them, before any row is looked at.

    `rows` holds per row the `outputs` (typed: the facts' columns, or a catalog's two), `__ok`
    (every rule a row decides alone holds), `__complete` (the last field is not empty: a short
    row leaves it so) and `__id` (a hash of what must be unique: the order, the line or the
    product). At line grain (`level`: the order-level fields) each batch of `rows`, in file
    order, is then read by `inherit`, which sets `__ok` and adds `__inconsistent` (an
    order-level field differs from the line above of the same order) and `__start` (the order
    id's hash on the first line of each run of an order's lines, else null).
    """

    rows: pl.LazyFrame
    outputs: tuple[str, ...]
    level: tuple[str, ...] | None = None

    @property
    def lines(self) -> bool:
        return self.level is not None


def screen(
    raw: pl.LazyFrame,
    positions: Mapping[str, int],
    width: int,
    shape: InputShape,
    categories: Sequence[str],
    trimmed: bool,
    catalog_file: bool = False,
    window: DateWindow | None = None,
) -> Screen:
    """The screen of one file, from its columns read as strings by position (`c0`, `c1`, …):
    `positions` gives each field's column (`header.check_header`), `width` the header's;
    `window` the order dates allowed (None: any; a catalog file holds none)."""
    c = pl.col
    read = [c(f"c{index}").alias(field) for field, index in positions.items()]
    frame = raw.select(
        *(column.str.strip_chars(WHITESPACE) if trimmed else column for column in read),
        c(f"c{width - 1}").alias("__last"),
    )
    if catalog_file:
        rules = field_rules([*categories, UNKNOWN], trimmed)
        ok = rules["product_id"][1] & rules["category"][1]
        identity = c("product_id").hash(seed=0)
        return Screen(frame.select(*CATALOG_COLUMNS, *_flags(ok, identity)), CATALOG_COLUMNS)
    if shape.timestamped:
        assert shape.timezone is not None
        frame = with_local_date(frame, "order_timestamp", shape.timezone, "__date")
    typed = _order_fields(shape, categories, trimmed, window)
    if "line_id" in positions:
        valid = ~c("line_id").str.contains(BLANK_PATTERN if trimmed else EDGE_PATTERN)
        typed["order_id"] = (typed["order_id"][0], typed["order_id"][1] & valid)
    if not shape.lines:
        ok = pl.all_horizontal(*(valid for _, valid in typed.values()))
        columns = [value.alias(f) for f, (value, _) in typed.items()]
        return Screen(frame.select(*columns, *_flags(ok, c("order_id").hash(seed=0))), tuple(FACT_SCHEMA))
    key = "line_id" if "line_id" in positions else "product_id"
    level = tuple("order_date" if f == "order_timestamp" else f for f in shape.order_level())
    return Screen(_line_grain(frame, shape, typed, key, level), tuple(FACT_SCHEMA), level)


def _flags(ok: pl.Expr, identity: pl.Expr) -> list[pl.Expr]:
    return [ok.alias("__ok"), (pl.col("__last") != "").alias("__complete"), identity.alias("__id")]


def _order_fields(
    shape: InputShape, categories: Sequence[str], trimmed: bool, window: DateWindow | None
) -> dict[str, tuple[pl.Expr, pl.Expr]]:
    """The facts' columns in their order, each (typed, valid), read through `shape`; the order
    date, as read (a timestamp's in its zone), within `window`: one comparison on the parsed date."""
    c = pl.col
    rules = field_rules(categories, trimmed)
    if shape.catalog:  # order files carry no category: it is resolved from the catalog
        rules["category"] = (pl.lit(UNKNOWN), pl.lit(True))
    if shape.timestamped:
        rules["order_date"] = (c("__date"), c("__date").is_not_null())
    if shape.returned_column:
        mapped = returned_from_status(c("returned"), shape.returned_values, trimmed)
        rules["returned"] = (mapped == "true", mapped != "")
    if window is not None:
        date, valid = rules["order_date"]
        inside = date.is_between(pl.lit(window.earliest), pl.lit(window.latest), closed="both")
        rules["order_date"] = (date, (valid & inside).fill_null(False))
    return {name: rules[name] for name in FACT_SCHEMA}


def _line_grain(
    frame: pl.LazyFrame,
    shape: InputShape,
    typed: dict[str, tuple[pl.Expr, pl.Expr]],
    key: str,
    level: tuple[str, ...],
) -> pl.LazyFrame:
    """Line grain, what each line holds alone: its typed fields and their validity, whether each
    order-level field is empty, and the hashes of its order and of its line (a collision can only
    send a valid file to the exact path). What it inherits from the line above is `inherit`'s."""
    c = pl.col
    read_as = {"order_date": shape.date_field}  # the column a field's blank is seen in
    order = c("order_id").hash(seed=0)
    return frame.select(
        *(value.alias(f) for f, (value, _) in typed.items()),
        *(valid.alias(f"__valid_{f}") for f, (_, valid) in typed.items()),
        *((c(read_as.get(f, f)) == "").alias(f"__empty_{f}") for f in level),
        *_flags(pl.lit(True), order + c(key).hash(seed=1)),
        order.alias("__order"),
    )


def inherit(rows: pl.DataFrame, above: pl.DataFrame | None, level: Sequence[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Line grain, on one batch of a screen's rows (`Screen.level`), in file order: a blank
    order-level field on a later line of an order takes its first line's value, and its
    validity. Exports write an order's lines together, so the value comes from the row above
    within the same order; a file whose orders are not contiguous is caught by the caller (more
    runs of an order id than order ids), as is a line above that disagrees.

    `above`: the previous batch's last row as this returned it (None for the first batch), so a
    batch reads as if the file were one frame. Returns the batch read, and its last row for the
    next. Eager, per batch: in the streaming query, shifts and fills cost a third more CPU, and
    memory to hold the branches they split the query into.
    """
    c = pl.col
    frame = rows if above is None else pl.concat([above, rows], how="vertical")
    same = (c("order_id") == c("order_id").shift(1)).fill_null(False)
    read = frame.with_columns(same.alias("__same"), pl.when(same).then(None).otherwise(c("__order")).alias("__start"))
    read = read.with_columns(
        pl.when(c(f"__empty_{f}") & c("__same")).then(None).otherwise(c(name)).forward_fill().alias(name)
        for f in level
        for name in (f, f"__valid_{f}")
    )
    differs = pl.any_horizontal(c(f) != c(f).shift(1) for f in level)
    read = read.with_columns(
        pl.all_horizontal(c(f"__valid_{f}") for f in FACT_SCHEMA).alias("__ok"),
        (c("__same") & differs).fill_null(False).alias("__inconsistent"),
    )
    return (read if above is None else read.slice(1)), read.tail(1).select(rows.columns)
