"""The Lambda faces of the container image: one invocation validates and counts a small file
(`handler`); another copies a file too large for one S3 copy into the archive (`copy_large_file`).

The state machine invokes it with the object (bucket, key, version id) and where the verdict
goes; everything else (tables, prefixes, the input shape) is the function's environment, the
same ORDERPIPE_* variables the ECS tasks get. The answer is the verdict (`accepted`,
`duplicate` or `invalid`); an exception is an infrastructure failure, which the state machine
retries, and a timeout or running out of memory sends the file to the ECS tasks instead.
"""

from __future__ import annotations

import os
from typing import Any

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.logs import configure_logging, log_event
from orderpipe.tasks import validate_and_transform
from orderpipe.workflow import Pipeline

__all__ = ["COPY_PART_BYTES", "copy_large_file", "handler"]

#: Parts of a large copy (COPY_PART_BYTES sets another size): 1 GiB, so that the 10,000
#: parts S3 allows hold 10 TiB, beyond its 5 TiB object limit.
COPY_PART_BYTES = 1 << 30
COPY_PARTS_AT_ONCE = 10


#: A warm execution environment's pipeline per bucket: its clients and what it keeps between
#: files are made once, not at every invocation (the function's environment never changes).
_PIPELINES: dict[str, Pipeline] = {}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    pipeline = _PIPELINES.get(event["bucket"])
    if pipeline is None:
        settings = load_settings(environ={**os.environ, "ORDERPIPE_AWS_BUCKET": event["bucket"]})
        configure_logging(settings.log_level)
        pipeline = _PIPELINES[event["bucket"]] = open_pipeline(settings)
    return validate_and_transform(pipeline, event["key"], event["result_key"], event.get("version_id") or None)


def copy_large_file(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Archive or quarantine a file over S3's 5 GB limit of one CopyObject: copied in parts on
    S3's side (UploadPartCopy), as many at once as boto3's transfer manager runs; a failed copy
    aborts its upload. The state machine copies smaller files itself."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    configure_logging(os.environ.get("ORDERPIPE_LOG_LEVEL", "INFO"))
    part = int(os.environ.get("COPY_PART_BYTES") or COPY_PART_BYTES)
    source = {"Bucket": event["bucket"], "Key": event["key"]}
    if event.get("version_id"):
        source["VersionId"] = event["version_id"]
    s3 = boto3.client("s3")
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=COPY_PARTS_AT_ONCE)
    s3.copy(source, event["bucket"], event["target"], Config=config)
    size = s3.head_object(Bucket=event["bucket"], Key=event["target"])["ContentLength"]
    log_event("task.copy", key=event["key"], target=event["target"], bytes=size)
    return {"target": event["target"], "bytes": size}
