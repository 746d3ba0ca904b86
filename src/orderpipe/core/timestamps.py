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

__all__ = ["TIMESTAMP_PATTERN", "local_date", "local_date_expr", "with_local_date"]

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
    """The same rule as a Polars expression, on one value (tests; `with_local_date` for files)."""
    frame = pl.LazyFrame().select(text.alias("text"))
    return pl.lit(with_local_date(frame, "text", zone, "date").select("date").collect().to_series())


def with_local_date(frame: pl.LazyFrame, column: str, zone: str, alias: str) -> pl.LazyFrame:
    """`frame` with `alias`: the Date `local_date` gives for `column`, null where it gives None
    (or where the conversion leaves the years 1–9999, which the date check then refuses).

    The pattern only validates (a match is cheap, capturing groups are not); once it matched,
    every part sits at a known place: the date in 0-9, the time from 11, and the offset is the
    `Z` at the end or starts at the first `+`/`-` after the date. Each step is a column of its
    own, so the streaming engine computes each part once.
    """
    c = pl.col
    text = c(column)
    rest = text.str.slice(16)
    sign_at = pl.min_horizontal(rest.str.find("+", literal=True), rest.str.find("-", literal=True))
    second = pl.when(text.str.slice(16, 1) == ":").then(text.str.slice(17, 2).cast(pl.Int64, strict=False))
    parts = frame.with_columns(
        text.str.contains(TIMESTAMP_PATTERN).alias("__valid"),
        text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).alias("__day"),
        pl.when(text.str.len_bytes() > 10).then(text.str.slice(11, 2).cast(pl.Int64, strict=False)).alias("__hour"),
        text.str.slice(14, 2).cast(pl.Int64, strict=False).alias("__minute"),
        second.otherwise(0).alias("__second"),
        pl.when(text.str.ends_with("Z"))
        .then(pl.lit("Z"))
        .when(sign_at.is_not_null())
        .then(rest.str.slice(sign_at.fill_null(0)).str.replace(":", "", literal=True))
        .alias("__offset"),
    )
    offset = c("__offset")
    off_hours = offset.str.slice(1, 2).cast(pl.Int64, strict=False)
    off_minutes = pl.when(offset.str.len_bytes() > 3).then(offset.str.slice(3, 2).cast(pl.Int64, strict=False))
    sign = pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
    hour, minute = c("__hour"), c("__minute")
    moments = parts.with_columns(
        pl.when(offset == "Z").then(0).otherwise(sign * (off_hours * 60 + off_minutes.otherwise(0))).alias("__east"),
        (
            c("__valid")
            & (hour.is_null() | ((hour <= 23) & (minute <= 59) & (c("__second") <= 59)))
            & (offset.is_null() | (offset == "Z") | ((off_hours <= 23) & (off_minutes.otherwise(0) <= 59)))
        ).alias("__ok"),
    ).with_columns(
        (
            c("__day").cast(pl.Datetime("us"))
            + pl.duration(hours=hour.fill_null(0), minutes=minute.fill_null(0), seconds=c("__second"))
            - pl.duration(minutes=c("__east").fill_null(0))
        ).alias("__utc")
    )
    utc = c("__utc")
    converted = utc.dt.replace_time_zone("UTC").dt.convert_time_zone(zone).dt.date()
    utc_ok = offset.is_null() | utc.dt.year().is_between(1, 9999)  # Python cannot hold the moment
    local = pl.when(offset.is_null()).then(c("__day")).otherwise(converted)
    temporary = ["__valid", "__day", "__hour", "__minute", "__second", "__offset", "__east", "__ok", "__utc"]
    return moments.with_columns(pl.when(c("__ok") & utc_ok).then(local).alias(alias)).drop(temporary)
