"""Header and line batches on the object store: their files, the current tables, what a batch changes.

At relational grain (`core/relational.py`) a header or line file is a batch like any other; its
validated rows are one Parquet file, `warehouse/orders/headers/batch-<sha256>.parquet` or
`…/lines/batch-<sha256>.parquet` (named from the batch, so a retry overwrites it), invisible
until the ledger commits the batch under the pseudo-date `headers` or `lines`, as a catalog
batch is committed under `catalog`. The current headers and lines are read from the ledger's
entries of those keys, the latest row per order id (per line id) winning; a date's KPIs are
computed from them joined, each time, so a header that lands after its lines finds them.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import polars as pl

from orderpipe.catalogs import CATALOG
from orderpipe.core.relational import (
    HEADER_SCHEMA,
    LINE_SCHEMA,
    Unjoined,
    current_headers,
    current_lines,
    latest_rows,
    waiting,
)
from orderpipe.errors import InfrastructureError
from orderpipe.facts import FACTS_PREFIX, is_marker
from orderpipe.logs import log_event
from orderpipe.ports import FactEntry, Ledger, ObjectStore

__all__ = [
    "HEADERS",
    "KNOWN_TABLE_ROWS",
    "LINES",
    "ROW_ID",
    "TABLE_KEYS",
    "KnownTables",
    "changed_dates",
    "current_tables",
    "load_part",
    "part_key",
    "product_dates",
    "read_tables",
    "waiting_now",
    "with_tables",
    "write_part_merge",
]

#: The ledger keys under which header and line batches are entries, beside the order dates.
HEADERS = "headers"
LINES = "lines"
#: Every ledger key that names a table rather than an order date.
TABLE_KEYS = (CATALOG, HEADERS, LINES)
_SCHEMAS = {HEADERS: HEADER_SCHEMA, LINES: LINE_SCHEMA}
#: Two reads of the tables' entries that differ: tried again this many times.
READS = 20
#: Work on a read that a compaction changed under it: tried this many times.
ATTEMPTS = 5
T = TypeVar("T")


def part_key(kind: str, batch_id: str, prefix: str = FACTS_PREFIX) -> str:
    """Derived from the batch, so a retry overwrites its own file and never adds a copy."""
    return f"{prefix}{kind}/batch-{batch_id}.parquet"


def load_part(
    store: ObjectStore, kind: str, entries: Sequence[FactEntry], stack: ExitStack, prefix: str = FACTS_PREFIX
) -> pl.DataFrame:
    """The rows of these header (or line) entries, each tagged with its batch's seq."""
    frames = [
        pl.read_parquet(stack.enter_context(store.local_copy(part_key(kind, e.batch_id, prefix)))).with_columns(
            pl.lit(e.seq, pl.Int64).alias("seq")
        )
        for e in entries
        if not is_marker(e)
    ]
    schema = {**_SCHEMAS[kind], "seq": pl.Int64()}
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat([f.select(list(schema)) for f in frames], how="vertical")


def write_part_merge(
    store: ObjectStore, kind: str, covered: Sequence[FactEntry], merged: str, workdir: Path, prefix: str
) -> tuple[int, ...]:
    """Store the merged entry `merged` of these header (or line) entries: the latest row per
    order id (line id) among them, sorted by it, so the same entries always give the same file.
    Returns its parts."""
    with ExitStack() as stack:
        rows = load_part(store, kind, covered, stack, prefix).lazy()
        latest = (current_headers if kind == HEADERS else current_lines)(rows).collect()
    local = workdir / f"{kind}-merge-{uuid.uuid4().hex}.parquet"
    latest.sort(latest.columns[0]).write_parquet(local, compression="zstd")
    try:
        store.put_file(local, part_key(kind, merged, prefix))
    finally:
        local.unlink(missing_ok=True)
    return (0,)


def read_tables(ledger: Ledger, keys: Sequence[str]) -> dict[str, list[FactEntry]]:
    """The ledger's entries of `keys` (the tables', and any dates'), as at one instant: a
    ledger that reads one key at a time (DynamoDB) could see a batch of one table commit
    between two keys' reads, so the read is repeated until two in a row agree. Seqs are given
    in commit order: a batch committed after the first read of every key has a higher seq
    than any entry read, and one committed before the second read shows in it. A read with
    two entries of one seq in a key caught a merge half switched (a DynamoDB query is not
    isolated from a transaction): the merged entry and the last entry it replaces; it never
    counts as agreeing."""
    read = ledger.fact_entries(keys)
    for _ in range(READS):
        again = ledger.fact_entries(keys)
        if again == read and not _seq_twice(read):
            return read
        read = again
    raise InfrastructureError("header and line batches kept committing while the KPIs were read; it will be read again")


def _seq_twice(read: Mapping[str, list[FactEntry]]) -> bool:
    return any(len({e.seq for e in entries}) < len(entries) for entries in read.values())


def with_tables(ledger: Ledger, keys: Sequence[str], work: Callable[[Mapping[str, list[FactEntry]]], T]) -> T:
    """`work` on the entries of `keys` read as at one instant (`read_tables`), done again on a
    new read when it fails and the tables changed meanwhile (a compaction removed a file under
    it); a failure on an unchanged read is a real one."""
    read = read_tables(ledger, keys)
    for attempt in itertools.count(1):
        try:
            return work(read)
        except (InfrastructureError, OSError, pl.exceptions.PolarsError):
            again = read_tables(ledger, keys)
            if again == read or attempt >= ATTEMPTS:
                raise
            read = again
    raise AssertionError("unreachable")


#: The id of a row of each table: a later row of the same id replaces it.
ROW_ID = {HEADERS: "order_id", LINES: "line_id"}
#: Rows of the header and line tables a process keeps between recomputes (~100 bytes a row).
KNOWN_TABLE_ROWS = 2_000_000
#: The kept rows gain a chunk a batch: past this many, they are copied into one.
MAX_CHUNKS = 16


@dataclass(frozen=True, slots=True)
class _Known:
    """The latest row per id (with its seq) of a table, every entry up to seq `upto` counted."""

    upto: int
    rows: pl.DataFrame


class KnownTables:
    """The header and line tables of one warehouse, as this process last read them, so that a
    later read loads only the entries committed since: a late header finds its lines in memory,
    and a small batch costs the same however large the tables have grown. What waits is kept
    the same way (`core.relational.Unjoined`), changed by each batch's rows only.

    What was read stays true for any later read of the ledger: seqs are taken in commit order
    (an entry committed later has a higher seq), and a compaction replaces a run of entries by
    one of the highest seq they cover, holding the latest row per id among them (rows already
    counted when that seq was, so it is not read again). A read that does not reach `upto` (an
    older one), or holds a retraction's mark, is read whole.
    """

    def __init__(self, store: ObjectStore, prefix: str = FACTS_PREFIX) -> None:
        self.store = store
        self.prefix = prefix
        self._known: dict[str, _Known] = {}
        self._unjoined: Unjoined | None = None
        self._waited = False  # what waits was counted once: worth keeping by order from now on
        self._told: set[str] = set()  # the tables said to be too big to keep

    def rows(self, kind: str, entries: Sequence[FactEntry], stack: ExitStack) -> pl.DataFrame:
        """The latest row per id (with its seq) over `entries`: every entry of the table up to
        some seq (the table as read, or the part of it below one batch)."""
        return self._read(kind, entries, stack)[0]

    def current(self, kind: str, entries: Sequence[FactEntry], stack: ExitStack) -> pl.DataFrame:
        """`rows` of the table as read now, kept for the next read (when small enough)."""
        rows, change = self._read(kind, entries, stack)
        self._known.pop(kind, None)
        held = sum(k.rows.height for k in self._known.values())
        if held + rows.height > KNOWN_TABLE_ROWS:
            if kind not in self._told:  # (once a process)
                self._told.add(kind)
                log_event(
                    "tables.not_kept",
                    table=kind,
                    rows=rows.height,
                    kept_rows=held,
                    hint=f"over {KNOWN_TABLE_ROWS:,} rows in all: every file of this process reads it whole",
                )
            self._unjoined = None
            return rows
        self._known[kind] = _Known(max((e.seq for e in entries), default=0), rows)
        if change is None:
            self._unjoined = None
        elif self._unjoined is not None and kind == HEADERS:
            self._unjoined.headers_in(change[0])
        elif self._unjoined is not None:
            self._unjoined.lines_in(*change)
        return rows

    def waiting(self, headers: pl.DataFrame, lines: pl.DataFrame) -> dict[str, int]:
        """What waits (`core.relational.waiting`) in these current headers and lines, the
        tables as `current` last read them."""
        if self._unjoined is None:
            if not self._waited or not {HEADERS, LINES} <= self._known.keys():
                self._waited = True
                return waiting(headers.lazy(), lines.lazy())
            self._unjoined = Unjoined(headers, lines)
        return dict(self._unjoined.counts)

    def _read(
        self, kind: str, entries: Sequence[FactEntry], stack: ExitStack
    ) -> tuple[pl.DataFrame, tuple[pl.DataFrame, pl.DataFrame] | None]:
        """`rows`, with what changed since the known rows: the rows read and the known rows
        they replaced (None: read whole)."""
        known = self._known.get(kind)
        top = max((e.seq for e in entries), default=0)
        if known is None or known.upto > top or any(is_marker(e) for e in entries):
            return self._latest(kind, entries, stack), None
        newer = [e for e in entries if e.seq > known.upto]
        if not newer:
            return known.rows, (known.rows.clear(), known.rows.clear())
        fresh = self._latest(kind, newer, stack)
        # A scan of the ids rather than a join: most batches replace nothing, and then the
        # known rows are kept as they are, uncopied (a chunk more each time, merged past MAX_CHUNKS).
        hit = known.rows.get_column(ROW_ID[kind]).is_in(fresh.get_column(ROW_ID[kind]).implode())
        replaced = known.rows.filter(hit)
        kept = known.rows.filter(~hit) if replaced.height else known.rows
        rows = pl.concat([kept, fresh], how="vertical")
        return (rows.rechunk() if rows.n_chunks() > MAX_CHUNKS else rows), (fresh, replaced)

    def _latest(self, kind: str, entries: Sequence[FactEntry], stack: ExitStack) -> pl.DataFrame:
        loaded = load_part(self.store, kind, entries, stack, self.prefix)
        return latest_rows(loaded.lazy(), ROW_ID[kind]).collect()


def current_tables(
    tables: KnownTables, read: Mapping[str, list[FactEntry]], stack: ExitStack
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The current headers and lines, from the tables as read."""
    headers = tables.current(HEADERS, read.get(HEADERS, []), stack)
    lines = tables.current(LINES, read.get(LINES, []), stack)
    return headers.lazy().drop("seq"), lines.lazy().drop("seq")


def changed_dates(
    tables: KnownTables, read: Mapping[str, list[FactEntry]], kind: str, batch_id: str, stack: ExitStack
) -> list[str]:
    """The dates whose KPIs a header or line batch changes, from the tables as read (its own
    entry among them). A header batch: its headers' dates, and the dates its orders had under
    the headers before it (an order whose date changed leaves the old one). A line batch: the
    current dates of its lines' orders, and of the orders those lines belonged to before."""
    entries = read.get(kind, [])
    mine = next(e for e in entries if e.batch_id == batch_id)
    rows = load_part(tables.store, kind, [mine], stack, tables.prefix)
    earlier = tables.rows(kind, [e for e in entries if e.seq < mine.seq], stack)
    if kind == HEADERS:
        before = earlier.join(rows.select("order_id"), on="order_id", how="semi")
        days = pl.concat([rows.get_column("order_date"), before.get_column("order_date")])
    else:
        moved = earlier.join(rows.select("line_id"), on="line_id", how="semi").get_column("order_id")
        orders = pl.concat([rows.get_column("order_id"), moved]).unique().implode()
        headers = tables.current(HEADERS, read.get(HEADERS, []), stack)
        days = headers.filter(pl.col("order_id").is_in(orders)).get_column("order_date")
    return sorted({d.isoformat() for d in days.unique().to_list()})


def product_dates(
    tables: KnownTables, read: Mapping[str, list[FactEntry]], products: Sequence[str], stack: ExitStack
) -> list[str]:
    """The dates of the counted orders with a line of one of `products`: what a catalog change
    recomputes at relational grain (lines have no date of their own to index)."""
    headers, lines = current_tables(tables, read, stack)
    sold = lines.filter(pl.col("product_id").is_in(pl.Series(list(products), dtype=pl.String).implode()))
    days = headers.join(sold.select("order_id").unique(), on="order_id", how="semi").select("order_date").unique()
    return sorted(d.isoformat() for d in days.collect().to_series().to_list())


def waiting_now(store: ObjectStore, ledger: Ledger, prefix: str = FACTS_PREFIX) -> dict[str, int]:
    """What does not count yet (`core.relational.waiting`), from the tables as they are now."""

    def count(read: Mapping[str, list[FactEntry]]) -> dict[str, int]:
        with ExitStack() as stack:
            tables = KnownTables(store, prefix)
            headers, lines = current_tables(tables, read, stack)
            return tables.waiting(headers.collect(), lines.collect())

    return with_tables(ledger, [HEADERS, LINES], count)
