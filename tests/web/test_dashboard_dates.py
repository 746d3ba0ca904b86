"""/api/kpis/dates: which dates have KPIs, in spans of at most MAX_RANGE_DAYS days, so that a
client (the dashboard's "All", a long custom range, its CSV export) can ask for any range span
by span, however old or far ahead its dates. On SQLite and on DynamoDB (moto's server)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.web.app import create_app
from orderpipe.web.params import MAX_RANGE_DAYS
from tests.conftest import order, run_file, write
from tests.web.conftest import reader_of, running

DATES = ["0001-01-01", "0001-02-01", "1901-03-04", "1911-03-01", "2026-12-07", "9999-12-31"]


@pytest.fixture(params=["sqlite", "dynamodb"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    env: dict[str, str] = request.getfixturevalue("aws_env") if request.param == "dynamodb" else {}
    home = tmp_path / "home"
    # years 1 and 9999 are the point here: the window of plausible order dates is off
    pipeline = open_pipeline(load_settings(home, environ={**env, "ORDERPIPE_INPUT_DATES": "any"}))
    rows = [order(f"O{i}", "C1", day, "Books", "P1", "1", "2.50") for i, day in enumerate(DATES)]
    run_file(pipeline, write(tmp_path / "far.csv", rows))
    with running(create_app(lambda: reader_of(home, env))) as url:
        yield url, home, env


def test_the_spans_hold_every_date_and_each_fits_one_answer(served: tuple[str, Path, dict[str, str]]) -> None:
    url, home, env = served
    answer = httpx.get(url + "/api/kpis/dates", timeout=30).json()
    assert answer == {
        "first": "0001-01-01",
        "last": "9999-12-31",
        "count": 6,
        "spans": [  # 1901-03-04 to 1911-03-01 is 3,649 days apart: one span; 2026 is too far for it
            {"from": "0001-01-01", "to": "0001-02-01"},
            {"from": "1901-03-04", "to": "1911-03-01"},
            {"from": "2026-12-07", "to": "2026-12-07"},
            {"from": "9999-12-31", "to": "9999-12-31"},
        ],
    }
    asked = []
    for span in answer["spans"]:
        start, end = dt.date.fromisoformat(span["from"]), dt.date.fromisoformat(span["to"])
        assert (end - start).days < MAX_RANGE_DAYS
        response = httpx.get(url + "/api/kpis/daily", params=span, timeout=30)
        assert response.status_code == 200, response.text
        asked += response.json()["rows"]
    every = reader_of(home, env).kpis.daily(None, None)
    assert [r["order_date"] for r in asked] == [r["order_date"] for r in every] == DATES


def test_no_dates_and_unknown_parameters(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    open_pipeline(load_settings(home, environ={}))
    with running(create_app(lambda: reader_of(home, {}))) as url:
        assert httpx.get(url + "/api/kpis/dates").json() == {"first": None, "last": None, "count": 0, "spans": []}
        wrong = httpx.get(url + "/api/kpis/dates", params={"from": "2025-01-01"})
        assert wrong.status_code == 400 and wrong.json()["parameter"] == "from"
