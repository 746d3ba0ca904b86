"""The Lambda path: an API Gateway HTTP API (v2) event through the handler, over DynamoDB on
moto's server, answers with the same body as `orderpipe serve` over SQLite for the same files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orderpipe.web import lambda_api
from tests.conftest import REPO
from tests.web.conftest import fill, serving

EVENTS = REPO / "tests" / "events"


@pytest.fixture
def handler(aws_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    fill(tmp_path / "aws-home", aws_env, tmp_path)
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ORDERPIPE_HOME", str(tmp_path / "lambda-home"))
    monkeypatch.setattr(lambda_api, "_handler", None)  # a cold start
    yield lambda_api.handler


def test_an_http_api_event_gets_the_same_body_as_the_local_server(handler: Any, tmp_path: Path) -> None:
    event = json.loads((EVENTS / "apigw_http_v2_daily_kpis.json").read_text())
    answer = handler(event, None)
    local = tmp_path / "local-home"
    fill(local, {}, tmp_path)
    with serving(local) as url:
        expected = httpx.get(f"{url}{event['rawPath']}?{event['rawQueryString']}")
    assert answer["statusCode"] == 200
    assert answer["headers"]["content-type"] == "application/json"
    assert answer["headers"]["content-security-policy"].startswith("default-src 'self'")
    assert answer["body"] == expected.text
    assert json.loads(answer["body"])["rows"][0]["order_date"] == "2025-07-06"


def test_a_bad_parameter_through_the_handler_is_a_400(handler: Any) -> None:
    event = json.loads((EVENTS / "apigw_http_v2_daily_kpis.json").read_text())
    event["rawQueryString"] = "from=2025-02-30"
    event["queryStringParameters"] = {"from": "2025-02-30"}
    answer = handler(event, None)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["parameter"] == "from"
