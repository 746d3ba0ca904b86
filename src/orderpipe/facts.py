"""A batch's facts files: their names on the store, published, read back, compacted.

The facts of a batch are cut into local files as the file is read (`ingest.FactSlices`); their
names derive from the batch, so a retry overwrites its own files and never adds copies. Readers
take a date's rows from its own files and from the bundles that hold it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from orderpipe.core.screen import FACT_SCHEMA
from orderpipe.ports import FactEntry, ObjectStore

__all__ = [
    "BUNDLE",
    "FACTS_PREFIX",
    "HISTORY",
    "RETRACTED",
    "ROWS_PER_PART",
    "SEQ_ONLY",
    "WRITERS",
    "StagedFacts",
    "bundle_of",
    "fact_key",
    "history_of",
    "history_rows",
    "is_marker",
    "latest_of",
    "load_facts",
    "publish_facts",
    "staged_facts",
    "write_compacted",
    "write_history",
]

FACTS_PREFIX = "warehouse/orders/"
ROWS_PER_PART = 1_000_000
#: Facts smaller than this (compressed) are read into memory at once: for a few small files a
#: streaming scan costs more than the data (two streaming queries re-read every file).
EAGER_FACTS_BYTES = 16 << 20
#: Facts files written at once.
WRITERS = 4
#: Part numbers from here on name bundles: one file per row slice holding the small dates of the
#: slice (`ingest.BUNDLE_BELOW`), sorted by date, so that a file of many small dates is a few
#: files, not one per date. A reader takes its date's row groups only.
BUNDLE = 1_000_000
BUNDLES = "bundles/"
#: Part numbers from here on name a merged entry's history: every row of the batches it merged,
#: each with its batch's seq (`write_history`), so that a retraction can take one batch's rows
#: out again and restore the rows they replaced. Readers of the current orders skip them.
HISTORY = 2_000_000
#: In a merged entry's history, a row with no quantity (never missing from a real row) only
#: gives a current order's seq (`history_of`).
SEQ_ONLY = "quantity"
#: A date entry named so marks a retraction: no parts, a seq of its own (`Ledger.retract_entries`).
RETRACTED = "retracted-"


def is_marker(entry: FactEntry) -> bool:
    """A retraction's mark among a date's entries (it holds no rows)."""
    return entry.batch_id.startswith(RETRACTED)


def fact_key(order_date: str, batch_id: str, part: int, prefix: str = FACTS_PREFIX) -> str:
    """Derived from the batch, so a retry overwrites its own files and never adds copies."""
    if part >= HISTORY:
        return f"{prefix}order_date={order_date}/history-{batch_id}-{part - HISTORY:04d}.parquet"
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
            for part in (p for p in entry.parts if p < HISTORY):
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


def history_rows(
    store: ObjectStore, order_date: str, entries: Sequence[FactEntry], stack: ExitStack, prefix: str = FACTS_PREFIX
) -> pl.LazyFrame:
    """Every row of the batches these entries of one date hold, each with its batch's seq: a
    batch's own rows, or a merged entry's current rows and history (`history_of`). A merged
    entry written before histories existed gives its current rows, all under its own seq."""
    frames = []
    schema = {**FACT_SCHEMA, "seq": pl.Int64()}
    for entry in entries:
        history = [p for p in entry.parts if p >= HISTORY]
        own = load_facts(store, {order_date: [entry]}, stack, prefix)
        if not history:
            frames.append(own.with_columns(pl.lit(entry.seq, pl.Int64).alias("seq")))
            continue
        paths = [
            str(stack.enter_context(store.local_copy(fact_key(order_date, entry.batch_id, p, prefix)))) for p in history
        ]
        kept = pl.scan_parquet(paths, schema=schema, hive_partitioning=False)
        seqs = kept.filter(pl.col(SEQ_ONLY).is_null()).select("order_id", "seq")
        frames.append(kept.filter(pl.col(SEQ_ONLY).is_not_null()))
        frames.append(own.drop("seq").join(seqs, on="order_id", how="inner"))
    if not frames:
        return pl.LazyFrame(schema=schema)
    return pl.concat([f.select(*FACT_SCHEMA, "seq") for f in frames], how="vertical")


def history_of(rows: pl.DataFrame) -> pl.DataFrame:
    """What a merged entry keeps beside its current rows so that any of its batches can be
    retracted: the rows later batches replaced, in full, and for each current order only its
    seq (a row whose `SEQ_ONLY` column is null: the order's rows are the current files').
    Every row of `rows` can be told again from the current rows and this (`history_rows`),
    at about the size of the replaced rows alone."""
    latest = latest_of()
    current = rows.lazy().filter(latest).select("order_date", "order_id", "seq").unique()
    blank = [pl.lit(None, dtype).alias(c) for c, dtype in FACT_SCHEMA.items() if c not in ("order_date", "order_id")]
    seqs = current.with_columns(blank).select(*FACT_SCHEMA, "seq")
    replaced = rows.lazy().filter(~latest).select(*FACT_SCHEMA, "seq")
    return pl.concat([replaced, seqs], how="vertical").collect()


def latest_of() -> pl.Expr:
    """True for the rows of the latest seq of their order (every line of it, at line grain)."""
    return pl.col("seq") == pl.col("seq").max().over("order_date", "order_id")


def write_history(
    rows: pl.LazyFrame,
    order_date: str,
    merged_id: str,
    store: ObjectStore,
    workdir: Path,
    rows_per_part: int = ROWS_PER_PART,
    prefix: str = FACTS_PREFIX,
) -> list[int]:
    """Write the rows (with their seq) of the batches merged as `merged_id`; returns the parts
    (from `HISTORY` on). Sorted, so that a retry writes identical files."""
    frame = rows.select(*FACT_SCHEMA, "seq").sort("seq", *FACT_SCHEMA).collect()
    parts: list[int] = []
    for n, offset in enumerate(range(0, max(frame.height, 1), rows_per_part)):
        local = workdir / f"history-{uuid.uuid4().hex}.parquet"
        frame.slice(offset, rows_per_part).write_parquet(local, compression="zstd", statistics=False)
        store.put_file(local, fact_key(order_date, merged_id, HISTORY + n, prefix))
        parts.append(HISTORY + n)
    return parts


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
