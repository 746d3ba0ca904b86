"""The Lambda face: S3 "object created" events in, Step Functions executions out.

`handler` accepts S3 event notifications (several records per event, URL-encoded keys with
`+` for a space) and the EventBridge "Object Created" shape. Only keys under the input
prefix ending in `.csv` start an execution. The execution name is derived from bucket, key and
version (or ETag, or sequencer), so a duplicate delivery of the same event is answered by the
existing execution: `ExecutionAlreadyExists` is success, not an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus

from orderpipe.logs import configure_logging, log_event

__all__ = ["ObjectCreated", "execution_name", "handler", "parse_event"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    bucket: str
    key: str
    version: str  # version id, else ETag, else sequencer: what makes this upload unique
    version_id: str = ""  # the S3 version id, when the bucket is versioned


def parse_event(event: dict[str, Any]) -> list[ObjectCreated]:
    """Both shapes; S3 notification keys are URL-encoded, EventBridge keys are taken as given."""
    if event.get("detail-type") == "Object Created":
        detail = event.get("detail", {})
        obj = detail.get("object", {})
        version = obj.get("version-id") or obj.get("etag") or obj.get("sequencer") or ""
        return [ObjectCreated(detail["bucket"]["name"], obj["key"], version, obj.get("version-id") or "")]
    found = []
    for record in event.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        version = obj.get("versionId") or obj.get("eTag") or obj.get("sequencer") or ""
        found.append(ObjectCreated(s3["bucket"]["name"], unquote_plus(obj["key"]), version, obj.get("versionId") or ""))
    return found


def execution_name(item: ObjectCreated) -> str:
    """≤ 80 characters of [A-Za-z0-9-_]: readable file stem plus a digest of bucket, key and version."""
    digest = hashlib.sha256(f"{item.bucket}\n{item.key}\n{item.version}".encode()).hexdigest()[:24]
    stem = _UNSAFE.sub("-", item.key.rsplit("/", 1)[-1].removesuffix(".csv")).strip("-")[:50]
    return f"{stem}-{digest}" if stem else digest


def handler(event: dict[str, Any], context: Any = None, client: Any = None) -> dict[str, Any]:
    configure_logging(os.environ.get("ORDERPIPE_LOG_LEVEL", "INFO"))
    prefix = os.environ.get("ORDERPIPE_PREFIXES_INPUT", "input/")
    machine = os.environ["STATE_MACHINE_ARN"]
    if client is None:
        import boto3

        client = boto3.client("stepfunctions")
    started, existing, ignored = [], [], []
    for item in parse_event(event):
        if not item.key.startswith(prefix) or not item.key.lower().endswith(".csv") or "/." in f"/{item.key}":
            ignored.append(item.key)
            continue
        name = execution_name(item)
        payload = {
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
        try:
            client.start_execution(stateMachineArn=machine, name=name, input=json.dumps(payload))
            started.append(name)
        except client.exceptions.ExecutionAlreadyExists:
            existing.append(name)  # a duplicate delivery: the first execution handles the file
    log_event("trigger", started=started, already_running=existing, ignored=ignored)
    return {"started": started, "already_exists": existing, "ignored": ignored}
