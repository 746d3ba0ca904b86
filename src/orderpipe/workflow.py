"""The workflow for one file (SPEC §3): validate → stage facts → commit → recompute → archive → notify.

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
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from orderpipe.core.kpis import compute_kpis, current_orders
from orderpipe.core.report import ValidationReport
from orderpipe.errors import InfrastructureError
from orderpipe.faults import checkpoint
from orderpipe.ingest import ROWS_PER_PART, Inspection, inspect_file, load_facts, stage_facts
from orderpipe.ports import (
    BatchRecord,
    KpiStore,
    Ledger,
    Notification,
    Notifier,
    ObjectStat,
    ObjectStore,
    RunRecord,
)

__all__ = ["Outcome", "Pipeline", "Prefixes", "Progress"]

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
    """What happened to one file; `status` is accepted, rejected or duplicate."""

    status: str
    file: str
    batch_id: str
    rows: int
    dates: tuple[str, ...]
    message: str
    report: ValidationReport | None = None
    archived_as: str = ""


SCRATCH_MAX_AGE = 6 * 3600


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
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.kpis = kpis
        self.notifier = notifier
        self.categories = tuple(categories)
        self.workdir = workdir
        self.prefixes = prefixes
        self.rows_per_part = rows_per_part

    # -- the workflow -------------------------------------------------------------------
    def process(self, key: str, progress: Progress = _quiet) -> Outcome:
        """Run one object under input/ through the whole workflow."""
        started = _now()
        name = PurePosixPath(key).name
        with self.inspected(key, progress) as (inspection, scratch, snapshot):
            batch_id, report = inspection.batch_id, inspection.report
            existing = self.ledger.get(batch_id)
            if existing is not None and existing.done:
                archived = self._archive(key, self.prefixes.processed, batch_id, snapshot)
                message = (
                    f"{name}: same bytes as {existing.file} (batch {batch_id[:12]}), already counted; nothing changed"
                )
                outcome = Outcome("duplicate", name, batch_id, existing.rows, existing.dates, message, report, archived)
                return self._finish(outcome, started)
            if existing is None:
                if not report.valid:
                    return self._reject(key, report, batch_id, started, snapshot)
                existing = self.commit(name, inspection, scratch, progress)
            progress("recomputing KPIs", 0, 1)
            self.recompute(existing.dates)
            checkpoint("after-recompute")
            archived = self._archive(key, self.prefixes.processed, batch_id, snapshot)
            checkpoint("after-archive")
        self.ledger.mark_done(batch_id)
        checkpoint("after-done")
        return self._finish(self.accepted(name, existing, report, archived), started)

    @contextmanager
    def inspected(
        self, key: str, progress: Progress = _quiet, version: str | None = None
    ) -> Iterator[tuple[Inspection, Path, Snapshot]]:
        """The file's verdict, with a scratch folder (its stage) and a private snapshot of its
        bytes, both kept until the block ends."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        seen = self.store.stat(key)
        with tempfile.TemporaryDirectory(dir=self.workdir) as scratch, self.store.snapshot(key, version) as path:
            if version is None and self.store.stat(key) != seen:
                raise InfrastructureError(f"{key} changed while it was being read; it will be read again")
            progress("validating", 0, 1)
            inspection = inspect_file(path, PurePosixPath(key).name, self.categories, Path(scratch))
            checkpoint("after-inspect")
            yield inspection, Path(scratch), Snapshot(path, seen)

    def commit(self, name: str, inspection: Inspection, scratch: Path, progress: Progress = _quiet) -> BatchRecord:
        """Stage the facts of a valid file and commit the batch (its facts become visible)."""
        report = inspection.report
        assert inspection.stage is not None and report.valid
        expected = len(report.dates) * (report.rows // self.rows_per_part + 1)
        written = iter(range(1, expected + 1))

        def part_written() -> None:
            checkpoint("facts-part")
            progress("staging facts", next(written, expected), expected)

        parts = stage_facts(
            inspection.stage,
            inspection.batch_id,
            report.rows,
            self.store,
            scratch,
            self.rows_per_part,
            part_written,
            self.prefixes.warehouse,
        )
        checkpoint("before-commit")
        record = self.ledger.commit(inspection.batch_id, name, report.rows, parts)
        checkpoint("after-commit")
        return record

    @staticmethod
    def accepted(name: str, batch: BatchRecord, report: ValidationReport | None, archived: str) -> Outcome:
        dates = batch.dates
        if batch.file != name:  # another file with the same bytes won the commit
            message = f"{name}: same bytes as {batch.file} (batch {batch.batch_id[:12]}), counted once"
            return Outcome("duplicate", name, batch.batch_id, batch.rows, dates, message, report, archived)
        span = f" {dates[0]}…{dates[-1]}" if dates else ""
        message = f"{name}: accepted, {batch.rows} rows over {len(dates)} date(s){span}"
        return Outcome("accepted", name, batch.batch_id, batch.rows, dates, message, report, archived)

    def _reject(
        self, key: str, report: ValidationReport, batch_id: str, started: str, snapshot: Snapshot | None = None
    ) -> Outcome:
        name = PurePosixPath(key).name
        size = snapshot.path.stat().st_size if snapshot else self._size(key)
        target = self.archive_target(self.prefixes.rejected, name, batch_id, size)
        body = {**report.to_dict(), "batch_id": batch_id}
        self.store.put_bytes(target + ".report.json", json.dumps(body, indent=2).encode())
        checkpoint("after-report")
        self._move_or_keep(key, target, snapshot)
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
    def recompute(self, dates: Sequence[str]) -> list[str]:
        """Recompute and store the KPIs of `dates`; returns the dates a newer version kept."""
        if not dates:
            return []
        entries = self.ledger.fact_entries(sorted(set(dates)))
        shared = {d for d, e in entries.items() if len(e) > 1}
        with ExitStack() as stack:
            facts = load_facts(self.store, entries, stack, self.prefixes.warehouse)
            results = compute_kpis(current_orders(facts, shared), list(entries))
        checkpoint("before-kpi-write")
        return self.kpis.write({d: (len(entries[d]), results[d]) for d in entries})

    def recover(self) -> list[str]:
        """Finish batches a crash left committed but not done; returns their ids.

        Also clears scratch files a killed process left (only old ones: another process may
        be at work in the same home).
        """
        cutoff = time.time() - SCRATCH_MAX_AGE
        for leftover in self.workdir.glob("*") if self.workdir.exists() else ():
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
        finished = []
        for batch in self.ledger.unfinished():
            self.recompute(batch.dates)
            key = self.prefixes.input + batch.file
            if self.store.exists(key):
                continue  # the file is still waiting: processing it will finish the batch
            self.ledger.mark_done(batch.batch_id)
            finished.append(batch.batch_id)
        return finished

    # -- archive ----------------------------------------------------------------------------
    def archive_target(self, prefix: str, name: str, batch_id: str, size: int | None) -> str:
        """`prefix/name`, unless another file already holds that name (then the batch id is added)."""
        target = prefix + name
        existing = self._size(target)
        if existing is None or (existing == size and self._same_bytes(target, batch_id)):
            return target
        stem, dot, suffix = name.rpartition(".")
        return f"{prefix}{stem}.{batch_id[:12]}.{suffix}" if dot else f"{prefix}{name}.{batch_id[:12]}"

    def _size(self, key: str) -> int | None:
        stat = self.store.stat(key)
        return None if stat is None else stat.size

    def _same_bytes(self, key: str, batch_id: str) -> bool:
        digest = hashlib.sha256()
        with self.store.local_copy(key) as path, path.open("rb") as stream:
            while chunk := stream.read(8 << 20):
                digest.update(chunk)
        return digest.hexdigest() == batch_id

    def _archive(self, key: str, prefix: str, batch_id: str, snapshot: Snapshot | None = None) -> str:
        name = PurePosixPath(key).name
        size = snapshot.path.stat().st_size if snapshot else self._size(key)
        if size is None or self.store.stat(key) is None:  # moved by an earlier, interrupted attempt
            return prefix + name
        target = self.archive_target(prefix, name, batch_id, size)
        self._move_or_keep(key, target, snapshot)
        return target

    def _move_or_keep(self, key: str, target: str, snapshot: Snapshot | None) -> None:
        """Move `key` to `target`; but if a new upload replaced `key` meanwhile, archive the bytes
        we processed (the snapshot) and leave the new upload where it is, for its own run."""
        current = self.store.stat(key)
        if snapshot is None or current is None or current == snapshot.seen:
            self.store.move(key, target)
        else:
            self.store.put_file(snapshot.path, target)

    # -- quarantine ---------------------------------------------------------------------------
    def quarantined(self, batch_prefix: str | None = None) -> list[str]:
        """Keys of rejected files (all, or those whose batch id starts with `batch_prefix`)."""
        keys = []
        for report_key in self.store.list(self.prefixes.rejected):
            if not report_key.endswith(".report.json"):
                continue
            key = report_key.removesuffix(".report.json")
            batch_id = json.loads(self.store.get_bytes(report_key)).get("batch_id", "")
            if (batch_prefix is None or batch_id.startswith(batch_prefix)) and self.store.exists(key):
                keys.append(key)
        return keys

    def requeue(self, key: str) -> str:
        """Move a quarantined file back into input/; its old report goes."""
        target = self.prefixes.input + PurePosixPath(key).name
        self.store.move(key, target)
        self.store.delete(key + ".report.json")
        return target

    # -- input ------------------------------------------------------------------------------
    def submit(self, path: Path) -> str:
        """Upload a local file into input/ (atomically: the watcher never sees half a file)."""
        key = self.prefixes.input + path.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.workdir, delete=False) as temp, path.open("rb") as source:
            shutil.copyfileobj(source, temp, 8 << 20)
        self.store.put_file(Path(temp.name), key)
        checkpoint("after-upload")
        return key
