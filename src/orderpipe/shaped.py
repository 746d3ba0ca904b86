"""The fast path, for a file of any shape: one streaming Polars pass, cut into its stage as it reads.

The scan reads every column by position and the screen (`core/screen.py`) types and checks each
row through the file's shape; each batch of rows is checked and handed to the stage (the batch's
facts files, or a catalog's rows) while the next is read. The first failing batch ends the
staging (the stage is discarded) but not the pass: it reads on to name the rows the exact rules
must read (`Suspects`, for `locate.py`), so an invalid file is located without a Python reading
of every row. Values are first taken as read, untrimmed (trimming every value was most of the
cost, and machine-written files have nothing to trim); when many rows fail, or the rows named
break no rule, the file is screened again, trimmed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

import polars as pl

from orderpipe.core.header import PlainHeader
from orderpipe.core.quoting import LF, ByteScan
from orderpipe.core.rules import WHITESPACE
from orderpipe.core.screen import CATALOG_COLUMNS, Screen, inherit, screen
from orderpipe.core.shape import InputShape
from orderpipe.core.window import DateWindow

__all__ = [
    "CHUNK",
    "LOCATE_FLOOR",
    "LOCATE_SHARE",
    "SCREEN_ROWS",
    "Stage",
    "Suspects",
    "scan_by_position",
    "screen_file",
]

#: Rows the screen hands over at a time (bounds its memory; the stage cuts exactly anyway).
SCREEN_ROWS = 250_000
CHUNK = 8 << 20
#: Once a row fails, the untrimmed screen reads on to locate every failing row while they are at
#: most this share of the rows read (of LOCATE_FLOOR at least): more, and the file goes to the
#: trimmed screen (values padded with white space fail only the untrimmed one), which reads on
#: whatever the share — the exact rules reading a share of the rows cost less than reading all.
LOCATE_SHARE = 0.25
LOCATE_FLOOR = 100_000


class Stage(Protocol):
    """Where the screened rows go, batch by batch (`ingest.FactSlices`, `ingest.TableStage`)."""

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
    passes: tuple[bool, ...] = (False, True),
    read_on: Callable[[int], None] | None = None,
) -> int | Suspects | None:
    """Screen `path` into `stage`; its rows when every row is certainly valid, its `Suspects`
    when some row fails or relates to another (the stage is then discarded), else None (the
    exact validator decides). `header` is the file's, checked (`header.plain_header`); `window`
    the order dates allowed (None: any); `passes` say which screens read it (untrimmed, then
    trimmed); `read_on` hears of each batch read past a failing one, unstaged (a progress
    bar's rows)."""
    for trimmed in passes:
        scan = scan_by_position(path, header)
        read = screen(scan, header.positions, header.width, shape, categories, trimmed, catalog_file, window)
        outcome = _screen_pass(read, stage, trimmed, read_on or (lambda rows: None))
        if isinstance(outcome, Suspects):
            stage.discard()
            return outcome
        verdict, rows, complete = outcome
        if verdict is _Pass.CLEAN and (complete or _fields_counted(path, header.width)):
            return rows
        stage.discard()
        if verdict is not _Pass.ROW:
            return None
    return None


def scan_by_position(path: Path, header: PlainHeader) -> pl.LazyFrame:
    """The file's rows as strings, each column by its position (`c0`, `c1`, …): as the header
    check placed the fields, whatever the names (they may repeat)."""
    return pl.scan_csv(
        path,
        has_header=True,
        new_columns=[f"c{i}" for i in range(header.width)],  # by position: names may repeat
        infer_schema=False,
        empty_string_is_null=False,
        encoding="utf8",
    )


def _screen_pass(
    read: Screen, stage: Stage, trimmed: bool, read_on: Callable[[int], None]
) -> tuple[_Pass, int, bool] | Suspects:
    """One pass: each batch of rows is checked, then staged, until a batch fails; from there it
    reads on unstaged, to locate (`_Evidence`), unless the untrimmed screen finds too many
    failing rows (then the trimmed one reads). Returns (outcome, rows, whether every row's last
    field is filled), or the suspects of a file that is not clean."""
    # Polars checks a row's field count only when it parses every column: with an unused extra
    # column pruned from the scan, a row with one field too many would pass. So no pruning.
    batches = read.rows.collect_batches(
        chunk_size=SCREEN_ROWS, lazy=True, optimizations=pl.QueryOptFlags(projection_pushdown=False)
    )
    rows, complete, failed = 0, True, False
    evidence = _Evidence(read)
    above = None  # line grain: the last line read
    for batch in batches:  # returning drops the scan: it stops
        if read.level is not None:
            batch, above = inherit(batch, above, read.level)
        evidence.add(batch)
        failed = failed or not batch["__ok"].all() or evidence.inconsistent(batch)
        if failed and not trimmed and evidence.suspects > LOCATE_SHARE * max(evidence.rows, LOCATE_FLOOR):
            return _Pass.ROW, rows, complete  # many rows fail: values padded with white space?
        complete = complete and bool(batch["__complete"].all())
        rows += batch.height
        if not failed:
            stage.add(batch.select(read.outputs))
        else:
            read_on(batch.height)
    if rows == 0:
        return _Pass.FILE, rows, complete
    if not failed and evidence.distinct():
        return _Pass.CLEAN, rows, complete
    return evidence.suspected(trimmed)


@dataclass(frozen=True, slots=True)
class Suspects:
    """What a screen learned of a file it cannot accept: how many rows it read, and which of
    them (0-based, ascending) the exact rules must read — every row that fails the screen or
    may be short, and every row of the same order (or product: the hash of its trimmed id) as
    one of those, or as a row whose id, line or order run repeats. No rule relates any other
    row to a row read, and each is clean."""

    rows: int
    read: pl.Series
    trimmed: bool


class _Evidence:
    """Per row of a pass, what locating needs: a hash of the id that relates rows (the order's,
    or a catalog's product; trimmed), whether the row is suspect, and at line grain the line's
    hash and each order run's."""

    def __init__(self, read: Screen) -> None:
        self.read = read
        self.group = "product_id" if read.outputs == CATALOG_COLUMNS else "order_id"
        self.keys: list[pl.Series] = []
        self.bad: list[pl.Series] = []
        self.ids: list[pl.Series] = []  # line grain
        self.starts: list[pl.Series] = []  # line grain: the order hash of each run of an order's lines
        self.rows = self.suspects = 0

    def inconsistent(self, batch: pl.DataFrame) -> bool:
        return self.read.lines and bool(batch["__inconsistent"].any())

    def add(self, batch: pl.DataFrame) -> None:
        """Take one batch of the pass, in file order."""
        bad = ~(batch["__ok"] & batch["__complete"].fill_null(False))
        keys = batch.get_column("__order" if self.read.lines else "__id")
        if self.read.lines:
            bad = bad | batch["__inconsistent"]
            self.ids.append(batch.get_column("__id"))
            self.starts.append(batch.get_column("__start").drop_nulls())
        failing = batch["__ok"].not_().arg_true()
        if failing.len():  # a row passing the screen has no white space to trim from its id
            trimmed = batch.get_column(self.group).gather(failing).str.strip_chars(WHITESPACE).hash(seed=0)
            keys = keys.clone().scatter(failing, trimmed)
        self.keys.append(keys)
        self.bad.append(bad)
        self.rows += batch.height
        self.suspects += int(bad.sum())

    def distinct(self) -> bool:
        """Whether no id repeats and, at line grain, each order is one run of lines (the counts
        are on 8-byte hashes: a collision can only send a valid file to locating)."""
        if self.read.lines:
            return _distinct(self.ids) and _distinct(self.starts)
        return _distinct(self.keys)

    def suspected(self, trimmed: bool) -> Suspects:
        keys, bad = pl.concat(self.keys), pl.concat(self.bad)
        related = [keys.filter(bad)]
        if self.read.lines:
            related.append(keys.filter(pl.concat(self.ids).is_duplicated()))
            starts = pl.concat(self.starts)
            related.append(starts.filter(starts.is_duplicated()))
        else:
            related.append(keys.filter(keys.is_duplicated()))
        wanted = pl.concat(related).unique()
        read = (bad | keys.is_in(wanted.implode())).arg_true()
        return Suspects(keys.len(), read, trimmed)


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
