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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring  # C-accelerated: a JSON string
from typing import Any

from orderpipe.core.schema import COUNT, KEY, MONEY, RATE_KIND, Column
from orderpipe.logs import log_event
from orderpipe.output import csv_records
from orderpipe.web.params import DateRange

__all__ = ["MAX_ANSWER_BYTES", "Page", "field_of", "json_object", "kpi_page", "row_encoder", "wire_size"]

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
