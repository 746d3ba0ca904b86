"""The warehouse: where a batch's facts are kept, and how a busy date stays cheap to read.

Layout under the warehouse prefix (names from `facts.fact_key` and `catalogs.catalog_key`):
- `order_date=D/batch-<id>-<part>.parquet`: a date's own file of one slice of a batch;
- `bundles/batch-<id>-<slice>.parquet`: the small dates of a slice in one file (the ledger
  names it for each of its dates by a part number from `BUNDLE` on);
- `catalog/batch-<id>.parquet`: a catalog batch's rows (or a merged catalog entry's current
  ones, its history beside them in `catalog/history-<id>.parquet`);
- `batch-compact-<top>-…` / `batch-compact-<first>-<top>-…`: merged entries, named by the
  seqs whose rows they hold (`merged_id`); a retraction's rewrite of one
  adds `-x<seq>` (without that seq's rows): `compact-<first>-<top>-x<seq>`;
- `order_date=D/history-<merged id>-<part>.parquet`: the rows of the batches a merged entry
  holds that later ones replaced, with their seqs, and the seq of each current order (parts
  from `facts.HISTORY` on): with the current rows, what a retraction rewrites it from.
A date's entries may also hold a retraction's marker (`retracted-<id>`, no files), never merged.

Compaction is decided here: `Warehouse.compact` picks the dates (one read from more than
`compact_after` entries, and then the batch's others with more than half as many),
`merge_start` picks the entries of a date (tiers, each a few times the size of the next), and
`Warehouse._merge` writes, switches and deletes, each step safe to repeat after a kill -9.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import polars as pl

from orderpipe.adapters.workspace import Workspace
from orderpipe.catalogs import CATALOG, catalog_history, catalog_history_key, catalog_key, write_catalog_merge
from orderpipe.core.shape import InputShape
from orderpipe.errors import InfrastructureError
from orderpipe.facts import (
    BUNDLE,
    HISTORY,
    StagedFacts,
    bundle_of,
    fact_key,
    history_of,
    history_rows,
    is_marker,
    latest_of,
    publish_facts,
    write_compacted,
    write_history,
)
from orderpipe.faults import checkpoint
from orderpipe.logs import log_event
from orderpipe.outcomes import reason_of
from orderpipe.ports import FactEntry, Ledger, ObjectStore
from orderpipe.relational import TABLE_KEYS, part_key, write_part_merge

__all__ = ["COMPACT_AFTER", "Warehouse", "merge_start", "merged_id", "merged_range"]

#: A date read from more facts entries than this is compacted: its oldest entries become one.
COMPACT_AFTER = 8
#: At most this many entries are merged at once (a DynamoDB transaction holds 100 items).
COMPACT_MAX = 90
#: Compaction merges an entry with the newer ones once those hold 1/FOLD_SHARE of its bytes;
#: until then it leaves it (see `merge_start`).
FOLD_SHARE = 2
#: Facts files no entry names are deleted once this old: a staged batch commits long before.
STRAY_FACTS_AGE = 6 * 3600


def merge_start(sizes: Sequence[int], last_two: bool = True) -> int:
    """Where a merge starts among entries of these sizes (oldest first): at the oldest entry
    whose newer entries hold at least 1/FOLD_SHARE of its bytes; the last two when none does
    (`last_two=False`: none, `len(sizes)`).

    So a date's entries form tiers, each a few times the size of the next: the oldest is a
    busy date's big current state, then the merges of fewer and fewer batches. A batch's rows
    are rewritten once per tier they rise through, and a big tier only once the ones after it
    have grown to a share of it. Rewriting everything after the oldest entry at every merge
    made each file's cost grow with the rows merged since the last full merge.
    """
    for i in range(len(sizes) - 1):
        if FOLD_SHARE * sum(sizes[i + 1 :]) >= sizes[i]:
            return i
    return max(len(sizes) - 2, 0) if last_two else len(sizes)


def merged_id(covered: Sequence[FactEntry], entries: Sequence[FactEntry]) -> str:
    """The name of the merge of `covered` among a date's `entries`: it says exactly which
    batches' rows it holds, so two processes (or a retry) writing one name write the same rows."""
    top = covered[-1].seq
    if covered[0] == entries[0]:  # every row of the date up to `top`
        return f"compact-{top:012d}"
    # the rows of seqs `first`..`top` only
    return f"compact-{_first_seq(covered[0]):012d}-{top:012d}"


def _first_seq(entry: FactEntry) -> int:
    """The lowest seq whose rows an entry holds: a batch's own; a merged entry's from its name
    (`compact-<first>-<top>`; `compact-<top>` holds every seq up to top: 0)."""
    if not entry.batch_id.startswith("compact-"):
        return entry.seq
    first, dash, _ = entry.batch_id.removeprefix("compact-").partition("-")
    return int(first) if dash else 0


def merged_range(entry: FactEntry) -> tuple[int, int]:
    """The lowest and highest seq whose rows a merged entry holds (the lowest from its name)."""
    return _first_seq(entry), entry.seq


class Warehouse:
    """A batch's facts files in, and a busy date's entries merged and their files deleted."""

    def __init__(
        self,
        store: ObjectStore,
        ledger: Ledger,
        shape: InputShape,
        prefix: str,
        workspace: Workspace,
        rows_per_part: int,
        compact_after: int = COMPACT_AFTER,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.shape = shape
        self.prefix = prefix
        self._workspace = workspace
        self.rows_per_part = rows_per_part
        self.compact_after = compact_after

    # -- a batch's facts in -------------------------------------------------------------------
    def publish(self, facts: StagedFacts, batch_id: str, on_file: Callable[[int, int], None]) -> dict[str, list[int]]:
        """Store a batch's facts files under names derived from the batch (a retry overwrites
        them); they stay invisible until the ledger commit names them. Returns each date's parts."""

        def part_written() -> None:
            checkpoint("facts-part")

        return publish_facts(facts, batch_id, self.store, part_written, self.prefix, on_file=on_file)

    def publish_table(self, key: str, rows_file: Path, batch_id: str) -> None:
        """Store a catalog, header or line batch's rows (under the ledger `key` it is committed
        under) as its one file."""
        if key == CATALOG:
            self.store.put_file(rows_file, catalog_key(batch_id, self.prefix))
            checkpoint("catalog-staged")
        else:
            self.store.put_file(rows_file, part_key(key, batch_id, self.prefix))
            checkpoint("part-staged")

    # -- compaction ---------------------------------------------------------------------------
    def compact_quietly(self, dates: Sequence[str]) -> None:
        """Compaction only saves future work: its failure must never fail the batch that was
        just counted. It is logged, and the next batch on the date tries again."""
        try:
            self.compact(dates)
        except Exception as exc:
            log_event(
                "compact.skipped",
                logging.WARNING,
                dates=list(dates),
                error=reason_of(exc),
                hint="nothing is lost; the next batch on these dates compacts them",
            )

    def compact(self, dates: Sequence[str]) -> list[str]:
        """Once one of `dates` is read from more than `compact_after` facts entries, merge
        entries of it, and of those of `dates` read from more than half as many, into one per
        date (the latest row per order id, in commit order; see `to_merge`), so the cost of a
        file never grows with the number of earlier batches; returns the dates compacted.

        Crash-safe: the merged files are written under a name derived from what they replace
        (a retry overwrites them), the ledger switches to them in one transaction that fails if
        another process compacted first, and only then are the replaced files deleted. A crash
        in between leaves files no entry names; the next compaction of the date deletes those
        once they are old enough that no writer can still be about to commit them.
        """
        compacted = []
        released: set[tuple[str, int]] = set()
        for key in TABLE_KEYS:
            if key in dates:
                compacted += self._compact_table(key)
        dates = [d for d in dates if d not in TABLE_KEYS]
        # A retraction's marks hold no rows: they are never merged, and count for nothing here.
        read = {
            d: [e for e in es if not is_marker(e)] for d, es in self.ledger.fact_entries(sorted(set(dates))).items()
        }
        # Once one date is due, the others with half as many entries are merged too: the
        # dates a stream of batches shares stay in step, and merging is one event every few
        # batches instead of one date or another at nearly every batch.
        if all(len(entries) <= self.compact_after for entries in read.values()):
            return compacted
        for order_date, entries in read.items():
            if len(entries) > max(1, self.compact_after // 2) and self._merge(order_date, entries, released):
                compacted.append(order_date)
        if released:
            self._delete_unnamed_bundles(released)
        if compacted:
            self._delete_stray_bundles()
        return compacted

    def to_merge(self, order_date: str, entries: list[FactEntry]) -> list[FactEntry]:
        """The entries of a date to merge: from `merge_start` of their sizes on, at most
        COMPACT_MAX in all."""
        if self.compact_after < 2:  # nothing to leave: one entry is the most there may be
            return entries[:COMPACT_MAX]
        start = merge_start([self._bytes(order_date, [entry]) for entry in entries])
        return entries[start : start + COMPACT_MAX]

    def _merge(self, order_date: str, entries: list[FactEntry], released: set[tuple[str, int]]) -> bool:
        """Merge entries of one date into one; False when another process compacted them first.
        The bundles it replaced are added to `released`: they hold other dates too, so they go
        only once no entry names them."""
        covered = self.to_merge(order_date, entries)
        merged = merged_id(covered, entries)
        try:
            with ExitStack() as stack:
                parts = self.write_merged(
                    history_rows(self.store, order_date, covered, stack, self.prefix), order_date, merged
                )
        except (InfrastructureError, OSError, pl.exceptions.PolarsError):
            now = {e.batch_id for e in self.ledger.fact_entries([order_date])[order_date]}
            if {e.batch_id for e in covered} <= now:
                raise  # not another compaction under our feet: a real failure
            return False  # another process compacted (and deleted) these entries first
        checkpoint("compact-written")
        if not self.ledger.compact(order_date, covered, FactEntry(order_date, merged, covered[-1].seq, tuple(parts))):
            return False  # another process compacted this date first
        checkpoint("compact-switched")
        self.delete_replaced(order_date, covered, released)
        checkpoint("compact-cleaned")
        self._delete_strays(order_date)
        return True

    def write_merged(self, rows: pl.LazyFrame, order_date: str, merged: str) -> list[int]:
        """Store `rows` (every row of some batches of a date, with their seqs) as the merged entry
        `merged`: the current ones (the latest seq's per order) and, for a retraction to come,
        the rest with their seqs and the current orders' seqs (`facts.history_of`, in parts from
        `facts.HISTORY` on). Returns its parts."""
        every = rows.collect()
        current = every.lazy().filter(latest_of())
        parts = write_compacted(current, order_date, merged, self.store, self.scratch, self.rows_per_part, self.prefix)
        return parts + write_history(
            history_of(every).lazy(), order_date, merged, self.store, self.scratch, self.rows_per_part, self.prefix
        )

    def delete_replaced(self, order_date: str, replaced: Sequence[FactEntry], released: set[tuple[str, int]]) -> None:
        """Delete the files of entries a switch replaced; a bundle holds other dates too, so it
        is added to `released` and freed once no entry names it."""
        for entry in replaced:
            for part in entry.parts:
                if BUNDLE <= part < HISTORY:
                    released.add((entry.batch_id, part))
                else:
                    self.store.delete(fact_key(order_date, entry.batch_id, part, self.prefix))

    @property
    def scratch(self) -> Path:
        """Where merged files are written before they are stored: this process's own folder."""
        return self._workspace.path

    def _bytes(self, order_date: str, entries: Sequence[FactEntry]) -> int:
        """The size of the entries' facts files (a bundle counts whole; a gone file as 0)."""
        keys = {fact_key(order_date, e.batch_id, p, self.prefix) for e in entries for p in e.parts if p < HISTORY}
        return sum(stat.size for stat in map(self.store.stat, keys) if stat is not None)

    def _compact_table(self, key: str) -> list[str]:
        """Merge the oldest entries of a table (the catalog, or at relational grain the headers
        or the lines) into one holding the latest row per product (order, line) among them, so
        reading a table never costs more with the number of its batches. Only entries of
        finished batches are merged: an unfinished one still needs its own rows, and the rows
        before it, to find what it changed. Crash-safe as `compact`: a name derived from what
        it replaces, one ledger switch, deletion last."""
        entries = [e for e in self.ledger.fact_entries([key])[key] if not is_marker(e)]
        if len(entries) <= self.compact_after:
            return []
        ready: list[FactEntry] = []
        for entry in entries[:COMPACT_MAX] if key == CATALOG else entries:
            record = None if entry.batch_id.startswith("compact-") else self.ledger.get(entry.batch_id)
            if record is not None and not record.done:
                break
            ready.append(entry)
        covered = ready if key == CATALOG else self._table_tier(key, entries, len(ready))
        if len(covered) < 2:
            return []
        top = covered[-1].seq
        merged = merged_id(covered, entries)
        try:
            if key == CATALOG:
                with ExitStack() as stack:
                    history = catalog_history(self.store, covered, stack, self.prefix)
                parts = write_catalog_merge(history, merged, self.store, self.scratch, self.prefix)
            else:
                parts = write_part_merge(self.store, key, covered, merged, self.scratch, self.prefix)
        except (InfrastructureError, OSError, pl.exceptions.PolarsError):
            now = {e.batch_id for e in self.ledger.fact_entries([key])[key]}
            if {e.batch_id for e in covered} <= now:
                raise  # not another compaction under our feet: a real failure
            return []  # another process merged (and deleted) these entries first
        checkpoint("compact-written")
        if not self.ledger.compact(key, covered, FactEntry(key, merged, top, parts)):
            return []  # another process compacted the table first
        checkpoint("compact-switched")
        if key == CATALOG:
            self.delete_catalog_files(covered)
        else:
            for entry in covered:
                self.store.delete(part_key(key, entry.batch_id, self.prefix))
        checkpoint("compact-cleaned")
        self._delete_stray_tables(key)
        return [key]

    def _table_tier(self, key: str, entries: list[FactEntry], ready: int) -> list[FactEntry]:
        """The header (line) entries to merge, among the first `ready` (those before the first
        unfinished batch): from `merge_start` of their sizes on, as a date's, so the big merge
        of every earlier batch is rewritten only once the newer ones have grown to a share of
        it, not at every merge. When no entry has, the last two are merged only if no batch is
        unfinished: else they would be the big merge and a small batch, and the next merge,
        once that batch is done, would have one more to take. Any run of consecutive entries
        may be merged: its rows take the highest seq among them, still below every entry after
        it, above every entry before."""
        sizes = [self._table_bytes(key, entry) for entry in entries[:ready]]
        start = merge_start(sizes, last_two=ready == len(entries))
        return entries[start : min(ready, start + COMPACT_MAX)]

    def _table_bytes(self, key: str, entry: FactEntry) -> int:
        stat = self.store.stat(part_key(key, entry.batch_id, self.prefix))
        return 0 if stat is None else stat.size

    def _delete_stray_tables(self, key: str) -> None:
        """A table's files no entry names that are older than any run: a merge written but never
        switched (a kill in between, or a compaction that lost the race), the replaced files a
        kill left, a batch that never committed."""
        entries = self.ledger.fact_entries([key])[key]
        if key == CATALOG:
            named = {catalog_key(e.batch_id, self.prefix) for e in entries}
            named |= {catalog_history_key(e.batch_id, self.prefix) for e in entries if HISTORY in e.parts}
        else:
            named = {part_key(key, e.batch_id, self.prefix) for e in entries}
        cutoff = time.time() - STRAY_FACTS_AGE
        for stray in self.store.list(f"{self.prefix}{key}/"):
            stat = self.store.stat(stray) if stray not in named else None
            if stat is not None and stat.modified < cutoff:
                self.store.delete(stray)

    def delete_catalog_files(self, replaced: Sequence[FactEntry]) -> None:
        """Delete the files of catalog entries a switch replaced (a merge's history too)."""
        for entry in replaced:
            self.store.delete(catalog_key(entry.batch_id, self.prefix))
            if HISTORY in entry.parts:
                self.store.delete(catalog_history_key(entry.batch_id, self.prefix))

    # -- files no entry names -------------------------------------------------------------------
    def _named(self, batch_id: str) -> set[int]:
        """The parts of `batch_id` that some entry of its dates still names."""
        record = self.ledger.get(batch_id)
        if record is None:
            return set()
        entries = self.ledger.fact_entries(list(record.dates))
        return {p for es in entries.values() for e in es if e.batch_id == batch_id for p in e.parts}

    def free_bundles(self, bundles: set[tuple[str, int]]) -> None:
        """Delete the bundles among `bundles` that no entry names any more."""
        self._delete_unnamed_bundles(bundles)

    def _delete_unnamed_bundles(self, bundles: set[tuple[str, int]]) -> None:
        """Delete the bundles no entry names any more. Checked after this process's own switch,
        so of processes compacting a bundle's dates at once, the last one to switch sees no
        name left and deletes it."""
        for batch_id in sorted({b for b, _ in bundles}):
            named = self._named(batch_id)
            for part in sorted(p for b, p in bundles if b == batch_id and p not in named):
                self.store.delete(fact_key("", batch_id, part, self.prefix))
        checkpoint("compact-bundles-cleaned")

    def _delete_stray_bundles(self) -> None:
        """Bundles no entry names that are older than any run: a crash between a switch and
        the bundle's deletion, or a batch that never committed."""
        cutoff = time.time() - STRAY_FACTS_AGE
        folder = fact_key("", "", BUNDLE, self.prefix).rsplit("/", 1)[0] + "/"
        named: dict[str, set[int]] = {}
        for key in self.store.list(folder):
            bundle = bundle_of(key, self.prefix)
            if bundle is None:
                continue
            stat = self.store.stat(key)
            if stat is None or stat.modified >= cutoff:
                continue
            batch_id, part = bundle
            if batch_id not in named:
                named[batch_id] = self._named(batch_id)
            if part not in named[batch_id]:
                self.store.delete(key)

    def _delete_strays(self, order_date: str) -> None:
        """Facts files of the date that no entry names and that are older than any run."""
        named = {
            fact_key(order_date, e.batch_id, part, self.prefix)
            for e in self.ledger.fact_entries([order_date])[order_date]
            for part in e.parts
        }
        cutoff = time.time() - STRAY_FACTS_AGE
        for key in self.store.list(fact_key(order_date, "", 0, self.prefix).rsplit("/", 1)[0] + "/"):
            stat = self.store.stat(key) if key not in named else None
            if stat is not None and stat.modified < cutoff:
                self.store.delete(key)
