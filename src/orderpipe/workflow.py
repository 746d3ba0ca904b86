"""The workflow for one file: validate → stage facts → commit → recompute → archive → notify.

This is where the processing semantics live, once, above the ports. Every step is safe to
repeat, so a kill -9 anywhere followed by a retry ends as an uninterrupted run would:

- the batch id is the SHA-256 of the bytes; an accepted batch is never counted twice;
- facts are staged under names derived from the batch (a retry overwrites them) and are
  invisible until the ledger commit gives the batch its sequence number;
- KPIs of a date are recomputed from all committed facts of that date, latest batch winning
  per order id, and written under a version that only grows (the number of committed batches
  touching the date), so a slower, staler recompute can never overwrite a newer one.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import hashlib
import itertools
import json
import logging
import shutil
import tempfile
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl

from orderpipe.adapters.workspace import BatchLocks, Workspace, sweep
from orderpipe.catalogs import (
    CATALOG,
    catalog_changes,
    catalog_key,
    current_catalog,
    product_index,
    write_catalog,
)
from orderpipe.core.catalog import resolve_categories
from orderpipe.core.kpis import (
    KpiSums,
    adjusted,
    compute_kpis,
    current_orders,
    customer_queries,
    kpi_sums,
    kpis_from_sums,
)
from orderpipe.core.lines import compute_line_kpis, current_lines
from orderpipe.core.names import REPORT_SUFFIX, display_name, fit_name, is_upload_of, tagged_name, upload_family
from orderpipe.core.report import ValidationReport
from orderpipe.core.shape import SEED_SHAPE, InputShape
from orderpipe.errors import InfrastructureError, TransientError
from orderpipe.faults import checkpoint
from orderpipe.ingest import (
    BUNDLE,
    ROWS_PER_PART,
    Inspection,
    bundle_of,
    fact_key,
    inspect_file,
    load_facts,
    publish_facts,
    staged_facts,
    write_compacted,
)
from orderpipe.logs import log_event
from orderpipe.ports import (
    BatchRecord,
    FactEntry,
    KpiStore,
    Ledger,
    Notification,
    Notifier,
    ObjectStat,
    ObjectStore,
    RunRecord,
)

__all__ = ["Outcome", "Pipeline", "Prefixes", "Progress", "run_report"]

#: Called with (step, done, total) as a file moves through the workflow.
Progress = Callable[[str, int, int], None]


def _quiet(step: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True, slots=True)
class Prefixes:
    input: str = "input/"
    processed: str = "processed/"
    rejected: str = "rejected/"
    warehouse: str = "warehouse/orders/"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A private local copy of an input object, and the object's (size, mtime) when it was taken."""

    path: Path
    seen: ObjectStat | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one file; `status` is accepted, rejected, duplicate or failed."""

    status: str
    file: str
    batch_id: str
    rows: int
    dates: tuple[str, ...]
    message: str
    report: ValidationReport | None = None
    archived_as: str = ""
    #: Another process finished this very upload and reported it: this one recorded nothing,
    #: so a watcher shows nothing (`run` still tells its user what became of their file).
    elsewhere: bool = False


def run_report(report: ValidationReport | None) -> str:
    """What the run history keeps of a file's report: an invalid file's problems, as JSON."""
    if report is None or report.valid:
        return ""
    return json.dumps(report.brief(), separators=(",", ":"))


#: Errors that say nothing about the file (a full disk, a lost connection, a busy database):
#: the file waits and is tried again. Any other error is the file's own failure.
TRANSIENT = (TransientError, OSError, MemoryError)
MAX_REASON_CHARS = 500
LOCKS = "locks"
#: A date read from more facts entries than this is compacted: its oldest entries become one.
COMPACT_AFTER = 8
#: At most this many entries are merged at once (a DynamoDB transaction holds 100 items).
COMPACT_MAX = 90
#: Compaction merges an entry with the newer ones once those hold 1/FOLD_SHARE of its bytes;
#: until then it leaves it (see `Pipeline._to_merge`).
FOLD_SHARE = 2
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
#: Facts files no entry names are deleted once this old: a staged batch commits long before.
STRAY_FACTS_AGE = 6 * 3600


@dataclass(frozen=True, slots=True)
class _KnownOrders:
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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Pipeline:
    def __init__(
        self,
        store: ObjectStore,
        ledger: Ledger,
        kpis: KpiStore,
        notifier: Notifier,
        categories: Sequence[str],
        workdir: Path,
        prefixes: Prefixes = Prefixes(),
        rows_per_part: int = ROWS_PER_PART,
        compact_after: int = COMPACT_AFTER,
        shape: InputShape = SEED_SHAPE,
    ) -> None:
        self.compact_after = compact_after
        self.shape = shape  # how input files are read; the seed's format by default
        self.store = store
        self.ledger = ledger
        self.kpis = kpis
        self.notifier = notifier
        self.categories = tuple(categories)
        self.workdir = workdir
        self.prefixes = prefixes
        self.rows_per_part = rows_per_part
        self.locks = BatchLocks(workdir / LOCKS)
        self.archive_locks = BatchLocks(workdir / LOCKS / "archive")  # never waited for under it: no cycle
        self._workspace = Workspace(workdir)
        # input key -> (the user's name, the hash of their bytes, computed when first asked)
        self._submitted: dict[str, tuple[str, Callable[[], str]]] = {}
        self._known: OrderedDict[str, _KnownOrders] = OrderedDict()  # see `recompute`

    @property
    def scratch(self) -> Path:
        """This process's own scratch folder (swept by the next start-up if it is killed)."""
        return self._workspace.path

    # -- the workflow -------------------------------------------------------------------
    def process(self, key: str, progress: Progress = _quiet) -> Outcome:
        """Run one object under input/ through the whole workflow.

        A failure of the infrastructure leaves the file waiting and raises. Any other failure is
        the batch's own: it is marked `failed`, quarantined with its reason for `replay`, and
        the files behind it go on.
        """
        started = _now()
        name, digest = self._submitted.pop(key, (display_name(PurePosixPath(key).name), None))
        attempt: dict[str, str] = {"batch_id": ""}
        try:
            return self._process(key, name, started, progress, attempt, digest)
        except TRANSIENT:
            raise
        except Exception as exc:
            # Failed before it was read, a submitted file is still named by its bytes.
            batch_id = attempt["batch_id"] or (digest() if digest is not None else "")
            return self._fail(key, name, batch_id, exc, started)

    def _process(
        self,
        key: str,
        name: str,
        started: str,
        progress: Progress,
        attempt: dict[str, str],
        digest: Callable[[], str] | None,
    ) -> Outcome:
        if digest is not None and self.store.stat(key) is None and (batch_id := digest()):
            # Our upload is gone: another process (a watcher) took it first and says what
            # became of it; this run only tells its user.
            attempt["batch_id"] = batch_id
            with self.locks.hold(batch_id):
                taken = self._taken_elsewhere(name, batch_id, None)
                if taken is not None:
                    return taken
        with self.inspected(key, progress) as (inspection, _scratch, snapshot):
            batch_id, report = inspection.batch_id, inspection.report
            attempt["batch_id"] = batch_id
            with self.locks.hold(batch_id):  # one process at a time per batch: one `accepted`
                existing = self.ledger.get(batch_id)
                upload = PurePosixPath(key).name
                if existing is not None and not existing.done and is_upload_of(upload, existing.file, batch_id):
                    name = existing.file  # committed by an interrupted run of this upload: its user's name
                finished = (existing is None and not report.valid) or (existing is not None and existing.done)
                if finished and self.store.stat(key) is None:
                    # The upload we read was finished by another process while we waited for the
                    # lock (two watchers on one home): one file, one outcome, and it was theirs.
                    taken = self._taken_elsewhere(name, batch_id, report)
                    if taken is not None:
                        return taken
                if existing is not None and existing.done:
                    archived = self._archive(key, self.prefixes.processed, name, batch_id, snapshot)
                    return self._duplicate(name, existing, report, archived, started)
                if existing is None:
                    if not report.valid:
                        return self._reject(key, name, report, batch_id, started, snapshot)
                    if self.store.stat(key) != snapshot.seen:
                        raise InfrastructureError(
                            f"{name} changed while it was being processed; nothing was counted, it will be read again"
                        )
                    existing = self.commit(name, inspection, progress)  # the user's name, not the upload's
                progress("recomputing KPIs", 0, 1)
                recomputed = self.batch_dates(existing)
                self.recompute(recomputed, inspection)
                checkpoint("after-recompute")
                self.compact_quietly(existing.dates)
                archived = self._archive(key, self.prefixes.processed, name, batch_id, snapshot)
                checkpoint("after-archive")
                self.ledger.mark_done(batch_id)
                checkpoint("after-done")
                # Recorded under the lock: a process that waited for it then finds the record,
                # and reports nothing of its own for the same upload.
                outcome = self.accepted(name, existing, report, archived, won=True, dates=recomputed)
                return self._finish(outcome, started)

    def _taken_elsewhere(self, name: str, batch_id: str, report: ValidationReport | None) -> Outcome | None:
        """What another process recorded for the batch, as this process's outcome (nothing is
        recorded or sent again); None when no process has recorded it yet."""
        runs = self.ledger.runs(batch_id=batch_id)
        last = next((r for r in reversed(runs) if r.batch_id == batch_id), None)
        if last is None:
            return None
        said = last.message.removeprefix(f"{last.file}: ")
        message = f"{name}: {last.status} by another process (as {last.file}: {said})"
        return Outcome(last.status, name, batch_id, last.rows, last.dates, message, report, elsewhere=True)

    def _duplicate(
        self, name: str, existing: BatchRecord, report: ValidationReport | None, archived: str, started: str
    ) -> Outcome:
        message = (
            f"{name}: same bytes as {existing.file} (batch {existing.batch_id[:12]}), already counted; nothing changed"
        )
        dates = tuple(d for d in existing.dates if d != CATALOG)
        outcome = Outcome("duplicate", name, existing.batch_id, existing.rows, dates, message, report, archived)
        return self._finish(outcome, started)

    def _fail(self, key: str, name: str, batch_id: str, exc: Exception, started: str) -> Outcome:
        """Quarantine a file whose batch cannot be finished, with its reason, so that it never
        blocks the files behind it; `replay` retries it once the cause is fixed."""
        reason = f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]
        log_event(
            "batch.failed", logging.ERROR, file=name, batch_id=batch_id, error=reason, traceback=traceback.format_exc()
        )
        record = self.ledger.get(batch_id) if batch_id else None
        if record is not None and record.done:
            raise exc  # counted and archived already: nothing to quarantine
        if record is not None:
            self.ledger.mark_failed(batch_id)
        target = ""
        if self.store.stat(key) is not None:
            tag = batch_id or uuid.uuid4().hex  # unknown bytes: a name no other file can have
            body = {
                "file": name,
                "valid": False,
                "status": "failed",
                "reason": reason,
                "batch_id": batch_id,
                "hint": "an internal error stopped this file; once the cause is fixed, `orderpipe replay "
                + (batch_id[:12] if batch_id else "--rejected")
                + "` runs it again",
            }
            report = json.dumps(body, indent=2).encode()
            target = self._archive_as(key, self.prefixes.rejected, name, tag, None, self._size(key), report)
        committed = " (its rows are committed but its KPIs may be stale)" if record is not None else ""
        where = f"; kept as {target}" if target else ""
        message = f"{name}: failed{committed}: {reason}{where}; `orderpipe replay` retries it"
        outcome = Outcome(
            "failed",
            name,
            batch_id,
            record.rows if record else 0,
            record.dates if record else (),
            message,
            None,
            target,
        )
        return self._finish(outcome, started)

    @contextmanager
    def inspected(
        self, key: str, progress: Progress = _quiet, version: str | None = None
    ) -> Iterator[tuple[Inspection, Path, Snapshot]]:
        """The file's verdict, with a scratch folder (its stage) and a private snapshot of its
        bytes, both kept until the block ends."""
        seen = self.store.stat(key)
        with tempfile.TemporaryDirectory(dir=self.scratch) as scratch, self.store.snapshot(key, version) as path:
            if version is None and self.store.stat(key) != seen:
                raise InfrastructureError(f"{key} changed while it was being read; it will be read again")
            progress("validating", 0, 1)
            name = display_name(PurePosixPath(key).name)
            # Any file, any shape (a products file is a catalog batch): positional, as tests wrap it.
            inspection = inspect_file(path, name, self.categories, Path(scratch), self.rows_per_part, self.shape)
            checkpoint("after-inspect")
            yield inspection, Path(scratch), Snapshot(path, seen)

    def commit(self, name: str, inspection: Inspection, progress: Progress = _quiet) -> BatchRecord:
        """Store the facts of a valid file and commit the batch (its facts become visible)."""
        report = inspection.report
        assert report.valid
        if inspection.catalog is not None:
            return self._commit_catalog(name, inspection.batch_id, inspection.catalog, report.rows)
        facts = inspection.facts
        assert facts is not None
        if facts.rows != report.rows:
            raise InfrastructureError(
                f"staged {facts.rows} rows but {report.rows} were validated; nothing was committed"
            )
        if self.shape.catalog:  # before the commit: once the batch is visible, so are its products
            self.ledger.index_products(product_index(facts.paths))
            checkpoint("after-index")

        def part_written() -> None:
            checkpoint("facts-part")

        parts = publish_facts(
            facts,
            inspection.batch_id,
            self.store,
            part_written,
            self.prefixes.warehouse,
            on_file=lambda done, total: progress("staging facts", done, total),
        )
        checkpoint("before-commit")
        record = self.ledger.commit(inspection.batch_id, name, report.rows, parts)
        checkpoint("after-commit")
        return record

    def _commit_catalog(self, name: str, batch_id: str, rows_file: Path, rows: int) -> BatchRecord:
        """Store a catalog batch's rows and commit it: it takes a seq like any batch, under the
        ledger's `catalog` key, and from then on every KPI computation reads it."""
        self.store.put_file(rows_file, catalog_key(batch_id, self.prefixes.warehouse))
        checkpoint("catalog-staged")
        record = self.ledger.commit(batch_id, name, rows, {CATALOG: [0]})
        checkpoint("after-commit")
        return record

    def batch_dates(self, batch: BatchRecord) -> list[str]:
        """The dates whose KPIs a batch changes: its own dates, or for a catalog batch the dates
        on which a product it changed sold (found in the ledger's product index, so no other
        date is read)."""
        if CATALOG not in batch.dates:
            return list(batch.dates)
        for attempt in itertools.count(1):
            entries = self.ledger.fact_entries([CATALOG])[CATALOG]
            if not any(e.batch_id == batch.batch_id for e in entries):
                return []  # merged into a compacted entry: only done batches are, so its dates were recomputed
            try:
                with ExitStack() as stack:
                    changed = catalog_changes(self.store, entries, batch.batch_id, stack, self.prefixes.warehouse)
                break
            except (InfrastructureError, OSError, pl.exceptions.PolarsError):
                if attempt >= 5 or self.ledger.fact_entries([CATALOG])[CATALOG] == entries:
                    raise  # not a compaction of earlier catalog entries under our feet
        return self.ledger.product_dates(changed) if changed else []

    @staticmethod
    def accepted(
        name: str,
        batch: BatchRecord,
        report: ValidationReport | None,
        archived: str,
        won: bool = False,
        dates: Sequence[str] | None = None,
    ) -> Outcome:
        """`won`: the caller finished the batch under its lock, so no one else reports it.
        `dates`: the dates recomputed, when they are not the batch's own (a catalog batch)."""
        if CATALOG in batch.dates:
            shown = tuple(dates or ())
            if not won and batch.file != name:
                message = f"{name}: same bytes as {batch.file} (batch {batch.batch_id[:12]}), counted once"
                return Outcome("duplicate", name, batch.batch_id, batch.rows, shown, message, report, archived)
            span = f" {shown[0]}…{shown[-1]}" if shown else ""
            products = f"{batch.rows} product{'' if batch.rows == 1 else 's'}"
            message = f"{name}: accepted, catalog of {products}; recomputed {len(shown)} date(s){span}"
            return Outcome("accepted", name, batch.batch_id, batch.rows, shown, message, report, archived)
        dates = batch.dates
        if not won and batch.file != name:  # another file with the same bytes won the commit
            message = f"{name}: same bytes as {batch.file} (batch {batch.batch_id[:12]}), counted once"
            return Outcome("duplicate", name, batch.batch_id, batch.rows, dates, message, report, archived)
        span = f" {dates[0]}…{dates[-1]}" if dates else ""
        message = f"{name}: accepted, {batch.rows} rows over {len(dates)} date(s){span}"
        return Outcome("accepted", name, batch.batch_id, batch.rows, dates, message, report, archived)

    def _reject(
        self,
        key: str,
        name: str,
        report: ValidationReport,
        batch_id: str,
        started: str,
        snapshot: Snapshot | None = None,
    ) -> Outcome:
        size = snapshot.path.stat().st_size if snapshot else self._size(key)
        body = json.dumps({**report.to_dict(), "batch_id": batch_id}, indent=2).encode()
        target = self._archive_as(key, self.prefixes.rejected, name, batch_id, snapshot, size, body)
        checkpoint("after-quarantine")
        outcome = Outcome("rejected", name, batch_id, report.rows, (), report.summary(), report, target)
        return self._finish(outcome, started)

    def _finish(self, outcome: Outcome, started: str, notify: bool = True) -> Outcome:
        self.ledger.record_run(
            RunRecord(
                outcome.batch_id,
                outcome.file,
                outcome.status,
                outcome.rows,
                outcome.dates,
                started,
                _now(),
                outcome.message,
                report=run_report(outcome.report),
            )
        )
        checkpoint("before-notify")
        if not notify:
            return outcome
        details: dict[str, object] = {"archived_as": outcome.archived_as}
        if outcome.report is not None and not outcome.report.valid:
            details["errors"] = [
                {"code": i.code, "count": i.count, "first": i.samples[0].to_dict() if i.samples else None}
                for i in outcome.report.errors
            ]
        self.notifier.notify(
            Notification(
                outcome.status, outcome.file, outcome.batch_id, outcome.message, outcome.rows, outcome.dates, details
            )
        )
        return outcome

    # -- KPIs -----------------------------------------------------------------------------
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

        The version of a date is the highest seq among its entries: commits take seqs in commit
        order, so a later read never has a lower one, and compaction keeps it. A compaction may
        remove the files of entries read just before it: the read is then simply done again.
        `staged`: the batch just committed, whose stage still holds its rows; the dates it alone
        holds are computed from that one local file instead of its facts objects. Dates whose
        current orders this process selected before are advanced by the newer entries only
        (`_advance`), and what is selected now is kept for the next time (`_remember`).
        """
        dates = [d for d in dates if d != CATALOG]
        if not dates:
            return []
        # With the catalog on, the catalog's entries are read in the same consistent read as the
        # dates' facts: the KPIs then cover both, and so does their version.
        keys = ([CATALOG] if self.shape.catalog else []) + sorted(set(dates))
        everything = self._entries(keys)
        for attempt in itertools.count(1):
            catalog = everything.get(CATALOG, [])
            entries = {d: e for d, e in everything.items() if d != CATALOG}
            shared = {d for d, e in entries.items() if len(e) > 1}
            own = set()
            if staged is not None and staged.facts is not None:
                own = {d for d, e in entries.items() if [x.batch_id for x in e] == [staged.batch_id]}
            known, newer = self._known_and_newer(entries, own)
            try:
                with ExitStack() as stack:
                    others = {d: e for d, e in entries.items() if d not in own and d not in known}
                    facts = load_facts(self.store, others, stack, self.prefixes.warehouse)
                    if own:
                        assert staged is not None and staged.facts is not None
                        facts = pl.concat([facts, staged_facts(staged.facts, own)])
                    # Rows before de-duplication (cheap: Parquet metadata, or facts in memory)
                    # bound the memory of counting distinct customers.
                    rows = facts.select(pl.len()).collect().item() + sum(
                        {id(k.rows): k.rows.height for k in known.values()}.values()
                    )
                    latest = current_lines if self.shape.lines else current_orders
                    current = latest(facts, shared)
                    # Order grain without a catalog, in memory: the KPIs come from sums, which
                    # known dates adjust by the rows a batch replaced and added.
                    summed = rows <= CURRENT_IN_MEMORY_ROWS and not self.shape.lines and not self.shape.catalog
                    advanced = self._advance(known, newer, stack, summed) if known else None
                    if summed:
                        parts = []
                        if others or own:
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
                        break
                    if advanced is not None:
                        current = pl.concat([current, advanced.rows])
                    if rows <= CURRENT_IN_MEMORY_ROWS:  # read by several queries: selected once
                        selected = current.collect()
                        current = selected.lazy()
                    if self.shape.catalog:  # each line's category: its product's in the catalog read
                        # (after the selection: what is remembered is the facts, never a catalog's view)
                        products = current_catalog(self.store, catalog, stack, self.prefixes.warehouse)
                        current = resolve_categories(current, products.lazy())
                    kpis = compute_line_kpis if self.shape.lines else compute_kpis
                    results = kpis(current, list(entries), customer_queries(rows))
                    if rows <= CURRENT_IN_MEMORY_ROWS:
                        self._remember(selected, entries)
                break
            except (InfrastructureError, OSError, pl.exceptions.PolarsError):
                again = self._entries(keys)
                if again == everything or attempt >= 5:
                    raise  # not a compaction under our feet: a real failure
                everything = again
        checkpoint("before-kpi-write")
        # A date's version covers its facts and the catalog it was computed with: every seq is
        # taken from one sequence, so a later read never has a lower maximum.
        used = max((e.seq for e in catalog), default=0)
        versions = {d: max((e.seq for e in entries[d]), default=used) for d in entries}
        versions = {d: max(v, used) for d, v in versions.items()}
        return self.kpis.write({d: (versions[d], results[d]) for d in entries})

    def _known_and_newer(
        self, entries: dict[str, list[FactEntry]], own: set[str]
    ) -> tuple[dict[str, _KnownOrders], dict[str, list[FactEntry]]]:
        """The dates whose current orders this process knows as of an earlier seq, with the
        entries of higher seqs. A merged entry among them may also hold batches already known:
        its rows are the latest of their orders up to its seq all the same."""
        known: dict[str, _KnownOrders] = {}
        newer: dict[str, list[FactEntry]] = {}
        for order_date, date_entries in entries.items():
            state = self._known.get(order_date)
            if state is None or order_date in own:
                continue
            known[order_date] = state
            newer[order_date] = [e for e in date_entries if e.seq > state.upto]
        return known, newer

    def _advance(
        self, known: dict[str, _KnownOrders], newer: dict[str, list[FactEntry]], stack: ExitStack, summed: bool
    ) -> _Advanced:
        """The known current orders after the newer entries: an order (every line of it) in
        them replaces the known one; only their own facts are read. `summed`: the known rows
        are in memory with their order keys, and their sums are adjusted by the rows replaced
        and added."""
        fresh = load_facts(self.store, {d: e for d, e in newer.items() if e}, stack, self.prefixes.warehouse)
        latest = current_lines if self.shape.lines else current_orders
        gained = latest(fresh, {d for d, e in newer.items() if len(e) > 1})
        groups: dict[int, tuple[_KnownOrders, list[str]]] = {}  # per shared frame: one filter
        for order_date, state in known.items():
            groups.setdefault(id(state.rows), (state, []))[1].append(order_date)
        parts: list[tuple[pl.DataFrame, pl.Series, KpiSums | None]] = []
        for state, dates in groups.values():
            days = pl.Series([dt.date.fromisoformat(d) for d in dates], dtype=pl.Date)
            if state.dates <= set(dates):  # every date of the frame: nothing to filter
                parts.append((state.rows, days, state.sums))
            else:
                on_days = pl.col("order_date").is_in(days.implode())
                parts.append((state.rows.filter(on_days), days, state.sums and state.sums.of(days)))
        if not summed:
            keys = gained.select(ORDER)
            # (rows kept for sums carry their hashed keys: not a facts column)
            kept = [rows.lazy().select(pl.exclude(ORDER_KEY)).join(keys, on=ORDER, how="anti") for rows, _, _ in parts]
            return _Advanced(pl.concat([*kept, gained]), None)
        gained_rows = with_order_keys(gained.collect())
        hashes = gained_rows.get_column(ORDER_KEY).implode()
        kept_rows: list[pl.DataFrame] = []
        lost: list[pl.DataFrame] = []
        sums: list[KpiSums] = []
        for rows, _, state_sums in parts:
            assert state_sums is not None
            # A filter on the hashed key, not a join: a join is slow on a frame of many chunks,
            # and the known rows gain a chunk a batch. An equal hash is checked to be an equal key.
            replaced = rows.get_column(ORDER_KEY).is_in(hashes)
            lost_rows = rows.filter(replaced)
            if lost_rows.is_empty():  # only new orders: the known rows stay as they are, uncopied
                kept_rows.append(rows)
            elif lost_rows.join(gained_rows, on=ORDER, how="semi").height == lost_rows.height:
                kept_rows.append(rows.filter(~replaced))
            else:  # two keys with one hash: the exact joins
                lost_rows = rows.join(gained_rows, on=ORDER, how="semi")
                kept_rows.append(rows.join(gained_rows, on=ORDER, how="anti"))
            lost.append(lost_rows)
            sums.append(state_sums)
        after = pl.concat([*kept_rows, gained_rows])
        return _Advanced(after.lazy(), adjusted(KpiSums.joined(sums), pl.concat(lost).lazy(), gained_rows.lazy()))

    def _remember(
        self, current: pl.DataFrame, entries: dict[str, list[FactEntry]], sums: KpiSums | None = None
    ) -> None:
        """Keep the current orders just selected (and their sums), per date, as of the highest
        seq read: every batch up to it is counted in them, since commits take seqs in commit
        order."""
        for order_date in entries:
            self._known.pop(order_date, None)
        held = current if sums is None else sums.categories  # the dates with orders, fewer rows
        present = frozenset(d.isoformat() for d in held.get_column("order_date").unique())
        for order_date in sorted(present & entries.keys()):
            self._known[order_date] = _KnownOrders(max(e.seq for e in entries[order_date]), current, sums, present)
        frames = {id(s.rows): s.rows.height for s in self._known.values()}
        while sum(frames.values()) > KNOWN_ROWS:  # the dates used longest ago go first
            self._known.popitem(last=False)
            frames = {id(s.rows): s.rows.height for s in self._known.values()}

    def _entries(self, keys: list[str]) -> dict[str, list[FactEntry]]:
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

    def compact(self, dates: Sequence[str]) -> list[str]:
        """Once one of `dates` is read from more than `compact_after` facts entries, merge
        entries of it, and of those of `dates` read from more than half as many, into one per
        date (the latest row per order id, in commit order; see `_to_merge`), so the cost of a
        file never grows with the number of earlier batches; returns the dates compacted.

        Crash-safe: the merged files are written under a name derived from what they replace
        (a retry overwrites them), the ledger switches to them in one transaction that fails if
        another process compacted first, and only then are the replaced files deleted. A crash
        in between leaves files no entry names; the next compaction of the date deletes those
        once they are old enough that no writer can still be about to commit them.
        """
        compacted = []
        released: set[tuple[str, int]] = set()
        if CATALOG in dates:
            compacted += self._compact_catalog()
            dates = [d for d in dates if d != CATALOG]
        read = self.ledger.fact_entries(sorted(set(dates)))
        # Once one date is due, the others with half as many entries are merged too: the
        # dates a stream of batches shares stay in step, and merging is one event every few
        # batches instead of one date or another at nearly every batch.
        if all(len(entries) <= self.compact_after for entries in read.values()):
            return compacted
        for order_date, entries in read.items():
            if len(entries) <= max(1, self.compact_after // 2):
                continue
            covered = self._to_merge(order_date, entries)
            top = covered[-1].seq
            if covered[0] == entries[0]:  # every row of the date up to `top`
                merged_id = f"compact-{top:012d}"
            else:  # the rows of seqs `first`..`top` only: both name what the files hold
                merged_id = f"compact-{_first_seq(covered[0]):012d}-{top:012d}"
            try:
                with ExitStack() as stack:
                    facts = load_facts(self.store, {order_date: covered}, stack, self.prefixes.warehouse)
                    latest = current_lines if self.shape.lines else current_orders
                    current = latest(facts, {order_date} if len(covered) > 1 else set())
                    parts = write_compacted(
                        current,
                        order_date,
                        merged_id,
                        self.store,
                        self.scratch,
                        self.rows_per_part,
                        self.prefixes.warehouse,
                    )
            except (InfrastructureError, OSError, pl.exceptions.PolarsError):
                now = {e.batch_id for e in self.ledger.fact_entries([order_date])[order_date]}
                if {e.batch_id for e in covered} <= now:
                    raise  # not another compaction under our feet: a real failure
                continue  # another process compacted (and deleted) these entries first
            checkpoint("compact-written")
            merged = FactEntry(order_date, merged_id, top, tuple(parts))
            if not self.ledger.compact(order_date, covered, merged):
                continue  # another process compacted this date first
            checkpoint("compact-switched")
            for entry in covered:
                for part in entry.parts:
                    if part >= BUNDLE:  # it holds other dates too: freed once none names it
                        released.add((entry.batch_id, part))
                    else:
                        self.store.delete(fact_key(order_date, entry.batch_id, part, self.prefixes.warehouse))
            checkpoint("compact-cleaned")
            self._delete_strays(order_date)
            compacted.append(order_date)
        if released:
            self._delete_unnamed_bundles(released)
        if compacted:
            self._delete_stray_bundles()
        return compacted

    def _to_merge(self, order_date: str, entries: list[FactEntry]) -> list[FactEntry]:
        """The entries to merge: the oldest one whose newer entries hold at least 1/FOLD_SHARE
        of its bytes, with every newer one (at most COMPACT_MAX in all).

        So a date's entries form tiers, each a few times the size of the next: the oldest is a
        busy date's big current state, then the merges of fewer and fewer batches. A batch's
        rows are rewritten once per tier they rise through, and a big tier only once the ones
        after it have grown to a share of it. Rewriting everything after the oldest entry at
        every merge made each file's cost grow with the rows merged since the last full merge.
        """
        if self.compact_after < 2:  # nothing to leave: one entry is the most there may be
            return entries[:COMPACT_MAX]
        sizes = [self._bytes(order_date, [entry]) for entry in entries]
        for i in range(len(entries) - 1):
            if FOLD_SHARE * sum(sizes[i + 1 :]) >= sizes[i]:
                return entries[i : i + COMPACT_MAX]
        return entries[-2:]

    def _bytes(self, order_date: str, entries: Sequence[FactEntry]) -> int:
        """The size of the entries' facts files (a bundle counts whole; a gone file as 0)."""
        keys = {fact_key(order_date, e.batch_id, part, self.prefixes.warehouse) for e in entries for part in e.parts}
        return sum(stat.size for stat in map(self.store.stat, keys) if stat is not None)

    def _compact_catalog(self) -> list[str]:
        """Merge the oldest catalog entries into one (the latest row per product among them), so
        reading the catalog never costs more with the number of catalog batches. Only entries
        of finished batches are merged: an unfinished one still needs its own rows to find
        what it changed. Crash-safe as `compact`: a name derived from what it replaces, one
        ledger switch, deletion last."""
        entries = self.ledger.fact_entries([CATALOG])[CATALOG]
        if len(entries) <= self.compact_after:
            return []
        covered: list[FactEntry] = []
        for entry in entries[:COMPACT_MAX]:
            record = None if entry.batch_id.startswith("compact-") else self.ledger.get(entry.batch_id)
            if record is not None and not record.done:
                break
            covered.append(entry)
        if len(covered) < 2:
            return []
        top = covered[-1].seq
        merged_id = f"compact-{top:012d}"
        prefix = self.prefixes.warehouse
        with ExitStack() as stack:
            rows = current_catalog(self.store, covered, stack, prefix)
        write_catalog(rows, catalog_key(merged_id, prefix), self.store, self.scratch)
        checkpoint("compact-written")
        if not self.ledger.compact(CATALOG, covered, FactEntry(CATALOG, merged_id, top, (0,))):
            return []  # another process compacted the catalog first
        checkpoint("compact-switched")
        for entry in covered:
            self.store.delete(catalog_key(entry.batch_id, prefix))
        checkpoint("compact-cleaned")
        return [CATALOG]

    def _named(self, batch_id: str) -> set[int]:
        """The parts of `batch_id` that some entry of its dates still names."""
        record = self.ledger.get(batch_id)
        if record is None:
            return set()
        entries = self.ledger.fact_entries(list(record.dates))
        return {p for es in entries.values() for e in es if e.batch_id == batch_id for p in e.parts}

    def _delete_unnamed_bundles(self, bundles: set[tuple[str, int]]) -> None:
        """Delete the bundles no entry names any more. Checked after this process's own switch,
        so of processes compacting a bundle's dates at once, the last one to switch sees no
        name left and deletes it."""
        for batch_id in sorted({b for b, _ in bundles}):
            named = self._named(batch_id)
            for part in sorted(p for b, p in bundles if b == batch_id and p not in named):
                self.store.delete(fact_key("", batch_id, part, self.prefixes.warehouse))
        checkpoint("compact-bundles-cleaned")

    def _delete_stray_bundles(self) -> None:
        """Bundles no entry names that are older than any run: a crash between a switch and
        the bundle's deletion, or a batch that never committed."""
        cutoff = time.time() - STRAY_FACTS_AGE
        prefix = fact_key("", "", BUNDLE, self.prefixes.warehouse).rsplit("/", 1)[0] + "/"
        named: dict[str, set[int]] = {}
        for key in self.store.list(prefix):
            bundle = bundle_of(key, self.prefixes.warehouse)
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
                error=f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS],
                hint="nothing is lost; the next batch on these dates compacts them",
            )

    def _delete_strays(self, order_date: str) -> None:
        """Facts files of the date that no entry names and that are older than any run."""
        named = {
            fact_key(order_date, e.batch_id, part, self.prefixes.warehouse)
            for e in self.ledger.fact_entries([order_date])[order_date]
            for part in e.parts
        }
        cutoff = time.time() - STRAY_FACTS_AGE
        for key in self.store.list(fact_key(order_date, "", 0, self.prefixes.warehouse).rsplit("/", 1)[0] + "/"):
            stat = self.store.stat(key) if key not in named else None
            if stat is not None and stat.modified < cutoff:
                self.store.delete(key)

    def recover(self) -> list[str]:
        """Finish batches a crash left committed but not done; returns their ids.

        A batch that cannot be finished is marked failed (with a run record and a notification)
        instead of stopping every start-up behind it. Also removes what killed processes left in
        the scratch folders (a live process's folder is locked, so it stays).
        """
        sweep(self.workdir, keep=(LOCKS, "s3"))
        sweep(self.workdir / "s3")
        scratch_root = getattr(self.store, "scratch_root", None)
        if isinstance(scratch_root, Path):
            sweep(scratch_root)
        finished = []
        for batch in self.ledger.unfinished():
            with self.locks.hold(batch.batch_id, wait=False) as held:
                if not held:
                    continue  # another process is finishing it right now
                dates: Sequence[str] = batch.dates
                try:
                    dates = self.batch_dates(batch)
                    self.recompute(dates)
                except TRANSIENT:
                    raise
                except Exception as exc:
                    if not self._waiting_upload(batch):
                        self.ledger.mark_failed(batch.batch_id)
                        reason = f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]
                        log_event(
                            "batch.failed",
                            logging.ERROR,
                            batch_id=batch.batch_id,
                            error=reason,
                            traceback=traceback.format_exc(),
                        )
                        message = (
                            f"{batch.file}: failed while finishing its KPIs: {reason}; `orderpipe replay` retries it"
                        )
                        outcome = Outcome("failed", batch.file, batch.batch_id, batch.rows, batch.dates, message)
                        self._finish(outcome, _now())
                    continue  # a waiting file is processed by its own run, which quarantines it
                if self._waiting_upload(batch):
                    continue  # the file is still waiting: processing it will finish the batch
                self.ledger.mark_done(batch.batch_id)
                finished.append(batch.batch_id)
                # Its own run died before telling anyone: the history and the notification say it now.
                span = f" {dates[0]}…{dates[-1]}" if dates else ""
                message = f"{batch.file}: accepted (finished after an interruption), {batch.rows} rows{span}"
                self._finish(Outcome("accepted", batch.file, batch.batch_id, batch.rows, tuple(dates), message), _now())
        return finished

    def _waiting_upload(self, batch: BatchRecord) -> bool:
        """Whether the batch's file still waits in input/: the ledger has the user's name, the
        upload may wait under `NAME.2.csv` (or a shortened name)."""
        if self.store.exists(self.prefixes.input + batch.file):
            return True
        names = (PurePosixPath(k).name for k in self.store.list(self.prefixes.input))
        return any(is_upload_of(n, batch.file, batch.batch_id) for n in names)

    def stranded(self, batch_prefix: str | None = None) -> list[BatchRecord]:
        """Failed batches with no file left to replay (committed, their file already archived or
        requeued and lost to a crash): `finish` completes them from their committed facts."""
        names = {PurePosixPath(k).name for k in self.store.list(self.prefixes.input)}
        quarantined = {batch_id for _, batch_id in self._quarantined_batches()}
        return [
            b
            for b in self.ledger.failed()
            if (batch_prefix is None or b.batch_id.startswith(batch_prefix))
            and b.batch_id not in quarantined
            and not any(is_upload_of(n, b.file, b.batch_id) for n in names)
        ]

    def finish(self, batch: BatchRecord) -> Outcome:
        """Recompute a failed batch's dates and mark it done (its facts are committed)."""
        started = _now()
        try:
            with self.locks.hold(batch.batch_id):
                recomputed = self.batch_dates(batch)
                self.recompute(recomputed)
                self.ledger.mark_done(batch.batch_id)
        except TRANSIENT:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]
            message = f"{batch.file}: failed again while finishing its KPIs: {reason}"
            return self._finish(
                Outcome("failed", batch.file, batch.batch_id, batch.rows, batch.dates, message), started
            )
        return self._finish(self.accepted(batch.file, batch, None, "", won=True, dates=recomputed), started)

    # -- archive ----------------------------------------------------------------------------
    def archive_target(self, prefix: str, name: str, batch_id: str, size: int | None) -> str:
        """`prefix/name`, unless another file already holds that name (then the batch id is
        added). Every name leaves room for the report suffix within the file-name limit."""
        tag = batch_id[:12]
        target = prefix + fit_name(name, tag, reserve=len(REPORT_SUFFIX))
        existing = self._size(target)
        if existing is None or (existing == size and self._same_bytes(target, batch_id)):
            return target
        return prefix + tagged_name(name, tag, reserve=len(REPORT_SUFFIX))

    def _size(self, key: str) -> int | None:
        stat = self.store.stat(key)
        return None if stat is None else stat.size

    def _same_bytes(self, key: str, batch_id: str) -> bool:
        digest = hashlib.sha256()
        try:
            with self.store.local_copy(key) as path, path.open("rb") as stream:
                while chunk := stream.read(8 << 20):
                    digest.update(chunk)
        except (InfrastructureError, FileNotFoundError):
            return False  # gone meanwhile
        return digest.hexdigest() == batch_id

    def _archive(self, key: str, prefix: str, name: str, batch_id: str, snapshot: Snapshot) -> str:
        """Archive the bytes processed. When `key` is gone meanwhile (deleted by hand, or moved
        by an earlier attempt), the snapshot still holds them: they are archived all the same."""
        if self.store.stat(key) is None:
            log_event(
                "archive.input_gone",
                logging.WARNING,
                file=name,
                key=key,
                hint="the file left input/ before it was archived; the bytes read are archived instead",
            )
        return self._archive_as(key, prefix, name, batch_id, snapshot, snapshot.path.stat().st_size)

    def _archive_as(
        self,
        key: str,
        prefix: str,
        name: str,
        batch_id: str,
        snapshot: Snapshot | None,
        size: int | None,
        report: bytes | None = None,
    ) -> str:
        """Choose the archive name and move the file there (its report first, when it has one).

        Under a lock of the name: two different files shown under one name (an upload and a
        `NAME.2.csv` beside it) archived at once must not both pick `prefix/NAME` and the second
        replace the first, nor one's report land beside the other's file.
        """
        with self.archive_locks.hold(prefix + name):
            target = self.archive_target(prefix, name, batch_id, size)
            if report is not None:  # it quotes the file: no more readable than the bytes read
                self.store.put_bytes(target + REPORT_SUFFIX, report, like=snapshot.path if snapshot else None)
                checkpoint("after-report")
            self._move_or_keep(key, target, snapshot)
        return target

    def _move_or_keep(self, key: str, target: str, snapshot: Snapshot | None) -> None:
        """Move `key` to `target`; but if a new upload replaced `key` meanwhile, or it is gone,
        archive the bytes we processed (the snapshot), leaving a new upload for its own run."""
        current = self.store.stat(key)
        if snapshot is None or (current is not None and current == snapshot.seen):
            self.store.move(key, target)
        else:
            self.store.put_file(snapshot.path, target)

    # -- quarantine ---------------------------------------------------------------------------
    def _quarantine_report(self, key: str) -> dict[str, Any] | None:
        """The report beside a quarantined file; None when there is none or it cannot be read
        (a damaged report must keep neither its file nor the others from being replayed)."""
        try:
            report = json.loads(self.store.get_bytes(key + REPORT_SUFFIX))
        except (ValueError, FileNotFoundError):  # not JSON, not UTF-8, or gone
            return None
        except InfrastructureError:
            if self.store.exists(key + REPORT_SUFFIX):
                raise
            return None
        return report if isinstance(report, dict) else None

    def quarantined(self, batch_prefix: str | None = None) -> list[str]:
        """Keys of rejected files (all, or those whose batch id starts with `batch_prefix`)."""
        return [k for k, batch_id in self._quarantined_batches(warn=True) if batch_id.startswith(batch_prefix or "")]

    def _quarantined_batches(self, warn: bool = False) -> Iterator[tuple[str, str]]:
        """(key, batch id) of each rejected file. A file whose report is damaged is still
        found, by the hash of its bytes (the batch id of a rejected or failed file)."""
        for report_key in self.store.list(self.prefixes.rejected):
            if not report_key.endswith(REPORT_SUFFIX):
                continue
            key = report_key.removesuffix(REPORT_SUFFIX)
            if not self.store.exists(key):
                continue
            report = self._quarantine_report(key)
            if report is not None:
                yield key, str(report.get("batch_id") or "")
                continue
            if warn:
                log_event(
                    "replay.damaged_report",
                    logging.WARNING,
                    file=report_key,
                    hint="its file is replayed all the same, under its own name; the report is replaced",
                )
            yield key, self._hash_of(key)

    def remove_settled_reports(self) -> int:
        """Remove the reports left without their file by a replay interrupted as it tidied up
        (the file is counted and archived; only its report was still to go). A report whose
        batch is not done may be one being written just before its file: it stays."""
        removed = 0
        for report_key in self.store.list(self.prefixes.rejected):
            key = report_key.removesuffix(REPORT_SUFFIX)
            if key == report_key or self.store.exists(key):
                continue
            batch_id = str((self._quarantine_report(key) or {}).get("batch_id") or "")
            record = self.ledger.get(batch_id) if batch_id else None
            if record is not None and record.done:
                self.store.delete(report_key)
                removed += 1
        return removed

    def _hash_of(self, key: str) -> str:
        with self.store.local_copy(key) as path:
            return _sha256(path)

    def requeue(self, key: str, name: str | None = None) -> str:
        """Put a copy of a quarantined file into input/ under the user's name (never over a
        different waiting file; the same bytes waiting there are reused). The quarantined file
        and its report stay: `replay` removes them once the new outcome is recorded."""
        if name is None:
            report = self._quarantine_report(key) or {}
            name = str(report.get("file") or PurePosixPath(key).name)
        with self.store.local_copy(key) as path:
            digest = _sha256(path)
            return self._enqueue(path, name, lambda: digest)

    def replay(self, key: str, progress: Progress = _quiet) -> Outcome:
        """Run a quarantined file through the workflow again.

        Its quarantined copy and report are removed only once the new outcome is recorded, so
        an interruption at any moment leaves them in rejected/, and the same command finishes
        the work: the copy already in input/ is reused, and a batch an earlier attempt counted
        is settled (archived in processed/, its run recorded once) without running again.
        """
        report = self._quarantine_report(key) or {}
        name = str(report.get("file") or display_name(PurePosixPath(key).name))
        batch_id = str(report.get("batch_id") or "")
        record = self.ledger.get(batch_id) if batch_id else None
        if record is not None and record.done:
            return self._settle(key, name, record)
        outcome = self.process(self.requeue(key, name), progress)
        if outcome.archived_as and outcome.archived_as != key:
            self.store.delete(key)
            checkpoint("replay-settle")
            self.store.delete(key + REPORT_SUFFIX)
        return outcome

    def _settle(self, key: str, name: str, record: BatchRecord) -> Outcome:
        """A quarantined file whose batch is counted and done (an earlier replay of it was
        interrupted before it could tidy up, or the same bytes came again): its copy joins
        processed/, and its run is recorded unless one already says accepted."""
        with self.locks.hold(record.batch_id):
            target = self._archive_as(key, self.prefixes.processed, name, record.batch_id, None, self._size(key))
            self.store.delete(key + REPORT_SUFFIX)
        runs = self.ledger.runs(batch_id=record.batch_id)
        if any(r.status == "accepted" and r.batch_id == record.batch_id for r in runs):
            outcome = self.accepted(name, record, None, target)
            message = f"{outcome.message}; counted before, its quarantined copy is now in {target}"
            return Outcome(outcome.status, name, record.batch_id, record.rows, outcome.dates, message, None, target)
        return self._finish(self.accepted(name, record, None, target, won=True), _now())

    # -- input ------------------------------------------------------------------------------
    def submit(self, path: Path) -> str:
        """Upload a local file into input/ (atomically: the watcher never sees half a file).

        The copy is not hashed (the kernel copies where it can): a batch is named by the hash of
        the bytes read when it is processed. A hash here would be a second pass over the file.
        """
        with tempfile.NamedTemporaryFile(dir=self.scratch, delete=False) as temp:
            pass
        try:
            shutil.copyfile(path, temp.name)
            shutil.copymode(path, temp.name)  # a private file stays private in input/ and after
            # (of the user's file: the upload is gone once another process takes it)
            key = self._enqueue(Path(temp.name), path.name, functools.cache(lambda: _sha256_if_there(path)))
        finally:
            Path(temp.name).unlink(missing_ok=True)
        checkpoint("after-upload")
        return key

    def earlier_uploads(self, key: str) -> list[tuple[str, ObjectStat]]:
        """Other uploads of the same name still waiting in input/ (`x.csv` beside our
        `x.2.csv`: an earlier run interrupted after its upload), oldest first. They landed
        before `key`, so they are counted before it: otherwise the older bytes would count last
        and undo a correction."""
        family = upload_family(key)
        start = self.prefixes.input + _split_stem(family)
        found = []
        for other in self.store.list(self.prefixes.input):
            if other == key or not other.startswith(start) or "/" in other.removeprefix(self.prefixes.input):
                continue
            if upload_family(other) != family:
                continue
            stat = self.store.stat(other)
            if stat is not None:
                found.append((other, stat))
        return sorted(found, key=lambda item: (item[1].modified, item[0]))

    def _enqueue(self, local: Path, name: str, digest: Callable[[], str]) -> str:
        """`input/NAME`, or `input/NAME.2.csv`… when a different file is already waiting under that
        name: nothing waiting is ever replaced. The same bytes waiting under the name are reused
        (a rerun after a failure). The user's name is what the run history shows."""
        for n in itertools.count(1):
            if n > 1:
                candidate = tagged_name(name, str(n))
            elif (candidate := fit_name(name, "")) != name:  # too long: tagged by its bytes
                candidate = fit_name(name, digest()[:12])
            key = self.prefixes.input + candidate
            if self.store.put_new(local, key) or self._same_bytes(key, digest()):
                self._submitted[key] = (display_name(name), digest)
                return key
            if n >= 1000:
                break
        raise InfrastructureError(f"{name}: 1000 different files are waiting under this name in {self.prefixes.input}")


def _split_stem(name: str) -> str:
    """What every upload of `name` starts with: `x.` for `x.csv` (`x.csv`, `x.2.csv`…)."""
    stem, dot, _ = name.rpartition(".")
    return stem + dot if dot and stem else name


def _first_seq(entry: FactEntry) -> int:
    """The lowest seq whose rows an entry holds: a batch's own; a merged entry's from its name
    (`compact-<first>-<top>`; `compact-<top>` holds every seq up to top: 0)."""
    if not entry.batch_id.startswith("compact-"):
        return entry.seq
    first, dash, _ = entry.batch_id.removeprefix("compact-").partition("-")
    return int(first) if dash else 0


def _sha256_if_there(path: Path) -> str:
    """The hash of a file, or "" when it is gone or unreadable."""
    try:
        return _sha256(path)
    except OSError:
        return ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()
