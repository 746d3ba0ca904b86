"""A file's header: which columns it must hold, where they are, what it leaves unused.

Written once for every kind of file (the seed's columns, a configured shape, a catalog file) and
for both readings of it: the exact validator reports what `check_header` finds, and the fast path
reads a file only when the same check finds nothing to report (its warnings are then the report's).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import BinaryIO

from orderpipe.core.report import ReportBuilder, extra_columns_warning
from orderpipe.core.rules import WHITESPACE, shown
from orderpipe.core.shape import InputShape

__all__ = [
    "BOM",
    "HEADER_LIMIT",
    "Layout",
    "PlainHeader",
    "catalog_layout",
    "check_header",
    "order_layout",
    "part_layout",
    "plain_header",
    "read_plain_header",
]

BOM = b"\xef\xbb\xbf"
#: A header line longer than this is left to the exact validator: cut short, its names would not
#: line up with the columns the fast path reads.
HEADER_LIMIT = 1 << 20
#: Why a `category` column of an order file counts for nothing when the catalog gives categories.
_CATALOG_CATEGORY = "column 'category' ignored: categories come from the product catalog ([input] catalog = true)"


@dataclass(frozen=True, slots=True)
class Layout:
    """The columns one kind of file must have, and how its header and row problems are worded."""

    fields: tuple[tuple[str, str], ...]  # (our field, the header name feeding it), in reading order
    optional: tuple[tuple[str, str], ...] = ()  # read when the header has them (a line id)
    settings: str = "[input]"  # the table of orderpipe.toml that renames these columns
    #: A doubled column is reported once per field, each field's problems together (catalog
    #: files), or at each repeat in header order, before the missing ones (order files).
    doubled_once: bool = False
    notes: tuple[tuple[str, str], ...] = ()  # (unused column, the warning of its own it gets)
    empty_file: str = "the file is empty: expected a header and at least one row"
    header_only: str = "the file has a header but no order rows"

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(source for _, source in self.fields)


def order_layout(shape: InputShape) -> Layout:
    """An order file read through `shape` (the seed's 8 columns when nothing is configured)."""
    optional = (("line_id", shape.source("line_id")),) if shape.lines else ()
    notes = (("category", _CATALOG_CATEGORY),) if shape.catalog else ()
    return Layout(tuple((f, shape.source(f)) for f in shape.required()), optional, notes=notes)


def catalog_layout(shape: InputShape) -> Layout:
    """A catalog file: a product id and its category, under their configured names."""
    return Layout(
        (("product_id", shape.catalog_product_id), ("category", shape.catalog_category)),
        settings="[input.catalog_columns]",
        doubled_once=True,
        empty_file="the file is empty: expected a header and at least one product row",
        header_only="the file has a header but no product rows",
    )


def part_layout(shape: InputShape, kind: str) -> Layout:
    """A relational file of `kind`: a header file (one row per order) or a line file (one per item)."""
    what = "order" if kind == "headers" else "line"
    return Layout(
        tuple((f, shape.source(f)) for f in shape.required(kind)),
        tuple((f, shape.source(f)) for f in shape.optional(kind)),
        settings="[input.columns]",
        empty_file=f"the file is empty: expected a header and at least one {what} row",
        header_only=f"the file has a header but no {what} rows",
    )


def read_plain_header(stream: BinaryIO) -> list[str] | None:
    """The header's names, trimmed, as the exact validator reads them, when its line is plain to
    read (UTF-8, one line within HEADER_LIMIT, no CR, quoted names closed on it); None leaves the
    file to the exact validator. The stream is left after the header line."""
    first = stream.readline(HEADER_LIMIT)
    if not first.endswith(b"\n") and stream.read(1):
        return None
    first = first.removeprefix(BOM).rstrip(b"\r\n")
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text or text.count('"') % 2:  # an odd count: a quoted name runs onto the next line
        return None
    if '"' not in text:
        return [name.strip(WHITESPACE) for name in text.split(",")]
    try:
        names = next(csv.reader([text + "\n"], strict=True))
    except csv.Error:
        return None
    return [name.strip(WHITESPACE) for name in names]


@dataclass(frozen=True, slots=True)
class PlainHeader:
    """A header the fast path can read by position: nothing to report, every column found."""

    width: int  # columns in the header
    positions: dict[str, int]  # our field → its column
    warnings: tuple[str, ...]  # the unused columns, as the exact validator words them


def plain_header(stream: BinaryIO, layout: Layout) -> PlainHeader | None:
    """The header when it is plain and `check_header` finds nothing to report, else None."""
    names = read_plain_header(stream)
    if names is None:
        return None
    report = ReportBuilder("")
    positions = check_header(names, layout, report)
    return None if positions is None else PlainHeader(len(names), positions, tuple(report.warnings))


def check_header(names: list[str], layout: Layout, report: ReportBuilder) -> dict[str, int] | None:
    """Our field → the position of its column (the first, if doubled), optional fields included
    when present; None when a column is missing or doubled (the report says which). Unused
    columns become warnings."""
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        first.setdefault(name, index)
    if layout.doubled_once:
        for field, source in layout.fields:
            if names.count(source) > 1:
                report.add("duplicate-column", 1, source, source, f"column {shown(source)} appears more than once")
            if source not in first:
                _missing(field, source, names, layout, report)
    else:
        for index, name in enumerate(names):
            if name in layout.sources and first[name] != index:
                message = f"column {shown(name)} appears more than once in the header"
                report.add("duplicate-column", 1, name, name, message)
        for field, source in layout.fields:
            if source not in first:
                _missing(field, source, names, layout, report)
    present = [(field, source) for field, source in (*layout.fields, *layout.optional) if source in first]
    used = {source for _, source in present}
    report.warnings.extend(_unused([n for n in names if n not in used], layout))
    if report.has_errors:
        return None
    return {field: first[source] for field, source in present}


def _missing(field: str, source: str, names: list[str], layout: Layout, report: ReportBuilder) -> None:
    near = next((n for n in names if n.lower() == source.lower()), None)
    hint = f" (found {shown(near)}; names are case-sensitive)" if near else ""
    feeds = f", which feeds {field} (see orderpipe.toml {layout.settings})" if source != field else ""
    report.add("missing-column", 1, source, None, f"the header has no {shown(source)} column{feeds}{hint}")


def _unused(extra: list[str], layout: Layout) -> list[str]:
    """Warnings for the columns nothing reads: a noted one on its own, then the others."""
    warnings = []
    for name, warning in layout.notes:
        if name in extra:
            warnings.append(warning)
            extra = [n for n in extra if n != name]
    if extra:
        warnings.append(extra_columns_warning(extra))
    return warnings
