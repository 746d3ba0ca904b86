"""Query parameters of the API, checked once: each bad value names its parameter.

Every value is matched against an ASCII pattern before it is converted: `str.isdigit()` and
`int()` also take '²', '٣' or '１' (and `int()` refuses 5,000 digits with a ValueError), so
neither is used on what a client sent. A bad value is a BadParameter (a 400), never an
exception of the conversion (a 500).

A date range spans at most MAX_RANGE_DAYS days. A missing end is filled in from the other one
(`from` alone: the MAX_RANGE_DAYS days from it; `to` alone: the MAX_RANGE_DAYS days up to it;
neither: the MAX_RANGE_DAYS days up to today, UTC), so every answer is bounded; an end that
would fall outside the calendar (before 0001-01-01 or after 9999-12-31) is a 400 asking for
both ends.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "BATCH_LIMIT",
    "MAX_BATCH_LIMIT",
    "MAX_RANGE_DAYS",
    "STATUSES",
    "BadParameter",
    "DateRange",
    "batch_id",
    "batch_query",
    "choice",
    "date_range",
    "known_only",
    "position",
    "shown",
]

MAX_RANGE_DAYS = 3660  # ten years and a day or two: a decade of daily KPIs in one answer
BATCH_LIMIT = 100
MAX_BATCH_LIMIT = 1000
STATUSES = ("accepted", "rejected", "duplicate", "failed", "dismissed", "retracted")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # [0-9] is ASCII only, unlike \d
_LIMIT = re.compile(r"[0-9]{1,4}")  # enough digits for MAX_BATCH_LIMIT, never a huge int()
_BATCH_ID = re.compile(r"[0-9a-f]{8,64}")
_POSITION = re.compile(r"[0-9A-Za-z:.+#_-]{1,64}")  # a run's position: a row id, or a time and a tag
_SHOWN = 40  # characters of a bad value repeated in its error: enough to recognise it


class BadParameter(ValueError):
    """A query parameter the API cannot use; `parameter` names it for the 400 answer."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True, slots=True)
class DateRange:
    start: str
    end: str


def shown(value: str) -> str:
    """A value as its error repeats it: quoted, and cut short (a client may send kilobytes)."""
    return repr(value) if len(value) <= _SHOWN else repr(value[:_SHOWN]) + "…"


def known_only(pairs: Iterable[tuple[str, str]], allowed: tuple[str, ...]) -> None:
    """A misspelt parameter (`form=`) would otherwise be ignored and answer something else; a
    repeated one (`from=…&from=…`) would be answered with one of its values, silently."""
    seen: set[str] = set()
    for name, _ in pairs:
        if name not in allowed:
            raise BadParameter(name, f"unknown parameter {shown(name)}; this endpoint takes {', '.join(allowed)}")
        if name in seen:
            raise BadParameter(name, f"{name} is given more than once: give it once")
        seen.add(name)


def _date(name: str, value: str) -> dt.date:
    if not _ISO_DATE.fullmatch(value):
        raise BadParameter(name, f"{name}={shown(value)} is not a date in YYYY-MM-DD form (e.g. 2025-07-06)")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadParameter(name, f"{name}={value!r} is not a real calendar date") from None


def _shift(name: str, day: dt.date, days: dt.timedelta) -> dt.date:
    """`day + days` when filling in a missing end; a 400 naming `name` when that would leave
    the calendar (0001-01-01..9999-12-31)."""
    try:
        return day + days
    except OverflowError:
        if days > dt.timedelta(0):
            why, other = f"the {MAX_RANGE_DAYS} days from it run past {dt.date.max}, the calendar's last day", "to"
        else:
            why, other = f"the {MAX_RANGE_DAYS} days up to it start before {dt.date.min}, the calendar's first", "from"
        raise BadParameter(name, f"{name}={day} alone: {why}; give {other} as well") from None


def date_range(query: Mapping[str, str], today: dt.date) -> DateRange:
    span = dt.timedelta(days=MAX_RANGE_DAYS - 1)
    start = _date("from", query["from"]) if query.get("from") else None
    end = _date("to", query["to"]) if query.get("to") else None
    if start is not None and end is not None:
        if start > end:
            raise BadParameter("from", f"from={start} is after to={end}: no date can match (swap them)")
        if (end - start) > span:
            raise BadParameter("to", f"from {start} to {end} spans more than {MAX_RANGE_DAYS} days; ask in parts")
    elif start is not None:
        end = _shift("from", start, span)
    else:
        end = end or today
        start = _shift("to", end, -span)
    return DateRange(start.isoformat(), end.isoformat())


def choice(query: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = query.get(name, default)
    if value not in allowed:
        raise BadParameter(name, f"{name}={shown(value)}: choose one of {', '.join(allowed)}")
    return value


def batch_query(query: Mapping[str, str]) -> tuple[int, str | None]:
    """`limit` (1..MAX_BATCH_LIMIT, default BATCH_LIMIT) and an optional `status`."""
    raw = query.get("limit", str(BATCH_LIMIT))
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_BATCH_LIMIT:
        raise BadParameter("limit", f"limit={shown(raw)}: give a whole number from 1 to {MAX_BATCH_LIMIT} (digits 0-9)")
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise BadParameter("status", f"status={shown(status)}: choose one of {', '.join(STATUSES)}")
    return int(raw), status


def position(query: Mapping[str, str], name: str) -> str | None:
    """A run's position as a page's `next` gave it (opaque to the client), or None."""
    value = query.get(name)
    if value is not None and not _POSITION.fullmatch(value):
        raise BadParameter(name, f"{name}={shown(value)} is not a position in the run history: use the one `next` gave")
    return value


def batch_id(value: str) -> str:
    """A batch id or its first 8 or more characters (lower-case hex)."""
    if not _BATCH_ID.fullmatch(value):
        raise BadParameter("id", f"{shown(value)} is not a batch id (8 to 64 hex digits, as `orderpipe batches` shows)")
    return value
