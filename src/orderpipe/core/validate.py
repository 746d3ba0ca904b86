"""The exact validator: streams a file row by row and locates every broken rule.

It defines the verdict. It runs when the vectorised screen (`screen.py`) finds anything
suspicious, and for `orderpipe validate`; it holds one row at a time plus the order ids seen.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from orderpipe.core.header import BOM, check_header, order_layout
from orderpipe.core.report import ReportBuilder, ValidationReport
from orderpipe.core.rules import WHITESPACE, check_value, is_blank, shown
from orderpipe.core.shape import SEED_SHAPE

__all__ = ["UnreadableFile", "validate_stream"]

_SEED = order_layout(SEED_SHAPE)


class UnreadableFile(Exception):
    """The bytes cannot be read as UTF-8 CSV from this line on."""

    def __init__(self, code: str, line: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.line = line
        self.message = message


class _Lines:
    """Decodes physical lines strictly and counts them, so records know their first line."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = iter(stream)
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = next(self._stream)
        self.count += 1
        if self.count == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        # Only LF or CRLF ends a line: a CR without its LF, even as the file's last byte, stays
        # in the text and is refused below.
        body = raw[:-1] if raw.endswith(b"\n") else raw
        if raw.endswith(b"\r\n"):
            body = body[:-1]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableFile(
                "encoding-error",
                self.count,
                f"byte 0x{body[exc.start]:02x} at position {exc.start + 1} is not valid UTF-8",
            ) from None
        if "\x00" in text:
            raise UnreadableFile("csv-error", self.count, "NUL byte in the line; this is not a text CSV file")
        if "\r" in text:
            raise UnreadableFile("csv-error", self.count, "bare carriage return (CR without LF) inside the line")
        return text + "\n"


def _is_blank(record: list[str]) -> bool:
    return not record or (len(record) == 1 and record[0].strip(WHITESPACE) == "")


def validate_stream(
    stream: BinaryIO,
    file: str,
    categories: frozenset[str],
    on_row: Callable[[list[str]], None] | None = None,
) -> ValidationReport:
    """Validate one CSV file; never raises for bad data, every problem lands in the report.

    `on_row` receives the trimmed values (in COLUMNS order) of every row without errors, so a
    caller can stage exactly what was validated.
    """
    report = ReportBuilder(file)
    lines = _Lines(stream)
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(lines, strict=True)
    rows = 0
    dates: set[str] = set()
    try:
        header = next(reader, None)
        if header is None:
            report.add("no-rows", 1, None, None, "the file is empty: expected a header and at least one row")
            return report.build(0)
        names = [name.strip(WHITESPACE) for name in header]
        positions = check_header(names, _SEED, report)
        if positions is None:
            return report.build(0)
        seen: dict[str, int] = {}
        blank_lines: list[int] = []
        width = len(names)
        while True:
            start = lines.count + 1
            record = next(reader, None)
            if record is None:
                break
            if _is_blank(record):
                blank_lines.append(start)
                continue
            rows += 1
            if len(record) != width:
                report.add(
                    "wrong-field-count",
                    start,
                    None,
                    None,
                    f"row has {len(record)} fields, the header has {width}",
                )
                continue
            values = _check_record(record, positions, start, categories, seen, dates, report)
            if values is not None and on_row is not None:
                on_row(values)
    except csv.Error as exc:
        report.add("csv-error", lines.count, None, None, f"CSV cannot be parsed: {exc}")
        return report.build(rows)
    except UnreadableFile as exc:
        report.add(exc.code, exc.line, None, None, exc.message)
        return report.build(rows)
    if blank_lines:
        report.warnings.append(f"{len(blank_lines)} blank line(s) skipped, first at line {blank_lines[0]}")
    if rows == 0:
        report.add("no-rows", 2, None, None, "the file has a header but no order rows")
    return report.build(rows, tuple(sorted(dates)))


def _check_record(
    record: list[str],
    positions: dict[str, int],
    line: int,
    categories: frozenset[str],
    seen: dict[str, int],
    dates: set[str],
    report: ReportBuilder,
) -> list[str] | None:
    """The row's trimmed values when it breaks no rule, else None (and the report has why)."""
    values = []
    clean = True
    for column, index in positions.items():
        value = record[index].strip(WHITESPACE)
        values.append(value)
        error = check_value(column, value, categories)
        if error is not None:
            report.add(error.code, line, column, value, error.message)
            clean = False
        elif column == "order_date":
            dates.add(value)
    order_id = values[0]
    if not is_blank(order_id):  # a blank id is already an error; it duplicates nothing
        first = seen.setdefault(order_id, line)
        if first != line:
            report.add(
                "duplicate-order-id",
                line,
                "order_id",
                order_id,
                f"order_id {shown(order_id)} already appears at line {first}",
            )
            clean = False
    return values if clean else None
