"""The exact validator for a configured shape: every broken rule, located, in the file's terms.

It reads the file row by row like the seed's validator (same decoding, CSV dialect, trimming
and value rules), through the shape: columns found by their configured names, the order date
from a timestamp, `returned` from a status, and — at line grain — orders spanning rows. Each
clean row is handed on as canonical values (the 8 columns, in order), so what is staged is
what was validated.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from typing import BinaryIO

from orderpipe.core.header import check_header, order_layout
from orderpipe.core.report import ReportBuilder, ValidationReport
from orderpipe.core.rules import COLUMNS, WHITESPACE, check_value, is_blank, shown
from orderpipe.core.shape import UNKNOWN, InputShape
from orderpipe.core.timestamps import beyond_the_years, local_date
from orderpipe.core.validate import UnreadableFile, _is_blank, _Lines

__all__ = ["validate_shaped"]


def validate_shaped(
    stream: BinaryIO,
    file: str,
    shape: InputShape,
    categories: frozenset[str],
    on_row: Callable[[list[str]], None] | None = None,
) -> ValidationReport:
    """Validate one CSV file read through `shape`; never raises for bad data."""
    report = ReportBuilder(file)
    lines = _Lines(stream)
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(lines, strict=True)
    rows = 0
    try:
        header = next(reader, None)
        if header is None:
            report.add("no-rows", 1, None, None, "the file is empty: expected a header and at least one row")
            return _built(report, shape, 0)
        names = [name.strip(WHITESPACE) for name in header]
        positions = check_header(names, order_layout(shape), report)
        if positions is None:
            return _built(report, shape, 0)
        rows_check = _Rows(shape, positions, categories, report)
        blank_lines: list[int] = []
        while True:
            start = lines.count + 1
            record = next(reader, None)
            if record is None:
                break
            if _is_blank(record):
                blank_lines.append(start)
                continue
            rows += 1
            if len(record) != len(names):
                message = f"row has {len(record)} fields, the header has {len(names)}"
                report.add("wrong-field-count", start, None, None, message)
                continue
            values = rows_check.check(record, start)
            if values is not None and on_row is not None:
                on_row(values)
    except csv.Error as exc:
        report.add("csv-error", lines.count, None, None, f"CSV cannot be parsed: {exc}")
        return _built(report, shape, rows)
    except UnreadableFile as exc:
        report.add(exc.code, exc.line, None, None, exc.message)
        return _built(report, shape, rows)
    if blank_lines:
        report.warnings.append(f"{len(blank_lines)} blank line(s) skipped, first at line {blank_lines[0]}")
    if rows == 0:
        report.add("no-rows", 2, None, None, "the file has a header but no order rows")
    return _built(report, shape, rows, tuple(sorted(rows_check.dates)))


def _built(report: ReportBuilder, shape: InputShape, rows: int, dates: tuple[str, ...] = ()) -> ValidationReport:
    built = report.build(rows, dates)
    return built.explained(shape.explain())


class _Rows:
    """Checks rows one at a time; remembers what the file-wide rules need (ids, orders, dates)."""

    def __init__(
        self, shape: InputShape, positions: dict[str, int], categories: frozenset[str], report: ReportBuilder
    ) -> None:
        self.shape = shape
        self.positions = positions
        self.categories = categories
        self.report = report
        self.zone = shape.timezone
        self.dates: set[str] = set()
        self.seen: dict[str, int] = {}  # order grain: order id -> first line
        self.lines: dict[tuple[str, str], int] = {}  # line grain: line identity -> first line
        self.orders: dict[str, tuple[int, dict[str, str]]] = {}  # order id -> first line, its order-level values
        self.key = "line_id" if "line_id" in positions else "product_id"

    def _error(self, code: str, line: int, field: str, value: str, message: str) -> None:
        source = self.shape.source(field)
        if source != field:
            message += f" ({shown(source)} is read as {field})"
        self.report.add(code, line, source, value, message)

    def check(self, record: list[str], line: int) -> list[str] | None:
        """The row's canonical values (COLUMNS order) when it breaks no rule, else None."""
        raw = {field: record[index].strip(WHITESPACE) for field, index in self.positions.items()}
        order_id = raw["order_id"]
        first = self.orders.get(order_id) if self.shape.lines and not is_blank(order_id) else None
        if first is not None:  # a later line of an order: blank order-level fields come from its first line
            for field in self.shape.order_level():
                if is_blank(raw[field]):
                    raw[field] = first[1][field]
        clean = True
        values: dict[str, str] = {}
        for field, value in raw.items():
            canonical = self._value(field, value, line)
            if canonical is None:
                clean = False
            else:
                values["order_date" if field == "order_timestamp" else field] = canonical
        if not is_blank(order_id):
            clean = self._file_rules(order_id, raw, values, line) and clean
        if not clean:
            return None
        if self.shape.catalog:
            values["category"] = UNKNOWN  # resolved from the catalog when KPIs are computed
        self.dates.add(values["order_date"])
        return [values[c] for c in COLUMNS]

    def _value(self, field: str, value: str, line: int) -> str | None:
        """The canonical text of one value, or None (and the report says why)."""
        if field in ("line_id", "order_timestamp") or (field == "returned" and self.shape.returned_column):
            if value == "" or is_blank(value):
                what = "is empty" if value == "" else "holds only invisible characters"
                self._error("blank-value", line, field, value, f"{field} {what}")
                return None
            if field == "line_id":
                return value
            if field == "returned":
                return "true" if self.shape.is_returned(value) else "false"
            assert self.zone is not None
            day = local_date(value, self.zone)
            if day is None:
                beyond = beyond_the_years(value, self.zone)
                message = (
                    f"{shown(value)} {beyond}: order dates run from 0001-01-01 to 9999-12-31, check its year"
                    if beyond
                    else f"{shown(value)} is not a timestamp: write it as ISO 8601 (2025-10-07T09:50:26+02:00) "
                    "or as 2025-10-07 09:50:26 +0200"
                )
                self._error("invalid-timestamp", line, field, value, message)
                return None
            return day.isoformat()
        error = check_value(field, value, self.categories)
        if error is not None:
            self._error(error.code, line, field, value, error.message)
            return None
        return value.lower() if field == "returned" else value

    def _file_rules(self, order_id: str, raw: dict[str, str], values: dict[str, str], line: int) -> bool:
        """Unique order ids (order grain); unique lines and consistent orders (line grain)."""
        if not self.shape.lines:
            first_line = self.seen.setdefault(order_id, line)
            if first_line != line:
                message = f"order_id {shown(order_id)} already appears at line {first_line}"
                self._error("duplicate-order-id", line, "order_id", order_id, message)
                return False
            return True
        clean = True
        item = raw[self.key]
        if not is_blank(item):
            first_line = self.lines.setdefault((order_id, item), line)
            if first_line != line:
                message = (
                    f"order {shown(order_id)} already has a line with {self.key} {shown(item)} at line "
                    f"{first_line}: a line appears once per file"
                )
                self._error("duplicate-line", line, self.key, item, message)
                clean = False
        order = self.orders.setdefault(order_id, (line, {f: raw[f] for f in self.shape.order_level()}))
        if order[0] != line:
            for field in self.shape.order_level():
                mine = values.get("order_date" if field == "order_timestamp" else field)
                theirs = order[1][field]
                if mine is None or is_blank(theirs):
                    continue  # already reported as a bad value on one of the lines
                if field == "order_timestamp" and self.zone is not None:
                    first_day = local_date(theirs, self.zone)
                    same = first_day is None or first_day.isoformat() == mine
                elif field == "returned":
                    same = self.shape.is_returned(theirs) == (mine == "true")
                else:
                    same = theirs == mine
                if not same:
                    shown_field = "order_date" if field == "order_timestamp" else field
                    message = (
                        f"order {shown(order_id)} has {shown_field} {shown(raw[field])} here but "
                        f"{shown(theirs)} on its first line {order[0]}: every line of an order must agree"
                    )
                    self._error("inconsistent-order", line, field, raw[field], message)
                    clean = False
                    break
        return clean
