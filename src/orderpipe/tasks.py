"""The container's work on AWS: `orderpipe task validate` and `orderpipe task transform` (ECS),
or both in one call for a small file (`validate_and_transform`, the Lambda face in
`orderpipe.task_lambda`).

One container image, configured by the environment the state machine passes in container
overrides (ECS) or the function's environment (Lambda). Invalid data is a business outcome:
the validator records the verdict and exits 0. A non-zero exit (an exception, in Lambda) is an
infrastructure failure, which the state machine retries. Notifications are the state machine's
job (SNS tasks), so the tasks only log.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import PurePosixPath
from typing import Any

from orderpipe.errors import InfrastructureError
from orderpipe.logs import log_event
from orderpipe.ports import RunRecord
from orderpipe.workflow import Outcome, Pipeline, run_report

__all__ = ["transform", "validate", "validate_and_transform"]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def validate(pipeline: Pipeline, key: str, result_key: str, version: str | None = None) -> dict[str, Any]:
    """Write the verdict (valid | invalid | duplicate) to `result_key`; the report beside rejected/."""
    started = _now()
    name = PurePosixPath(key).name
    with pipeline.inspected(key, version=version) as (inspection, _, _snapshot):
        report = inspection.report
        batch_id = inspection.batch_id
        existing = pipeline.ledger.get(batch_id)
    verdict: dict[str, Any] = {"file": name, "key": key, "batch_id": batch_id, "rows": report.rows}
    size = stat.size if (stat := pipeline.store.stat(key)) else None
    if existing is not None and existing.done and not _valid_before(pipeline, result_key, batch_id):
        summary = f"{name}: same bytes as {existing.file} (batch {batch_id[:12]}), already counted; nothing changed"
        verdict |= {"verdict": "duplicate", "summary": summary, "dates": list(existing.dates)}
        verdict["archive_key"] = pipeline.archive_target(pipeline.prefixes.processed, name, batch_id, size)
        status = "duplicate"
    elif not report.valid:
        verdict["archive_key"] = pipeline.archive_target(pipeline.prefixes.rejected, name, batch_id, size)
        report_key = verdict["archive_key"] + ".report.json"
        body = {**report.to_dict(), "batch_id": batch_id}
        pipeline.store.put_bytes(report_key, json.dumps(body, indent=2).encode())
        verdict |= {
            "verdict": "invalid",
            "summary": report.summary(),
            "report_key": report_key,
            "errors": [{"code": i.code, "count": i.count, "first_line": i.samples[0].line} for i in report.errors],
        }
        status = "rejected"
    else:
        verdict |= {"verdict": "valid", "summary": report.summary(), "dates": list(report.dates)}
        verdict["archive_key"] = pipeline.archive_target(pipeline.prefixes.processed, name, batch_id, size)
        status = ""
    if status:
        pipeline.ledger.record_run(
            RunRecord(
                batch_id,
                name,
                status,
                report.rows,
                tuple(verdict.get("dates", ())),
                started,
                _now(),
                verdict["summary"],
                report=run_report(report),
            )
        )
    pipeline.store.put_bytes(result_key, json.dumps(verdict).encode())
    log_event("task.validate", file=name, batch_id=batch_id, verdict=verdict["verdict"], summary=verdict["summary"])
    return verdict


def _valid_before(pipeline: Pipeline, result_key: str, batch_id: str) -> bool:
    """Whether an earlier attempt of this execution (its verdict key is its own) found this batch
    valid: the batch it then counted is this file's, not a duplicate's, and the transform that
    follows finishes it (an attempt cut short after counting, by a timeout say, left that)."""
    if pipeline.store.stat(result_key) is None:
        return False
    earlier = json.loads(pipeline.store.get_bytes(result_key))
    return bool(earlier.get("verdict") == "valid" and earlier.get("batch_id") == batch_id)


def transform(pipeline: Pipeline, key: str, version: str | None = None) -> Outcome:
    """Stage the facts, commit the batch and recompute its dates; archiving is the state machine's."""
    started = _now()
    name = PurePosixPath(key).name
    with pipeline.inspected(key, version=version) as (inspection, _scratch, _snapshot):
        if not inspection.report.valid:
            raise InfrastructureError(
                f"{name}: the transformer found the file invalid; was it replaced after validation?"
            )
        batch = pipeline.ledger.get(inspection.batch_id) or pipeline.commit(name, inspection)
        dates = pipeline.batch_dates(batch)  # a catalog batch: the dates where a changed product sold
        pipeline.recompute(dates, inspection)  # while the stage is here: no facts downloads
    pipeline.compact_quietly(batch.dates)
    pipeline.ledger.mark_done(batch.batch_id)
    outcome = pipeline.accepted(name, batch, inspection.report, "", dates=dates, unjoined=pipeline.engine.unjoined)
    pipeline.ledger.record_run(
        RunRecord(outcome.batch_id, name, outcome.status, outcome.rows, outcome.dates, started, _now(), outcome.message)
    )
    log_event("task.transform", file=name, batch_id=outcome.batch_id, status=outcome.status, summary=outcome.message)
    return outcome


def validate_and_transform(pipeline: Pipeline, key: str, result_key: str, version: str | None = None) -> dict[str, Any]:
    """Both steps in one process, for a file small enough for one Lambda invocation: the verdict
    of `validate`, and when it is valid the batch counted, so that the verdict says `accepted`.

    Each step is the ECS task's own, so a call cut short (a timeout, out of memory) leaves what
    the ECS path would: running those tasks next finishes the same batch."""
    verdict = validate(pipeline, key, result_key, version)
    if verdict["verdict"] == "valid":
        outcome = transform(pipeline, key, version)
        verdict |= {"verdict": "accepted", "dates": list(outcome.dates)}
    return verdict
