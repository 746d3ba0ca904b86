"""The archive: the names files take, their moves, quarantine, and uploads into input/.

A file is named here, whichever folder it goes to:
- an upload: `input/NAME`, or `input/NAME.2.csv`… when a different file waits under `NAME`
  (`Archive._enqueue`): nothing waiting is ever replaced, and the same bytes are reused;
- an archived or quarantined copy: `processed/NAME` or `rejected/NAME`, with the batch id added
  when another file holds that name (`Archive.target`); every name fits the 255-byte limit
  with room for `.report.json`.

The bytes archived are the bytes processed: a file replaced or removed in input/ meanwhile is
archived from the snapshot that was read (`Snapshot`). A quarantined file keeps its report
beside it until a replay's outcome is recorded, so an interrupted replay is finished by the
same command again.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from orderpipe import outcomes
from orderpipe.adapters.workspace import BatchLocks, Workspace
from orderpipe.core.meaning import Verdicts
from orderpipe.core.names import REPORT_SUFFIX, display_name, fit_name, is_upload_of, tagged_name, upload_family
from orderpipe.core.report import ValidationReport
from orderpipe.core.window import DateWindow
from orderpipe.errors import InfrastructureError
from orderpipe.faults import checkpoint
from orderpipe.logs import log_event
from orderpipe.outcomes import Outcome
from orderpipe.ports import BatchRecord, Ledger, ObjectStat, ObjectStore, Prefixes

__all__ = ["Archive", "Snapshot", "sha256"]

#: How an upload's hash is asked for, when it is needed (it is not computed by the upload).
Digest = Callable[[], str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A private local copy of an input object, and the object's (size, mtime) when it was taken."""

    path: Path
    seen: ObjectStat | None


class Archive:
    """Uploads into input/, and archived or quarantined copies in processed/ and rejected/."""

    def __init__(
        self, store: ObjectStore, ledger: Ledger, prefixes: Prefixes, workspace: Workspace, locks: BatchLocks
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.prefixes = prefixes
        self._workspace = workspace
        self._locks = locks  # of archive names; never waited for under it: no cycle
        #: the settings a verdict depends on (`core.meaning.Verdicts`), kept in each report
        self.verdicts: Verdicts | None = None
        # input key -> (the user's name, the hash of their bytes, computed when first asked)
        self._submitted: dict[str, tuple[str, Digest]] = {}

    # -- uploads ------------------------------------------------------------------------------
    def submit(self, path: Path) -> str:
        """Upload a local file into input/ (atomically: the watcher never sees half a file).

        The copy is not hashed (the kernel copies where it can): a batch is named by the hash of
        the bytes read when it is processed. A hash here would be a second pass over the file.
        """
        with tempfile.NamedTemporaryFile(dir=self._workspace.path, delete=False) as temp:
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

    def upload_of(self, key: str) -> tuple[str, Digest | None]:
        """The user's name of an upload this process made (and how to hash their bytes), once;
        for any other key its own name and no hash."""
        name, digest = self._submitted.pop(key, (display_name(PurePosixPath(key).name), None))
        return name, digest

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

    def requeue(self, key: str, name: str | None = None) -> str:
        """Put a copy of a quarantined file into input/ under the user's name (never over a
        different waiting file; the same bytes waiting there are reused). The quarantined file
        and its report stay: `replay` removes them once the new outcome is recorded."""
        if name is None:
            report = self.report_of(key) or {}
            name = str(report.get("file") or PurePosixPath(key).name)
        with self.store.local_copy(key) as path:
            digest = sha256(path)
            return self._enqueue(path, name, lambda: digest)

    def _enqueue(self, local: Path, name: str, digest: Digest) -> str:
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

    # -- archive names and moves --------------------------------------------------------------
    def target(self, prefix: str, name: str, batch_id: str, size: int | None) -> str:
        """`prefix/name`, unless another file already holds that name (then the batch id is
        added). Every name leaves room for the report suffix within the file-name limit."""
        tag = batch_id[:12]
        target = prefix + fit_name(name, tag, reserve=len(REPORT_SUFFIX))
        existing = self._size(target)
        if existing is None or (existing == size and self._same_bytes(target, batch_id)):
            return target
        return prefix + tagged_name(name, tag, reserve=len(REPORT_SUFFIX))

    def to_processed(self, key: str, name: str, batch_id: str, snapshot: Snapshot) -> str:
        """Archive the bytes processed into processed/. When `key` is gone meanwhile (deleted by
        hand, or moved by an earlier attempt), the snapshot still holds them: they are archived
        all the same."""
        if self.store.stat(key) is None:
            log_event(
                "archive.input_gone",
                logging.WARNING,
                file=name,
                key=key,
                hint="the file left input/ before it was archived; the bytes read are archived instead",
            )
        size = snapshot.path.stat().st_size
        return self._archive_as(key, self.prefixes.processed, name, batch_id, snapshot, size)

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
        with self._locks.hold(prefix + name):
            target = self.target(prefix, name, batch_id, size)
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
    @property
    def checked_with(self) -> str:
        """The digest of the settings a verdict depends on (`core.meaning.checked_with`)."""
        return self.verdicts.checked_with() if self.verdicts else ""

    def reject(
        self,
        key: str,
        name: str,
        report: ValidationReport,
        batch_id: str,
        snapshot: Snapshot | None,
        window: DateWindow | None = None,
    ) -> str:
        """Quarantine an invalid file in rejected/, its report (with its batch id and the digest
        of what its verdict was reached with: the settings, and `window` as evaluated) beside it."""
        size = snapshot.path.stat().st_size if snapshot else self._size(key)
        codes = [issue.code for issue in report.errors]
        digest = self.verdicts.checked_with(codes, window) if self.verdicts else ""
        body = json.dumps({**report.to_dict(), "batch_id": batch_id, "checked_with": digest}, indent=2)
        return self._archive_as(key, self.prefixes.rejected, name, batch_id, snapshot, size, body.encode())

    def unchanged_since_rejected(self, key: str) -> bool:
        """A rejected file (not a failed one) whose bytes and verdict settings are those its
        report was made with: checking it again would give the same report."""
        report = self.report_of(key) or {}
        if report.get("verdict") != "invalid":  # a failed file's report says why it failed, not what is wrong
            return False
        codes = [str(issue.get("code")) for issue in report.get("errors") or () if isinstance(issue, dict)]
        if self.verdicts is None or report.get("checked_with") != self.verdicts.checked_now(codes):
            return False  # a date window that moved with the clock changes it as a setting would
        return report.get("batch_id") == self._hash_of(key)

    def batch_id_of(self, key: str) -> str:
        """A rejected file's batch id: its report's, else the hash of its bytes."""
        report = self.report_of(key) or {}
        return str(report.get("batch_id") or self._hash_of(key))

    def dismiss(self, key: str, batch_id: str) -> Outcome:
        """Set a rejected file aside (call under its batch's lock): its run is recorded as
        dismissed, then it moves to dismissed/ with its report. A rerun after a kill finishes
        the move and records nothing twice."""
        report = self.report_of(key) or {}
        name = str(report.get("file") or display_name(PurePosixPath(key).name))
        target = self.dismissed_as(key, batch_id)
        outcome = outcomes.dismissed(name, batch_id, target)
        if not any(run.status == "dismissed" for run in self.ledger.runs_of(batch_id)):
            self.ledger.record_run(outcomes.run_record(outcome, outcomes.now()))
        checkpoint("dismiss-recorded")
        self.set_aside(key, target)
        return outcome

    def dismissed_as(self, key: str, batch_id: str) -> str:
        """The name a rejected file takes in dismissed/."""
        return self.target(self.prefixes.dismissed, PurePosixPath(key).name, batch_id, self._size(key))

    def set_aside(self, key: str, target: str) -> None:
        """Move a rejected file to `target` in dismissed/ with its report. Each step is safe to
        repeat, and a kill between two leaves at most a report without its file in rejected/
        (which `remove_settled_reports` deletes): the file is never left without one."""
        report = key + REPORT_SUFFIX
        if self.store.exists(report):
            self.store.put_bytes(target + REPORT_SUFFIX, self.store.get_bytes(report))
        checkpoint("dismiss-report-copied")
        if self.store.exists(key):
            self.store.move(key, target)
        checkpoint("dismiss-file-moved")
        self.store.delete(report)

    def quarantine_failed(self, key: str, name: str, batch_id: str, reason: str) -> str:
        """Quarantine a file whose batch cannot be finished, with a report that gives its reason
        and how to replay it; "" when the file is no longer in input/."""
        if self.store.stat(key) is None:
            return ""
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
        return self._archive_as(key, self.prefixes.rejected, name, tag, None, self._size(key), report)

    def report_of(self, key: str) -> dict[str, Any] | None:
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
        return [k for k, batch_id in self.quarantined_batches(warn=True) if batch_id.startswith(batch_prefix or "")]

    def waiting_upload(self, batch: BatchRecord) -> bool:
        """Whether the batch's file still waits in input/: the ledger has the user's name, the
        upload may wait under `NAME.2.csv` (or a shortened name)."""
        if self.store.exists(self.prefixes.input + batch.file):
            return True
        names = (PurePosixPath(k).name for k in self.store.list(self.prefixes.input))
        return any(is_upload_of(n, batch.file, batch.batch_id) for n in names)

    def quarantined_batches(self, warn: bool = False) -> Iterator[tuple[str, str]]:
        """(key, batch id) of each rejected file. A file whose report is damaged is still
        found, by the hash of its bytes (the batch id of a rejected or failed file)."""
        for report_key in self.store.list(self.prefixes.rejected):
            if not report_key.endswith(REPORT_SUFFIX):
                continue
            key = report_key.removesuffix(REPORT_SUFFIX)
            if not self.store.exists(key):
                continue
            report = self.report_of(key)
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

    def settle(self, key: str, name: str, batch_id: str) -> str:
        """A quarantined file whose batch is counted: its copy joins processed/, its report goes."""
        target = self._archive_as(key, self.prefixes.processed, name, batch_id, None, self._size(key))
        self.store.delete(key + REPORT_SUFFIX)
        return target

    def drop_quarantined(self, key: str) -> None:
        """Remove a quarantined copy, then its report, once its replay's outcome is recorded (a
        report left alone by an interruption in between goes with `remove_settled_reports`)."""
        self.store.delete(key)
        checkpoint("replay-settle")
        self.store.delete(key + REPORT_SUFFIX)

    def remove_settled_reports(self) -> int:
        """Remove the reports left without their file by a replay or a dismissal interrupted as
        it tidied up (the file is counted and archived, or set aside; only its report was still
        to go). A report whose batch is neither may be one being written just before its file:
        it stays."""
        removed = 0
        for report_key in self.store.list(self.prefixes.rejected):
            key = report_key.removesuffix(REPORT_SUFFIX)
            if key == report_key or self.store.exists(key):
                continue
            batch_id = str((self.report_of(key) or {}).get("batch_id") or "")
            record = self.ledger.get(batch_id) if batch_id else None
            dismissed = bool(batch_id) and any(run.status == "dismissed" for run in self.ledger.runs_of(batch_id))
            if (record is not None and record.done) or dismissed:
                self.store.delete(report_key)
                removed += 1
        return removed

    def _hash_of(self, key: str) -> str:
        with self.store.local_copy(key) as path:
            return sha256(path)


def _split_stem(name: str) -> str:
    """What every upload of `name` starts with: `x.` for `x.csv` (`x.csv`, `x.2.csv`…)."""
    stem, dot, _ = name.rpartition(".")
    return stem + dot if dot and stem else name


def _sha256_if_there(path: Path) -> str:
    """The hash of a file, or "" when it is gone or unreadable."""
    try:
        return sha256(path)
    except OSError:
        return ""


def sha256(path: Path) -> str:
    """The SHA-256 of a local file, read in 8 MB chunks: a batch id."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()
