"""Retracting an accepted batch: its rows stop counting, and every date it touched is recomputed.

What counts is decided where it always is: a date's KPIs are those of its ledger entries, the
latest seq winning per order (`kpi_engine.py`). A retraction changes the entries, never the
rule: for each date the batch touched (or, for a catalog batch, the catalog), one ledger
transaction (`Ledger.retract_entries`)
- takes the batch's own entry out, so an order it had corrected counts again as the batch
  before it had it; or, when its rows were merged into a compacted entry, replaces that entry
  by one rewritten from the entry's history without the batch's rows (`facts.HISTORY`: a merged
  entry keeps every row of the batches it merged, with their seqs);
- adds a marker entry (`retracted-<batch id>`, no rows) under the next seq of the commit
  sequence: the date's KPI version rises past any recompute that read the batch's rows, and a
  process that kept the date's current orders knows to read them again.

Each step is safe to repeat after a kill -9, and the same command finishes the work: the ledger
says which dates are switched (their marker), a rewritten entry's name derives from what it
replaces, and the batch becomes `retracted`, with its run recorded, in one transaction that
only one process wins. The batch stays in the ledger as done, so its bytes arriving again are a
duplicate; `orderpipe replay BATCH_ID` counts them again as a new batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from orderpipe import outcomes
from orderpipe.catalogs import CATALOG, catalog_history, catalog_key, write_catalog, write_catalog_merge
from orderpipe.core.kpis import DateKpis
from orderpipe.errors import InfrastructureError, OrderpipeError, UsageError
from orderpipe.facts import HISTORY, RETRACTED, history_rows
from orderpipe.faults import checkpoint
from orderpipe.ports import BatchRecord, FactEntry, RunRecord
from orderpipe.relational import HEADERS, LINES
from orderpipe.warehouse import merged_range

if TYPE_CHECKING:
    from orderpipe.workflow import Pipeline

__all__ = ["Retracted", "Retraction", "marker_of"]

#: A date's switch is tried again this many times when a commit or a compaction of the date
#: came in between (each try reads the date's entries again).
SWITCH_ATTEMPTS = 50


def marker_of(batch_id: str) -> str:
    """The name of a retraction's marker entry among a date's entries."""
    return RETRACTED + batch_id


@dataclass(frozen=True, slots=True)
class Retracted:
    """What a retraction did: the dates it recomputed; `already`: it was retracted before."""

    batch: BatchRecord
    dates: tuple[str, ...]
    already: bool = False


class Retraction:
    """Retracts batches with the parts of a `Pipeline` (its ledger, engine, warehouse, store)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.ledger = pipeline.ledger
        self.store = pipeline.store
        self.prefix = pipeline.prefixes.warehouse

    # -- which batch ------------------------------------------------------------------------------
    def find(self, batch_prefix: str) -> BatchRecord:
        """The accepted batch whose id starts with `batch_prefix`; a user's mistake (no such
        batch, a rejected one, two batches with that prefix, one not finished) says so."""
        runs = self.ledger.runs(batch_id=batch_prefix)
        ids = sorted({r.batch_id for r in runs})
        records = [record for record in map(self.ledger.get, ids) if record is not None]
        if len(records) > 1:
            raise UsageError(f"several batches start with {batch_prefix}: give more of the id (`orderpipe batches`)")
        if not records:
            if runs:
                file = runs[-1].file
                raise UsageError(
                    f"batch {batch_prefix} ({file}) was never accepted ({runs[-1].status}): none of its rows count,"
                    " so there is nothing to retract"
                )
            raise UsageError(f"no accepted batch {batch_prefix} in the history (`orderpipe batches` lists them)")
        record = records[0]
        if HEADERS in record.dates or LINES in record.dates:
            raise UsageError(
                f"batch {record.batch_id[:12]} ({record.file}) holds order headers or lines, which cannot be"
                " retracted yet: send a file that corrects them instead (a header sent again replaces its"
                " order's, a line sent again with its line id replaces it)"
            )
        if not record.done:
            raise UsageError(
                f"batch {record.batch_id[:12]} ({record.file}) is not finished yet: finish it first"
                f" (`orderpipe replay {record.batch_id[:12]}`), then retract it"
            )
        return record

    def dates_of(self, batch: BatchRecord) -> list[str]:
        """The dates whose KPIs retracting `batch` changes: its own, or for a catalog batch the
        dates on which a product of it sold (its file stays, so a rerun finds the same)."""
        if CATALOG not in batch.dates:
            return sorted(batch.dates)
        with ExitStack() as stack:
            rows = pl.read_parquet(stack.enter_context(self.store.local_copy(catalog_key(batch.batch_id, self.prefix))))
        return self.pipeline.engine.product_dates(rows.get_column("product_id").unique().sort().to_list())

    # -- retracting -------------------------------------------------------------------------------
    def retract(self, batch: BatchRecord) -> Retracted:
        """Retract `batch` (found by `find`); running it again finishes an interrupted one."""
        if batch.retracted == "retracted":
            return Retracted(batch, (), already=True)
        with self.pipeline.locks.hold(batch.batch_id):
            now = self.ledger.get(batch.batch_id)
            if now is not None and now.retracted == "retracted":  # by another process meanwhile
                return Retracted(now, (), already=True)
            keys = [CATALOG] if CATALOG in batch.dates else sorted(batch.dates)
            for key, entries in self.ledger.fact_entries(keys).items():
                self._holder(key, entries, batch)  # refused before anything changes
            began = self.ledger.begin_retract(batch.batch_id)
            assert began is not None
            checkpoint("retract-begun")
            released: set[tuple[str, int]] = set()
            for key in keys:
                self._switch(key, batch, released)
            if released:
                self.pipeline.warehouse.free_bundles(released)
            dates = self.dates_of(batch)  # (a merged catalog batch's file is restored by its switch)
            self.pipeline.recompute(dates)
            checkpoint("retract-recomputed")
            run = RunRecord(
                batch.batch_id,
                batch.file,
                "retracted",
                batch.rows,
                tuple(batch.dates),
                began.retracted_at,
                outcomes.now(),
                f"retracted: its rows no longer count; the KPIs of {len(dates)} date(s) were recomputed",
            )
            won = self.ledger.finish_retract(batch.batch_id, run)
            checkpoint("retract-finished")
            record = self.ledger.get(batch.batch_id) or began
        return Retracted(record, tuple(dates), already=not won)

    def _switch(self, key: str, batch: BatchRecord, released: set[tuple[str, int]]) -> None:
        """Take the batch's rows out of one date (or the catalog), in one ledger transaction;
        nothing to do when its marker is there (switched by an earlier attempt)."""
        marker = marker_of(batch.batch_id)
        for _ in range(SWITCH_ATTEMPTS):
            entries = self.ledger.fact_entries([key])[key]
            if any(e.batch_id == marker for e in entries):
                return
            covered, added = self._replacement(key, entries, batch)
            if self.ledger.retract_entries(key, covered, added, marker):
                checkpoint("retract-switched")
                if key != CATALOG:
                    self.pipeline.warehouse.delete_replaced(key, covered, released)
                else:  # a catalog batch's own file stays: a rerun reads its products from it
                    self.pipeline.warehouse.delete_catalog_files([e for e in covered if e.batch_id != batch.batch_id])
                return
        raise InfrastructureError(f"{key} kept changing while batch {batch.batch_id[:12]} was retracted; run it again")

    def _replacement(
        self, key: str, entries: Sequence[FactEntry], batch: BatchRecord
    ) -> tuple[list[FactEntry], list[FactEntry]]:
        """The entries of a date to replace, and by what: the batch's own entry by nothing, or
        the merged entry holding its rows by that entry rewritten without them."""
        own = [e for e in entries if e.batch_id == batch.batch_id]
        if own:
            return own, []
        holder = self._holder(key, entries, batch)
        if holder is None:
            return [], []  # none of its rows here (none were left): only the marker
        if key == CATALOG:
            return [holder], [self._rewritten_catalog(holder, batch)]
        return [holder], [self._rewritten(key, holder, batch)]

    def _holder(self, key: str, entries: Sequence[FactEntry], batch: BatchRecord) -> FactEntry | None:
        """The merged entry holding the batch's rows of a date, when it has no entry of its own
        there; a merge without a history cannot give them back: that is refused."""
        if any(e.batch_id in (batch.batch_id, marker_of(batch.batch_id)) for e in entries):
            return None
        holders = [e for e in entries if e.batch_id.startswith("compact-") and _holds(e, batch.seq)]
        if holders and not any(p >= HISTORY for p in holders[0].parts):
            where = "the catalog" if key == CATALOG else key
            raise OrderpipeError(
                f"batch {batch.batch_id[:12]} ({batch.file}) cannot be retracted: its rows of {where} were merged"
                " with other batches' without a history of which rows were whose (a compaction by an older"
                " orderpipe); nothing was changed: send a file that corrects its orders instead"
            )
        return holders[0] if holders else None

    def _rewritten(self, key: str, holder: FactEntry, batch: BatchRecord) -> FactEntry:
        """`holder` without the batch's rows, stored under a name derived from both (a retry
        overwrites its own files); the rows the batch had replaced are current again."""
        name = _without(holder, batch)
        with ExitStack() as stack:
            rows = history_rows(self.store, key, [holder], stack, self.prefix)
            parts = self.pipeline.warehouse.write_merged(rows.filter(pl.col("seq") != batch.seq), key, name)
        checkpoint("retract-rewritten")
        return FactEntry(key, name, holder.seq, tuple(parts))

    def _rewritten_catalog(self, holder: FactEntry, batch: BatchRecord) -> FactEntry:
        """A merged catalog entry without the catalog batch's rows; the batch's own file is
        written again from the history first, so that its products (the dates to recompute)
        are known, now and to a rerun."""
        name = _without(holder, batch)
        with ExitStack() as stack:
            history = catalog_history(self.store, [holder], stack, self.prefix)
        own = catalog_key(batch.batch_id, self.prefix)
        if not self.store.exists(own):
            mine = history.filter(pl.col("seq") == batch.seq)
            write_catalog(mine, own, self.store, self.pipeline.warehouse.scratch)
        parts = write_catalog_merge(
            history.filter(pl.col("seq") != batch.seq), name, self.store, self.pipeline.warehouse.scratch, self.prefix
        )
        checkpoint("retract-rewritten")
        return FactEntry(CATALOG, name, holder.seq, parts)

    # -- --dry-run --------------------------------------------------------------------------------
    def preview(self, batch: BatchRecord) -> dict[str, tuple[DateKpis | None, DateKpis]]:
        """Each date retracting `batch` would recompute: its KPIs now (None when none are
        stored) and after. Changes no entry and no KPI (a merged entry's rewrite is stored,
        unnamed by the ledger, under the name a retraction would give it)."""
        keys = [CATALOG] if CATALOG in batch.dates else sorted(batch.dates)
        swaps = {
            key: self._replacement(key, entries, batch)
            for key, entries in self.ledger.fact_entries(keys).items()
            if not any(e.batch_id == marker_of(batch.batch_id) for e in entries)
        }
        dates = self.dates_of(batch)  # after: a merged catalog batch's file is written again
        read = self.ledger.fact_entries(([CATALOG] if self.pipeline.shape.catalog else []) + dates)
        for key, (covered, added) in swaps.items():
            if key in read:
                read[key] = sorted([e for e in read[key] if e not in covered] + added, key=lambda e: e.seq)
        after = self.pipeline.engine.preview(read)
        return {d: (self._stored(d), after[d]) for d in dates}

    def _stored(self, order_date: str) -> DateKpis | None:
        """The KPIs stored for a date, as the KPI store gives them."""
        from orderpipe.core.kpis import CategoryKpi, OrderKpi

        daily = self.pipeline.kpis.daily(order_date, order_date)
        categories = self.pipeline.kpis.category(None, order_date, order_date)
        order = OrderKpi(**daily[0]) if daily else None  # type: ignore[arg-type]
        return DateKpis(order_date, order, tuple(CategoryKpi(**c) for c in categories))  # type: ignore[arg-type]


def _without(holder: FactEntry, batch: BatchRecord) -> str:
    """The name of a merged entry rewritten without a batch's rows: `compact-<first>-<top>-x<seq>`
    (`compact-<top>` holds every seq from 0: `<first>` is 0)."""
    first, top = merged_range(holder)
    if holder.batch_id == f"compact-{top:012d}":
        return f"compact-{first:012d}-{top:012d}-x{batch.seq:012d}"
    return f"{holder.batch_id}-x{batch.seq:012d}"


def _holds(entry: FactEntry, seq: int) -> bool:
    """A merged entry holds the rows of the seqs its name says."""
    first, top = merged_range(entry)
    return first <= seq <= top
