"""The fast path, for a file of any shape: one streaming Polars pass, cut into its stage as it reads.

The scan reads every column by position and the screen (`core/screen.py`) types and checks each
row through the file's shape; each batch of rows is checked and handed to the stage (the batch's
facts files, or a catalog's rows) while the next is read. The first failing batch ends the pass
and the stage is discarded: the caller then lets the exact validator decide. Values are first
taken as read, untrimmed (trimming every value was most of the cost, and machine-written files
have nothing to trim); only when some row fails is the file screened again, trimmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Protocol

import polars as pl

from orderpipe.core.header import PlainHeader
from orderpipe.core.quoting import LF, ByteScan
from orderpipe.core.screen import Screen, inherit, screen
from orderpipe.core.shape import InputShape
from orderpipe.core.window import DateWindow

__all__ = ["CHUNK", "SCREEN_ROWS", "Stage", "screen_file"]

#: Rows the screen hands over at a time (bounds its memory; the stage cuts exactly anyway).
SCREEN_ROWS = 250_000
CHUNK = 8 << 20


class Stage(Protocol):
    """Where the screened rows go, batch by batch (`ingest.FactSlices`, `ingest.CatalogStage`)."""

    def add(self, rows: pl.DataFrame) -> None: ...

    def discard(self) -> None: ...


class _Pass(Enum):
    CLEAN = "every row is certainly valid"
    ROW = "some row fails a rule: the trimmed screen may accept it"
    FILE = "a rule of the whole file fails, or the screen cannot tell"


def screen_file(
    path: Path,
    header: PlainHeader,
    shape: InputShape,
    categories: Sequence[str],
    stage: Stage,
    catalog_file: bool = False,
    window: DateWindow | None = None,
) -> int | None:
    """Screen `path` into `stage`; its rows when every row is certainly valid, else None (and
    the stage is discarded). `header` is the file's, checked (`header.plain_header`); `window`
    the order dates allowed (None: any)."""
    for trimmed in (False, True):
        scan = _scan(path, header)
        read = screen(scan, header.positions, header.width, shape, categories, trimmed, catalog_file, window)
        outcome, rows, complete = _screen_pass(read, stage)
        if outcome is _Pass.CLEAN and (complete or _fields_counted(path, header.width)):
            return rows
        stage.discard()
        if outcome is not _Pass.ROW:
            return None
    return None


def _scan(path: Path, header: PlainHeader) -> pl.LazyFrame:
    return pl.scan_csv(
        path,
        has_header=True,
        new_columns=[f"c{i}" for i in range(header.width)],  # by position: names may repeat
        infer_schema=False,
        empty_string_is_null=False,
        encoding="utf8",
    )


def _screen_pass(read: Screen, stage: Stage) -> tuple[_Pass, int, bool]:
    """One pass: each batch of rows is checked, then staged. Returns (outcome, rows, whether
    every row's last field is filled). The first failing batch ends the pass."""
    # Polars checks a row's field count only when it parses every column: with an unused extra
    # column pruned from the scan, a row with one field too many would pass. So no pruning.
    batches = read.rows.collect_batches(
        chunk_size=SCREEN_ROWS, lazy=True, optimizations=pl.QueryOptFlags(projection_pushdown=False)
    )
    rows, complete = 0, True
    ids: list[pl.Series] = []
    starts: list[pl.Series] = []  # line grain: the order hash of each run of an order's lines
    above = None  # line grain: the last line read
    for batch in batches:  # returning drops the scan: it stops
        if read.level is not None:
            batch, above = inherit(batch, above, read.level)
        if not batch["__ok"].all():
            return _Pass.ROW, rows, complete
        if read.lines:
            if batch["__inconsistent"].any():
                return _Pass.FILE, rows, complete
            starts.append(batch.get_column("__start").drop_nulls())
        complete = complete and bool(batch["__complete"].all())
        ids.append(batch.get_column("__id"))
        rows += batch.height
        stage.add(batch.select(read.outputs))
    # At line grain each order's lines are one run (so a line's neighbour above is its order's
    # line): as many runs as orders. A hash collision can only make a count differ.
    if rows == 0 or not _distinct(ids) or (read.lines and not _distinct(starts)):
        return _Pass.FILE, rows, complete
    return _Pass.CLEAN, rows, complete


def _distinct(hashes: list[pl.Series]) -> bool:
    """True when the hashes are all distinct (a collision can only send a valid file to the exact
    validator). Counted on the 8-byte hashes: a distinct count of the ids themselves held three
    times the memory."""
    every = pl.concat(hashes) if hashes else pl.Series(dtype=pl.UInt64)
    return every.n_unique() == every.len()


def _fields_counted(path: Path, width: int) -> bool:
    """Whether every line has `width` fields, when some row's last field is empty: Polars pads a
    short row with empty fields, so only a count tells. Every comma outside quotes separates two
    fields, every LF outside quotes ends a row, and Polars refuses a row with too many: so the
    total of separating commas against rows tells whether any row has too few. (The file's
    quotes are where both readers agree, or the exact validator has it.)"""
    scan = ByteScan(count=True)
    last = LF
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            scan.feed(chunk)
            last = chunk[-1]
    return scan.finish() and scan.commas == (width - 1) * (scan.line_ends + (last != LF))
