"""The run history in pages, over a real server: an answer of /api/batches whose runs would pass
the bound holds the newest whole runs that fit (at most `limit`) and names where to go on
(`next: {"before": ...}` and a `Link: rel="next"` header, for CSV too); followed to the end, the
pages hold every run once, newest first, also when runs are recorded between two pages. With
the real bound, 1,000 runs of 3,660 dates each stay inside Lambda's 6 MB response limit."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchmarks.api_sizes import LAMBDA_LIMIT, WideKpis, WideLedger, lambda_size

from orderpipe.bootstrap import Reader, open_pipeline
from orderpipe.config import load_settings
from orderpipe.ports import RunRecord
from orderpipe.web import pages
from orderpipe.web.app import BATCH_FIELDS, create_app
from orderpipe.web.params import MAX_BATCH_LIMIT, MAX_RANGE_DAYS
from orderpipe.web.security import Guard
from tests.web.conftest import reader_of, running
from tests.web.test_pages import follow

BOUND = 3_000  # bytes: a few runs per page
RUNS = 24
DAY = dt.timedelta(days=1)


def record(home: Path, env: Mapping[str, str], n: int, dates: int = 20, status: str = "accepted") -> None:
    """A run of `dates` dates, its file and id telling `n`; started in order, after any run of
    today (DynamoDB orders runs by their start)."""
    at = f"2099-01-01T00:{n // 60:02d}:{n % 60:02d}.000+00:00"
    days = tuple((dt.date(2025, 1, 1) + DAY * (n + i)).isoformat() for i in range(dates))
    run = RunRecord(f"{n:08x}" + "0" * 56, f"f{n:03d}.csv", status, 5, days, at, at, "message")
    open_pipeline(load_settings(home, environ=env)).ledger.record_run(run)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch-pages") / "home"
    for n in range(RUNS):
        record(folder, {}, n, status="rejected" if n % 5 == 0 else "accepted")
    return folder


@pytest.fixture(scope="module")
def small(home: Path) -> Iterator[str]:
    with running(create_app(lambda: reader_of(home, {}), answer_bytes=BOUND)) as url:
        yield url


def files(answer: httpx.Response) -> list[str]:
    if answer.headers["content-type"].startswith("text/csv"):
        return [r["file"] for r in csv.DictReader(io.StringIO(answer.text))]
    return [r["file"] for r in answer.json()["runs"]]


def newest_first(count: int, step: int = 1) -> list[str]:
    return [f"f{n:03d}.csv" for n in reversed(range(0, count, step))]


@pytest.mark.parametrize("extra", [{}, {"format": "csv"}, {"limit": "1000"}, {"status": "rejected"}])
def test_the_history_over_the_bound_comes_in_pages_of_whole_runs_that_hold_every_run_once(
    small: str, extra: dict[str, str]
) -> None:
    answers = follow(small, "/api/batches", extra)
    assert len(answers) > (1 if "status" not in extra else 0)  # paged: unpaged, one answer over the bound
    for answer in answers:
        assert pages.wire_size(answer.text) <= BOUND and len(answer.content) <= BOUND
        assert files(answer)  # never an empty page
    got = [f for answer in answers for f in files(answer)]
    assert got == (newest_first(RUNS, 5) if "status" in extra else newest_first(RUNS))  # each once, in order
    if "format" not in extra:
        for answer, following in zip(answers, [*answers[1:], None], strict=True):
            body = answer.json()
            before = None if following is None else following.url.params["before"]
            assert body["next"] == (None if before is None else {"before": before})
            assert ("link" in answer.headers) == (following is not None)
            if "status" in extra and following is not None:
                assert following.url.params["status"] == "rejected"  # the rest of the same question


def test_limit_is_the_most_runs_of_one_page_and_the_pages_go_on_past_it(home: Path) -> None:
    with running(create_app(lambda: reader_of(home, {}))) as url:
        answers = follow(url, "/api/batches", {"limit": "5"})
        assert [len(files(a)) for a in answers] == [5, 5, 5, 5, 4]
        assert [f for a in answers for f in files(a)] == newest_first(RUNS)
        whole = httpx.get(url + "/api/batches", params={"limit": "1000"}).json()
    assert whole["next"] is None and len(whole["runs"]) == RUNS


def test_a_run_recorded_between_two_pages_neither_moves_nor_repeats_the_others(
    backend: tuple[Path, dict[str, str]],
) -> None:
    home, env = backend
    for n in range(10, 22):
        record(home, env, n)
    with running(create_app(lambda: reader_of(home, env), answer_bytes=BOUND)) as url:
        first = httpx.get(url + "/api/batches", timeout=60)
        before = files(first)
        assert first.json()["next"] is not None
        record(home, env, 40)  # the newest run now: an offset would shift every later page by one
        answers = [first, *follow(url, "/api/batches", {"before": first.json()["next"]["before"]})]
        again = follow(url, "/api/batches", {})
    got = [f for answer in answers for f in files(answer)]
    assert got[: len(before)] == before and len(got) == len(set(got)) == 12 + 3  # fill() recorded 3
    assert got[:12] == newest_first(22)[:12]
    assert [f for a in again for f in files(a)] == ["f040.csv", *got]


def test_a_run_whose_row_alone_passes_the_bound_comes_alone_with_its_dates_cut(tmp_path: Path) -> None:
    home = tmp_path / "home"
    record(home, {}, 0)
    record(home, {}, 1, dates=1_000)  # about 13 KB of dates
    record(home, {}, 2)
    with running(create_app(lambda: reader_of(home, {}), answer_bytes=BOUND)) as url:
        answers = follow(url, "/api/batches", {})
        sheets = follow(url, "/api/batches", {"format": "csv"})
    assert [files(a) for a in answers] == [["f002.csv"], ["f001.csv"], ["f000.csv"]]
    assert all(pages.wire_size(a.text) <= BOUND for a in [*answers, *sheets])
    (long,) = answers[1].json()["runs"]
    all_dates = [(dt.date(2025, 1, 2) + DAY * i).isoformat() for i in range(1_000)]
    kept = len(long["dates"]) - 1
    assert kept > 100 and long["dates"] == all_dates[:kept] + all_dates[-1:]  # the first that fit, and the last
    assert long[pages.LEFT_OUT] == 1_000 - kept - 1
    assert pages.LEFT_OUT not in answers[0].json()["runs"][0]
    (cell,) = [r["dates"].split(" ") for r in csv.DictReader(io.StringIO(sheets[1].text))]
    assert (
        cell[-1] == all_dates[-1]
        and cell[-2] == f"(+{1_000 - len(cell) + 1})"
        and cell[:-2] == all_dates[: len(cell) - 2]
    )


def test_a_batch_of_many_runs_keeps_its_latest_within_the_bound(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for n in range(12):  # the same file dropped again and again: one batch, a run each time
        record(home, {}, 0, dates=40, status="accepted" if n == 0 else "duplicate")
    with running(create_app(lambda: reader_of(home, {}), answer_bytes=BOUND)) as url:
        batch = httpx.get(url + "/api/batches/" + "0" * 16)
    assert batch.status_code == 200 and pages.wire_size(batch.text) <= BOUND
    body = batch.json()
    assert 0 < len(body["runs"]) < 12 and body["runs_left_out"] == 12 - len(body["runs"])
    assert body["runs"][-1]["status"] == "duplicate" and body["report"] is None


def test_a_batch_within_the_bound_is_whole(tmp_path: Path) -> None:
    home = tmp_path / "home"
    record(home, {}, 0, status="accepted")
    record(home, {}, 0, status="duplicate")
    with running(create_app(lambda: reader_of(home, {}))) as url:
        body = httpx.get(url + "/api/batches/" + "0" * 16).json()
    assert [r["status"] for r in body["runs"]] == ["accepted", "duplicate"] and "runs_left_out" not in body


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_the_real_bound_keeps_1000_runs_of_3660_dates_inside_lambdas_limit(fmt: str) -> None:
    """Every run as wide as the history holds; unpaged, 56 MB (JSON) or 41 MB (CSV)."""
    ledger = WideLedger(WideKpis(1, MAX_RANGE_DAYS).dates)
    app = create_app(lambda: Reader(WideKpis(1, 1), ledger), guard=Guard(allowed_hosts=None))
    asked = {"limit": str(MAX_BATCH_LIMIT), "format": fmt}
    with running(app) as url:
        answers = follow(url, "/api/batches", asked)
    assert sum(pages.wire_size(a.text) for a in answers) > LAMBDA_LIMIT  # one answer would not be sent
    for answer in answers:
        assert pages.wire_size(answer.text) <= pages.MAX_ANSWER_BYTES
    ids = [r["batch_id"] for a in answers for r in runs_of(a)]
    assert ids == [f"{n:064x}" for n in range(MAX_BATCH_LIMIT, 0, -1)]
    size, _, link = lambda_size(app, "/api/batches", f"limit={MAX_BATCH_LIMIT}&format={fmt}")
    assert size < LAMBDA_LIMIT and link is not None


def runs_of(answer: httpx.Response) -> list[dict[str, Any]]:
    if answer.headers["content-type"].startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(answer.text)))
    runs: list[dict[str, Any]] = json.loads(answer.text)["runs"]
    assert all(set(BATCH_FIELDS) <= set(r) for r in runs)
    return runs
