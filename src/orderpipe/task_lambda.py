"""The Lambda face of the container image: one invocation validates and counts a small file.

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
from orderpipe.logs import configure_logging
from orderpipe.tasks import validate_and_transform

__all__ = ["handler"]


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    settings = load_settings(environ={**os.environ, "ORDERPIPE_AWS_BUCKET": event["bucket"]})
    configure_logging(settings.log_level)
    return validate_and_transform(
        open_pipeline(settings), event["key"], event["result_key"], event.get("version_id") or None
    )
