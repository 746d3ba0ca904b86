"""Reading a relational header or line file: Polars when every row is plainly valid, else the
exact rules, and either way its rows staged as one table file (`tables.TableStage`).

The fast reading (`core.relational.screen_part`) decides only a file it can accept whole: its
bytes read alike by Polars and Python's `csv` (`ingest.fingerprint`), a plain header, one row
per line (no blank line, no line break inside quotes), every field present, every value as
exports write it. Anything else, valid or not, goes to the exact rules, which locate every
problem; so a rejected file's report is always theirs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from orderpipe.core.header import plain_header
from orderpipe.core.relational import screen_part
from orderpipe.core.report import ValidationReport
from orderpipe.core.shape import InputShape
from orderpipe.core.validate import row_rules, unplaced, validate
from orderpipe.core.window import DateWindow
from orderpipe.ingest import ExactStage, Inspection, fingerprint
from orderpipe.progress import Progress, counted
from orderpipe.shaped import scan_by_position
from orderpipe.tables import TABLES, TableStage

__all__ = ["inspect_part", "validate_part"]

CHUNK = 8 << 20


def inspect_part(
    path: Path,
    name: str,
    shape: InputShape,
    workdir: Path,
    kind: str | None,
    progress: Progress,
    now: dt.datetime | None,
    fast: bool = True,
) -> Inspection:
    """A header or line file (`kind`; None: a file the relational grain cannot place): its
    verdict and, when valid, its rows staged. `fast=False`: the exact rules alone."""
    size = path.stat().st_size
    fp = fingerprint(path, on_bytes=lambda done: progress("reading", done, size))
    refused = unplaced(shape, name)
    if refused is not None or kind is None:
        assert refused is not None
        return Inspection(fp.sha256, refused, None)
    window = shape.date_window(now) if kind == "headers" else None
    screened = _screened(path, name, shape, kind, window) if fast and not fp.needs_exact else None
    if screened is not None:
        report, rows = screened
        stage = TableStage(workdir, kind)
        stage.add(rows)
        return Inspection(fp.sha256, report, None, part=stage.finish())
    schema = TABLES[kind]

    def typed(rows: list[list[str]]) -> pl.DataFrame:
        text = pl.DataFrame(rows, schema=dict.fromkeys(schema, pl.String()), orient="row")
        return text.select(_typed(name, kind) for name, kind in schema.items())

    exact = ExactStage(TableStage(workdir, kind), typed, window)
    with exact, counted(path, lambda done: progress("validating", done, size)) as stream:
        report = validate(stream, name, shape, frozenset(), exact.add, window)
    return exact.inspection(fp.sha256, report)


def validate_part(
    path: Path, name: str, shape: InputShape, progress: Progress, now: dt.datetime | None
) -> ValidationReport:
    """The report `inspect_part` gives, with nothing staged: `orderpipe validate`."""
    refused = unplaced(shape, name)
    if refused is not None:
        return refused
    kind = shape.kind_of(name)
    window = shape.date_window(now) if kind == "headers" else None
    plain = not fingerprint(path, hashed=False).needs_exact
    screened = _screened(path, name, shape, kind or "headers", window) if plain else None
    if screened is not None:
        return screened[0]
    size = path.stat().st_size
    with counted(path, lambda done: progress("validating", done, size)) as stream:
        return validate(stream, name, shape, frozenset(), window=window)


def _screened(
    path: Path, name: str, shape: InputShape, kind: str, window: DateWindow | None
) -> tuple[ValidationReport, pl.DataFrame] | None:
    """The verdict and typed rows of a file Polars reads whole and finds plainly valid; None
    leaves it to the exact rules."""
    rules = row_rules(shape, name, frozenset(), window)  # for its header, words and explanation
    with path.open("rb") as stream:
        header = plain_header(stream, rules.layout)
    if header is None:
        return None
    try:
        frame = scan_by_position(path, header).collect()
    except pl.exceptions.PolarsError:
        return None
    # A missing field is null; a blank line or a line break inside quotes makes fewer rows
    # than lines: the exact rules say what to make of either.
    if frame.is_empty() or frame.null_count().sum_horizontal().item() or frame.height + 1 != _lines(path):
        return None
    rows = screen_part(frame, header.positions, shape, kind, window)
    if rows is None:
        return None
    dates = () if kind != "headers" else tuple(d.isoformat() for d in rows.get_column("order_date").unique().sort())
    report = ValidationReport(name, True, rows.height, warnings=header.warnings, dates=dates, shape=rules.explained)
    return report, rows


def _lines(path: Path) -> int:
    """Lines in the file: its line feeds, and one more when the last line has none."""
    count, last = 0, b"\n"
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _typed(name: str, dtype: pl.DataType) -> pl.Expr:
    """A validated value's text as the staged type (an empty optional number: null)."""
    column = pl.col(name)
    if dtype == pl.Boolean():
        return (column == "true").alias(name)
    if dtype == pl.Date():
        return column.str.to_date("%Y-%m-%d").alias(name)
    if dtype == pl.String():
        return column
    return pl.when(column != "").then(column).cast(dtype, strict=True).alias(name)
