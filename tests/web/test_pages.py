"""KPI answers in pages, over a real server: an answer whose rows would pass the bound holds the
first whole dates that fit, says the last of them in `to`, and names the rest (`next`, and a
`Link: rel="next"` header for CSV too); followed to the end, the pages hold every row of the
range once, each page within the bound. With the real bound, the widest answers the schema
allows stay inside Lambda's 6 MB response limit whatever the number of categories."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchmarks.api_sizes import LAMBDA_LIMIT, WideKpis, WideLedger, lambda_size
from benchmarks.generate import generate

from orderpipe.bootstrap import Reader, open_pipeline
from orderpipe.config import load_settings
from orderpipe.core.kpis import KPIS
from orderpipe.web import pages
from orderpipe.web.app import create_app
from orderpipe.web.params import MAX_RANGE_DAYS, DateRange
from orderpipe.web.security import Guard
from tests.conftest import order, run_file, write
from tests.web.conftest import reader_of, running

BOUND = 2_500  # bytes: a date or a few of categories per page
START, END = "2025-03-01", "2025-05-31"
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sixty days of orders in every default category."""
    folder = tmp_path_factory.mktemp("pages")
    orders = folder / "orders.csv"
    generate(orders, 3000, days=60, start="2025-03-10")
    run_file(open_pipeline(load_settings(folder / "home", environ={})), orders)
    return folder / "home"


@pytest.fixture(scope="module")
def small(home: Path) -> Iterator[str]:
    with running(create_app(lambda: reader_of(home, {}), answer_bytes=BOUND)) as url:
        yield url


def follow(url: str, path: str, params: dict[str, str]) -> list[httpx.Response]:
    """Every page of one question, by the `Link: rel="next"` of each."""
    answers = [httpx.get(url + path, params=params, timeout=60)]
    while "link" in answers[-1].headers:
        found = re.fullmatch(r'<([^>]*)>; rel="next"', answers[-1].headers["link"])
        assert found, answers[-1].headers["link"]
        answers.append(httpx.get(answers[-1].url.join(found.group(1)), timeout=60))
    assert all(a.status_code == 200 for a in answers), [a.text[:200] for a in answers]
    return answers


def rows_of(answer: httpx.Response) -> list[dict[str, Any]]:
    if answer.headers["content-type"].startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(answer.text)))
    rows: list[dict[str, Any]] = json.loads(answer.text, parse_float=Decimal)["rows"]
    return rows


def spans(answers: list[httpx.Response], end: str) -> list[tuple[str, str]]:
    """(from, to) of each page: from as asked, to the day before the next page's from."""
    starts = [str(a.url.params["from"]) for a in answers]
    ends = [(dt.date.fromisoformat(s) - DAY).isoformat() for s in starts[1:]] + [end]
    return list(zip(starts, ends, strict=True))


ASKED = [
    ("/api/kpis/category", {}),
    ("/api/kpis/category", {"money": "string"}),
    ("/api/kpis/category", {"format": "csv"}),
    ("/api/kpis/daily", {"money": "string"}),
    ("/api/kpis/daily", {"format": "csv"}),
]


@pytest.mark.parametrize(("path", "extra"), ASKED)
def test_an_answer_over_the_bound_comes_in_pages_that_hold_the_whole_range(
    home: Path, small: str, path: str, extra: dict[str, str]
) -> None:
    answers = follow(small, path, {"from": START, "to": END, **extra})
    assert len(answers) > 1  # paged: without paging this is one answer over the bound
    for answer in answers:
        assert pages.wire_size(answer.text) <= BOUND and len(answer.content) <= BOUND
    chain = spans(answers, END)
    assert chain[0][0] == START and chain[-1][1] == END
    seen: list[str] = []
    for (start, end), answer in zip(chain, answers, strict=True):
        dates = {r["order_date"] for r in rows_of(answer)}
        assert dates and all(start <= d <= end for d in dates), (start, end, sorted(dates))
        seen += sorted(dates)
        if "format" not in extra:
            body = answer.json()
            assert (body["from"], body["to"]) == (start, end)
            following = answer.url.join(re.sub(r"^<|>.*$", "", answer.headers.get("link", "")))
            rest = {"from": following.params["from"], "to": END} if "link" in answer.headers else None
            assert body["next"] == rest
            assert (rest is None) == (end == END)
    assert len(seen) == len(set(seen))  # no date in two pages: a date's categories are never cut
    reader = reader_of(home, {})
    stored = reader.kpis.category(None, START, END) if "category" in path else reader.kpis.daily(START, END)
    got = [row for answer in answers for row in rows_of(answer)]
    as_text = lambda row: tuple(str(v) for v in row.values())  # noqa: E731
    assert sorted(map(as_text, got)) == sorted(map(as_text, stored))  # every row, once
    assert {r["order_date"] for r in stored} == set(seen)


def test_an_answer_within_the_bound_is_one_page(home: Path) -> None:
    with running(create_app(lambda: reader_of(home, {}))) as url:
        answer = httpx.get(url + "/api/kpis/category", params={"from": START, "to": END}, timeout=60)
    assert "link" not in answer.headers
    body = answer.json()
    assert (body["from"], body["to"], body["next"]) == (START, END, None)
    assert len(body["rows"]) == len(reader_of(home, {}).kpis.category(None, START, END))


def test_each_page_has_its_etag_an_unchanged_page_is_a_304_and_a_change_moves_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pipeline = open_pipeline(load_settings(home, environ={}))
    rows = [order(f"O{i}", "C1", f"2025-07-{i:02d}", "Books", "P1", "1", "2.50") for i in range(1, 29)]
    run_file(pipeline, write(tmp_path / "july.csv", rows))
    with running(create_app(lambda: reader_of(home, {}), answer_bytes=2_000)) as url:
        first, second, *_ = follow(url, "/api/kpis/daily", {"from": "2025-07-01", "to": "2025-07-31"})
        tags = [first.headers["etag"], second.headers["etag"]]
        version = httpx.get(url + "/api/version").headers["etag"].strip('"')
        assert tags[0] != tags[1] and all(t.strip('"').split(".")[0] == version for t in tags)
        again = httpx.get(first.url, headers={"If-None-Match": tags[0]})
        assert again.status_code == 304 and again.headers["etag"] == tags[0] and again.content == b""
        assert httpx.get(second.url, headers={"If-None-Match": tags[0]}).status_code == 200
        run_file(pipeline, write(tmp_path / "fix.csv", [order("O1", "C1", "2025-07-01", "Books", "P1", "1", "9.00")]))
        changed = httpx.get(first.url, headers={"If-None-Match": tags[0]})
        assert changed.status_code == 200 and changed.headers["etag"] != tags[0]
        assert changed.json()["rows"][0]["total_revenue"] == Decimal("9.00")  # never a stale page


def test_a_date_whose_rows_alone_pass_the_bound_is_a_page_of_its_own() -> None:
    rows = WideKpis(40, 3).category(None, None, None)
    page = pages.kpi_page(rows, KPIS.category_columns, DateRange("2000-01-01", "2000-01-03"), "json", True, 1_000)
    body = json.loads(page.body)
    assert {r["order_date"] for r in body["rows"]} == {"2000-01-01"} and len(body["rows"]) == 40
    assert (body["to"], body["next"]) == ("2000-01-01", {"from": "2000-01-02", "to": "2000-01-03"})


@pytest.mark.parametrize("extra", [{"money": "string"}, {"format": "csv"}])
def test_the_real_bound_keeps_the_widest_answers_inside_lambdas_limit(extra: dict[str, str]) -> None:
    """3,660 days of 11 categories, every value as wide as the schema allows: unpaged, over 6 MB."""
    kpis = WideKpis(11, MAX_RANGE_DAYS)
    app = create_app(lambda: Reader(kpis, WideLedger([])), guard=Guard(allowed_hosts=None))
    asked = {"from": kpis.dates[0], "to": kpis.dates[-1], **extra}
    with running(app) as url:
        answers = follow(url, "/api/kpis/category", asked)
    assert sum(pages.wire_size(a.text) for a in answers) > LAMBDA_LIMIT  # one answer would not be sent
    assert len(answers) > 1
    for answer in answers:
        assert pages.wire_size(answer.text) <= pages.MAX_ANSWER_BYTES
    assert sum(len(rows_of(a)) for a in answers) == 11 * MAX_RANGE_DAYS
    query = "&".join(f"{k}={v}" for k, v in asked.items())
    size, _, link = lambda_size(app, "/api/kpis/category", query)  # the first page, as Lambda sends it
    assert size < LAMBDA_LIMIT and link is not None
