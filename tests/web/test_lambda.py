"""The Lambda path: an API Gateway HTTP API (v2) event through the handler, over DynamoDB on
moto's server, answers with the same body as `orderpipe serve` over SQLite for the same files."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orderpipe.errors import ConfigError
from orderpipe.web import lambda_api
from orderpipe.web.sign_in import SignIn
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


def test_with_a_user_pool_the_page_carries_its_sign_in_and_may_connect_to_cognito_only(
    handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGN_IN_USER_POOL_ID", "eu-west-1_AbC123")
    monkeypatch.setenv("SIGN_IN_CLIENT_ID", "client123")
    event = json.loads((EVENTS / "apigw_http_v2_daily_kpis.json").read_text())
    event |= {"rawPath": "/", "rawQueryString": "", "queryStringParameters": None}
    event["requestContext"]["http"]["path"] = "/"
    answer = handler(event, None)
    assert answer["statusCode"] == 200
    [settings] = re.findall(r'<meta name="orderpipe-sign-in" content="([^"]*)">', answer["body"])
    assert json.loads(html.unescape(settings)) == {
        "endpoint": "https://cognito-idp.eu-west-1.amazonaws.com/",
        "userPoolId": "eu-west-1_AbC123",
        "clientId": "client123",
    }
    policy = answer["headers"]["content-security-policy"]
    assert policy.endswith("; connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com")


@pytest.mark.parametrize(("pool", "client"), [("eu-west-1_AbC123", ""), ("", "client123"), ("no-region", "client123")])
def test_half_a_sign_in_setting_is_refused_naming_both_variables(pool: str, client: str) -> None:
    with pytest.raises(ConfigError, match=r"SIGN_IN_USER_POOL_ID .* and SIGN_IN_CLIENT_ID"):
        SignIn.from_environment({"SIGN_IN_USER_POOL_ID": pool, "SIGN_IN_CLIENT_ID": client})
    assert SignIn.from_environment({}) is None
