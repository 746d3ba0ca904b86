"""From a landed file to a verdict and staged rows, fast: one path for every file and shape.

An order file is read through the configured shape (the seed's 8 columns by default), a catalog
file (recognised by its name) through its own; either way the file is read twice at most: once by
the fast path (`shaped.screen_file`: a streaming Polars pass, typed rows cut into the stage as they
are read) while a thread hashes the bytes. When the screen fails rows of a file whose bytes both
readers read alike, the exact rules read only those rows and the rows related to them
(`locate.py`): the located report of an invalid file. Otherwise — the bytes hold what Polars and
Python's `csv` read differently (NULs, bare CRs, stray quotes: `core/quoting.py`), or locating
cannot be proved the same — the exact validator (`core/validate.py`) reads the file once more,
and a valid file's rows are staged from its reading. The stage is the batch's facts files
(`FactSlices`) or a catalog's one file of products (`TableStage`), in the scratch folder:
committing a valid batch only names them under warehouse/.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import polars as pl

from orderpipe.core.header import plain_header
from orderpipe.core.quoting import ByteScan
from orderpipe.core.report import ValidationReport
from orderpipe.core.rules import COLUMNS
from orderpipe.core.screen import CATALOG_COLUMNS, FACT_SCHEMA, screen_columns
from orderpipe.core.shape import SEED_SHAPE, UNKNOWN, InputShape
from orderpipe.core.validate import row_rules, validate
from orderpipe.core.window import DateWindow
from orderpipe.errors import InfrastructureError
from orderpipe.facts import (
    BUNDLE,
    FACTS_PREFIX,
    ROWS_PER_PART,
    WRITERS,
    StagedFacts,
    bundle_of,
    fact_key,
    load_facts,
    publish_facts,
    staged_facts,
    write_compacted,
)
from orderpipe.locate import locate
from orderpipe.progress import Progress, Reading, counted, no_progress
from orderpipe.shaped import Stage, Suspects, screen_file
from orderpipe.tables import StagedTable, TableStage

__all__ = [
    "BUNDLE",
    "FACTS_PREFIX",
    "ROWS_PER_PART",
    "Beside",
    "ExactStage",
    "FactSlices",
    "Inspection",
    "StagedFacts",
    "StagedTable",
    "TableStage",
    "Unstaged",
    "bundle_of",
    "fact_key",
    "fingerprint",
    "inspect_file",
    "load_facts",
    "publish_facts",
    "staged_facts",
    "validate_file",
    "write_compacted",
]

CHUNK = 8 << 20
#: A slice's dates with fewer rows than this go into the slice's bundle (`facts.BUNDLE`).
BUNDLE_BELOW = 50_000
BUNDLE_ROW_GROUP = 20_000


@dataclass(frozen=True, slots=True)
class Fingerprint:
    sha256: str
    needs_exact: bool  # a NUL, a bare CR or a quote Polars reads otherwise: the exact validator decides


@dataclass(frozen=True, slots=True)
class Inspection:
    """The verdict on one file: a valid order batch's `facts`, a valid catalog batch's rows
    (products and their categories) in `catalog`, a header or line batch's rows in `part`;
    `window` the order dates it was checked against, as evaluated when it was read (None: any
    date, or a catalog file)."""

    batch_id: str
    report: ValidationReport
    facts: StagedFacts | None
    catalog: Path | None = None
    window: DateWindow | None = None
    part: StagedTable | None = None  # relational grain: a header or line batch's rows

    def table(self) -> tuple[str, Path] | None:
        """A table batch's ledger key and rows file (a catalog, headers or lines), else None."""
        if self.catalog is not None:
            return "catalog", self.catalog
        return None if self.part is None else (self.part.kind, self.part.path)


T = TypeVar("T")
S = TypeVar("S", covariant=True)


class _Staging(Stage, Protocol[S]):
    """Where the fast path's rows go (`FactSlices`, `TableStage`, `Unstaged`): `finish` gives
    what was staged."""

    def __enter__(self) -> object: ...

    def __exit__(self, *exc: object) -> None: ...

    def finish(self) -> S: ...


class Beside(Generic[T]):
    """A call run in a thread beside the main work. Its exception is kept and raised by
    `result()` in the caller, never printed by the thread: an interrupted run removes the file
    under the thread, and the interruption is what the user must see, not a thread's traceback."""

    def __init__(self, task: Callable[[], T]) -> None:
        self._value: list[T] = []
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(task,), daemon=True)
        self._thread.start()

    def _run(self, task: Callable[[], T]) -> None:
        try:
            self._value.append(task())
        except BaseException as exc:  # raised again in the caller
            self._error.append(exc)

    def result(self, name: str) -> T:
        """The call's value; its failure to read `name` as an InfrastructureError."""
        self._thread.join()
        if self._error:
            raise InfrastructureError(f"{name}: could not read the file: {self._error[0]}") from self._error[0]
        return self._value[0]


def fingerprint(path: Path, hashed: bool = True, on_bytes: Callable[[int], None] | None = None) -> Fingerprint:
    """The file's SHA-256 (empty unless `hashed`), and whether Polars could read it otherwise
    than Python's `csv` (`ByteScan`: a NUL, a bare CR, a quote where the two part). `on_bytes`
    is told each chunk's size: the progress bar's count of the bytes read."""
    digest = hashlib.sha256()
    scan = ByteScan()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            if hashed:
                digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
            if scan.agree:
                scan.feed(chunk)
            elif not hashed:
                break
    return Fingerprint(digest.hexdigest() if hashed else "", not scan.finish())


def inspect_file(
    path: Path,
    name: str,
    categories: Sequence[str],
    workdir: Path,
    rows_per_part: int = ROWS_PER_PART,
    shape: InputShape = SEED_SHAPE,
    progress: Progress = no_progress,
    now: dt.datetime | None = None,
) -> Inspection:
    """Hash, screen and — when needed — exactly validate one file, whatever it is: an order file
    read through `shape` (the seed's 8 columns by default), or a catalog file when its name
    makes it one (`InputShape.is_catalog_file`).

    The fast path stages what Polars read. Whenever the exact validator decides, the rows are
    staged from the exact validator's own parse, so what is staged is always what was validated.
    `progress` hears of the bytes read: `reading` (the fast path), then `validating` (the exact).
    The window of order dates is evaluated once, on the clock's `now` (the current time when
    None), and both validators check the file against it.
    """
    size = path.stat().st_size
    reading = Reading(path, size, progress)
    kind = shape.kind_of(name)
    if kind not in ("orders", "catalog"):  # relational headers or lines: one table file
        from orderpipe.parts import inspect_part  # (which reads through this module)

        return inspect_part(path, name, shape, workdir, kind, progress, now)
    catalog_file = kind == "catalog"
    if shape.catalog and not catalog_file:  # order files carry no category: the catalog gives it
        categories = (*categories, UNKNOWN)
    window = None if catalog_file else shape.date_window(now)

    def new_stage() -> _Staging[StagedFacts | StagedTable]:
        return _stage(workdir, rows_per_part, catalog_file)

    hashing = Beside(lambda: fingerprint(path, on_bytes=reading.on_bytes))

    def plain() -> bool:
        return not hashing.result(name).needs_exact

    fast = _fast(path, name, shape, categories, new_stage, catalog_file, plain, window, reading.on_rows)
    reading.screen_done()
    fp = hashing.result(name)
    if isinstance(fast, ValidationReport):  # invalid, located: a rejected file stages nothing
        return Inspection(fp.sha256, fast, None, window=window)
    if fast is not None:
        if not fp.needs_exact:
            return _inspection(fp.sha256, *fast, window)
        fast[1].discard()
    exact = ExactStage(_stage(workdir, rows_per_part, catalog_file), _typing(categories, catalog_file), window)
    with exact, counted(path, lambda done: progress("validating", done, size)) as stream:
        report = validate(stream, name, shape, frozenset(categories), exact.add, window)
    return exact.inspection(fp.sha256, report)


def validate_file(
    path: Path,
    name: str,
    categories: Sequence[str],
    shape: InputShape = SEED_SHAPE,
    progress: Progress = no_progress,
    now: dt.datetime | None = None,
) -> ValidationReport:
    """The report `inspect_file` gives `path`, with nothing staged: `orderpipe validate`. The
    fast path's when it decides, else the exact validator's."""
    size = path.stat().st_size
    reading = Reading(path, size, progress)
    kind = shape.kind_of(name)
    if kind not in ("orders", "catalog"):  # relational headers or lines
        from orderpipe.parts import validate_part

        return validate_part(path, name, shape, progress, now)
    catalog_file = kind == "catalog"
    if shape.catalog and not catalog_file:
        categories = (*categories, UNKNOWN)
    window = None if catalog_file else shape.date_window(now)
    scanning = Beside(lambda: fingerprint(path, hashed=False, on_bytes=reading.on_bytes))

    def plain() -> bool:
        return not scanning.result(name).needs_exact

    fast = _fast(path, name, shape, categories, Unstaged, catalog_file, plain, window, reading.on_rows)
    reading.screen_done()
    if isinstance(fast, ValidationReport):
        return fast
    if fast is not None and plain():
        return fast[0]
    with counted(path, lambda done: progress("validating", done, size)) as stream:
        return validate(stream, name, shape, frozenset(categories), window=window)


def _fast(
    path: Path,
    name: str,
    shape: InputShape,
    categories: Sequence[str],
    new_stage: Callable[[], _Staging[S]],
    catalog_file: bool,
    plain: Callable[[], bool],
    window: DateWindow | None = None,
    on_rows: Callable[[int], None] = lambda rows: None,
) -> tuple[ValidationReport, S] | ValidationReport | None:
    """The fast path's verdict and stage, or an invalid file's located report (`locate.py`,
    when `plain()`: Polars and Python's `csv` read the bytes alike); None leaves the file to the
    exact validator. Suspects of the untrimmed screen that break no rule were only padded with
    white space: the trimmed screen then reads the file."""
    for passes in ((False, True), (True,)):
        fast = _screened(path, name, shape, categories, new_stage, catalog_file, window, on_rows, passes)
        if not isinstance(fast, Suspects):
            return fast
        if not plain():
            return None
        located = locate(path, name, row_rules(shape, name, frozenset(categories), window), fast)
        if located is not None or fast.trimmed:
            return located
    return None


def _screened(
    path: Path,
    name: str,
    shape: InputShape,
    categories: Sequence[str],
    new_stage: Callable[[], _Staging[S]],
    catalog_file: bool,
    window: DateWindow | None = None,
    on_rows: Callable[[int], None] = lambda rows: None,
    passes: tuple[bool, ...] = (False, True),
) -> tuple[ValidationReport, S] | Suspects | None:
    """The fast path's verdict and stage, when it can give them, or the suspect rows of a file
    it cannot accept (nothing staged); None leaves the file to the exact validator."""
    rules = row_rules(shape, name, frozenset(categories))  # the exact validator's, for its header and words
    with path.open("rb") as stream:
        header = plain_header(stream, rules.layout)
    if header is None:
        return None
    stage = new_stage()
    with stage:
        try:
            counting = _Counting(stage, on_rows)
            rows = screen_file(
                path, header, shape, categories, counting, catalog_file, window, passes, counting.read_on
            )
        except pl.exceptions.PolarsError:  # unreadable to Polars: the exact validator will say where and why
            stage.discard()
            return None
        if not isinstance(rows, int):
            return rows
        staged = stage.finish()
    dates = staged.dates if isinstance(staged, StagedFacts | Unstaged) else ()
    return ValidationReport(name, True, rows, warnings=header.warnings, dates=dates, shape=rules.explained), staged


class _Counting:
    """A stage that tells how many rows it was given (since it was last discarded)."""

    def __init__(self, stage: Stage, on_rows: Callable[[int], None]) -> None:
        self.stage = stage
        self.on_rows = on_rows
        self.rows = 0

    def add(self, rows: pl.DataFrame) -> None:
        self.stage.add(rows)
        self.rows += rows.height
        self.on_rows(self.rows)

    def read_on(self, rows: int) -> None:
        """Rows read but not staged: the screen reads on past a failing batch to locate."""
        self.rows += rows
        self.on_rows(self.rows)

    def discard(self) -> None:
        self.stage.discard()
        self.rows = 0
        self.on_rows(0)


class Unstaged:
    """A stage that keeps nothing but the dates (`validate_file`): a report, no rows."""

    def __init__(self) -> None:
        self._dates: set[str] = set()

    def __enter__(self) -> Unstaged:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def add(self, rows: pl.DataFrame) -> None:
        if "order_date" in rows.columns:
            self._dates.update(day.isoformat() for day in rows.get_column("order_date").unique())

    def discard(self) -> None:
        self._dates = set()

    def finish(self) -> Unstaged:
        return self

    @property
    def dates(self) -> tuple[str, ...]:
        return tuple(sorted(self._dates))


def _stage(workdir: Path, rows_per_part: int, catalog_file: bool) -> FactSlices | TableStage:
    return TableStage(workdir) if catalog_file else FactSlices(workdir, rows_per_part)


def _inspection(
    batch_id: str, report: ValidationReport, staged: StagedFacts | StagedTable, window: DateWindow | None = None
) -> Inspection:
    if isinstance(staged, StagedTable) and staged.kind == "catalog":
        return Inspection(batch_id, report, None, catalog=staged.path)
    if isinstance(staged, StagedTable):
        return Inspection(batch_id, report, None, part=staged)
    return Inspection(batch_id, report, staged, window=window)


class FactSlices:
    """Cuts a batch's typed rows into its facts files as they arrive.

    Slices are cut by row number, exactly `rows_per_part` rows each (the last one shorter), so
    the same bytes always give the same files. Each slice is written, partitioned by date, while
    the next one is read.
    """

    def __init__(self, workdir: Path, rows_per_part: int = ROWS_PER_PART) -> None:
        self.workdir = workdir
        self.rows_per_part = rows_per_part
        self._pending: list[pl.DataFrame] = []
        self._buffered = 0
        self._part = 0
        self._rows = 0
        self._files: list[tuple[str, int, Path]] = []
        self._parts: dict[str, list[int]] = {}
        self._writers = ThreadPoolExecutor(WRITERS)
        self._in_flight: list[Future[None]] = []

    def __enter__(self) -> FactSlices:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writers.shutdown(wait=True, cancel_futures=True)
        if exc[0] is not None:
            self.discard()

    def add(self, rows: pl.DataFrame) -> None:
        """Rows in the facts schema, in file order."""
        while rows.height:
            take = min(rows.height, self.rows_per_part - self._buffered)
            self._pending.append(rows.slice(0, take))
            self._buffered += take
            rows = rows.slice(take)
            if self._buffered == self.rows_per_part:
                self._cut()

    def _cut(self) -> None:
        # The previous slice's files first: then at most two slices are ever in memory.
        self._wait()
        # Sorted by date (file order within a date), each date's rows are one run: a date's
        # own file and the bundle of the small dates are views of the one sorted copy. On one
        # thread: as fast here (the scan keeps the other cores busy) for half the CPU time.
        chunk = pl.concat(self._pending, how="vertical", rechunk=False).sort(
            "order_date", maintain_order=True, multithreaded=False
        )
        self._pending, self._buffered = [], 0
        part = self._part
        self._part += 1
        self._rows += chunk.height
        column = chunk.get_column("order_date")
        runs: list[tuple[str, int, int]] = []  # (date, offset, rows)
        offset = 0
        for order_date, rows in zip(
            column.unique(maintain_order=True).to_list(), column.unique_counts().to_list(), strict=True
        ):
            runs.append((order_date.isoformat(), offset, rows))
            offset += rows
        small = [run for run in runs if run[2] < BUNDLE_BELOW]
        if len(small) > 1:
            whole = len(small) == len(runs)
            bundle = chunk if whole else pl.concat([chunk.slice(at, rows) for _, at, rows in small], how="vertical")
            self._in_flight.append(self._write(BUNDLE + part, small[0][0], bundle))
            for day, _, _ in small:
                self._parts.setdefault(day, []).append(BUNDLE + part)
            runs = [run for run in runs if run[2] >= BUNDLE_BELOW]
        for day, at, rows in runs:
            self._in_flight.append(self._write(part, day, chunk.slice(at, rows)))
            self._parts.setdefault(day, []).append(part)

    def _wait(self) -> None:
        for write in self._in_flight:
            write.result()
        self._in_flight = []

    def _write(self, part: int, day: str, frame: pl.DataFrame) -> Future[None]:
        local = self.workdir / f"facts-{uuid.uuid4().hex}.parquet"
        self._files.append((day, part, local))
        # zstd level 1: measured 40 % faster to write than the default level, 5 % larger.
        if part >= BUNDLE:  # statistics and small row groups: a reader skips the other dates
            options: dict[str, Any] = {"statistics": True, "row_group_size": BUNDLE_ROW_GROUP}
        else:
            options = {"statistics": False}
        return self._writers.submit(frame.write_parquet, local, compression="zstd", compression_level=1, **options)

    def finish(self) -> StagedFacts:
        if self._buffered:
            self._cut()
        self._wait()
        return StagedFacts(tuple(self._files), {day: self._parts[day] for day in sorted(self._parts)}, self._rows)

    def discard(self) -> None:
        """Forget the rows: wait for the writes under way, then delete every file cut (and start
        again from the first slice)."""
        for write in self._in_flight:
            with suppress(Exception):  # a file half written is deleted all the same
                write.result()
        self._in_flight, self._pending, self._buffered = [], [], 0
        for _, _, path in self._files:
            path.unlink(missing_ok=True)
        self._files, self._parts, self._part, self._rows = [], {}, 0, 0


class ExactStage:
    """Stages the exact validator's rows in bounded chunks, typed by the screen's columns: the
    exact validator's verdict, the screen's types."""

    CHUNK_ROWS = 250_000

    def __init__(
        self,
        stage: FactSlices | TableStage,
        typed: Callable[[list[list[str]]], pl.DataFrame],
        window: DateWindow | None = None,
    ) -> None:
        self.stage = stage
        self.typed = typed
        self.window = window  # the one the file was checked against, for its Inspection
        self.buffer: list[list[str]] = []

    def __enter__(self) -> ExactStage:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.stage.__exit__(*exc)

    def add(self, values: list[str]) -> None:
        self.buffer.append(values)
        if len(self.buffer) >= self.CHUNK_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.buffer:
            self.stage.add(self.typed(self.buffer))
            self.buffer = []

    def inspection(self, batch_id: str, report: ValidationReport) -> Inspection:
        """The verdict with the rows staged from the validated ones (none for an invalid file)."""
        with self.stage:
            if not report.valid:
                self.stage.discard()
                return Inspection(batch_id, report, None, window=self.window)
            self._flush()
            staged = self.stage.finish()
        if staged.rows != report.rows:
            staged.discard()
            raise InfrastructureError(f"{report.file}: staged {staged.rows} rows but validated {report.rows}")
        return _inspection(batch_id, report, staged)


def _typing(categories: Sequence[str], catalog_file: bool) -> Callable[[list[list[str]]], pl.DataFrame]:
    """How the exact validator's rows become the stage's typed rows."""
    if catalog_file:
        return lambda rows: pl.DataFrame(rows, schema=dict.fromkeys(CATALOG_COLUMNS, pl.String()), orient="row")

    def typed(rows: list[list[str]]) -> pl.DataFrame:
        frame = pl.DataFrame(rows, schema=list(COLUMNS), orient="row").with_columns(pl.lit("x").alias("__last"))
        checked = frame.select(screen_columns(categories))
        if not checked["ok"].all():  # the two validators disagree: a bug, never a silent stage
            raise InfrastructureError("the exact validator accepted rows the typed columns reject")
        return checked.select(*FACT_SCHEMA)

    return typed
