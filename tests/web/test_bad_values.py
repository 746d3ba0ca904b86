"""Every query parameter of every endpoint, over a real HTTP server, with values a client may
send by mistake or on purpose: each answer is a 200 exactly when the value is good and a JSON
400 naming the parameter otherwise, never a 500. The expected answer comes from an oracle
written here, independently of params.py: ASCII digits only (int() also reads '²' and '٣'),
calendar dates whose filled-in range stays inside 0001-01-01..9999-12-31."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderpipe.bootstrap import Reader, open_reader
from orderpipe.config import load_settings
from orderpipe.web.app import create_app
from orderpipe.web.params import MAX_RANGE_DAYS, STATUSES
from tests.web.conftest import fill, running

SPAN = dt.timedelta(days=MAX_RANGE_DAYS - 1)

NASTY = [
    "", " ", "0", "1", "-1", "+1", " 1", "1 ", "1_0", "0x10", "1e3", "1.0", "01", "0001", "1000", "1001",
    "²", "٣", "１", "߁", "𝟏", "\u0661\u0660", "9" * 30, "9" * 5000, "-" * 10, "\x00", "\n", "\r\n1", "%", "&", "=",
    "NaN", "inf", "null", "[]", "{}", "'", '"', "\\", "\ufeff1", "\u202e1",
    "2025-07-06", "2025-07-06 ", "2025-07-06\n", "2025-7-6", "20250706", "2025-02-30", "2025-13-01", "2025-00-10",
    "0000-01-01", "0001-01-01", "0001-01-02", "0011-01-07", "0011-01-08", "9999-12-31", "9990-01-01",
    "9989-12-29", "9989-12-30", "10000-01-01", "２０２５-07-06", "2025-07-0٦", "2025-W27-7", "2025-187",
    "json", "csv", "JSON", "number", "string", "accepted", "rejected", "duplicate", "failed", "Accepted",
    "Books", "books", "x" * 3000,
]  # fmt: skip


def _date(value: str) -> dt.date | None:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value, re.ASCII):
        return None
    try:
        return dt.date(int(value[:4]), int(value[5:7]), int(value[8:]))
    except ValueError:
        return None


def _from_ok(value: str) -> bool:
    day = _date(value)
    return value == "" or (day is not None and day <= dt.date.max - SPAN)


def _to_ok(value: str) -> bool:
    day = _date(value)
    return value == "" or (day is not None and day >= dt.date.min + SPAN)


def _limit_ok(value: str) -> bool:
    digits = re.fullmatch(r"[0-9]+", value, re.ASCII) is not None
    return digits and len(value.lstrip("0")) <= 4 and 1 <= int(value) <= 1000


def _one_of(*allowed: str) -> Callable[[str], bool]:
    return lambda value: value in allowed


KPI = {"from": _from_ok, "to": _to_ok, "format": _one_of("json", "csv"), "money": _one_of("number", "string")}
PARAMETERS: dict[str, dict[str, Callable[[str], bool]]] = {
    "/api/kpis/daily": KPI,
    "/api/kpis/category": {**KPI, "name": lambda value: True},
    "/api/batches": {
        "limit": _limit_ok,
        "status": _one_of(*STATUSES),
        "format": _one_of("json", "csv"),
        "before": lambda value: re.fullmatch(r"[0-9]{1,18}", value, re.ASCII) is not None,  # SQLite's row ids
    },
    "/api/version": {},
}
CASES = [(path, name) for path, names in PARAMETERS.items() for name in names]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server over a filled home (folder + SQLite) for every example."""
    tmp = tmp_path_factory.mktemp("bad-values")
    home = tmp / "home"
    fill(home, {}, tmp)
    settings = load_settings(home, environ={})
    with running(create_app(lambda: open_reader(settings))) as base:
        yield base


def _check(client: httpx.Client, path: str, name: str, value: str) -> None:
    response = client.get(path, params={name: value})
    good = PARAMETERS[path].get(name, lambda value: False)(value)
    assert response.status_code == (200 if good else 400), (path, name, value, response.text[:300])
    if not good:
        body = response.json()
        assert body["parameter"] == name and body["error"], (path, name, value, body)
        assert len(body["error"]) < 300, body  # a long value is not echoed back whole


def test_nasty_values_of_every_parameter(url: str) -> None:
    wrong = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for path, name in [*CASES, ("/api/version", "v"), ("/api/batches", "x" * 3000)]:
            for value in NASTY:
                try:
                    _check(client, path, name, value)
                except (AssertionError, httpx.HTTPError) as failure:
                    wrong.append(f"{path} {name}={value[:20]!r}: {str(failure).splitlines()[0][:160]}")
    assert not wrong, f"{len(wrong)} wrong answers, e.g.:\n" + "\n".join(wrong[:12])


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    case=st.sampled_from(CASES),
    value=st.one_of(
        st.text(),
        st.sampled_from(NASTY),
        st.dates().map(dt.date.isoformat),
        st.integers().map(str),
        st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
        st.from_regex(r"\A\d{1,5}\Z"),  # \d: any script's digits
    ),
)
def test_any_value_of_any_parameter_is_a_200_or_a_400_naming_it(url: str, case: tuple[str, str], value: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        _check(client, *case, value)


def test_a_parameter_given_twice_is_refused(url: str) -> None:
    for path, name in CASES:
        response = httpx.get(f"{url}{path}?{name}=json&{name}=csv", timeout=30)
        assert response.status_code == 400 and response.json()["parameter"] == name, (path, name)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(min_size=1), st.sampled_from(NASTY).filter(bool), st.from_regex(r"\A\w{8,70}\Z")))
def test_any_batch_id_is_a_400_or_a_lookup(url: str, value: str) -> None:
    response = httpx.get(f"{url}/api/batches/{quote(value, safe='')}", timeout=30)
    good = re.fullmatch(r"[0-9a-f]{8,64}", value) is not None
    if value in (".", "..") or "/" in value:  # the client resolves these segments, a '/' is another path
        return
    assert response.status_code in ((200, 404) if good else (400,)), (value, response.text[:300])
    assert response.json()["error" if response.status_code != 200 else "batch_id"]


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_bug_is_logged_once() -> None:
    """The app's handler logs the traceback (with the path); the server must not log the same
    bug a second time."""

    def broken() -> Reader:
        raise RuntimeError("a bug")

    kept = _Kept()
    loggers = [logging.getLogger("orderpipe"), logging.getLogger("uvicorn.error")]
    try:
        with running(create_app(broken)) as base:  # (its logging set-up drops handlers added before)
            for logger in loggers:
                logger.addHandler(kept)
            assert httpx.get(base + "/api/version", timeout=30).status_code == 500
    finally:  # the server has stopped: whatever it logs after the answer is in
        for logger in loggers:
            logger.removeHandler(kept)
    assert [r.getMessage() for r in kept.records] == ["api.bug"]
