"""The API's Lambda face: API Gateway HTTP API events in, the same ASGI app as `orderpipe serve`.

Settings come from the ORDERPIPE_* variables the stack sets (backend aws, the table names);
the DynamoDB reader is built once per container and reused. Authorization is API Gateway's
(IAM on every route, or a user pool's JWT on every /api/ route), so the app checks no Host and
no token here. With a user pool (SIGN_IN_USER_POOL_ID, SIGN_IN_CLIENT_ID) the page signs its
user in to it (`orderpipe.web.sign_in`).
"""

from __future__ import annotations

import os
from typing import Any

from orderpipe.bootstrap import open_reader
from orderpipe.config import load_settings
from orderpipe.logs import configure_logging
from orderpipe.web.app import create_app
from orderpipe.web.security import Guard
from orderpipe.web.sign_in import SignIn

__all__ = ["handler"]

_handler: Any = None


def _build() -> Any:
    from mangum import Mangum

    configure_logging(os.environ.get("ORDERPIPE_LOG_LEVEL", "INFO"), "json")
    settings = load_settings(os.environ.get("ORDERPIPE_HOME", "/tmp/orderpipe"))
    reader = open_reader(settings)
    app = create_app(lambda: reader, guard=Guard(allowed_hosts=None), sign_in=SignIn.from_environment(os.environ))
    return Mangum(app, lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = _build()
    result: dict[str, Any] = _handler(event, context)
    return result
