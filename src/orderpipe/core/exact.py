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

__all__ = ["RowRules", "UnreadableFile", "decode_line", "read_lines", "read_rows"]


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


def decode_line(raw: bytes, number: int) -> str:
    """Physical line `number` (1-based) as text with its LF, decoded strictly: what both the
    full read and the located one (`read_lines`) see of it."""
    if number == 1 and raw.startswith(BOM):
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
            number,
            f"byte 0x{body[exc.start]:02x} at position {exc.start + 1} is not valid UTF-8",
        ) from None
    if "\x00" in text:
        raise UnreadableFile("csv-error", number, "NUL byte in the line; this is not a text CSV file")
    if "\r" in text:
        raise UnreadableFile("csv-error", number, "bare carriage return (CR without LF) inside the line")
    return text + "\n"


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
        return decode_line(raw, self.count)


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
    records: _Records | None = None
    try:
        records = _Records(report, rules, next(reader, None), on_row)
        if records.done is not None:
            return records.done
        while True:
            start = lines.count + 1
            record = next(reader, None)
            if record is None:
                break
            records.take(record, start)
    except csv.Error as exc:
        report.add("csv-error", lines.count, None, None, f"CSV cannot be parsed: {exc}")
        return _built(report, rules, records.rows if records else 0)
    except UnreadableFile as exc:
        report.add(exc.code, exc.line, None, None, exc.message)
        return _built(report, rules, records.rows if records else 0)
    return records.finish()


def read_lines(lines: Iterable[tuple[int, bytes]], unread: int, file: str, rules: RowRules) -> ValidationReport | None:
    """The report `read_rows` gives a file, from some of its physical lines: `lines` holds the
    header (line 1) and, in file order, (number, bytes) of every line that may break a rule or
    relate to one that does, each line a whole record; the `unread` other rows are known to be
    clean rows that no rule relates to a read one (`locate.py` proves it). None when a line
    cannot be read alone (undecodable, or not one whole record): the full read must say where."""
    report = ReportBuilder(file)
    csv.field_size_limit(sys.maxsize)
    records: _Records | None = None
    try:
        for number, raw in lines:
            parsed = list(csv.reader([decode_line(raw, number)], strict=True))
            if len(parsed) > 1:
                return None
            record = parsed[0] if parsed else []
            if records is None:
                records = _Records(report, rules, record)
                if records.done is not None:
                    return records.done
            else:
                records.take(record, number)
    except (csv.Error, UnreadableFile):
        return None
    return None if records is None else records.finish(unread)


class _Records:
    """The records of one file after its header, as `read_rows` takes them: blank lines
    skipped and counted, each other row's field count checked and its rules applied."""

    def __init__(
        self,
        report: ReportBuilder,
        rules: RowRules,
        header: list[str] | None,
        on_row: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.report, self.rules, self.on_row = report, rules, on_row
        self.rows = 0
        self.blank_lines: list[int] = []
        self.done: ValidationReport | None = None  # the report, when the header already decides it
        self.width = 0
        if header is None:
            report.add("no-rows", 1, None, None, rules.layout.empty_file)
            self.done = _built(report, rules, 0)
            return
        names = [name.strip(WHITESPACE) for name in header]
        positions = check_header(names, rules.layout, report)
        if positions is None:
            self.done = _built(report, rules, 0)
            return
        self.width = len(names)
        rules.bind(positions, report)

    def take(self, record: list[str], start: int) -> None:
        """One record, whose first line is `start`."""
        if _is_blank(record):
            self.blank_lines.append(start)
            return
        self.rows += 1
        if len(record) != self.width:
            message = f"row has {len(record)} fields, the header has {self.width}"
            self.report.add("wrong-field-count", start, None, None, message)
            return
        values = self.rules.check(record, start)
        if values is not None and self.on_row is not None:
            self.on_row(values)

    def finish(self, unread: int = 0) -> ValidationReport:
        """The report, once every record was taken (`unread` clean rows were not)."""
        rows, report, blank = self.rows + unread, self.report, self.blank_lines
        if blank:
            report.warnings.append(f"{len(blank)} blank line(s) skipped, first at line {blank[0]}")
        if rows == 0:
            report.add("no-rows", 2, None, None, self.rules.layout.header_only)
        return _built(report, self.rules, rows, self.rules.dates())


def _built(report: ReportBuilder, rules: RowRules, rows: int, dates: tuple[str, ...] = ()) -> ValidationReport:
    return report.build(rows, dates).explained(rules.explained)
