"""Order dates from timestamps: the local date, in the configured time zone, of a moment.

One grammar, written once and used twice: by Python (the exact validator) and as a Polars
expression (the fast screen). Accepted: ISO 8601 — `2025-10-07T09:50:26+02:00`, `…Z`,
`2025-10-07 09:50`, a bare date — and the form Shopify writes, `2025-10-07 09:50:26 +0200`.
A timestamp with an offset names a moment, converted to the zone; one without an offset is
already local time in the zone, so its date is the date it shows.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import polars as pl

__all__ = ["TIMESTAMP_PATTERN", "local_date", "local_date_expr"]

#: date, then optionally a time (`T` or a space), then optionally an offset (`Z`, ±HH, ±HHMM,
#: ±HH:MM, after an optional space). Fractions of a second are allowed and ignored.
TIMESTAMP_PATTERN = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,9})?)?"
    r"(?: ?(Z|[+-][0-9]{2}(?::?[0-9]{2})?))?)?$"
)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


def _offset_minutes(offset: str) -> int | None:
    """Minutes east of UTC; None when out of range."""
    if offset == "Z":
        return 0
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or "0")
    if hours > 23 or minutes > 59:
        return None
    return (hours * 60 + minutes) * (-1 if offset[0] == "-" else 1)


def local_date(text: str, zone: ZoneInfo) -> dt.date | None:
    """The order date a timestamp gives in `zone`; None when it is not a valid timestamp."""
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    day_text, hour, minute, second, offset = match.groups()
    try:
        day = dt.date.fromisoformat(day_text)
    except ValueError:
        return None
    if hour is not None and (int(hour) > 23 or int(minute) > 59 or int(second or "0") > 59):
        return None
    if offset is None:
        return day
    minutes = _offset_minutes(offset)
    if minutes is None:
        return None
    moment = dt.datetime.combine(day, dt.time(int(hour), int(minute), int(second or "0")))
    try:
        return moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes))).astimezone(zone).date()
    except OverflowError:  # before year 1 or after 9999 once converted
        return None


def local_date_expr(text: pl.Expr, zone: str) -> pl.Expr:
    """The same rule as a Polars expression: a Date, null where `local_date` gives None (or
    where the conversion leaves the years 1–9999, which the date check then refuses)."""
    parts = text.str.extract_groups(TIMESTAMP_PATTERN)
    day = parts.struct[0].str.to_date("%Y-%m-%d", strict=False)
    hour = parts.struct[1].cast(pl.Int64, strict=False)
    minute = parts.struct[2].cast(pl.Int64, strict=False)
    second = parts.struct[3].cast(pl.Int64, strict=False).fill_null(0)
    offset = parts.struct[4]
    digits = offset.str.replace(":", "", literal=True)
    off_hours = digits.str.slice(1, 2).cast(pl.Int64, strict=False)
    off_minutes = (
        pl.when(digits.str.len_bytes() > 3).then(digits.str.slice(3, 2).cast(pl.Int64, strict=False)).otherwise(0)
    )
    sign = pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
    east = pl.when(offset == "Z").then(0).otherwise(sign * (off_hours * 60 + off_minutes))
    time_ok = hour.is_null() | ((hour <= 23) & (minute <= 59) & (second <= 59))
    offset_ok = offset.is_null() | (offset == "Z") | ((off_hours <= 23) & (off_minutes <= 59))
    utc = (
        day.cast(pl.Datetime("us"))
        + pl.duration(hours=hour.fill_null(0), minutes=minute.fill_null(0), seconds=second)
        - pl.duration(minutes=east.fill_null(0))
    )
    converted = utc.dt.replace_time_zone("UTC").dt.convert_time_zone(zone).dt.date()
    utc_ok = offset.is_null() | utc.dt.year().is_between(1, 9999)  # Python cannot hold the moment
    local = pl.when(offset.is_null()).then(day).otherwise(converted)
    return pl.when(time_ok & offset_ok & utc_ok).then(local)
