"""Plausible order dates: the window of dates an order file may hold.

An order dated 2052 or 1915 is a typo or a broken export, not an order: by default an order date
after tomorrow or before 2000-01-01 rejects the file (`implausible-date`). The `[input]`
settings `earliest_date` (an ISO date) and `latest_date` (an ISO date, or `tomorrow`) move the
bounds; `dates = "any"` turns the rule off.

"Tomorrow" is read on the clock: the day after today in the configured zone (`input.timezone`;
UTC for files with a date column, which admits every place's today, since no zone is a whole
day ahead of UTC). The window is evaluated once per file, when it is read (`DateWindow`), and
both validators take its bounds from that one value: the screen as a comparison on the date
column it already parsed, the exact validator on each row's date. Pure: the clock is passed in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = [
    "DATES",
    "DEFAULT_EARLIEST",
    "IMPLAUSIBLE",
    "TOMORROW",
    "DateWindow",
    "clock",
    "evaluate",
    "moving_bound",
    "parse_bound",
    "window_problems",
]

#: `[input] dates`: "window" checks the order dates against the window, "any" does not.
DATES = ("window", "any")
DEFAULT_EARLIEST = "2000-01-01"
#: The latest date as the clock reads it: the day after today in the configured zone.
TOMORROW = "tomorrow"
#: The code of an order date outside the window.
IMPLAUSIBLE = "implausible-date"
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_bound(text: str) -> dt.date | None:
    """An ISO date `YYYY-MM-DD` (a real calendar day), else None."""
    if not _ISO.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def window_problems(dates: str, earliest: str, latest: str) -> list[str]:
    """What makes these three settings unusable together, one sentence each."""
    found = []
    if dates not in DATES:
        found.append(f"input.dates must be 'window' (check order dates) or 'any' (do not), not {dates!r}")
    first, last = parse_bound(earliest), parse_bound(latest)
    if first is None:
        found.append(f"input.earliest_date must be a date like '2000-01-01', not {earliest!r}")
    if latest != TOMORROW and last is None:
        found.append(f"input.latest_date must be 'tomorrow' or a date like '2030-12-31', not {latest!r}")
    if first is not None and last is not None and first > last:
        found.append(f"input.earliest_date {earliest!r} is after input.latest_date {latest!r}: no date would pass")
    if dates == "any" and (earliest, latest) != (DEFAULT_EARLIEST, TOMORROW):
        found.append("input.earliest_date and input.latest_date are read only with input.dates = 'window'")
    return found


@dataclass(frozen=True, slots=True)
class DateWindow:
    """The order dates one file may hold, inclusive, as evaluated when the file was read.

    `moves`: the latest bound is `tomorrow`, so it moves with the clock (a file rejected for a
    date after it may be accepted later); `zone` is the zone its today was read in."""

    earliest: dt.date
    latest: dt.date
    moves: bool = False
    zone: str = "UTC"

    def error(self, day: dt.date) -> str | None:
        """Why `day` is not a plausible order date (the start of a message), or None."""
        if day < self.earliest:
            return (
                f"is before {self.earliest.isoformat()}, the earliest order date allowed: check its year, or set"
                " input.earliest_date"
            )
        if day > self.latest:
            bound = f"tomorrow in {self.zone}" if self.moves else "input.latest_date"
            return (
                f"is after {self.latest.isoformat()}, the latest order date allowed ({bound}): check its year, or"
                " set input.latest_date"
            )
        return None


def clock() -> dt.datetime:
    """The current time, as the window reads it (one place, so tests can set the clock)."""
    return dt.datetime.now(dt.UTC)


def evaluate(dates: str, earliest: str, latest: str, zone: str | None, now: dt.datetime | None) -> DateWindow | None:
    """The window of these settings on the clock's `now` (the current time when None); None
    when order dates are not checked (`dates = "any"`)."""
    if dates == "any":
        return None
    first = parse_bound(earliest)
    assert first is not None, "settings are checked when they are read (window_problems)"
    if latest != TOMORROW:
        last = parse_bound(latest)
        assert last is not None
        return DateWindow(first, last)
    place = zone or "UTC"
    moment = clock() if now is None else now
    today = moment.astimezone(ZoneInfo(place)).date()
    return DateWindow(first, today + dt.timedelta(days=1), moves=True, zone=place)


def moving_bound(codes: Collection[str], window: DateWindow | None) -> str:
    """The latest bound as evaluated, when a file's verdict may change with the clock alone: it
    broke the window, and the window's latest bound is tomorrow. Empty otherwise: a file that
    broke no bound keeps its verdict as tomorrow moves on (the bound only widens)."""
    if window is None or not window.moves or IMPLAUSIBLE not in codes:
        return ""
    return window.latest.isoformat()
