"""Query parameters of the API, checked once: each bad value names its parameter.

A date range spans at most MAX_RANGE_DAYS days. A missing end is filled in from the other one
(`from` alone: the MAX_RANGE_DAYS days from it; `to` alone: the MAX_RANGE_DAYS days up to it;
neither: the MAX_RANGE_DAYS days up to today, UTC), so every answer is bounded.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
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
]

MAX_RANGE_DAYS = 3660  # ten years and a day or two: a decade of daily KPIs in one answer
BATCH_LIMIT = 100
MAX_BATCH_LIMIT = 1000
STATUSES = ("accepted", "rejected", "duplicate", "failed")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BATCH_ID = re.compile(r"[0-9a-f]{8,64}")


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


def known_only(query: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    """A misspelt parameter (`form=`) would otherwise be ignored and answer something else."""
    for name in query:
        if name not in allowed:
            raise BadParameter(name, f"unknown parameter {name!r}; this endpoint takes {', '.join(allowed)}")


def _date(name: str, value: str) -> dt.date:
    if not _ISO_DATE.fullmatch(value):
        raise BadParameter(name, f"{name}={value!r} is not a date in YYYY-MM-DD form (e.g. 2025-07-06)")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadParameter(name, f"{name}={value!r} is not a real calendar date") from None


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
        end = start + span
    else:
        end = end or today
        start = end - span
    return DateRange(start.isoformat(), end.isoformat())


def choice(query: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = query.get(name, default)
    if value not in allowed:
        raise BadParameter(name, f"{name}={value!r}: choose one of {', '.join(allowed)}")
    return value


def batch_query(query: Mapping[str, str]) -> tuple[int, str | None]:
    """`limit` (1..MAX_BATCH_LIMIT, default BATCH_LIMIT) and an optional `status`."""
    raw = query.get("limit", str(BATCH_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_BATCH_LIMIT:
        raise BadParameter("limit", f"limit={raw!r}: give a whole number from 1 to {MAX_BATCH_LIMIT}")
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise BadParameter("status", f"status={status!r}: choose one of {', '.join(STATUSES)}")
    return int(raw), status


def batch_id(value: str) -> str:
    """A batch id or its first 8 or more characters (lower-case hex)."""
    if not _BATCH_ID.fullmatch(value):
        raise BadParameter("id", f"{value[:80]!r} is not a batch id (8 to 64 hex digits, as `orderpipe batches` shows)")
    return value
