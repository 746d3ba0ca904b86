"""The rules of an order row, in any shape: every broken rule, located, in the file's terms.

The seed's 8 columns are the default shape; a configured one adds columns found by their own
names, the order date from a timestamp, `returned` from a status, and — at line grain — orders
spanning rows. The exact validator (`exact.read_rows`) reads the file and hands each row here;
each clean row is handed on as canonical values (the 8 columns, in order), so what is staged is
what was validated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import BinaryIO

from orderpipe.core.exact import read_rows
from orderpipe.core.header import order_layout
from orderpipe.core.report import ReportBuilder, ValidationReport
from orderpipe.core.rules import COLUMNS, WHITESPACE, RowError, check_value, is_blank, shown
from orderpipe.core.shape import UNKNOWN, InputShape
from orderpipe.core.timestamps import beyond_the_years, local_date
from orderpipe.core.window import IMPLAUSIBLE, DateWindow

__all__ = ["OrderRows", "outside_window", "timestamp_date", "validate_shaped"]


def timestamp_date(value: str, zone: str) -> str | RowError:
    """The order date (ISO) of a non-blank timestamp in `zone`, or why it has none."""
    day = local_date(value, zone)
    if day is not None:
        return day.isoformat()
    beyond = beyond_the_years(value, zone)
    message = (
        f"{shown(value)} {beyond}: order dates run from 0001-01-01 to 9999-12-31, check its year"
        if beyond
        else f"{shown(value)} is not a timestamp: write it as ISO 8601 (2025-10-07T09:50:26+02:00) "
        "or as 2025-10-07 09:50:26 +0200"
    )
    return RowError("invalid-timestamp", "order_timestamp", value, message)


def outside_window(window: DateWindow, day: str, field: str, value: str, zone: str | None) -> str | None:
    """Why the order date `day` (ISO), read from `value` of `field`, is outside `window`; None
    when it is inside."""
    why = window.error(dt.date.fromisoformat(day))
    if why is None:
        return None
    read = f" (the order date {day} in {zone})" if field == "order_timestamp" else ""
    return f"{shown(value)}{read} {why}"


def validate_shaped(
    stream: BinaryIO,
    file: str,
    shape: InputShape,
    categories: frozenset[str],
    on_row: Callable[[list[str]], None] | None = None,
    window: DateWindow | None = None,
) -> ValidationReport:
    """Validate one order file read through `shape`; never raises for bad data. `window`: the
    order dates allowed (`InputShape.date_window`), None for any."""
    return read_rows(stream, file, OrderRows(shape, categories, window), on_row)


def _canonical(field: str) -> str:
    return "order_date" if field == "order_timestamp" else field


class OrderRows:
    """Checks order rows one at a time; remembers what the file-wide rules need (ids, orders,
    dates). Fields with rules of their own (a line id, a timestamp, a status) are the shape's;
    every other value is checked by `rules.check_value`, as in the seed's format; a valid order
    date, then, against `window` (the file's, evaluated once when it is read; None: any date)."""

    def __init__(self, shape: InputShape, categories: frozenset[str], window: DateWindow | None = None) -> None:
        self.shape = shape
        self.categories = categories
        self.window = window
        self.layout = order_layout(shape)
        self.explained = shape.explain()
        self.zone = shape.timezone
        self.report = ReportBuilder("")
        #: (field, column, has rules of its own) in reading order: shape.required(), then a line id
        self._columns: tuple[tuple[str, int, bool], ...] = ()
        self._canon: tuple[str, ...] = ()  # the fields as staged (a timestamp feeds order_date)
        self._order_at = 0
        self._date_at = 0  # the date field's place in reading order
        self._level: tuple[tuple[int, str], ...] = ()
        self._plain = False  # the fields are the 8 columns in their order: values are canonical
        self._dates: set[str] = set()
        self._seen: dict[str, int] = {}  # order grain: order id -> first line
        self._lines: dict[tuple[str, str], int] = {}  # line grain: line identity -> first line
        #: order id -> its first line, that line's order-level values and order date
        self._orders: dict[str, tuple[int, dict[str, str], str | None]] = {}
        self._returned = {v.lower() for v in shape.returned_values}  # `InputShape.is_returned`
        self._key = "product_id"

    def bind(self, positions: dict[str, int], report: ReportBuilder) -> None:
        """Start a file (see `exact.RowRules`)."""
        self.report = report
        special = {"line_id", "order_timestamp", *(("returned",) if self.shape.returned_column else ())}
        self._columns = tuple((field, index, field in special) for field, index in positions.items())
        self._canon = tuple(_canonical(f) for f in positions)
        self._order_at = positions["order_id"]
        self._date_at = list(positions).index(self.shape.date_field)
        levels = self.shape.order_level() if self.shape.lines else ()
        self._level = tuple((positions[f], f) for f in levels)  # (column, field) of order-level fields
        self._plain = tuple(positions) == COLUMNS
        self._key = "line_id" if "line_id" in positions else "product_id"
        self._dates, self._seen, self._lines, self._orders = set(), {}, {}, {}

    def dates(self) -> tuple[str, ...]:
        return tuple(sorted(self._dates))

    def _error(self, code: str, line: int, field: str, value: str, message: str) -> None:
        source = self.shape.source(field)
        if source != field:
            message += f" ({shown(source)} is read as {field})"
        self.report.add(code, line, source, value, message)

    def check(self, record: list[str], line: int) -> list[str] | None:
        """The row's canonical values (COLUMNS order) when it breaks no rule, else None."""
        if self._level:  # line grain: a later line's blank order-level fields come from its first line
            record = self._inherit(record)
        categories, values = self.categories, []
        for field, index, special in self._columns:  # in reading order
            value = record[index].strip(WHITESPACE)
            if special:
                values.append(self._special_value(field, value, line))
                continue
            error = check_value(field, value, categories)
            if error is None:
                values.append(value)
            else:
                self._error(error.code, line, field, value, error.message)
                values.append(None)
        day = values[self._date_at] if self.window is not None else None
        if day is not None:
            values[self._date_at] = self._plausible(record, day, line)
        clean = None not in values
        order_id = record[self._order_at].strip(WHITESPACE)
        if self._level:
            clean = self._line_rules(order_id, record, values, line) and clean
        elif (first_line := self._seen.setdefault(order_id, line)) != line and not is_blank(order_id):
            message = f"order_id {shown(order_id)} already appears at line {first_line}"
            self._error("duplicate-order-id", line, "order_id", order_id, message)
            clean = False
        if not clean:
            return None
        row: list[str] = values if self._plain else self._canonical_row(values)  # type: ignore[assignment]
        row[7] = row[7].lower()
        self._dates.add(row[2])
        return row

    def _plausible(self, record: list[str], day: str, line: int) -> str | None:
        """The order date `day` (ISO) when the window allows it, else None (the report says why)."""
        assert self.window is not None
        field, index, _ = self._columns[self._date_at]
        why = outside_window(self.window, day, field, record[index].strip(WHITESPACE), self.zone)
        if why is None:
            return day
        self._error(IMPLAUSIBLE, line, field, record[index].strip(WHITESPACE), why)
        return None

    def _inherit(self, record: list[str]) -> list[str]:
        """The record with each blank order-level field taken from its order's first line."""
        order_id = record[self._order_at].strip(WHITESPACE)
        first = self._orders.get(order_id) if not is_blank(order_id) else None
        if first is None:
            return record
        record = list(record)
        for index, field in self._level:
            if is_blank(record[index]):
                record[index] = first[1][field]
        return record

    def _canonical_row(self, values: list[str | None]) -> list[str]:
        """Values in reading order → the 8 columns (a timestamp's date as order_date)."""
        named = dict(zip(self._canon, values, strict=True))
        if self.shape.catalog:
            named["category"] = UNKNOWN  # resolved from the catalog when KPIs are computed
        return [named[c] or "" for c in COLUMNS]

    def _special_value(self, field: str, value: str, line: int) -> str | None:
        """The canonical text of a line id, a timestamp or a status, or None (the report says why)."""
        if value == "" or is_blank(value):
            what = "is empty" if value == "" else "holds only invisible characters"
            self._error("blank-value", line, field, value, f"{field} {what}")
            return None
        if field == "line_id":
            return value
        if field == "returned":
            return "true" if self.shape.is_returned(value) else "false"
        assert self.zone is not None
        day = timestamp_date(value, self.zone)
        if isinstance(day, RowError):
            self._error(day.code, line, field, value, day.message)
            return None
        return day

    def _line_rules(self, order_id: str, record: list[str], values: list[str | None], line: int) -> bool:
        """Line grain: unique lines and consistent orders."""
        if is_blank(order_id):
            return True  # a blank id is already an error; it duplicates nothing
        named = {field: record[index].strip(WHITESPACE) for field, index, _ in self._columns}
        clean = True
        item = named[self._key]
        if not is_blank(item):
            first_line = self._lines.setdefault((order_id, item), line)
            if first_line != line:
                message = (
                    f"order {shown(order_id)} already has a line with {self._key} {shown(item)} at line "
                    f"{first_line}: a line appears once per file"
                )
                self._error("duplicate-line", line, self._key, item, message)
                clean = False
        mine = dict(zip(self._canon, values, strict=True))
        first = (line, {field: named[field] for _, field in self._level}, mine["order_date"])
        order = self._orders.setdefault(order_id, first)
        if order[0] != line:
            clean = self._consistent(order_id, order, named, mine, line) and clean
        return clean

    def _consistent(
        self,
        order_id: str,
        order: tuple[int, dict[str, str], str | None],
        raw: dict[str, str],
        mine: dict[str, str | None],
        line: int,
    ) -> bool:
        """A later line agrees with its order's first line on every order-level field (as written
        there; a timestamp by the date it gives, a status by what it means)."""
        first_line, first, first_date = order
        for _, field in self._level:
            value, theirs = mine[_canonical(field)], first[field]
            if value is None or is_blank(theirs):
                continue  # already reported as a bad value on one of the lines
            if field == "order_timestamp":
                same = first_date is None or first_date == value
            elif field == "returned":
                same = (theirs.lower() in self._returned) == (value == "true")
            else:
                same = theirs == value
            if not same:
                message = (
                    f"order {shown(order_id)} has {_canonical(field)} {shown(raw[field])} here but "
                    f"{shown(theirs)} on its first line {first_line}: every line of an order must agree"
                )
                self._error("inconsistent-order", line, field, raw[field], message)
                return False
        return True
