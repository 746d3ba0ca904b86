"""The exact validator's entry points: any file, in any shape, read by `exact.read_rows`.

The seed's format is the default shape (`SEED_SHAPE`), read by the same rules as every other
(`shape_validate.OrderRows`); a catalog file is recognised by its name and read by its own row
rules (`catalog.CatalogRows`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from orderpipe.core.catalog import CatalogRows
from orderpipe.core.exact import RowRules, UnreadableFile, read_rows
from orderpipe.core.relational import HeaderRows, LineRows
from orderpipe.core.report import ReportBuilder, ValidationReport
from orderpipe.core.shape import SEED_SHAPE, InputShape
from orderpipe.core.shape_validate import OrderRows
from orderpipe.core.window import DateWindow

__all__ = ["UnreadableFile", "row_rules", "unplaced", "validate", "validate_stream"]


def unplaced(shape: InputShape, file: str) -> ValidationReport | None:
    """The report of a file whose name places it nowhere (relational grain: neither headers,
    lines nor a catalog), else None."""
    if shape.kind_of(file) is not None:
        return None
    report = ReportBuilder(file)
    message = (
        f"the name does not say what the file holds: name header files like {shape.header_files!r}, line files"
        f" like {shape.line_files!r} and catalog files like {shape.catalog_files!r} (or change"
        " input.header_files, input.line_files, input.catalog_files)"
    )
    report.add("unknown-file", 1, None, None, message)
    return report.build(0)


def row_rules(shape: InputShape, file: str, categories: frozenset[str], window: DateWindow | None = None) -> RowRules:
    """The rules a file's rows follow, by its name: a catalog file's (it holds no dates), a
    relational header or line file's, else an order file's; dates in `window` (None: any date).
    A file the relational grain cannot place is read as a header file, after `unplaced` said so."""
    kind = shape.kind_of(file)
    if kind == "catalog":
        return CatalogRows(shape, categories)
    if kind == "lines":
        return LineRows(shape)
    if kind == "headers" or shape.relational:
        return HeaderRows(shape, window)
    return OrderRows(shape, categories, window)


def validate(
    stream: BinaryIO,
    file: str,
    shape: InputShape,
    categories: frozenset[str],
    on_row: Callable[[list[str]], None] | None = None,
    window: DateWindow | None = None,
) -> ValidationReport:
    """Validate one CSV file, whatever it is; never raises for bad data, every problem lands in
    the report. `on_row` receives the values of every clean row (an order's 8 columns, or a
    catalog row's product and category), so a caller can stage exactly what was validated.
    `window`: the order dates allowed, as evaluated for this file (`InputShape.date_window`)."""
    return read_rows(stream, file, row_rules(shape, file, categories, window), on_row)


def validate_stream(
    stream: BinaryIO,
    file: str,
    categories: frozenset[str],
    on_row: Callable[[list[str]], None] | None = None,
) -> ValidationReport:
    """Validate one file in the seed's format (8 columns, one order per row)."""
    return read_rows(stream, file, OrderRows(SEED_SHAPE, categories), on_row)
