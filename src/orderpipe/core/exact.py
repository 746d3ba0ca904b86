"""The exact validator: streams a file row by row and locates every broken rule.

It defines the verdict, for every kind of file: the seed's format and every configured shape
(`shape_validate.OrderRows`) and catalog files (`catalog.CatalogRows`) differ only in the rules of
a row; decoding, the CSV dialect, the header, blank lines, field counts and the report are read
here, once. It runs when the fast path (`screen.py`) finds anything suspicious, and for
`orderpipe validate -` (a stream); it holds one row at a time plus what the file-wide rules need.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, Protocol

from orderpipe.core.header import BOM, Layout, check_header
from orderpipe.core.report import ReportBuilder, ValidationReport
from orderpipe.core.rules import WHITESPACE

__all__ = ["RowRules", "UnreadableFile", "read_rows"]


class UnreadableFile(Exception):
    """The bytes cannot be read as UTF-8 CSV from this line on."""

    def __init__(self, code: str, line: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.line = line
        self.message = message


class RowRules(Protocol):
    """The rules of one kind of row: what its header holds, and each row's check."""

    layout: Layout
    explained: tuple[str, ...]  # how the file is read, for the report

    def bind(self, positions: dict[str, int], report: ReportBuilder) -> None:
        """Start a file whose header put each field at `positions`; problems go to `report`."""

    def check(self, record: list[str], line: int) -> list[str] | None:
        """The row's values as staged when it breaks no rule, else None (the report says why)."""

    def dates(self) -> tuple[str, ...]:
        """The order dates of the clean rows, sorted (none for a catalog)."""


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


def read_rows(
    stream: BinaryIO, file: str, rules: RowRules, on_row: Callable[[list[str]], None] | None = None
) -> ValidationReport:
    """Validate one CSV file against `rules`; never raises for bad data, every problem lands in
    the report. `on_row` receives the values of every clean row, so a caller can stage exactly
    what was validated."""
    report = ReportBuilder(file)
    lines = _Lines(stream)
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(lines, strict=True)
    rows = 0
    try:
        header = next(reader, None)
        if header is None:
            report.add("no-rows", 1, None, None, rules.layout.empty_file)
            return _built(report, rules, 0)
        names = [name.strip(WHITESPACE) for name in header]
        positions = check_header(names, rules.layout, report)
        if positions is None:
            return _built(report, rules, 0)
        rules.bind(positions, report)
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
            values = rules.check(record, start)
            if values is not None and on_row is not None:
                on_row(values)
    except csv.Error as exc:
        report.add("csv-error", lines.count, None, None, f"CSV cannot be parsed: {exc}")
        return _built(report, rules, rows)
    except UnreadableFile as exc:
        report.add(exc.code, exc.line, None, None, exc.message)
        return _built(report, rules, rows)
    if blank_lines:
        report.warnings.append(f"{len(blank_lines)} blank line(s) skipped, first at line {blank_lines[0]}")
    if rows == 0:
        report.add("no-rows", 2, None, None, rules.layout.header_only)
    return _built(report, rules, rows, rules.dates())


def _built(report: ReportBuilder, rules: RowRules, rows: int, dates: tuple[str, ...] = ()) -> ValidationReport:
    return report.build(rows, dates).explained(rules.explained)
