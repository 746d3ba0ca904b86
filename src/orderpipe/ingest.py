"""From a landed file to a verdict and staged facts, fast.

The file is read twice at most: once by a streaming Polars scan (typed rows plus a per-row
`ok` flag) while a thread hashes the bytes, and — only when the screen flags anything, or the
bytes hold quotes, bare CRs or NULs — once more by the exact validator for a located report.
Either way the rows are cut into the batch's facts files as they are read (`FactSlices`), in
the scratch folder: committing a valid batch only names them under warehouse/.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import polars as pl

from orderpipe.core.header import PlainHeader, order_layout, plain_header
from orderpipe.core.report import ValidationReport
from orderpipe.core.rules import COLUMNS, WHITESPACE
from orderpipe.core.screen import FACT_SCHEMA, screen_columns
from orderpipe.core.shape import SEED_SHAPE
from orderpipe.core.validate import validate_stream
from orderpipe.errors import InfrastructureError
from orderpipe.ports import FactEntry, ObjectStore

__all__ = [
    "BUNDLE",
    "FACTS_PREFIX",
    "ROWS_PER_PART",
    "Beside",
    "ExactStage",
    "FactSlices",
    "Inspection",
    "StagedFacts",
    "bundle_of",
    "fact_key",
    "inspect_file",
    "load_facts",
    "publish_facts",
    "slice_stage",
    "staged_facts",
    "write_compacted",
]

FACTS_PREFIX = "warehouse/orders/"
CHUNK = 8 << 20
ROWS_PER_PART = 1_000_000
#: Facts smaller than this (compressed) are read into memory at once: for a few small files a
#: streaming scan costs more than the data (two streaming queries re-read every file).
EAGER_FACTS_BYTES = 16 << 20
#: Rows the screen hands over at a time (bounds its memory; the slices are cut exactly anyway).
SCREEN_ROWS = 250_000
#: Facts files written at once.
WRITERS = 4
#: Part numbers from here on name bundles: one file per row slice holding the dates that have
#: fewer than BUNDLE_BELOW rows in the slice, sorted by date, so that a file of many small dates
#: is a few files, not one per date. A reader takes its date's row groups only.
BUNDLE = 1_000_000
BUNDLE_BELOW = 50_000
BUNDLE_ROW_GROUP = 20_000
BUNDLES = "bundles/"
_SEED = order_layout(SEED_SHAPE)


def fact_key(order_date: str, batch_id: str, part: int, prefix: str = FACTS_PREFIX) -> str:
    """Derived from the batch, so a retry overwrites its own files and never adds copies."""
    if part >= BUNDLE:
        return f"{prefix}{BUNDLES}batch-{batch_id}-{part - BUNDLE:04d}.parquet"
    return f"{prefix}order_date={order_date}/batch-{batch_id}-{part:04d}.parquet"


def bundle_of(key: str, prefix: str = FACTS_PREFIX) -> tuple[str, int] | None:
    """(batch id, part) of a bundle's key, or None for any other key."""
    name = key.removeprefix(prefix + BUNDLES)
    if name == key or not name.startswith("batch-") or not name.endswith(".parquet"):
        return None
    batch_id, _, number = name.removeprefix("batch-").removesuffix(".parquet").rpartition("-")
    return (batch_id, BUNDLE + int(number)) if batch_id and number.isdigit() else None


@dataclass(frozen=True, slots=True)
class Fingerprint:
    sha256: str
    needs_exact: bool  # quotes, bare CR or NUL: let the exact validator decide


@dataclass(frozen=True, slots=True)
class StagedFacts:
    """A batch's facts in local files, already cut as they will be stored: row slices of at
    most `rows_per_part` rows, each partitioned by date (see `BUNDLE`)."""

    files: tuple[tuple[str, int, Path], ...]  # (a date of the file, part, local path)
    parts: dict[str, list[int]]  # date → the parts holding its rows
    rows: int

    @property
    def paths(self) -> list[Path]:
        return [path for _, _, path in self.files]

    @property
    def dates(self) -> tuple[str, ...]:
        return tuple(sorted(self.parts))

    def discard(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class Inspection:
    """The verdict on one file: a valid order batch's `facts`, a valid catalog batch's rows
    (products and their categories) in `catalog`."""

    batch_id: str
    report: ValidationReport
    facts: StagedFacts | None
    catalog: Path | None = None


T = TypeVar("T")


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


def fingerprint(path: Path) -> Fingerprint:
    digest = hashlib.sha256()
    suspicious = False
    pending_cr = False  # the previous chunk ended in CR: its LF must open this one
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            if not suspicious:
                lone_cr = False
                if b"\r" in chunk:  # most files have none: the two counts are the slow part
                    crs = chunk.count(b"\r") - chunk.endswith(b"\r")
                    lone_cr = crs != chunk.count(b"\r\n")
                suspicious = (
                    (pending_cr and not chunk.startswith(b"\n")) or b'"' in chunk or b"\x00" in chunk or lone_cr
                )
                pending_cr = chunk.endswith(b"\r")
    suspicious = suspicious or pending_cr
    return Fingerprint(digest.hexdigest(), bool(suspicious))


@dataclass(frozen=True, slots=True)
class _Screen:
    rows: int
    clean: bool
    blank: int
    facts: StagedFacts | None  # when clean


def _screen(path: Path, header: PlainHeader, categories: Sequence[str], workdir: Path, rows_per_part: int) -> _Screen:
    """Screen the values as read; when some row fails, once more trimmed (see `screen_columns`)."""
    screen = _screen_values(path, header, categories, workdir, rows_per_part, trimmed=False)
    if screen.clean:
        return screen
    return _screen_values(path, header, categories, workdir, rows_per_part, trimmed=True)


def _screen_values(
    path: Path, header: PlainHeader, categories: Sequence[str], workdir: Path, rows_per_part: int, trimmed: bool
) -> _Screen:
    """One pass: each batch of rows the scan yields is checked, then cut into facts files. The
    first batch with a failing row ends the pass (the files cut so far are deleted)."""
    raw = pl.scan_csv(
        path,
        has_header=True,
        new_columns=[f"c{i}" for i in range(header.width)],  # by position: names may repeat
        infer_schema=False,
        empty_string_is_null=False,
        encoding="utf8",
    )
    read = {c: pl.col(f"c{header.positions[c]}") for c in COLUMNS}
    values = [(v.str.strip_chars(WHITESPACE) if trimmed else v).alias(c) for c, v in read.items()]
    values.append(pl.col(f"c{header.width - 1}").alias("__last"))
    # Polars checks a row's field count only when it parses every column: with an unused extra
    # column pruned from the scan, a row with one field too many would pass. So no pruning.
    batches = (
        raw.select(values)
        .select(screen_columns(categories, trimmed))
        .collect_batches(chunk_size=SCREEN_ROWS, lazy=True, optimizations=pl.QueryOptFlags(projection_pushdown=False))
    )
    rows = blank = 0
    hashes: list[pl.Series] = []
    with FactSlices(workdir, rows_per_part) as slices:
        for batch in batches:
            rows += batch.height
            if (~(batch["ok"] & batch["complete"])).any():  # returning drops the scan: it stops
                slices.discard()
                return _Screen(rows, False, 0, None)
            blanks = batch["blank"]
            if blanks.any():
                blank += int(blanks.sum())
                batch = batch.filter(~blanks)
            facts = batch.select(*FACT_SCHEMA)
            hashes.append(facts.get_column("order_id").hash(seed=0))
            slices.add(facts)
        staged = slices.finish()
    if rows == 0 or not _unique(hashes):
        staged.discard()
        return _Screen(rows - blank, False, blank, None)
    return _Screen(rows - blank, True, blank, staged)


def _unique(hashes: list[pl.Series]) -> bool:
    """True when no two rows share an order id: their hashes are all distinct (a collision can
    only send a valid file to the exact validator). Counted on the 8-byte hashes: a distinct
    count of the ids themselves held three times the memory."""
    every = pl.concat(hashes) if hashes else pl.Series(dtype=pl.UInt64)
    return every.n_unique() == every.len()


def inspect_file(
    path: Path, name: str, categories: Sequence[str], workdir: Path, rows_per_part: int = ROWS_PER_PART
) -> Inspection:
    """Hash, screen and — when needed — exactly validate one file.

    The fast path stages what Polars read. Whenever the exact validator decides, the facts are
    cut from the exact validator's own parse, so what is staged is always what was validated.
    """
    hashing = Beside(lambda: fingerprint(path))
    with path.open("rb") as stream:
        header = plain_header(stream, _SEED)
    screen: _Screen | None = None
    if header is not None:
        try:
            screen = _screen(path, header, categories, workdir, rows_per_part)
        except pl.exceptions.PolarsError:
            screen = None  # unreadable to Polars: the exact validator will say where and why
    fp = hashing.result(name)
    if screen is not None and screen.facts is not None:
        if not fp.needs_exact and header is not None:
            report = ValidationReport(name, True, screen.rows, warnings=header.warnings, dates=screen.facts.dates)
            return Inspection(fp.sha256, report, screen.facts)
        screen.facts.discard()
    exact = ExactStage(workdir, categories, rows_per_part)
    with exact, path.open("rb") as stream:
        report = validate_stream(stream, name, frozenset(categories), exact.add)
    return exact.inspection(fp.sha256, report)


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
        """Forget the rows: wait for the writes under way, then delete every file cut."""
        for write in self._in_flight:
            with suppress(Exception):  # a file half written is deleted all the same
                write.result()
        self._in_flight, self._pending, self._buffered = [], [], 0
        for _, _, path in self._files:
            path.unlink(missing_ok=True)
        self._files, self._parts = [], {}


class ExactStage:
    """Cuts the exact validator's rows into facts through the screen's typed columns, in
    bounded chunks: the exact validator's verdict, the screen's types."""

    CHUNK_ROWS = 250_000

    def __init__(self, workdir: Path, categories: Sequence[str], rows_per_part: int = ROWS_PER_PART) -> None:
        self.categories = categories
        self.buffer: list[list[str]] = []
        self.slices = FactSlices(workdir, rows_per_part)
        self.rows = 0

    def __enter__(self) -> ExactStage:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.slices.__exit__(*exc)

    def add(self, values: list[str]) -> None:
        self.buffer.append(values)
        if len(self.buffer) >= self.CHUNK_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        frame = pl.DataFrame(self.buffer, schema=list(COLUMNS), orient="row").with_columns(pl.lit("x").alias("__last"))
        typed = frame.select(screen_columns(self.categories))
        if not typed["ok"].all():  # the two validators disagree: a bug, never a silent stage
            raise InfrastructureError("the exact validator accepted rows the typed columns reject")
        self.slices.add(typed.select(*FACT_SCHEMA))
        self.rows += typed.height
        self.buffer = []

    def inspection(self, batch_id: str, report: ValidationReport) -> Inspection:
        """The verdict with the facts cut from the validated rows (none for an invalid file)."""
        with self.slices:
            if not report.valid:
                self.slices.discard()
                return Inspection(batch_id, report, None)
            self._flush()
            facts = self.slices.finish()
        if facts.rows != report.rows:
            facts.discard()
            raise InfrastructureError(f"{report.file}: staged {facts.rows} rows but validated {report.rows}")
        return Inspection(batch_id, report, facts)


def slice_stage(stage: Path, workdir: Path, rows_per_part: int = ROWS_PER_PART) -> StagedFacts:
    """Cut a stage of the screen's columns (blank lines flagged) into facts files."""
    rows = pl.scan_parquet(stage).select(pl.len()).collect().item()
    with FactSlices(workdir, rows_per_part) as slices:
        for offset in range(0, rows, rows_per_part):
            slices.add(
                pl.scan_parquet(stage)
                .slice(offset, rows_per_part)
                .filter(~pl.col("blank"))
                .select(*FACT_SCHEMA)
                .collect()
            )
        return slices.finish()


def publish_facts(
    facts: StagedFacts,
    batch_id: str,
    store: ObjectStore,
    on_part: Callable[[], None] = lambda: None,
    prefix: str = FACTS_PREFIX,
    on_file: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, list[int]]:
    """Store a batch's facts files under warehouse/; returns the parts of each date.

    Names are derived from the batch, so a retry overwrites its own files and never adds
    copies. The local files stay for `staged_facts` (each is stored through a second name).
    """

    def put(day: str, part: int, local: Path) -> None:
        twin = local.with_name(f"put-{uuid.uuid4().hex}.parquet")
        try:
            os.link(local, twin)
        except OSError:
            shutil.copyfile(local, twin)
        store.put_file(twin, fact_key(day, batch_id, part, prefix))

    # A file of many dates means many writes, each mostly fixed cost (and a round trip on S3):
    # they run side by side.
    with ThreadPoolExecutor(WRITERS) as writers:
        writes = [writers.submit(put, day, part, local) for day, part, local in facts.files]
        for done, write in enumerate(as_completed(writes), 1):
            write.result()
            on_part()
            on_file(done, len(writes))
    return facts.parts


def load_facts(
    store: ObjectStore, entries: dict[str, list[FactEntry]], stack: ExitStack, prefix: str = FACTS_PREFIX
) -> pl.LazyFrame:
    """The committed facts of the given dates, each row tagged with its batch seq.

    Dates with one batch are read in a single scan (their seq is irrelevant: nothing to
    de-duplicate); only dates shared by several batches carry each file's seq. Small facts are
    read into memory at once (see EAGER_FACTS_BYTES).
    """
    schema = {**FACT_SCHEMA, "seq": pl.Int64()}
    single: list[str] = []
    frames = []
    bundles: dict[str, tuple[int, set[str]]] = {}  # path → (seq, the dates wanted from it)
    size = 0
    copies: dict[str, str] = {}

    def local(key: str) -> str:
        if key not in copies:  # a bundle serves several dates: fetched once
            copies[key] = str(stack.enter_context(store.local_copy(key)))
            nonlocal size
            size += os.path.getsize(copies[key])
        return copies[key]

    for order_date, date_entries in entries.items():
        for entry in date_entries:
            paths = []
            for part in entry.parts:
                path = local(fact_key(order_date, entry.batch_id, part, prefix))
                if part >= BUNDLE:
                    bundles.setdefault(path, (entry.seq, set()))[1].add(order_date)
                else:
                    paths.append(path)
            if not paths:
                continue
            if len(date_entries) == 1:
                single += paths
            else:
                frames.append(
                    pl.scan_parquet(paths, schema=FACT_SCHEMA, hive_partitioning=False).with_columns(
                        pl.lit(entry.seq, pl.Int64).alias("seq")
                    )
                )
    for path, (seq, dates) in bundles.items():
        frames.append(
            pl.scan_parquet(path, schema=FACT_SCHEMA, hive_partitioning=False)
            .filter(pl.col("order_date").is_in(_days(dates)))
            .with_columns(pl.lit(seq, pl.Int64).alias("seq"))
        )
    if single:
        frames.append(
            pl.scan_parquet(single, schema=FACT_SCHEMA, hive_partitioning=False).with_columns(
                pl.lit(0, pl.Int64).alias("seq")
            )
        )
    if not frames:
        return pl.LazyFrame(schema=schema)
    facts = pl.concat([f.select(list(schema)) for f in frames], how="vertical")
    return facts.collect().lazy() if size < EAGER_FACTS_BYTES else facts


def _days(dates: Collection[str]) -> pl.Series:
    return pl.Series([dt.date.fromisoformat(d) for d in sorted(dates)], dtype=pl.Date).implode()


def staged_facts(facts: StagedFacts, dates: Collection[str]) -> pl.LazyFrame:
    """The rows of `dates` from a batch's local facts files, in the shape `load_facts` returns
    (read locally, not fetched again from the store)."""
    wanted = set(dates)
    paths = [str(path) for day, part, path in facts.files if part >= BUNDLE or day in wanted]
    rows = pl.scan_parquet(paths, schema=FACT_SCHEMA, hive_partitioning=False)
    if wanted != set(facts.parts):
        rows = rows.filter(pl.col("order_date").is_in(_days(dates)))
    return rows.with_columns(pl.lit(0, pl.Int64).alias("seq"))


def write_compacted(
    current: pl.LazyFrame,
    order_date: str,
    merged_id: str,
    store: ObjectStore,
    workdir: Path,
    rows_per_part: int = ROWS_PER_PART,
    prefix: str = FACTS_PREFIX,
) -> list[int]:
    """Write one date's current orders as the facts of `merged_id`; returns the parts written.

    Rows are sorted (by order id first) before slicing, so two processes compacting the same entries
    write identical files and a retry overwrites its own, whatever order it interleaves in.
    """
    rows = current.select(*FACT_SCHEMA).sort(*FACT_SCHEMA).collect()  # every column: lines of an order too
    parts: list[int] = []
    for part, offset in enumerate(range(0, max(rows.height, 1), rows_per_part)):
        local = workdir / f"compact-{uuid.uuid4().hex}.parquet"
        rows.slice(offset, rows_per_part).write_parquet(local, compression="zstd", statistics=False)
        store.put_file(local, fact_key(order_date, merged_id, part, prefix))
        parts.append(part)
    return parts
