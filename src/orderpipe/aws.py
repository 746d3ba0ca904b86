"""The Lambda face: S3 "object created" events in, Step Functions executions out.

`handler` accepts S3 event notifications (several records per event, URL-encoded keys with
`+` for a space) and the EventBridge "Object Created" shape. Only keys under the input
prefix ending in `.csv` start an execution. The execution name is derived from bucket, key and
version (or ETag, or sequencer), so a duplicate delivery of the same event is answered by the
existing execution: `ExecutionAlreadyExists` is success, not an error.

`sweep` runs on a schedule: an execution that timed out, was stopped, or whose cleanup failed
leaves its cluster and task definitions behind; the sweeper deletes them once that execution has
ended. Only executions of this state machine are swept; running ones are left alone.

This module and `orderpipe.logs` are the whole Lambda package: only the standard library and
boto3 (which the Lambda runtime provides) may be imported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus

from orderpipe.logs import configure_logging, log_event

__all__ = ["ObjectCreated", "execution_name", "handler", "parse_event", "running_executions", "sweep"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
#: The state machine names its cluster <prefix><execution> and its task definitions
#: <prefix>validator-<execution> and <prefix>transformer-<execution>; the stack gives the prefix.
FAMILIES = ("validator-", "transformer-")
ENDED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    bucket: str
    key: str
    version: str  # version id, else ETag, else sequencer: what makes this upload unique
    version_id: str = ""  # the S3 version id, when the bucket is versioned
    size: int | None = None  # bytes, as the event gives them: the state machine routes by size


def parse_event(event: dict[str, Any]) -> list[ObjectCreated]:
    """Both shapes; S3 notification keys are URL-encoded, EventBridge keys are taken as given."""
    if event.get("detail-type") == "Object Created":
        detail = event.get("detail", {})
        obj = detail.get("object", {})
        version = obj.get("version-id") or obj.get("etag") or obj.get("sequencer") or ""
        size = obj.get("size")
        return [ObjectCreated(detail["bucket"]["name"], obj["key"], version, obj.get("version-id") or "", size)]
    found = []
    for record in event.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        version = obj.get("versionId") or obj.get("eTag") or obj.get("sequencer") or ""
        key = unquote_plus(obj["key"])
        found.append(ObjectCreated(s3["bucket"]["name"], key, version, obj.get("versionId") or "", obj.get("size")))
    return found


def execution_name(item: ObjectCreated) -> str:
    """≤ 80 characters of [A-Za-z0-9-_]: readable file stem plus a digest of bucket, key and version."""
    digest = hashlib.sha256(f"{item.bucket}\n{item.key}\n{item.version}".encode()).hexdigest()[:24]
    stem = _UNSAFE.sub("-", item.key.rsplit("/", 1)[-1].removesuffix(".csv")).strip("-")[:50]
    return f"{stem}-{digest}" if stem else digest


def _payload(item: ObjectCreated) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "bucket": item.bucket,
        "key": item.key,
        "file": item.key.rsplit("/", 1)[-1],
        "version": item.version,
        # Every step works on this exact version: a re-upload meanwhile is its own execution.
        "version_id": item.version_id,
        # S3 CopyObject wants the source URL-encoded; Step Functions has no intrinsic for it.
        "copy_source": quote(f"{item.bucket}/{item.key}", safe="/")
        + (f"?versionId={quote(item.version_id, safe='')}" if item.version_id else ""),
    }
    if isinstance(item.size, int):  # without it, the file takes the ECS path
        payload["size"] = item.size
    return payload


def _start(items: list[ObjectCreated], client: Any, machine: str, prefix: str, found: dict[str, list[str]]) -> None:
    """One execution per CSV file under the input prefix; the names each got go into `found`."""
    for item in items:
        if not item.key.startswith(prefix) or not item.key.lower().endswith(".csv") or "/." in f"/{item.key}":
            found["ignored"].append(item.key)
            continue
        name = execution_name(item)
        try:
            client.start_execution(stateMachineArn=machine, name=name, input=json.dumps(_payload(item)))
            found["started"].append(name)
        except client.exceptions.ExecutionAlreadyExists:
            found["already_exists"].append(name)  # a duplicate delivery: the first execution handles the file


def running_executions(client: Any, machine: str, at_most: int) -> int:
    """How many executions of `machine` are running, counted up to `at_most` (a page or two)."""
    count = 0
    for page in client.get_paginator("list_executions").paginate(
        stateMachineArn=machine, statusFilter="RUNNING", PaginationConfig={"PageSize": 100}
    ):
        count += len(page["executions"])
        if count >= at_most:
            break
    return count


def handler(event: dict[str, Any], context: Any = None, client: Any = None, sqs: Any = None) -> dict[str, Any]:
    """S3 notifications, queued in SQS or not, and EventBridge events in; executions out.

    From the queue, at most MAX_RUNNING_EXECUTIONS executions run at once (0: no limit): the
    messages beyond it are answered as failures of the batch, so the queue delivers them again,
    after a visibility timeout drawn at random (jitter) when UPLOAD_QUEUE_URL is set."""
    configure_logging(os.environ.get("ORDERPIPE_LOG_LEVEL", "INFO"))
    prefix = os.environ.get("ORDERPIPE_PREFIXES_INPUT", "input/")
    machine = os.environ["STATE_MACHINE_ARN"]
    if client is None:
        import boto3

        client = boto3.client("stepfunctions")
    found: dict[str, list[str]] = {"started": [], "already_exists": [], "ignored": []}
    records = event.get("Records", [])
    if not records or records[0].get("eventSource") != "aws:sqs":
        _start(parse_event(event), client, machine, prefix, found)
        log_event(
            "trigger", started=found["started"], already_running=found["already_exists"], ignored=found["ignored"]
        )
        return found
    limit = int(os.environ.get("MAX_RUNNING_EXECUTIONS") or 0)
    room = limit - running_executions(client, machine, limit) if limit else float("inf")
    waiting = []
    for record in records:
        try:
            items = parse_event(json.loads(record["body"]))  # S3's test event holds no record: nothing
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not S3's: never readable
            log_event("trigger.unreadable", message_id=record.get("messageId"), error=f"{type(exc).__name__}: {exc}")
            continue
        if items and room <= 0:
            waiting.append(record)
            continue
        room -= len(items)
        try:
            _start(items, client, machine, prefix, found)
        except Exception as exc:  # throttled, say: the message comes back (started names exist then)
            log_event("trigger.start_failed", message_id=record.get("messageId"), error=f"{type(exc).__name__}: {exc}")
            waiting.append(record)
    if waiting and os.environ.get("UPLOAD_QUEUE_URL"):
        _delay(waiting, os.environ["UPLOAD_QUEUE_URL"], sqs)
    log_event(
        "trigger",
        started=found["started"],
        already_running=found["already_exists"],
        ignored=found["ignored"],
        waiting=len(waiting),
    )
    return {**found, "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in waiting]}


def _delay(records: list[dict[str, Any]], queue_url: str, sqs: Any = None) -> None:
    """Each waiting message comes back after 30-120 s, drawn at random so that a burst does not
    come back all at once (a failed change leaves the queue's own visibility timeout)."""
    if sqs is None:
        import boto3

        sqs = boto3.client("sqs")
    for start in range(0, len(records), 10):  # ChangeMessageVisibilityBatch takes at most 10
        entries = [
            {"Id": str(n), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": random.randint(30, 120)}
            for n, r in enumerate(records[start : start + 10])
        ]
        try:
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as exc:  # the message still comes back, after the queue's own timeout
            log_event("trigger.delay_failed", error=f"{type(exc).__name__}: {exc}")


def _ended(sfn: Any, machine: str, name: str) -> bool:
    """True only for an execution of `machine` that has ended; unknown names belong to others."""
    arn = machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    try:
        return sfn.describe_execution(executionArn=arn)["status"] in ENDED
    except sfn.exceptions.ExecutionDoesNotExist:
        return False


def sweep(event: Any = None, context: Any = None, ecs: Any = None, sfn: Any = None) -> dict[str, list[str]]:
    """Delete the clusters and task definitions that ended executions left behind.

    A cluster whose tasks are still stopping is left for the next sweep."""
    configure_logging(os.environ.get("ORDERPIPE_LOG_LEVEL", "INFO"))
    machine = os.environ["STATE_MACHINE_ARN"]
    prefix = os.environ["ORDERPIPE_EPHEMERAL_PREFIX"]
    if ecs is None or sfn is None:
        import boto3

        ecs, sfn = ecs or boto3.client("ecs"), sfn or boto3.client("stepfunctions")
    clusters, definitions, waiting = [], [], []
    for page in ecs.get_paginator("list_clusters").paginate():
        for cluster in page["clusterArns"]:
            name = cluster.rsplit("/", 1)[-1]
            if not name.startswith(prefix) or not _ended(sfn, machine, name.removeprefix(prefix)):
                continue
            for tasks in ecs.get_paginator("list_tasks").paginate(cluster=cluster):
                for task in tasks["taskArns"]:
                    ecs.stop_task(cluster=cluster, task=task, reason="orderpipe sweeper: the execution has ended")
            try:
                ecs.delete_cluster(cluster=cluster)
                clusters.append(name)
            except (ecs.exceptions.ClusterContainsTasksException, ecs.exceptions.UpdateInProgressException):
                waiting.append(name)
    families: list[str] = []
    for page in ecs.get_paginator("list_task_definition_families").paginate(familyPrefix=prefix, status="ALL"):
        families += [f for f in page["families"] if f not in families]
    for family in families:
        kind = next((prefix + k for k in FAMILIES if family.startswith(prefix + k)), None)
        if kind is None or not _ended(sfn, machine, family.removeprefix(kind)):
            continue
        revisions: list[str] = []  # deregistered ones are listed again as INACTIVE
        for status in ("ACTIVE", "INACTIVE"):
            for listing in ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status=status):
                for arn in listing["taskDefinitionArns"]:
                    if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] != family:
                        continue
                    if status == "ACTIVE":
                        ecs.deregister_task_definition(taskDefinition=arn)
                    if arn not in revisions:
                        revisions.append(arn)
        for start in range(0, len(revisions), 10):  # DeleteTaskDefinitions takes at most 10
            ecs.delete_task_definitions(taskDefinitions=revisions[start : start + 10])
        definitions.extend(revisions)
    log_event("sweep", clusters=clusters, task_definitions=definitions, still_stopping=waiting)
    return {"clusters": clusters, "task_definitions": definitions, "still_stopping": waiting}
