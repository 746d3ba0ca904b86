"""KPI answers cut into pages by date, so that no answer passes a bound in bytes.

On AWS the API answers through Lambda, whose response may not pass 6 MB (6,291,456 bytes): an
answer over it is not sent at all (API Gateway answers a 502 instead). The body travels inside
the runtime's JSON response as a JSON string, escaped (`"` as `\\"`, a non-ASCII character as
`\\uXXXX`, two of them past U+FFFF), so an answer is weighed as that escaped text
(`wire_size`), which is never less than its UTF-8 bytes: one bound holds for `orderpipe serve`
and for Lambda alike.

The bound (MAX_ANSWER_BYTES, 4,000,000) leaves about 2.2 MB for what is not rows: the head of
the answer, the headers, the runtime's envelope, and any value wider than measured. Rows are
weighed one by one, as written, so the bound holds whatever the number of categories, the length
of their names or the width of the amounts.

A page holds whole dates only (all the categories of a date, or none of them): the first dates
of the range asked whose rows fit. Its `to` is the last date it holds; `next` says where the
rest begins (the day after `to`, up to the end asked). A single date whose rows alone pass the
bound (thousands of categories on one day) is answered alone, over the bound: a date is never
cut, and `name=` asks for one category.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring  # C-accelerated: a JSON string
from typing import Any

from orderpipe.core.schema import COUNT, KEY, MONEY, RATE_KIND, Column
from orderpipe.logs import log_event
from orderpipe.output import csv_records
from orderpipe.web.params import DateRange

__all__ = [
    "LEFT_OUT",
    "MAX_ANSWER_BYTES",
    "Page",
    "RunPage",
    "batch_answer",
    "field_of",
    "json_object",
    "kpi_page",
    "row_encoder",
    "runs_page",
    "wire_size",
]

#: The most bytes of one answer, as `wire_size` weighs it: well inside Lambda's 6 MB.
MAX_ANSWER_BYTES = 4_000_000


def wire_size(text: str) -> int:
    """The bytes `text` takes as a JSON string in a Lambda response (escaped, ASCII only): at
    least its UTF-8 size, so what fits here fits a local answer too."""
    return len(json.dumps(text)) - 2


@dataclass(frozen=True, slots=True)
class Page:
    """One answer: its body, the last date it holds and the first of the rest (None: no rest)."""

    body: str
    end: str
    next: str | None


def kpi_page(
    rows: Sequence[Mapping[str, Any]],
    cols: Sequence[Column],
    span: DateRange,
    fmt: str,
    strings: bool,
    bound: int = MAX_ANSWER_BYTES,
) -> Page:
    """The first whole dates of `rows` (sorted by date within any key) that fit in `bound`, as
    CSV (formula-like text neutralised) or JSON with the range, where to go on, and the fields."""
    if fmt == "csv":
        header, *records = csv_records([dict(r) for r in rows], [c.name for c in cols])
        room = bound - wire_size(header)
        end, after = _cut(rows, [wire_size(r) for r in records], span, room)
        return Page(header + "".join(r for r, row in zip(records, rows, strict=True) if row["order_date"] <= end),
                    end, after)  # fmt: skip
    encode = row_encoder(cols, strings)
    texts = [encode(r) for r in rows]
    room = bound - wire_size(_head(span.start, span.end, span.end, span.end, cols)) - len("]}")
    end, after = _cut(rows, [wire_size(t) + 1 for t in texts], span, room)
    body = ",".join(t for t, row in zip(texts, rows, strict=True) if row["order_date"] <= end)
    return Page(_head(span.start, end, after, span.end, cols) + body + "]}", end, after)


def _cut(rows: Sequence[Mapping[str, Any]], sizes: Sequence[int], span: DateRange, room: int) -> tuple[str, str | None]:
    """The last date of the page and the first of the rest (None when every date fits)."""
    per_date: dict[str, int] = {}
    for row, size in zip(rows, sizes, strict=True):
        day = str(row["order_date"])
        per_date[day] = per_date.get(day, 0) + size
    used = 0
    last: str | None = None
    for day in sorted(per_date):
        if used + per_date[day] > room:
            if last is None:  # one date alone passes the bound: it is answered alone, whole
                log_event("api.oversize", level=logging.WARNING, date=day, size=per_date[day], bound=room)
                last = day
            if last == span.end:
                break
            return last, (dt.date.fromisoformat(last) + dt.timedelta(days=1)).isoformat()
        used += per_date[day]
        last = day
    return span.end, None


def _head(start: str, end: str, after: str | None, until: str, cols: Sequence[Column]) -> str:
    """A JSON answer up to its rows: the range it holds, the rest (`next`) and the fields."""
    rest = {"from": after, "to": until} if after is not None else None
    head = json_object({"from": start, "to": end, "next": rest, "fields": [field_of(c) for c in cols]})
    return head[:-1] + ',"rows":['


#: The field a run whose dates were cut gets: how many dates its `dates` leave out.
LEFT_OUT = "dates_left_out"


@dataclass(frozen=True, slots=True)
class RunPage:
    """One answer of the run history: its body and the position to go on before (None: no rest)."""

    body: str
    next: str | None


def runs_page(
    runs: Iterable[tuple[str, dict[str, Any]]],
    fields: Sequence[str],
    fmt: str,
    limit: int,
    bound: int = MAX_ANSWER_BYTES,
) -> RunPage:
    """The first whole runs of `runs` ((position, row), newest first, read lazily) that fit in
    `bound`, at most `limit`, as CSV or JSON with `next`; a first run over the bound alone comes
    with its dates cut (`_cut_dates`). One run past the page is read, to know whether one follows."""
    encode = _run_encoder(fields, fmt)
    if fmt == "csv":
        head = encode(None)
        texts, after = _fit(runs, encode, bound - wire_size(head), limit, lambda after: "")
        return RunPage(head + "".join(texts), after)

    def tail(after: str | None) -> str:
        return "]," + json_object({"next": _rest(after)})[1:]

    texts, after = _fit(runs, encode, bound - wire_size('{"runs":['), limit, tail)
    return RunPage('{"runs":[' + ",".join(texts) + tail(after), after)


def batch_answer(batch_id: str, runs: Sequence[dict[str, Any]], report: str, bound: int = MAX_ANSWER_BYTES) -> str:
    """One batch as JSON: its runs (oldest first) and its report. A batch gets a run each time
    its file is dropped again (a duplicate lists the dates too), so it holds the latest runs
    that fit and says how many older ones it leaves out (`runs_left_out`); the report is small
    (a few samples per rule, each value clipped)."""
    head = '{"batch_id":' + json.dumps(batch_id) + ',"runs":['

    def tail(after: str | None) -> str:  # the most it can be: every run counted as left out
        return f'],"runs_left_out":{len(runs)},"report":{report}}}'

    newest = ((str(n), run) for n, run in enumerate(reversed(runs)))
    texts, _ = _fit(newest, _run_encoder((), "json"), bound - wire_size(head), len(runs), tail)
    left_out = f',"runs_left_out":{len(runs) - len(texts)}' if len(texts) < len(runs) else ""
    return head + ",".join(reversed(texts)) + "]" + left_out + f',"report":{report}}}'


def _fit(
    runs: Iterable[tuple[str, dict[str, Any]]],
    encode: Callable[[dict[str, Any] | None], str],
    room: int,
    limit: int,
    tail: Callable[[str | None], str],
) -> tuple[list[str], str | None]:
    """The texts of the first runs that fit in `room` with `tail` (what follows them, given the
    position of the last one), at most `limit`; and that position when a run is left for later."""
    texts: list[str] = []
    used = 0
    last: str | None = None
    for position, row in runs:
        text = encode(row)
        if len(texts) == limit or used + wire_size(text) + 1 + wire_size(tail(position)) > room:
            if texts:
                return texts, last
            text = _cut_dates(row, encode, room - wire_size(tail(position)))
        texts.append(text)
        used += wire_size(text) + 1
        last = position
    return texts, None


def _rest(after: str | None) -> dict[str, str] | None:
    return {"before": after} if after is not None else None


def _run_encoder(fields: Sequence[str], fmt: str) -> Callable[[dict[str, Any] | None], str]:
    """One run as a CSV record or a JSON object (None: the CSV header, the JSON head)."""
    if fmt == "csv":

        def record(row: dict[str, Any] | None) -> str:
            if row is None:
                return csv_records([], fields)[0]
            cut = {"dates": [*row["dates"][:-1], f"(+{row[LEFT_OUT]})", row["dates"][-1]]} if LEFT_OUT in row else {}
            return csv_records([row | cut], fields)[1]

        return record
    return lambda row: json_object(row or {})


def _cut_dates(row: dict[str, Any], encode: Callable[[dict[str, Any] | None], str], room: int) -> str:
    """A run whose row passes `room` by itself: the first of its dates that fit, and its last,
    with `LEFT_OUT` saying how many are left out between them (bisected: a row is weighed a
    few dozen times at most). With no date at all it still passes: it is answered alone."""
    dates = list(row["dates"])

    def cut(keep: int) -> str:
        return encode(row | {"dates": dates[:keep] + dates[-1:], LEFT_OUT: len(dates) - keep - 1})

    if wire_size(encode(row)) + 1 <= room or not dates:
        text = encode(row)
    else:
        low, high = 0, len(dates) - 1  # keep `low` dates fits (or nothing does); keeping `high` does not
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if wire_size(cut(middle)) + 1 <= room else (low, middle)
        text = cut(low)
    if wire_size(text) + 1 > room:
        log_event("api.oversize", level=logging.WARNING, batch_id=row.get("batch_id"), size=wire_size(text), bound=room)
    return text


def _json(value: Any, strings: bool) -> str:
    """Decimals digit for digit (as numbers, or as strings when asked); lists; the rest as JSON."""
    if isinstance(value, Decimal):
        text = format(value, "f")
        return json.dumps(text) if strings else text
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json(v, strings) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_object(fields: Mapping[str, Any], strings: bool = False) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{_json(v, strings)}" for k, v in fields.items()) + "}"


def row_encoder(cols: Sequence[Column], strings: bool) -> Callable[[Mapping[str, Any]], str]:
    """One KPI row as JSON, conversions chosen once per column (a year of categories is ~3,000 rows)."""

    def decimal(value: Any) -> str:
        return f'"{value:f}"' if strings else f"{value:f}"

    kinds: dict[str, Callable[[Any], str]] = {KEY: encode_basestring, COUNT: str, MONEY: decimal, RATE_KIND: decimal}
    parts = [(c.name, json.dumps(c.name) + ":", kinds[c.kind]) for c in cols]

    def encode(row: Mapping[str, Any]) -> str:
        return "{" + ",".join(key + convert(row[name]) for name, key, convert in parts) + "}"

    return encode


def field_of(column: Column) -> dict[str, str]:
    """What the page needs to know of a field: its name and kind (key, count, money, rate)."""
    return {"name": column.name, "kind": column.kind, "label": column.header if column.kind != KEY else column.name}
