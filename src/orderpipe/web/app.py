"""The read-only API and the dashboard page: one ASGI app, served by `orderpipe serve` locally
and by Lambda behind an API Gateway HTTP API (same code, other stores).

Each handler parses its parameters (params.py), reads through a Reader (the KPI store and the
ledger) and renders rows in the KPI schema's fields. Money goes out as JSON numbers written
digit for digit with two decimals (`45.00`), rates with six; `money=string` quotes both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from orderpipe.bootstrap import Reader
from orderpipe.core.kpis import KPIS
from orderpipe.core.schema import Column, KpiSchema
from orderpipe.errors import OrderpipeError
from orderpipe.logs import log_event
from orderpipe.output import render
from orderpipe.ports import RunRecord
from orderpipe.web import pages, params
from orderpipe.web.pages import Page
from orderpipe.web.params import BadParameter
from orderpipe.web.security import ASGIApp, Guard, Receive, Scope, Send, guarded
from orderpipe.web.sign_in import SignIn

__all__ = ["BATCH_FIELDS", "STATIC", "create_app", "version_of"]

STATIC = Path(__file__).resolve().parent / "static"
BATCH_FIELDS = ("batch_id", "seq", "file", "status", "rows", "dates", "started_at", "finished_at", "message")
KPI_PARAMS = ("from", "to", "format", "money")
RUNS_READ = 100  # runs read from the ledger at a time while a page of the history fills
log = logging.getLogger("orderpipe.web")
T = TypeVar("T")


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _json_response(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status, headers=dict(headers or {}), media_type="application/json")


def _error(status: int, message: str, parameter: str | None = None) -> Response:
    body: dict[str, str] = {"error": message}
    if parameter is not None:
        body["parameter"] = parameter
    return _json_response(json.dumps(body), status)


class _Answers(Generic[T]):
    """The latest KPI answers, keyed by what was asked and the version they were read at: a
    KPI change moves the version, so an answer is never served stale. Viewers of one dashboard
    ask the same ranges; a year of categories costs ~20 ms of CPU to read and write out."""

    SIZE = 32

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[object, ...], T] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> T | None:
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
        return found

    def put(self, key: tuple[object, ...], answer: T) -> None:
        self._kept[key] = answer
        while len(self._kept) > self.SIZE:
            self._kept.popitem(last=False)


def _csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str], name: str) -> Response:
    text = render([dict(r) for r in rows], fields, "csv") + "\n"  # formula-like text cells get a leading '
    disposition = f'attachment; filename="{name}.csv"'
    return Response(text, headers={"content-disposition": disposition}, media_type="text/csv; charset=utf-8")


def _run(run: RunRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {name: getattr(run, name) for name in BATCH_FIELDS}
    fields["has_report"] = bool(run.report)
    return fields


def version_of(reader: Reader) -> str:
    """Changes whenever a KPI changes (every KPI write raises the generation) or a run is
    recorded (the page marks batches, rejected ones included); two cheap reads."""
    marker = f"{reader.kpis.generation()}|{reader.ledger.last_run()}"
    return hashlib.sha256(marker.encode()).hexdigest()[:20]


def create_app(
    source: Callable[[], Reader],
    *,
    guard: Guard | None = None,
    schema: KpiSchema = KPIS,
    today: Callable[[], dt.date] = _utc_today,
    answer_bytes: int | None = None,
    sign_in: SignIn | None = None,
) -> Any:
    """`source` gives a Reader per request (closed after it): a fresh read of SQLite each time,
    or one long-lived DynamoDB reader on Lambda. `answer_bytes` bounds a KPI answer (default
    pages.MAX_ANSWER_BYTES). With `sign_in` the page signs its user in to that user pool (and may
    connect to it). Returns the ASGI app, behind `guard`."""
    api = _Api(source, schema, today, pages.MAX_ANSWER_BYTES if answer_bytes is None else answer_bytes)
    guard = guard or Guard()
    page: Callable[[Request], Any] = _page
    if sign_in is not None:
        guard = dataclasses.replace(guard, connect_to=(*guard.connect_to, sign_in.origin))
        page = _page_signing_in(sign_in)
    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/kpis/daily", api.daily),
            Route("/api/kpis/category", api.category),
            Route("/api/batches", api.batches),
            Route("/api/batches/{batch_id}", api.batch),
            Route("/api/version", api.version),
            Route("/api/kpis/dates", api.dates),
            Route("/api/{rest:path}", _not_found),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={
            BadParameter: _bad_parameter,
            OrderpipeError: _our_error,
            HTTPException: _http_error,
            Exception: _bug,
        },
    )
    return guarded(_logged_once(app), guard)


class _Api:
    """The API's endpoints: each parses its parameters, reads through a Reader of its own and
    answers; KPI answers are kept by version (`_Answers`)."""

    def __init__(
        self, source: Callable[[], Reader], schema: KpiSchema, today: Callable[[], dt.date], bound: int
    ) -> None:
        self.source = source
        self.bound = bound
        self.schema = schema
        self.today = today
        self.answers: _Answers[Page] = _Answers()
        self.dates_kept: _Answers[str] = _Answers()

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        reader = self.source()
        try:
            yield reader
        finally:
            reader.close()

    def kpi_answer(self, request: Request, rows_of: Callable[[Reader, params.DateRange], list[dict[str, object]]],
                   cols: Sequence[Column], name: str, extra: tuple[str, ...] = ()) -> Response:  # fmt: skip
        """One page of the range asked (pages.py): its `Link` names the next one. Its ETag is the
        version it was read at and a digest of the question, so an unchanged page is a 304."""
        query = request.query_params
        params.known_only(query.multi_items(), (*KPI_PARAMS, *extra))
        span = params.date_range(query, self.today())
        fmt = params.choice(query, "format", ("json", "csv"), "json")
        strings = params.choice(query, "money", ("number", "string"), "number") == "string"
        with self.reading() as reader:
            version = version_of(reader)
            asked = (request.url.path, query.get("name"), span, fmt, strings, self.bound)
            headers = {"etag": f'"{version}.{hashlib.sha256(repr(asked).encode()).hexdigest()[:12]}"'}
            headers["cache-control"] = "no-cache"
            if headers["etag"] in _tags(request):
                return Response(status_code=304, headers=headers)
            page = self.answers.get((*asked, version))
            if page is None:
                page = pages.kpi_page(rows_of(reader, span), cols, span, fmt, strings, self.bound)
                self.answers.put((*asked, version), page)
        if page.next is not None:
            rest = [(k, v) for k, v in query.multi_items() if k not in ("from", "to")]
            headers["link"] = f'<?{urlencode([("from", page.next), ("to", span.end), *rest])}>; rel="next"'
        if fmt == "csv":
            headers["content-disposition"] = f'attachment; filename="{name}-{span.start}-{page.end}.csv"'
            return Response(page.body, headers=headers, media_type="text/csv; charset=utf-8")
        return _json_response(page.body, headers=headers)

    async def daily(self, request: Request) -> Response:
        return self.kpi_answer(
            request, lambda r, s: r.kpis.daily(s.start, s.end), self.schema.order_columns, "daily-kpis"
        )

    async def category(self, request: Request) -> Response:
        name = request.query_params.get("name") or None
        return self.kpi_answer(
            request,
            lambda r, s: r.kpis.category(name, s.start, s.end),
            self.schema.category_columns,
            "category-kpis",
            ("name",),
        )

    async def batches(self, request: Request) -> Response:
        """The run history, newest first, one page (pages.runs_page) of at most `limit` runs
        within the bound; `next` and `Link` name the position to go on before."""
        query = request.query_params
        params.known_only(query.multi_items(), ("limit", "status", "format", "before"))
        limit, status = params.batch_query(query)
        before = params.position(query, "before")
        fmt = params.choice(query, "format", ("json", "csv"), "json")
        with self.reading() as reader:
            newest = _newest(reader, status, before, min(RUNS_READ, limit + 1))
            page = pages.runs_page(newest, BATCH_FIELDS if fmt == "csv" else (), fmt, limit, self.bound)
        headers: dict[str, str] = {}
        if page.next is not None:
            rest = [(k, v) for k, v in query.multi_items() if k != "before"]
            headers["link"] = f'<?{urlencode([*rest, ("before", page.next)])}>; rel="next"'
        if fmt == "csv":
            headers["content-disposition"] = 'attachment; filename="batches.csv"'
            return Response(page.body, headers=headers, media_type="text/csv; charset=utf-8")
        return _json_response(page.body, headers=headers)

    async def batch(self, request: Request) -> Response:
        params.known_only(request.query_params.multi_items(), ())
        wanted = params.batch_id(request.path_params["batch_id"])
        with self.reading() as reader:
            runs = reader.ledger.runs(batch_id=wanted)
        ids = sorted({r.batch_id for r in runs})
        if not ids:
            return _error(404, f"no batch {wanted} in the run history")
        if len(ids) > 1:
            return _error(400, f"{wanted} starts {len(ids)} batch ids: give more of it", "id")
        reports = [r.report for r in runs if r.report]
        report = reports[-1] if reports else "null"  # stored as JSON already
        return _json_response(pages.batch_answer(ids[0], [_run(r) for r in runs], report, self.bound))

    async def version(self, request: Request) -> Response:
        params.known_only(request.query_params.multi_items(), ())
        with self.reading() as reader:
            current = version_of(reader)
        etag = f'"{current}"'
        headers = {"etag": etag, "cache-control": "no-cache"}
        if etag in _tags(request):
            return Response(status_code=304, headers=headers)
        return _json_response(json.dumps({"version": current}), headers=headers)

    async def dates(self, request: Request) -> Response:
        params.known_only(request.query_params.multi_items(), ())
        with self.reading() as reader:
            key = (request.url.path, version_of(reader))
            answer = self.dates_kept.get(key)
            if answer is None:
                answer = _dates_answer([str(r["order_date"]) for r in reader.kpis.daily(None, None)])
                self.dates_kept.put(key, answer)
        return _json_response(answer)


def _newest(reader: Reader, status: str | None, before: str | None, chunk: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(position, fields) of the runs before `before`, newest first, read `chunk` at a time as
    the page asks for them: a page of long runs holds a few dozen, however high `limit` is."""
    while True:
        try:
            read = reader.ledger.runs(limit=chunk, status=status, before=before)
        except ValueError as exc:  # a position this history cannot have (another store's)
            raise BadParameter(
                "before", f"before={params.shown(before or '')}: {exc}; start again without it"
            ) from None
        for run in reversed(read):
            yield run.position, _run(run)
        if len(read) < chunk:
            return
        before = read[0].position


def _tags(request: Request) -> list[str]:
    """The ETags of `If-None-Match`: the client holds these answers already."""
    return [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]


async def _page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


def _page_signing_in(sign_in: SignIn) -> Callable[[Request], Any]:
    body = sign_in.page((STATIC / "index.html").read_text(encoding="utf-8"))

    async def page(request: Request) -> Response:
        return HTMLResponse(body, headers={"cache-control": "no-cache"})

    return page


async def _not_found(request: Request) -> Response:
    return _error(404, f"no such path: {request.url.path}")


async def _bad_parameter(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadParameter)
    return _error(400, exc.message, exc.parameter)


async def _our_error(request: Request, exc: Exception) -> Response:
    log_event("api.error", level=logging.WARNING, path=request.url.path, error=str(exc))
    return _error(503, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail))


async def _bug(request: Request, exc: Exception) -> Response:
    log_event("api.bug", level=logging.ERROR, path=request.url.path, traceback=traceback.format_exc())
    request.scope[_LOGGED] = exc  # Starlette raises it again after this answer: see _logged_once
    return _error(500, "internal error: the server's log has the details")


_LOGGED = "orderpipe.logged_exception"


def _logged_once(app: ASGIApp) -> ASGIApp:
    """Starlette raises an exception again after its handler has answered the 500, so that the
    server logs it: uvicorn would then log a second traceback of the one bug. The handler has
    logged it already (with the path); any other exception goes on to the server."""

    async def once(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except Exception as exc:
            if scope.get(_LOGGED) is not exc:
                raise

    return once


def _dates_answer(dates: Sequence[str]) -> str:
    """The dates that have KPIs (sorted): the first, the last, how many, and spans of at most
    MAX_RANGE_DAYS days, each from a date with KPIs to the last such date within reach, that
    together hold them all. Any range, however long, can then be asked for span by span."""
    longest = dt.timedelta(days=params.MAX_RANGE_DAYS - 1)
    spans: list[dict[str, str]] = []
    start: dt.date | None = None
    end: dt.date | None = None
    for text in dates:
        day = dt.date.fromisoformat(text)
        if start is None or end is None or day - start > longest:
            if start is not None and end is not None:
                spans.append({"from": start.isoformat(), "to": end.isoformat()})
            start = day
        end = day
    if start is not None and end is not None:
        spans.append({"from": start.isoformat(), "to": end.isoformat()})
    first, last = (dates[0], dates[-1]) if dates else (None, None)
    return json.dumps({"first": first, "last": last, "count": len(dates), "spans": spans}, separators=(",", ":"))
