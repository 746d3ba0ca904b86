"""The API over a real HTTP server, on SQLite and on DynamoDB (moto's server): the values it
returns are the stored KPIs, CSV is neutralised, the version answers 304 until something
changes, bad parameters get a 400 naming them, DynamoDB is only queried (never scanned)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from orderpipe.adapters.dynamodb import DynamoLedger, TableNames
from orderpipe.adapters.dynamodb_kpis import DynamoKpiStore
from orderpipe.bootstrap import Reader, open_pipeline
from orderpipe.config import load_settings
from orderpipe.core.kpis import KPIS
from orderpipe.web.app import create_app
from orderpipe.web.params import MAX_RANGE_DAYS
from tests.conftest import order, run_file, write
from tests.web.conftest import reader_of, running

JULY = {"from": "2025-07-01", "to": "2025-07-31"}


class Api:
    def __init__(self, url: str, home: Path, env: dict[str, str], calls: list[str]) -> None:
        self.url, self.home, self.env, self.calls = url, home, env, calls

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)

    def rows(self, path: str, **params: str) -> list[dict[str, Any]]:
        response = self.get(path, params=params)
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = json.loads(response.text, parse_float=Decimal)["rows"]
        return rows


def _dynamo_reader(env: dict[str, str], calls: list[str]) -> Reader:
    """A reader whose client records every DynamoDB operation and fails on any Scan."""
    import boto3

    client = boto3.client("dynamodb")

    def record(**kwargs: Any) -> None:
        calls.append(kwargs["model"].name)
        if kwargs["model"].name == "Scan":
            raise AssertionError("the API scanned a table")

    client.meta.events.register("before-call.dynamodb.*", record)
    names = TableNames(
        env["ORDERPIPE_AWS_LEDGER_TABLE"], env["ORDERPIPE_AWS_CATEGORY_TABLE"], env["ORDERPIPE_AWS_ORDER_TABLE"]
    )
    return Reader(DynamoKpiStore(names, client), DynamoLedger(names.ledger, client))


@pytest.fixture
def api(backend: tuple[Path, dict[str, str]]) -> Iterator[Api]:
    home, env = backend
    calls: list[str] = []
    if env:
        reader = _dynamo_reader(env, calls)
        source = lambda: reader  # noqa: E731
    else:
        source = lambda: reader_of(home, env)  # noqa: E731
    with running(create_app(source)) as url:
        yield Api(url, home, env, calls)


def test_daily_and_category_values_are_the_stored_kpis(api: Api) -> None:
    reader = reader_of(api.home, api.env)
    assert api.rows("/api/kpis/daily", **JULY) == reader.kpis.daily("2025-07-01", "2025-07-31")
    assert api.rows("/api/kpis/category", **JULY) == reader.kpis.category(None, "2025-07-01", "2025-07-31")
    books = api.rows("/api/kpis/category", name="Books", **JULY)
    assert books == reader.kpis.category("Books", None, None) and len(books) == 2
    assert [r["order_date"] for r in api.rows("/api/kpis/daily", **{"from": "2025-07-07"})] == [
        "2025-07-07",
        "2025-07-08",
    ]


def test_money_is_written_with_two_decimals_or_as_exact_strings(api: Api) -> None:
    text = api.get("/api/kpis/daily", params=JULY).text
    assert '"total_revenue":45.00,' in text and '"return_rate":0.000000,' in text
    strings = api.get("/api/kpis/daily", params={**JULY, "money": "string"}).json()["rows"]
    assert strings[1]["total_revenue"] == "45.00" and strings[0]["return_rate"] == "0.333333"
    assert strings[1]["total_orders"] == 1
    fields = api.get("/api/kpis/daily", params=JULY).json()["fields"]
    assert [f["name"] for f in fields] == [c.name for c in KPIS.order_columns]


def test_csv_has_every_field_and_neutralises_formulas(api: Api, tmp_path: Path) -> None:
    response = api.get("/api/kpis/category", params={**JULY, "format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert list(table[0]) == [c.name for c in KPIS.category_columns]
    assert (table[0]["category"], table[0]["daily_revenue"]) == ("Books", "29.99")  # as stored, to the cent
    pipeline = open_pipeline(load_settings(api.home, environ=api.env))
    run_file(pipeline, write(tmp_path / "=HYPERLINK(1).csv", [order("O77", date="2025-07-09")]))
    runs = list(csv.DictReader(io.StringIO(api.get("/api/batches", params={"format": "csv"}).text)))
    assert runs[0]["file"] == "'=HYPERLINK(1).csv"


def test_batches_newest_first_with_limit_and_status(api: Api) -> None:
    runs = api.get("/api/batches").json()["runs"]
    assert [r["file"] for r in runs] == ["more.csv", "invalid_order.csv", "valid_order.csv"]
    assert [r["has_report"] for r in runs] == [False, True, False]
    assert [r["file"] for r in api.get("/api/batches", params={"limit": "1"}).json()["runs"]] == ["more.csv"]
    rejected = api.get("/api/batches", params={"status": "rejected"}).json()["runs"]
    assert [r["file"] for r in rejected] == ["invalid_order.csv"]


def test_one_batch_with_its_report(api: Api) -> None:
    [rejected] = api.get("/api/batches", params={"status": "rejected"}).json()["runs"]
    detail = api.get(f"/api/batches/{rejected['batch_id'][:10]}").json()
    assert detail["batch_id"] == rejected["batch_id"]
    codes = {e["code"]: e for e in detail["report"]["errors"]}
    assert codes["invalid-integer"]["samples"][0] | {"message": ""} == {
        "line": 2,
        "column": "quantity",
        "value": "-1",
        "message": "",
    }
    assert codes["unknown-category"]["count"] == 1 and codes["unknown-category"]["hint"]
    [accepted] = api.get("/api/batches", params={"limit": "1"}).json()["runs"]
    good = api.get(f"/api/batches/{accepted['batch_id']}").json()
    assert good["report"] is None and good["runs"][0]["dates"] == ["2025-07-08"]
    missing = api.get("/api/batches/" + "0" * 64)
    assert missing.status_code == 404 and "no batch" in missing.json()["error"]


def test_version_answers_304_until_a_kpi_or_a_run_changes(api: Api, tmp_path: Path) -> None:
    first = api.get("/api/version")
    etag = first.headers["etag"]
    assert api.rows("/api/kpis/daily", **JULY)[-1]["total_revenue"] == Decimal("30.05")  # answered, and kept
    assert first.json()["version"] in etag
    assert api.get("/api/version", headers={"If-None-Match": etag}).status_code == 304
    pipeline = open_pipeline(load_settings(api.home, environ=api.env))
    run_file(pipeline, write(tmp_path / "fix.csv", [order("O9", "C9", "2025-07-08", "Books", "P9", "1", "1.00")]))
    changed = api.get("/api/version", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert api.rows("/api/kpis/daily", **JULY)[-1]["total_revenue"] == Decimal("6.05")  # never a stale answer
    run_file(pipeline, write(tmp_path / "bad.csv", [order("O1", quantity="x")]))  # a rejected file: no KPI changes
    assert api.get("/api/version", headers={"If-None-Match": changed.headers["etag"]}).status_code == 200


def test_rebuilding_the_kpis_changes_the_version(api: Api) -> None:
    """Same KPI versions, rewritten: a formula change would show, so the version moves."""
    etag = api.get("/api/version").headers["etag"]
    pipeline = open_pipeline(load_settings(api.home, environ=api.env))
    pipeline.recompute(["2025-07-06"])
    assert api.get("/api/version", headers={"If-None-Match": etag}).status_code == 200


BAD = [
    ("/api/kpis/daily", {"from": "2025-02-30"}, "from", "real calendar date"),
    ("/api/kpis/daily", {"to": "20250701"}, "to", "YYYY-MM-DD"),
    ("/api/kpis/daily", {"from": "2025-07-09", "to": "2025-07-01"}, "from", "after"),
    ("/api/kpis/daily", {"from": "2000-01-01", "to": "2025-01-01"}, "to", f"{MAX_RANGE_DAYS} days"),
    ("/api/kpis/daily", {"format": "xml"}, "format", "json, csv"),
    ("/api/kpis/category", {"money": "float"}, "money", "number, string"),
    ("/api/kpis/category", {"category": "Books"}, "category", "unknown parameter"),
    ("/api/batches", {"limit": "0"}, "limit", "1 to 1000"),
    ("/api/batches", {"limit": "ten"}, "limit", "whole number"),
    ("/api/batches", {"status": "done"}, "status", "accepted"),
    ("/api/batches/xyz", {}, "id", "not a batch id"),
    ("/api/version", {"v": "1"}, "v", "unknown parameter"),
]


def test_bad_parameters_get_a_400_naming_them(api: Api) -> None:
    for path, params, parameter, words in BAD:
        response = api.get(path, params=params)
        assert response.status_code == 400, (path, params)
        body = response.json()
        assert body["parameter"] == parameter and words in body["error"], (path, params, body)
        assert "Traceback" not in response.text


def test_a_missing_range_end_is_filled_in_within_the_cap(api: Api) -> None:
    body = api.get("/api/kpis/daily", params={"from": "2025-07-07"}).json()
    end = dt.date.fromisoformat("2025-07-07") + dt.timedelta(days=MAX_RANGE_DAYS - 1)
    assert body["to"] == end.isoformat()
    body = api.get("/api/kpis/daily").json()
    start, stop = dt.date.fromisoformat(body["from"]), dt.date.fromisoformat(body["to"])
    assert (stop - start).days == MAX_RANGE_DAYS - 1 and stop == dt.datetime.now(dt.UTC).date()


def test_dynamodb_is_only_queried(api: Api) -> None:
    for path in ("/api/kpis/daily", "/api/kpis/category?name=Books", "/api/batches", "/api/version"):
        assert api.get(path).status_code == 200
    runs = api.get("/api/batches").json()["runs"]
    assert api.get(f"/api/batches/{runs[0]['batch_id']}").status_code == 200
    if api.env:
        assert api.calls and set(api.calls) <= {"Query", "GetItem"}, api.calls
        assert "Query" in api.calls


def test_a_bug_is_a_500_without_a_traceback(tmp_path: Path) -> None:
    def broken() -> Reader:
        raise RuntimeError("secret detail")

    with running(create_app(broken)) as url:
        response = httpx.get(url + "/api/kpis/daily")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error: the server's log has the details"}
    assert "secret" not in response.text
