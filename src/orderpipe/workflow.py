"""The workflow for one file: validate → stage facts → commit → recompute → compact → archive →
record and notify.

This is where the processing semantics live, once, above the ports. Every step is safe to
repeat, so a kill -9 anywhere followed by a retry ends as an uninterrupted run would:

- the batch id is the SHA-256 of the bytes; an accepted batch is never counted twice;
- facts are staged under names derived from the batch (a retry overwrites them) and are
  invisible until the ledger commit gives the batch its sequence number;
- KPIs of a date are recomputed from all committed facts of that date, latest batch winning
  per order id, and written under a version that only grows (the highest seq read for the
  date), so a slower, staler recompute can never overwrite a newer one.

`Pipeline` holds the order of the steps: of one file (`process`), of a replay and of start-up
recovery. The work of each step is done in its room:
- `kpi_engine.py`: the KPIs of a date, recomputed, and what a process keeps between files;
- `warehouse.py`: where facts files go, and compaction;
- `archive.py`: uploads into input/, archive and quarantine names and moves;
- `outcomes.py`: what an outcome says, and what the run history and notification keep of it.
"""

from __future__ import annotations

import logging
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from orderpipe import outcomes
from orderpipe.adapters.workspace import BatchLocks, Workspace, sweep
from orderpipe.archive import Archive, Snapshot
from orderpipe.catalogs import product_index
from orderpipe.core.meaning import Verdicts
from orderpipe.core.names import display_name, is_upload_of
from orderpipe.core.report import ValidationReport
from orderpipe.core.shape import SEED_SHAPE, InputShape
from orderpipe.errors import InfrastructureError, TransientError
from orderpipe.faults import checkpoint
from orderpipe.ingest import ROWS_PER_PART, Inspection, inspect_file
from orderpipe.kpi_engine import KpiEngine
from orderpipe.logs import log_event
from orderpipe.outcomes import Outcome, reason_of, run_report
from orderpipe.ports import BatchRecord, KpiStore, Ledger, Notifier, ObjectStat, ObjectStore, Prefixes
from orderpipe.progress import UNKNOWN, Progress, no_progress
from orderpipe.settings_record import SettingsRecord
from orderpipe.warehouse import COMPACT_AFTER, Warehouse

__all__ = ["Outcome", "Pipeline", "Prefixes", "Progress", "run_report"]

#: Errors that say nothing about the file (a full disk, a lost connection, a busy database):
#: the file waits and is tried again. Any other error is the file's own failure.
TRANSIENT = (TransientError, OSError, MemoryError)
LOCKS = "locks"
_PREFIXES = Prefixes()


class Pipeline:
    """What the faces (`cli.py`, `watch.py`, `tasks.py`) call: one file through the workflow, a
    replay, start-up recovery. Each step's work is done by a room: `engine` (the KPIs),
    `warehouse` (facts files, compaction), `archive` (uploads, names, moves, quarantine)."""

    def __init__(
        self,
        store: ObjectStore,
        ledger: Ledger,
        kpis: KpiStore,
        notifier: Notifier,
        categories: Sequence[str],
        workdir: Path,
        prefixes: Prefixes = _PREFIXES,
        rows_per_part: int = ROWS_PER_PART,
        compact_after: int = COMPACT_AFTER,
        shape: InputShape = SEED_SHAPE,
    ) -> None:
        self.shape = shape  # how input files are read; the seed's format by default
        self.store = store
        self.ledger = ledger
        self.kpis = kpis
        self.notifier = notifier
        self.categories = tuple(categories)
        self.workdir = workdir
        self.prefixes = prefixes
        self.locks = BatchLocks(workdir / LOCKS)
        self._workspace = Workspace(workdir)
        self.engine = KpiEngine(store, ledger, kpis, shape, prefixes.warehouse)
        self.warehouse = Warehouse(
            store, ledger, shape, prefixes.warehouse, self._workspace, rows_per_part, compact_after
        )
        self.archive = Archive(store, ledger, prefixes, self._workspace, BatchLocks(workdir / LOCKS / "archive"))
        self.settings_record = SettingsRecord(store, shape, prefixes.warehouse, workdir)
        self.archive.verdicts = Verdicts(self.categories, shape)

    @property
    def scratch(self) -> Path:
        """This process's own scratch folder (swept by the next start-up if it is killed)."""
        return self._workspace.path

    @property
    def rows_per_part(self) -> int:
        """Rows per facts slice: of the files read, and of the merged files compaction writes."""
        return self.warehouse.rows_per_part

    @rows_per_part.setter
    def rows_per_part(self, rows: int) -> None:
        self.warehouse.rows_per_part = rows

    @property
    def compact_after(self) -> int:
        """A date read from more facts entries than this is compacted (`Warehouse.compact`)."""
        return self.warehouse.compact_after

    @compact_after.setter
    def compact_after(self, entries: int) -> None:
        self.warehouse.compact_after = entries

    # -- one file -------------------------------------------------------------------------
    def process(self, key: str, progress: Progress = no_progress) -> Outcome:
        """Run one object under input/ through the whole workflow.

        A failure of the infrastructure leaves the file waiting and raises. Any other failure is
        the batch's own: it is marked `failed`, quarantined with its reason for `replay`, and
        the files behind it go on.
        """
        started = outcomes.now()
        name, digest = self.archive.upload_of(key)
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
        """Inspect the file, then under its batch's lock: a duplicate is archived, an invalid
        file quarantined, a valid one counted (`_count`)."""
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
                    progress("archiving", 0, UNKNOWN)  # a duplicate's bytes are compared first
                    archived = self.archive.to_processed(key, name, batch_id, snapshot)
                    return self._finish(outcomes.duplicate(name, existing, report, archived), started)
                if existing is None and not report.valid:
                    return self._reject(key, name, inspection, snapshot, started)
                return self._count(key, name, inspection, snapshot, existing, started, progress)

    def _count(
        self,
        key: str,
        name: str,
        inspection: Inspection,
        snapshot: Snapshot,
        existing: BatchRecord | None,
        started: str,
        progress: Progress,
    ) -> Outcome:
        """A valid file, under its batch's lock: commit (unless an interrupted run of it did) →
        recompute its dates → compact them → archive → mark done → record and notify."""
        batch_id = inspection.batch_id
        if existing is None:
            if self.store.stat(key) != snapshot.seen:
                raise InfrastructureError(
                    f"{name} changed while it was being processed; nothing was counted, it will be read again"
                )
            existing = self.commit(name, inspection, progress)  # the user's name, not the upload's
        progress("recomputing KPIs", 0, UNKNOWN)
        recomputed = self.engine.dates_of(existing)
        self.recompute(recomputed, inspection)
        checkpoint("after-recompute")
        self.warehouse.compact_quietly(existing.dates)
        archived = self.archive.to_processed(key, name, batch_id, snapshot)
        checkpoint("after-archive")
        self.ledger.mark_done(batch_id)
        checkpoint("after-done")
        # Recorded under the lock: a process that waited for it then finds the record, and
        # reports nothing of its own for the same upload.
        report, unjoined = inspection.report, self.engine.unjoined  # (at relational grain: what waits)
        outcome = outcomes.accepted(name, existing, report, archived, won=True, dates=recomputed, unjoined=unjoined)
        return self._finish(outcome, started)

    def _taken_elsewhere(self, name: str, batch_id: str, report: ValidationReport | None) -> Outcome | None:
        """What another process recorded for the batch, as this process's outcome (nothing is
        recorded or sent again); None when no process has recorded it yet."""
        return outcomes.taken_elsewhere(name, batch_id, report, self.ledger.runs_of(batch_id))

    def _fail(self, key: str, name: str, batch_id: str, exc: Exception, started: str) -> Outcome:
        """Quarantine a file whose batch cannot be finished, with its reason, so that it never
        blocks the files behind it; `replay` retries it once the cause is fixed."""
        reason = reason_of(exc)
        log_event(
            "batch.failed", logging.ERROR, file=name, batch_id=batch_id, error=reason, traceback=traceback.format_exc()
        )
        record = self.ledger.get(batch_id) if batch_id else None
        if record is not None and record.done:
            raise exc  # counted and archived already: nothing to quarantine
        if record is not None:
            self.ledger.mark_failed(batch_id)
        kept_as = self.archive.quarantine_failed(key, name, batch_id, reason)
        return self._finish(outcomes.failed(name, batch_id, record, reason, kept_as), started)

    @contextmanager
    def inspected(
        self, key: str, progress: Progress = no_progress, version: str | None = None
    ) -> Iterator[tuple[Inspection, Path, Snapshot]]:
        """The file's verdict, with a scratch folder (its stage) and a private snapshot of its
        bytes, both kept until the block ends."""
        seen = self.store.stat(key)
        with tempfile.TemporaryDirectory(dir=self.scratch) as scratch, self.store.snapshot(key, version) as path:
            if version is None and self.store.stat(key) != seen:
                raise InfrastructureError(f"{key} changed while it was being read; it will be read again")
            name, stage = display_name(PurePosixPath(key).name), Path(scratch)
            # Any file, any shape (a products file is a catalog batch): positional, as tests wrap it.
            inspection = inspect_file(path, name, self.categories, stage, self.rows_per_part, self.shape, progress)
            checkpoint("after-inspect")
            yield inspection, stage, Snapshot(path, seen)

    def commit(self, name: str, inspection: Inspection, progress: Progress = no_progress) -> BatchRecord:
        """Store the facts of a valid file and commit the batch (its facts become visible)."""
        report = inspection.report
        assert report.valid
        self.settings_record.ensure()  # the first batch records what its facts mean
        table = inspection.table()
        if table is not None:
            # A catalog, header or line batch takes a seq like any batch, under the ledger's
            # `catalog`, `headers` or `lines` key, and from then on every KPI computation reads it.
            self.warehouse.publish_table(*table, inspection.batch_id)
            record = self.ledger.commit(inspection.batch_id, name, report.rows, {table[0]: [0]})
            checkpoint("after-commit")
            return record
        facts = inspection.facts
        assert facts is not None
        if facts.rows != report.rows:
            raise InfrastructureError(
                f"staged {facts.rows} rows but {report.rows} were validated; nothing was committed"
            )
        if self.shape.catalog:  # before the commit: once the batch is visible, so are its products
            self.ledger.index_products(product_index(facts.paths))
            checkpoint("after-index")
        parts = self.warehouse.publish(
            facts, inspection.batch_id, on_file=lambda done, total: progress("staging facts", done, total)
        )
        checkpoint("before-commit")
        record = self.ledger.commit(inspection.batch_id, name, report.rows, parts)
        checkpoint("after-commit")
        return record

    def _reject(self, key: str, name: str, inspection: Inspection, snapshot: Snapshot, started: str) -> Outcome:
        report, batch_id = inspection.report, inspection.batch_id
        target = self.archive.reject(key, name, report, batch_id, snapshot, inspection.window)
        checkpoint("after-quarantine")
        return self._finish(outcomes.rejected(name, batch_id, report, target), started)

    def _finish(self, outcome: Outcome, started: str) -> Outcome:
        """Record the outcome in the run history, then send it."""
        self.ledger.record_run(outcomes.run_record(outcome, started))
        checkpoint("before-notify")
        self.notifier.notify(outcomes.notification(outcome))
        return outcome

    #: The outcome of a batch counted (or of the same bytes counted under another name).
    accepted = staticmethod(outcomes.accepted)

    # -- the rooms' work, as the faces ask for it ---------------------------------------------
    def batch_dates(self, batch: BatchRecord) -> list[str]:
        """The dates whose KPIs a batch changes (`KpiEngine.dates_of`)."""
        return self.engine.dates_of(batch)

    def recompute(self, dates: Sequence[str], staged: Inspection | None = None) -> list[str]:
        """Recompute and store the KPIs of `dates` (`KpiEngine.recompute`); returns the dates a
        newer version kept."""
        return self.engine.recompute(dates, staged)

    def compact(self, dates: Sequence[str]) -> list[str]:
        """Merge the facts entries of busy dates (`Warehouse.compact`); returns those compacted."""
        return self.warehouse.compact(dates)

    def compact_quietly(self, dates: Sequence[str]) -> None:
        """`compact`, logging a failure instead of raising it (`Warehouse.compact_quietly`)."""
        self.warehouse.compact_quietly(dates)

    def submit(self, path: Path) -> str:
        """Upload a local file into input/; returns its key (`Archive.submit`)."""
        return self.archive.submit(path)

    def earlier_uploads(self, key: str) -> list[tuple[str, ObjectStat]]:
        """Uploads of the same name waiting before `key`, oldest first (`Archive.earlier_uploads`)."""
        return self.archive.earlier_uploads(key)

    def archive_target(self, prefix: str, name: str, batch_id: str, size: int | None) -> str:
        """The name a file takes in processed/ or rejected/ (`Archive.target`)."""
        return self.archive.target(prefix, name, batch_id, size)

    def quarantined(self, batch_prefix: str | None = None) -> list[str]:
        """Keys of rejected files, all or of one batch (`Archive.quarantined`)."""
        return self.archive.quarantined(batch_prefix)

    def requeue(self, key: str, name: str | None = None) -> str:
        """A copy of a quarantined file back into input/ (`Archive.requeue`)."""
        return self.archive.requeue(key, name)

    def remove_settled_reports(self) -> int:
        """Reports a replay left without their file (`Archive.remove_settled_reports`)."""
        return self.archive.remove_settled_reports()

    # -- replay ----------------------------------------------------------------------------------
    def replay(self, key: str, progress: Progress = no_progress) -> Outcome:
        """Run a quarantined file through the workflow again.

        Its quarantined copy and report are removed only once the new outcome is recorded, so
        an interruption at any moment leaves them in rejected/, and the same command finishes
        the work: the copy already in input/ is reused, and a batch an earlier attempt counted
        is settled (archived in processed/, its run recorded once) without running again.
        """
        report = self.archive.report_of(key) or {}
        name = str(report.get("file") or display_name(PurePosixPath(key).name))
        batch_id = str(report.get("batch_id") or "")
        record = self.ledger.get(batch_id) if batch_id else None
        if record is not None and record.done:
            return self._settle(key, name, record)
        outcome = self.process(self.archive.requeue(key, name), progress)
        if outcome.archived_as and outcome.archived_as != key:
            self.archive.drop_quarantined(key)
        return outcome

    def _settle(self, key: str, name: str, record: BatchRecord) -> Outcome:
        """A quarantined file whose batch is counted and done (an earlier replay of it was
        interrupted before it could tidy up, or the same bytes came again): its copy joins
        processed/, and its run is recorded unless one already says accepted."""
        with self.locks.hold(record.batch_id):
            target = self.archive.settle(key, name, record.batch_id)
        runs = self.ledger.runs_of(record.batch_id)
        if any(r.status == "accepted" and r.batch_id == record.batch_id for r in runs):
            outcome = outcomes.accepted(name, record, None, target)
            message = f"{outcome.message}; counted before, its quarantined copy is now in {target}"
            return Outcome(outcome.status, name, record.batch_id, record.rows, outcome.dates, message, None, target)
        return self._finish(outcomes.accepted(name, record, None, target, won=True), outcomes.now())

    def unchanged_since_rejected(self, key: str) -> bool:
        """Replaying this rejected file would reject it again (`Archive`)."""
        return self.archive.unchanged_since_rejected(key)

    def dismiss(self, key: str) -> Outcome:
        """Set a rejected file aside (`Archive.dismiss`), under its batch's lock."""
        batch_id = self.archive.batch_id_of(key)
        with self.locks.hold(batch_id):
            return self.archive.dismiss(key, batch_id)

    # -- recovery --------------------------------------------------------------------------------
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
                    if not self.archive.waiting_upload(batch):
                        self._failed_in_recovery(batch, exc)
                    continue  # a waiting file is processed by its own run, which quarantines it
                if self.archive.waiting_upload(batch):
                    continue  # the file is still waiting: processing it will finish the batch
                self.ledger.mark_done(batch.batch_id)
                finished.append(batch.batch_id)
                # Its own run died before telling anyone: the history and the notification say it now.
                self._finish(outcomes.finished_late(batch, dates), outcomes.now())
        return finished

    def _failed_in_recovery(self, batch: BatchRecord, exc: Exception) -> None:
        """Mark a batch recovery could not finish failed, and say so (its file is gone)."""
        self.ledger.mark_failed(batch.batch_id)
        reason = reason_of(exc)
        log_event(
            "batch.failed", logging.ERROR, batch_id=batch.batch_id, error=reason, traceback=traceback.format_exc()
        )
        self._finish(outcomes.not_finished(batch, reason), outcomes.now())

    def stranded(self, batch_prefix: str | None = None) -> list[BatchRecord]:
        """Failed batches with no file left to replay (committed, their file already archived or
        requeued and lost to a crash): `finish` completes them from their committed facts."""
        names = {PurePosixPath(k).name for k in self.store.list(self.prefixes.input)}
        quarantined = {batch_id for _, batch_id in self.archive.quarantined_batches()}
        return [
            b
            for b in self.ledger.failed()
            if (batch_prefix is None or b.batch_id.startswith(batch_prefix))
            and b.batch_id not in quarantined
            and not any(is_upload_of(n, b.file, b.batch_id) for n in names)
        ]

    def finish(self, batch: BatchRecord) -> Outcome:
        """Recompute a failed batch's dates and mark it done (its facts are committed)."""
        started = outcomes.now()
        try:
            with self.locks.hold(batch.batch_id):
                recomputed = self.batch_dates(batch)
                self.recompute(recomputed)
                self.ledger.mark_done(batch.batch_id)
        except TRANSIENT:
            raise
        except Exception as exc:
            return self._finish(outcomes.not_finished(batch, reason_of(exc), again=True), started)
        outcome = outcomes.accepted(
            batch.file, batch, None, "", won=True, dates=recomputed, unjoined=self.engine.unjoined
        )
        return self._finish(outcome, started)
