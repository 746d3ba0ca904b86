"""What became of a file: its outcome, the message a person reads, and what the run history
and the notification keep of it.

The workflow decides which outcome a file has; this module only says it, the same way from
every path (a run, `watch`, a replay, start-up recovery, the ECS task).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from orderpipe.catalogs import CATALOG
from orderpipe.core.relational import describe_waiting
from orderpipe.core.report import ValidationReport
from orderpipe.ports import BatchRecord, Notification, RunRecord
from orderpipe.relational import HEADERS, TABLE_KEYS

__all__ = [
    "MAX_REASON_CHARS",
    "Outcome",
    "accepted",
    "duplicate",
    "failed",
    "finished_late",
    "not_finished",
    "notification",
    "now",
    "reason_of",
    "rejected",
    "run_record",
    "run_report",
    "taken_elsewhere",
]

#: An error's text is cut to this many characters in a message, a report and the run history.
MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one file; `status` is accepted, rejected, duplicate, failed, or
    dismissed (a rejected file set aside by a person)."""

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


def now() -> str:
    """The time a run starts or ends, as the run history keeps it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def reason_of(exc: BaseException) -> str:
    """An error as one short line: its type and its message."""
    return f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]


def run_report(report: ValidationReport | None) -> str:
    """What the run history keeps of a file's report: an invalid file's problems, as JSON."""
    if report is None or report.valid:
        return ""
    return json.dumps(report.brief(), separators=(",", ":"))


def accepted(
    name: str,
    batch: BatchRecord,
    report: ValidationReport | None,
    archived: str,
    won: bool = False,
    dates: Sequence[str] | None = None,
    unjoined: dict[str, int] | None = None,
) -> Outcome:
    """`won`: the caller finished the batch under its lock, so no one else reports it.
    `dates`: the dates recomputed, when they are not the batch's own (a table batch).
    `unjoined`: at relational grain, what waits after it (`core.relational.waiting`)."""
    table = next((key for key in TABLE_KEYS if key in batch.dates), None)
    if table is not None:
        shown = tuple(dates or ())
        if not won and batch.file != name:
            message = f"{name}: same bytes as {batch.file} (batch {batch.batch_id[:12]}), counted once"
            return Outcome("duplicate", name, batch.batch_id, batch.rows, shown, message, report, archived)
        span = f" {shown[0]}…{shown[-1]}" if shown else ""
        plural = "" if batch.rows == 1 else "s"
        held = {CATALOG: f"catalog of {batch.rows} product{plural}", HEADERS: f"{batch.rows} order header{plural}"}
        what = held.get(table, f"{batch.rows} order line{plural}")
        message = f"{name}: accepted, {what}; recomputed {len(shown)} date(s){span}"
        if unjoined is not None:
            message += f"; {describe_waiting(unjoined)}"
        return Outcome("accepted", name, batch.batch_id, batch.rows, shown, message, report, archived)
    own = batch.dates
    if not won and batch.file != name:  # another file with the same bytes won the commit
        message = f"{name}: same bytes as {batch.file} (batch {batch.batch_id[:12]}), counted once"
        return Outcome("duplicate", name, batch.batch_id, batch.rows, own, message, report, archived)
    span = f" {own[0]}…{own[-1]}" if own else ""
    message = f"{name}: accepted, {batch.rows} rows over {len(own)} date(s){span}"
    return Outcome("accepted", name, batch.batch_id, batch.rows, own, message, report, archived)


def duplicate(name: str, existing: BatchRecord, report: ValidationReport | None, archived: str) -> Outcome:
    """The same bytes as a batch already counted and finished: nothing changes."""
    message = (
        f"{name}: same bytes as {existing.file} (batch {existing.batch_id[:12]}), already counted; nothing changed"
    )
    if existing.retracted:
        message = (
            f"{name}: same bytes as {existing.file} (batch {existing.batch_id[:12]}), which was retracted"
            " (`orderpipe batches retract`): not counted, nothing changed; to count these orders again, send them"
            " in a new file (other bytes: its rows in another order will do)"
        )
    dates = tuple(d for d in existing.dates if d not in TABLE_KEYS)
    return Outcome("duplicate", name, existing.batch_id, existing.rows, dates, message, report, archived)


def failed(name: str, batch_id: str, record: BatchRecord | None, reason: str, kept_as: str) -> Outcome:
    """A file whose batch could not be finished (`record`: its batch, when it was committed),
    quarantined as `kept_as` when its file was still there."""
    committed = " (its rows are committed but its KPIs may be stale)" if record is not None else ""
    where = f"; kept as {kept_as}" if kept_as else ""
    message = f"{name}: failed{committed}: {reason}{where}; `orderpipe replay` retries it"
    rows, dates = (record.rows, record.dates) if record is not None else (0, ())
    return Outcome("failed", name, batch_id, rows, dates, message, None, kept_as)


def rejected(name: str, batch_id: str, report: ValidationReport, kept_as: str) -> Outcome:
    """An invalid file, quarantined as `kept_as`: its report's summary says why."""
    return Outcome("rejected", name, batch_id, report.rows, (), report.summary(), report, kept_as)


def finished_late(batch: BatchRecord, dates: Sequence[str]) -> Outcome:
    """A batch start-up recovery finished (its own run died after the commit)."""
    span = f" {dates[0]}…{dates[-1]}" if dates else ""
    message = f"{batch.file}: accepted (finished after an interruption), {batch.rows} rows{span}"
    return Outcome("accepted", batch.file, batch.batch_id, batch.rows, tuple(dates), message)


def not_finished(batch: BatchRecord, reason: str, again: bool = False) -> Outcome:
    """A committed batch whose KPIs could not be finished: by start-up recovery, or `again` by
    `orderpipe replay` of a batch whose file is gone."""
    if again:
        message = f"{batch.file}: failed again while finishing its KPIs: {reason}"
    else:
        message = f"{batch.file}: failed while finishing its KPIs: {reason}; `orderpipe replay` retries it"
    return Outcome("failed", batch.file, batch.batch_id, batch.rows, batch.dates, message)


def taken_elsewhere(
    name: str, batch_id: str, report: ValidationReport | None, runs: Sequence[RunRecord]
) -> Outcome | None:
    """What another process recorded for the batch (its last run in `runs`), as this process's
    outcome; None when no process has recorded it yet."""
    last = next((r for r in reversed(runs) if r.batch_id == batch_id), None)
    if last is None:
        return None
    said = last.message.removeprefix(f"{last.file}: ")
    message = f"{name}: {last.status} by another process (as {last.file}: {said})"
    return Outcome(last.status, name, batch_id, last.rows, last.dates, message, report, elsewhere=True)


def dismissed(name: str, batch_id: str, target: str) -> Outcome:
    """A rejected file a person set aside: it stays out of every replay, in dismissed/."""
    message = f"set aside in {target}: no replay will count it; run it as a new file to count it"
    return Outcome("dismissed", name, batch_id, 0, (), message, None, target)


def run_record(outcome: Outcome, started: str) -> RunRecord:
    """The outcome as the run history keeps it, finished now."""
    return RunRecord(
        outcome.batch_id,
        outcome.file,
        outcome.status,
        outcome.rows,
        outcome.dates,
        started,
        now(),
        outcome.message,
        report=run_report(outcome.report),
    )


def notification(outcome: Outcome) -> Notification:
    """The outcome as it is sent: with its archive, and an invalid file's first problems."""
    details: dict[str, object] = {"archived_as": outcome.archived_as}
    if outcome.report is not None and not outcome.report.valid:
        details["errors"] = [
            {"code": i.code, "count": i.count, "first": i.samples[0].to_dict() if i.samples else None}
            for i in outcome.report.errors
        ]
    return Notification(
        outcome.status, outcome.file, outcome.batch_id, outcome.message, outcome.rows, outcome.dates, details
    )
