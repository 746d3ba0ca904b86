"""Relational grain: order headers and their lines in files of their own, joined when counted.

A shop's database export (and the lab's dataset) comes as three tables: headers (one row per
order: its customer, its date, its status), lines (one row per item: its order, its product, its
price) and the catalog (`core/catalog.py`). Each file is a batch of one of them. The current
headers are the latest row per order id over the committed header batches, the current lines
the latest row per line id over the line batches (an upsert, as for the catalog). An order
counts once its header and at least one of its lines are in; its lines then become line-grain
rows (quantity 1 at their price) under the header's date, customer and status, and the KPIs are
those of the line grain (`core/lines.py`). Lines whose header has not come yet wait.

Pure: the row rules read a stream through `exact.read_rows`; the rest are Polars expressions
over frames handed in, each tagged with its batch's `seq`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from orderpipe.core.header import part_layout
from orderpipe.core.report import ReportBuilder
from orderpipe.core.rules import DATE_PATTERN, EDGE_PATTERN, WHITESPACE, check_value, is_blank, shown
from orderpipe.core.screen import field_rules, returned_from_status
from orderpipe.core.shape import InputShape
from orderpipe.core.shape_validate import outside_window, timestamp_date
from orderpipe.core.timestamps import with_local_date
from orderpipe.core.window import IMPLAUSIBLE, DateWindow

__all__ = [
    "HEADER_SCHEMA",
    "LINE_SCHEMA",
    "HeaderRows",
    "LineRows",
    "Unjoined",
    "counted_lines",
    "current_headers",
    "current_lines",
    "describe_waiting",
    "latest_rows",
    "screen_part",
    "waiting",
]

#: A header batch's staged rows (`items_expected` null when the file does not say).
HEADER_SCHEMA: dict[str, pl.DataType] = {
    "order_id": pl.String(),
    "customer_id": pl.String(),
    "order_date": pl.Date(),
    "returned": pl.Boolean(),
    "items_expected": pl.Int64(),
}
#: A line batch's staged rows.
LINE_SCHEMA: dict[str, pl.DataType] = {
    "line_id": pl.String(),
    "order_id": pl.String(),
    "product_id": pl.String(),
    "unit_price": pl.Decimal(38, 4),
}
#: The most lines a header may announce: a bound, not a rule of business.
MAX_ITEMS_DIGITS = 9


class _PartRows:
    """What the header and line rules share: the columns, the located error, one id per file."""

    kind = ""
    unique = ""  # the field each row of a file must hold a value of its own in
    duplicate = ""  # the code of a repeated one

    def __init__(self, shape: InputShape) -> None:
        self.shape = shape
        self.layout = part_layout(shape, self.kind)
        self.explained = shape.explain_part(self.kind)
        self.report = ReportBuilder("")
        self._at: dict[str, int] = {}
        self._seen: dict[str, int] = {}

    def bind(self, positions: dict[str, int], report: ReportBuilder) -> None:
        self.report = report
        self._at = positions
        self._seen = {}

    def dates(self) -> tuple[str, ...]:
        return ()

    def _error(self, code: str, line: int, field: str, value: str, message: str) -> None:
        source = self.shape.source(field)
        if source != field:
            message += f" ({shown(source)} is read as {field})"
        self.report.add(code, line, source, value, message)

    def _value(self, record: list[str], field: str) -> str:
        return record[self._at[field]].strip(WHITESPACE)

    def _plain(self, field: str, value: str, line: int) -> str | None:
        """A value by the seed's rule of its field (an id, a customer, a product: not blank)."""
        error = check_value(field, value, frozenset())
        if error is None:
            return value
        self._error(error.code, line, field, value, error.message)
        return None

    def _once(self, value: str, line: int) -> bool:
        first = self._seen.setdefault(value, line)
        if first == line:
            return True
        what = "order" if self.kind == "headers" else "line"
        message = f"{self.unique} {shown(value)} already appears at line {first}: give each {what} one row"
        self._error(self.duplicate, line, self.unique, value, message)
        return False


class HeaderRows(_PartRows):
    """The rules of a header row (see `exact.RowRules`): an order id, once per file; a customer;
    a date (or a timestamp's, in the configured zone) within the window; a status or returned
    flag; and, when the file has the column, the number of lines the order should have."""

    kind = "headers"
    unique = "order_id"
    duplicate = "duplicate-order-id"

    def __init__(self, shape: InputShape, window: DateWindow | None = None) -> None:
        super().__init__(shape)
        self.window = window
        self._dates: set[str] = set()

    def bind(self, positions: dict[str, int], report: ReportBuilder) -> None:
        super().bind(positions, report)
        self._dates = set()

    def dates(self) -> tuple[str, ...]:
        return tuple(sorted(self._dates))

    def check(self, record: list[str], line: int) -> list[str] | None:
        """[order id, customer, date, returned, items expected ("" when not said)] or None."""
        order_id = self._plain("order_id", self._value(record, "order_id"), line)
        customer = self._plain("customer_id", self._value(record, "customer_id"), line)
        day = self._date(record, line)
        returned = self._returned(record, line)
        items = self._items(record, line)
        values = [order_id, customer, day, returned, items]
        if order_id is not None and not self._once(order_id, line):
            return None
        if None in values:
            return None
        assert day is not None
        self._dates.add(day)
        return [v or "" for v in values]

    def _date(self, record: list[str], line: int) -> str | None:
        field = self.shape.date_field
        value = self._value(record, field)
        if field == "order_timestamp":
            if is_blank(value):
                return self._plain(field, value, line)
            assert self.shape.timezone is not None
            read = timestamp_date(value, self.shape.timezone)
            if not isinstance(read, str):
                self._error(read.code, line, field, value, read.message)
                return None
            day: str | None = read
        else:
            day = self._plain(field, value, line)
        if day is None or self.window is None:
            return day
        why = outside_window(self.window, day, field, value, self.shape.timezone)
        if why is not None:
            self._error(IMPLAUSIBLE, line, field, value, why)
            return None
        return day

    def _returned(self, record: list[str], line: int) -> str | None:
        value = self._value(record, "returned")
        if not self.shape.returned_column:
            checked = self._plain("returned", value, line)
            return None if checked is None else checked.lower()
        if is_blank(value):
            return self._plain("returned", value, line)
        return "true" if self.shape.is_returned(value) else "false"

    def _items(self, record: list[str], line: int) -> str | None:
        if "items_expected" not in self._at:
            return ""
        value = self._value(record, "items_expected")
        if value == "":
            return ""  # not said: the order is never shown as incomplete
        if not value.isascii() or not value.isdigit() or len(value.lstrip("0")) > MAX_ITEMS_DIGITS:
            message = f"{shown(value)} is not a number of lines (whole, at most {MAX_ITEMS_DIGITS} digits), nor empty"
            self._error("invalid-integer", line, "items_expected", value, message)
            return None
        return str(int(value))


class LineRows(_PartRows):
    """The rules of a line row (see `exact.RowRules`): a line id, once per file; its order; its
    product; its price (as the seed's unit price)."""

    kind = "lines"
    unique = "line_id"
    duplicate = "duplicate-line"

    def check(self, record: list[str], line: int) -> list[str] | None:
        """[line id, order id, product, price] or None."""
        line_id = self._plain("line_id", self._value(record, "line_id"), line)
        values = [
            line_id,
            self._plain("order_id", self._value(record, "order_id"), line),
            self._plain("product_id", self._value(record, "product_id"), line),
            self._plain("unit_price", self._value(record, "unit_price"), line),
        ]
        if line_id is not None and not self._once(line_id, line):
            return None
        return None if None in values else [v or "" for v in values]


def screen_part(
    frame: pl.DataFrame, positions: Mapping[str, int], shape: InputShape, kind: str, window: DateWindow | None
) -> pl.DataFrame | None:
    """The typed rows of a header or line file read as strings by position (`c0`, `c1`, …),
    when every row is certainly valid; else None (the exact rules decide, and say where).

    Stricter than the exact rules on purpose: a value with white space or an invisible
    character at an edge, a line count of leading zeros, a status or flag in another spelling
    than exports write, a missing field, all leave the file to them."""
    c = pl.col
    read = frame.select(c(f"c{index}").alias(field) for field, index in positions.items())
    rules = field_rules((), trimmed=False)
    plain = [f for f in ("order_id", "customer_id", "line_id", "product_id") if f in positions]
    checks = [c(f).is_not_null() & ~c(f).str.contains(EDGE_PATTERN) for f in plain]
    typed = {f: c(f) for f in plain}
    if kind == "lines":
        price, valid = rules["unit_price"]
        checks.append(valid)
        typed["unit_price"] = price
    else:
        day, valid = _header_date(shape)
        if window is not None:
            valid = valid & day.is_between(pl.lit(window.earliest), pl.lit(window.latest), closed="both")
        checks.append(valid)
        typed["order_date"] = day
        if shape.returned_column:
            mapped = returned_from_status(c("returned"), shape.returned_values, trimmed=False)
            checks.append(mapped != "")
            typed["returned"] = mapped == "true"
        else:
            checks.append(rules["returned"][1])
            typed["returned"] = rules["returned"][0]
        items = c("items_expected") if "items_expected" in positions else pl.lit("", pl.String)
        checks.append(items.str.contains(r"^([1-9][0-9]{0,8}|0)?$"))
        typed["items_expected"] = pl.when(items != "").then(items).cast(pl.Int64, strict=False)
    schema = HEADER_SCHEMA if kind == "headers" else LINE_SCHEMA
    ok = pl.all_horizontal(check.fill_null(False) for check in checks).alias("__ok")
    screened = _parsed(read, shape, kind).select(*(typed[f].alias(f) for f in schema), ok)
    key = "order_id" if kind == "headers" else "line_id"
    if not screened.get_column("__ok").all() or screened.get_column(key).n_unique() != screened.height:
        return None
    return screened.drop("__ok")


def _parsed(read: pl.DataFrame, shape: InputShape, kind: str) -> pl.DataFrame:
    """A header's date, parsed once as `__date`: from its timestamp in the zone, or as written."""
    if kind != "headers":
        return read
    if shape.timestamped:
        assert shape.timezone is not None
        return with_local_date(read.lazy(), "order_timestamp", shape.timezone, "__date").collect()
    return read.with_columns(pl.col("order_date").str.to_date("%Y-%m-%d", strict=False).alias("__date"))


def _header_date(shape: InputShape) -> tuple[pl.Expr, pl.Expr]:
    """(the date, its rules hold) of a header row, from `_parsed`'s `__date`."""
    c = pl.col
    source = c(shape.date_field)
    valid = source.is_not_null() & ~source.str.contains(EDGE_PATTERN) & c("__date").is_not_null()
    if not shape.timestamped:
        valid = valid & source.str.contains(DATE_PATTERN) & (c("__date").dt.year() >= 1)
    return c("__date"), valid


def latest_rows(rows: pl.LazyFrame, key: str) -> pl.LazyFrame:
    """Per value of `key`, the row of the highest seq (`rows` tagged with `seq`, kept)."""
    return rows.filter(pl.col("seq") == pl.col("seq").max().over(key))


def current_headers(headers: pl.LazyFrame) -> pl.LazyFrame:
    """Per order id, the header of the highest seq (`headers` tagged with `seq`)."""
    return latest_rows(headers, "order_id").drop("seq")


def current_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Per line id, the line of the highest seq (`lines` tagged with `seq`)."""
    return latest_rows(lines, "line_id").drop("seq")


def counted_lines(headers: pl.LazyFrame, lines: pl.LazyFrame, dates: Sequence[str] | None = None) -> pl.LazyFrame:
    """The line-grain rows of every order that counts (its header and at least one line in),
    from current headers and lines, on `dates` only when given: quantity 1 at the line's price,
    the header's customer, date and status. No category: it is the catalog's
    (`core.catalog.resolve_categories`)."""
    if dates is not None:
        days = pl.Series([*dates], dtype=pl.String).str.to_date().implode()
        headers = headers.filter(pl.col("order_date").is_in(days)).collect().lazy()
        # The dates' lines by a scan of the order ids (a join would hash every line).
        lines = lines.filter(pl.col("order_id").is_in(headers.select("order_id").collect().to_series().implode()))
    joined = lines.join(headers, on="order_id")
    one = pl.lit(1, pl.Int64)  # (a 64-bit sum of items, as the facts' quantity)
    return joined.select(
        "order_date", "order_id", "customer_id", "product_id", one.alias("quantity"), "unit_price", "returned"
    )


def waiting(headers: pl.LazyFrame, lines: pl.LazyFrame) -> dict[str, int]:
    """What does not count yet, from current headers and lines: lines whose header has not come
    (and their orders), headers without any line, and counted orders with fewer lines than
    their header announced."""
    per_order = lines.group_by("order_id").agg(pl.len().alias("lines"))
    alone = per_order.join(headers.select("order_id"), on="order_id", how="anti")
    waiting_lines, waiting_orders = alone.select(pl.col("lines").sum(), pl.len().alias("orders")).collect().row(0)
    with_lines = headers.join(per_order, on="order_id", how="left")
    without, incomplete = (
        with_lines.select(
            pl.col("lines").is_null().sum().alias("without"),
            (pl.col("lines") < pl.col("items_expected")).sum().alias("incomplete"),
        )
        .collect()
        .row(0)
    )
    return {
        "waiting_lines": int(waiting_lines or 0),
        "waiting_orders": int(waiting_orders),
        "orders_without_lines": int(without),
        "incomplete_orders": int(incomplete or 0),
    }


class Unjoined:
    """What `waiting` counts, kept by order and changed by each batch's rows only, so that a
    process that keeps the tables (`relational.KnownTables`) tells what waits without going
    over every line again. `tests/test_known_tables.py` holds it to `waiting` at every step."""

    def __init__(self, headers: pl.DataFrame, lines: pl.DataFrame) -> None:
        per_order = lines.group_by("order_id").agg(pl.len().alias("lines"))
        #: order id -> its current lines; order id with a header -> the lines it announces.
        self.lines: dict[str, int] = dict(zip(*_columns(per_order, "order_id", "lines"), strict=True))
        self.expected: dict[str, int | None] = dict(
            zip(*_columns(headers, "order_id", "items_expected"), strict=True)
        )
        self.counts = waiting(headers.lazy(), lines.lazy())

    def headers_in(self, headers: pl.DataFrame) -> None:
        """Headers committed (new, or replacing an order's)."""
        orders, expected = _columns(headers, "order_id", "items_expected")
        self._changing(orders, -1)
        self.expected.update(zip(orders, expected, strict=True))
        self._changing(orders, +1)

    def lines_in(self, lines: pl.DataFrame, replaced: pl.DataFrame) -> None:
        """Lines committed, and the current lines they replace (same line ids, maybe other orders)."""
        gone, new = replaced.get_column("order_id").to_list(), lines.get_column("order_id").to_list()
        orders = [*gone, *new]
        self._changing(orders, -1)
        for order in gone:
            left = self.lines[order] - 1
            if left:
                self.lines[order] = left
            else:
                del self.lines[order]
        for order in new:
            self.lines[order] = self.lines.get(order, 0) + 1
        self._changing(orders, +1)

    def _changing(self, orders: Sequence[str], sign: int) -> None:
        """Take the orders' share of the counts out (-1) or put it back in (+1)."""
        for order in set(orders):
            count = self.lines.get(order, 0)
            if order not in self.expected:
                self.counts["waiting_lines"] += sign * count
                self.counts["waiting_orders"] += sign * (count > 0)
                continue
            expected = self.expected[order]
            self.counts["orders_without_lines"] += sign * (count == 0)
            self.counts["incomplete_orders"] += sign * (count > 0 and expected is not None and count < expected)


def _columns(frame: pl.DataFrame, *names: str) -> list[list[Any]]:
    return [frame.get_column(name).to_list() for name in names]


def describe_waiting(counts: dict[str, int]) -> str:
    """What `waiting` found, for a person: what does not count yet, and the orders counted with
    fewer lines than their header says."""
    lines, orders = counts["waiting_lines"], counts["waiting_orders"]
    parts = [
        f"{_n(lines, 'line')} of {_n(orders, 'order')} waiting for the header" if lines else "",
        f"{_n(counts['orders_without_lines'], 'header')} without a line yet" if counts["orders_without_lines"] else "",
        f"{_n(counts['incomplete_orders'], 'order')} with fewer lines than the header says (counted)"
        if counts["incomplete_orders"]
        else "",
    ]
    return "; ".join(p for p in parts if p) or "nothing waits: every line has its header, every header a line"


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"
