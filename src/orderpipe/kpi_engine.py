"""The KPI engine: the KPIs of dates, recomputed from every current order of each date.

Nothing stored is ever incremented: each write is a date's whole KPIs, under a version (the
highest seq read for the date, the catalog's included) that a slower, staler recompute cannot
beat. The current orders of a date are the rows of every committed facts entry of it, the
latest seq winning per order id (per order's lines at line grain).

A recompute takes one of three paths to the same KPIs (`KpiEngine._kpis_of`):
- order grain without a catalog, in memory: from sums (`KpiSums`), which dates this process
  already knows adjust by the rows a batch replaced and added (`_from_sums`);
- otherwise the current orders (or lines) themselves, selected once in memory when small
  enough, then the KPI queries (`_from_rows`);
- with a catalog, the same rows with each line's category resolved from the catalog read in
  the same ledger read as the facts (also `_from_rows`).

Between files a process keeps what it selected (`KnownOrders`, at most `KNOWN_ROWS` rows), so
the next batch on a busy date reads only the facts committed since; at relational grain it
keeps the header and line tables it read (`relational.KnownTables`) the same way.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import polars as pl

from orderpipe.catalogs import CATALOG, catalog_changes, current_catalog
from orderpipe.core.catalog import resolve_categories
from orderpipe.core.kpis import (
    DateKpis,
    KpiSums,
    adjusted,
    compute_kpis,
    current_orders,
    customer_queries,
    kpi_sums,
    kpis_from_sums,
)
from orderpipe.core.lines import compute_line_kpis, current_lines
from orderpipe.core.relational import counted_lines
from orderpipe.core.shape import InputShape
from orderpipe.errors import InfrastructureError
from orderpipe.facts import is_marker, load_facts, staged_facts
from orderpipe.faults import checkpoint
from orderpipe.ingest import Inspection
from orderpipe.ports import BatchRecord, FactEntry, KpiStore, Ledger, ObjectStore
from orderpipe.relational import (
    HEADERS,
    LINES,
    TABLE_KEYS,
    KnownTables,
    changed_dates,
    current_tables,
    product_dates,
    read_tables,
    with_tables,
)

__all__ = ["KnownOrders", "KpiEngine", "with_order_keys"]

#: Up to this many rows, the current orders of the dates being recomputed are selected once, in
#: memory, rather than again by each KPI query (the latest-row selection is most of the cost).
CURRENT_IN_MEMORY_ROWS = 1_000_000
#: Current orders this process keeps between recomputes (~100 bytes a row): a small batch on a
#: busy date then reads only its own facts, not the date's whole current state again.
KNOWN_ROWS = 1_000_000
#: The known current orders gain a chunk a batch: past this many, they are copied into one.
MAX_CHUNKS = 16
#: The key of an order (all its lines, at line grain) among a date's current orders.
ORDER = ["order_date", "order_id"]
#: A column of the known current orders: the hash of `ORDER`, to find replaced rows quickly.
ORDER_KEY = "order_key"
#: A read whose facts files vanished (a compaction under our feet) is tried this many times.
READ_ATTEMPTS = 5

Entries = dict[str, list[FactEntry]]


@dataclass(frozen=True, slots=True)
class KnownOrders:
    """The current orders of one date with every batch up to seq `upto` counted: the rows of
    `rows` on that date. The frame, its sums (order grain) and `dates` (the dates it holds)
    are shared by the dates selected together, uncopied."""

    upto: int
    rows: pl.DataFrame
    sums: KpiSums | None
    dates: frozenset[str]

    def of(self, order_date: str) -> pl.LazyFrame:
        return self.rows.lazy().filter(pl.col("order_date") == dt.date.fromisoformat(order_date))


@dataclass(frozen=True, slots=True)
class _Advanced:
    """Known current orders after newer entries, and their sums when kept."""

    rows: pl.LazyFrame
    sums: KpiSums | None


def with_order_keys(rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` with the `ORDER_KEY` column (a hash: rows with equal hashes may differ in key)."""
    return rows.with_columns(pl.struct(ORDER).hash().alias(ORDER_KEY))


class KpiEngine:
    """Recomputes and stores the KPIs of dates; keeps the current orders it selected."""

    def __init__(self, store: ObjectStore, ledger: Ledger, kpis: KpiStore, shape: InputShape, warehouse: str) -> None:
        self.store = store
        self.ledger = ledger
        self.kpis = kpis
        self.shape = shape
        self.warehouse = warehouse  # the prefix of the facts
        #: date -> its current orders as of a seq, the dates used longest ago first.
        self.known: OrderedDict[str, KnownOrders] = OrderedDict()
        #: Relational grain: what waited as of the last recompute (`core.relational.waiting`).
        self.unjoined: dict[str, int] | None = None
        #: Relational grain: the header and line tables as last read.
        self.tables = KnownTables(store, warehouse)

    def dates_of(self, batch: BatchRecord) -> list[str]:
        """The dates whose KPIs a batch changes: its own dates, or for a catalog batch the dates
        on which a product it changed sold (found in the ledger's product index, so no other
        date is read)."""
        table = next((key for key in (HEADERS, LINES) if key in batch.dates), None)
        if table is not None:
            return self._table_dates(table, batch)
        if CATALOG not in batch.dates:
            return list(batch.dates)
        for attempt in itertools.count(1):
            entries = self.ledger.fact_entries([CATALOG])[CATALOG]
            if not any(e.batch_id == batch.batch_id for e in entries):
                return []  # merged into a compacted entry: only done batches are, so its dates were recomputed
            try:
                with ExitStack() as stack:
                    changed = catalog_changes(self.store, entries, batch.batch_id, stack, self.warehouse)
                break
            except (InfrastructureError, OSError, pl.exceptions.PolarsError):
                if attempt >= READ_ATTEMPTS or self.ledger.fact_entries([CATALOG])[CATALOG] == entries:
                    raise  # not a compaction of earlier catalog entries under our feet
        return self.product_dates(changed) if changed else []

    def _table_dates(self, table: str, batch: BatchRecord) -> list[str]:
        """The dates a header or line batch changes (`relational.changed_dates`)."""

        def changed(read: Mapping[str, list[FactEntry]]) -> list[str]:
            if not any(e.batch_id == batch.batch_id for e in read[table]):
                return []  # merged into a compacted entry: only done batches are, so its dates were recomputed
            with ExitStack() as stack:
                return changed_dates(self.tables, read, table, batch.batch_id, stack)

        return with_tables(self.ledger, [HEADERS, LINES], changed)

    def product_dates(self, products: Sequence[str]) -> list[str]:
        """The dates on which any of `products` sold: the ledger's index, or at relational grain
        (lines have no dates of their own to index) the dates of the counted orders with a line
        of one of them."""
        if not self.shape.relational:
            return self.ledger.product_dates(products)

        def sold(read: Mapping[str, list[FactEntry]]) -> list[str]:
            with ExitStack() as stack:
                return product_dates(self.tables, read, products, stack)

        return with_tables(self.ledger, [HEADERS, LINES], sold)

    def recompute(self, dates: Sequence[str], staged: Inspection | None = None) -> list[str]:
        """See `_recompute`. The cyclic garbage collector is paused meanwhile: thousands of dates
        make tens of thousands of KPI objects (no cycles among them), and the full collections
        they trigger walk every object of the process (measured: 0.1-0.5 s of the 1 s a file of
        3,650 dates spends here)."""
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._recompute(dates, staged)
        finally:
            if paused:
                gc.enable()

    def _recompute(self, dates: Sequence[str], staged: Inspection | None = None) -> list[str]:
        """Recompute and store the KPIs of `dates`; returns the dates a newer version kept.

        A compaction may remove the files of entries read just before it: the read is then
        simply done again. `staged`: the batch just committed, whose stage still holds its rows;
        the dates it alone holds are computed from that one local file instead of its facts
        objects.
        """
        dates = [d for d in dates if d not in TABLE_KEYS]
        if self.shape.relational:  # (even with no date to recompute: what waits is told)
            return self._recompute_relational(sorted(set(dates)))
        if not dates:
            return []
        # With the catalog on, the catalog's entries are read in the same consistent read as the
        # dates' facts: the KPIs then cover both, and so does their version.
        keys = ([CATALOG] if self.shape.catalog else []) + sorted(set(dates))
        read = self._entries(keys)
        for attempt in itertools.count(1):
            try:
                results = self._kpis_of(read, staged)
                break
            except (InfrastructureError, OSError, pl.exceptions.PolarsError):
                again = self._entries(keys)
                if again == read or attempt >= READ_ATTEMPTS:
                    raise  # not a compaction under our feet: a real failure
                read = again
        checkpoint("before-kpi-write")
        return self.kpis.write(versioned(read, results))

    def _recompute_relational(self, dates: list[str]) -> list[str]:
        """Relational grain: the dates' KPIs from the three tables read as at one instant
        (`relational_kpis`); the version is the highest seq among them (no date holds entries
        of its own)."""
        read, results = with_tables(
            self.ledger, [CATALOG, HEADERS, LINES], lambda read: (read, self.relational_kpis(read, dates))
        )
        if not dates:
            return []
        checkpoint("before-kpi-write")
        return self.kpis.write(versioned({**read, **{d: [] for d in dates}}, results))

    def relational_kpis(self, read: Mapping[str, list[FactEntry]], dates: Sequence[str]) -> dict[str, DateKpis]:
        """The KPIs of `dates` from the current headers and lines of `read` joined, each line's
        category from its catalog; what waits is kept in `unjoined`."""
        with ExitStack() as stack:
            headers, lines = current_tables(self.tables, read, stack)
            self.unjoined = self.tables.waiting(headers.collect(), lines.collect())
            if not dates:
                return {}
            products = current_catalog(self.store, read.get(CATALOG, []), stack, self.warehouse)
            rows = resolve_categories(counted_lines(headers, lines, dates), products.lazy())
            return compute_line_kpis(rows, dates)

    def _kpis_of(self, read: Entries, staged: Inspection | None) -> dict[str, DateKpis]:
        """The KPIs of the dates of one ledger read. Dates whose current orders this process
        selected before are advanced by the newer entries only (`_advance`); the dates `staged`
        alone holds are read from its stage; every other date from its facts."""
        entries = {d: e for d, e in read.items() if d != CATALOG}
        shared = {d for d, e in entries.items() if len(e) > 1}
        own: set[str] = set()
        if staged is not None and staged.facts is not None:
            own = {d for d, e in entries.items() if [x.batch_id for x in e] == [staged.batch_id]}
        known, newer = self._known_and_newer(entries, own)
        with ExitStack() as stack:
            others = {d: e for d, e in entries.items() if d not in own and d not in known}
            facts = load_facts(self.store, others, stack, self.warehouse)
            if own:
                assert staged is not None and staged.facts is not None
                facts = pl.concat([facts, staged_facts(staged.facts, own)])
            # Rows before de-duplication (cheap: Parquet metadata, or facts in memory) bound the
            # memory of counting distinct customers.
            rows = facts.select(pl.len()).collect().item() + sum(
                {id(k.rows): k.rows.height for k in known.values()}.values()
            )
            latest = current_lines if self.shape.lines else current_orders
            current = latest(facts, shared)
            # Order grain without a catalog, in memory: the KPIs come from sums, which known
            # dates adjust by the rows a batch replaced and added.
            summed = rows <= CURRENT_IN_MEMORY_ROWS and not self.shape.lines and not self.shape.catalog
            advanced = self._advance(known, newer, stack, summed) if known else None
            if summed:
                return self._from_sums(current if others or own else None, advanced, entries)
            return self._from_rows(current, advanced, rows, entries, read.get(CATALOG, []), stack)

    def _from_sums(
        self, current: pl.LazyFrame | None, advanced: _Advanced | None, entries: Entries
    ) -> dict[str, DateKpis]:
        """Order grain without a catalog: the KPIs of the sums of the dates read from facts
        (`current`) and of the known dates' adjusted sums; both are kept for the next time."""
        parts = []
        if current is not None:
            selected = with_order_keys(current.collect())
            parts.append((selected, kpi_sums(selected.lazy())))
        if advanced is not None:
            assert advanced.sums is not None
            parts.append((advanced.rows.collect(), advanced.sums))
        selected = pl.concat([rows for rows, _ in parts])
        if selected.n_chunks() > MAX_CHUNKS:
            selected = selected.rechunk()
        sums = KpiSums.joined([s for _, s in parts])
        results = kpis_from_sums(sums, list(entries))
        self._remember(selected, entries, sums)
        return results

    def _from_rows(
        self,
        current: pl.LazyFrame,
        advanced: _Advanced | None,
        rows: int,
        entries: Entries,
        catalog: list[FactEntry],
        stack: ExitStack,
    ) -> dict[str, DateKpis]:
        """Line grain, a catalog, or too many rows to sum in memory: the KPI queries over the
        current orders (selected once when they fit in memory, and then kept)."""
        if advanced is not None:
            current = pl.concat([current, advanced.rows])
        selected = None
        if rows <= CURRENT_IN_MEMORY_ROWS:  # read by several queries: selected once
            selected = current.collect()
            current = selected.lazy()
        if self.shape.catalog:  # each line's category: its product's in the catalog read
            # (after the selection: what is remembered is the facts, never a catalog's view)
            products = current_catalog(self.store, catalog, stack, self.warehouse)
            current = resolve_categories(current, products.lazy())
        if self.shape.lines:
            results = compute_line_kpis(current, list(entries))
        else:
            results = compute_kpis(current, list(entries), customer_queries(rows))
        if selected is not None:
            self._remember(selected, entries)
        return results

    def preview(self, read: Entries) -> dict[str, DateKpis]:
        """The KPIs of the dates of `read`, a ledger read as it would be (a retraction's
        `--dry-run`): stored nowhere, and nothing of it is kept for later recomputes (at
        relational grain the header and line tables read are the real ones, kept as any read)."""
        kept, self.known, unjoined = self.known, OrderedDict(), self.unjoined
        try:
            if self.shape.relational:  # the tables as they are, the catalog as `read` has it
                tables = read_tables(self.ledger, [HEADERS, LINES])
                dates = [d for d in read if d not in TABLE_KEYS]
                return self.relational_kpis({**tables, CATALOG: read.get(CATALOG, [])}, dates)
            return self._kpis_of(read, None)
        finally:
            self.known, self.unjoined = kept, unjoined

    def _known_and_newer(self, entries: Entries, own: set[str]) -> tuple[dict[str, KnownOrders], Entries]:
        """The dates whose current orders this process knows as of an earlier seq, with the
        entries of higher seqs. A merged entry among them may also hold batches already known:
        its rows are the latest of their orders up to its seq all the same."""
        known: dict[str, KnownOrders] = {}
        newer: Entries = {}
        for order_date, date_entries in entries.items():
            state = self.known.get(order_date)
            if state is None or order_date in own:
                continue
            if any(is_marker(e) and e.seq > state.upto for e in date_entries):
                continue  # a batch was retracted since: its rows may be among the known ones

            known[order_date] = state
            newer[order_date] = [e for e in date_entries if e.seq > state.upto]
        return known, newer

    def _advance(self, known: dict[str, KnownOrders], newer: Entries, stack: ExitStack, summed: bool) -> _Advanced:
        """The known current orders after the newer entries: an order (every line of it) in
        them replaces the known one; only their own facts are read. `summed`: the known rows
        are in memory with their order keys, and their sums are adjusted by the rows replaced
        and added."""
        fresh = load_facts(self.store, {d: e for d, e in newer.items() if e}, stack, self.warehouse)
        latest = current_lines if self.shape.lines else current_orders
        gained = latest(fresh, {d for d, e in newer.items() if len(e) > 1})
        groups: dict[int, tuple[KnownOrders, list[str]]] = {}  # per shared frame: one filter
        for order_date, state in known.items():
            groups.setdefault(id(state.rows), (state, []))[1].append(order_date)
        parts: list[tuple[pl.DataFrame, KpiSums | None]] = []
        for state, dates in groups.values():
            days = pl.Series([dt.date.fromisoformat(d) for d in dates], dtype=pl.Date)
            if state.dates <= set(dates):  # every date of the frame: nothing to filter
                parts.append((state.rows, state.sums))
            else:
                on_days = pl.col("order_date").is_in(days.implode())
                parts.append((state.rows.filter(on_days), state.sums and state.sums.of(days)))
        if not summed:
            keys = gained.select(ORDER)
            # (rows kept for sums carry their hashed keys: not a facts column)
            kept = [rows.lazy().select(pl.exclude(ORDER_KEY)).join(keys, on=ORDER, how="anti") for rows, _ in parts]
            return _Advanced(pl.concat([*kept, gained]), None)
        return _replaced_in_sums(parts, with_order_keys(gained.collect()))

    def _remember(self, current: pl.DataFrame, entries: Entries, sums: KpiSums | None = None) -> None:
        """Keep the current orders just selected (and their sums), per date, as of the highest
        seq read: every batch up to it is counted in them, since commits take seqs in commit
        order."""
        for order_date in entries:
            self.known.pop(order_date, None)
        held = current if sums is None else sums.categories  # the dates with orders, fewer rows
        present = frozenset(d.isoformat() for d in held.get_column("order_date").unique())
        for order_date in sorted(present & entries.keys()):
            self.known[order_date] = KnownOrders(max(e.seq for e in entries[order_date]), current, sums, present)
        frames = {id(s.rows): s.rows.height for s in self.known.values()}
        while sum(frames.values()) > KNOWN_ROWS:  # the dates used longest ago go first
            self.known.popitem(last=False)
            frames = {id(s.rows): s.rows.height for s in self.known.values()}

    def _entries(self, keys: list[str]) -> Entries:
        """The ledger's entries of `keys`, the catalog's among them as they were when the dates'
        were read. A ledger read per key (DynamoDB: one query each) is consistent per key only:
        the catalog is read first and once more after the dates, and the read repeated while a
        catalog batch commits in between. Then a date's version (its highest seq, with the
        catalog's) still means one set of batches."""
        for _ in range(20):
            read = self.ledger.fact_entries(keys)
            if CATALOG not in read or self.ledger.fact_entries([CATALOG])[CATALOG] == read[CATALOG]:
                return read
        raise InfrastructureError("catalog batches kept committing while the KPIs were read; it will be read again")


def _replaced_in_sums(parts: list[tuple[pl.DataFrame, KpiSums | None]], gained: pl.DataFrame) -> _Advanced:
    """The known rows (with their order keys and sums) after the `gained` rows: each known row
    of an order in `gained` is replaced, and the sums lose it and gain the new one."""
    hashes = gained.get_column(ORDER_KEY).implode()
    kept_rows: list[pl.DataFrame] = []
    lost: list[pl.DataFrame] = []
    sums: list[KpiSums] = []
    for rows, state_sums in parts:
        assert state_sums is not None
        # A filter on the hashed key, not a join: a join is slow on a frame of many chunks, and
        # the known rows gain a chunk a batch. An equal hash is checked to be an equal key.
        replaced = rows.get_column(ORDER_KEY).is_in(hashes)
        lost_rows = rows.filter(replaced)
        if lost_rows.is_empty():  # only new orders: the known rows stay as they are, uncopied
            kept_rows.append(rows)
        elif lost_rows.join(gained, on=ORDER, how="semi").height == lost_rows.height:
            kept_rows.append(rows.filter(~replaced))
        else:  # two keys with one hash: the exact joins
            lost_rows = rows.join(gained, on=ORDER, how="semi")
            kept_rows.append(rows.join(gained, on=ORDER, how="anti"))
        lost.append(lost_rows)
        sums.append(state_sums)
    after = pl.concat([*kept_rows, gained])
    return _Advanced(after.lazy(), adjusted(KpiSums.joined(sums), pl.concat(lost).lazy(), gained.lazy()))


def versioned(read: Entries, results: dict[str, DateKpis]) -> dict[str, tuple[int, DateKpis]]:
    """Each date's KPIs with its version: the highest seq among its entries and the catalog's.
    Every seq is taken from one sequence in commit order, so a later read never has a lower
    maximum, compaction keeps it, and equal versions mean the same batches."""
    used = max((e.seq for key in TABLE_KEYS for e in read.get(key, [])), default=0)
    entries = {d: e for d, e in read.items() if d not in TABLE_KEYS}
    versions = {d: max((e.seq for e in entries[d]), default=used) for d in entries}
    return {d: (max(v, used), results[d]) for d, v in versions.items()}
