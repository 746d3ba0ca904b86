"""Order dates from timestamps: the local date, in the configured time zone, of a moment.

One grammar and one table of offsets, each written once and used twice: by Python (the exact
validator) and as Polars expressions (the fast screen). Accepted: ISO 8601 —
`2025-10-07T09:50:26+02:00`, `…Z`, `2025-10-07 09:50`, a bare date — and the form Shopify
writes, `2025-10-07 09:50:26 +0200`. A timestamp with an offset names a moment, converted to
the zone; one without an offset is already local time in the zone, so its date is the date it
shows.

The zone's offsets come from the tz database as Python's `zoneinfo` reads it (the system's
files, else the `tzdata` package), compiled into `ZoneOffsets`: Polars' own time zones are
never used. They are another copy of the database (without the pre-1970 history some systems
carry) that stops applying daylight saving rules after 2099, so the two paths gave different
dates to the same moment.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import functools
import os
import re
import struct
import zoneinfo
from dataclasses import dataclass
from importlib import resources

import polars as pl

__all__ = [
    "CYCLE",
    "FIRST_SECOND",
    "LAST_SECOND",
    "TIMESTAMP_PATTERN",
    "ZoneOffsets",
    "beyond_the_years",
    "local_date",
    "local_date_expr",
    "with_local_date",
    "zone_offsets",
]

#: date, then optionally a time (`T` or a space), then optionally an offset (`Z`, ±HH, ±HHMM,
#: ±HH:MM, after an optional space). Fractions of a second are allowed and ignored.
TIMESTAMP_PATTERN = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,9})?)?"
    r"(?: ?(Z|[+-][0-9]{2}(?::?[0-9]{2})?))?)?$"
)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)

DAY = 86_400
_EPOCH = dt.date(1970, 1, 1).toordinal()
#: The first and last second (since 1970, UTC) of the years 1–9999: a moment, and the local
#: time it gives, must both lie in them (a date outside them has no ISO form).
FIRST_SECOND = (dt.date.min.toordinal() - _EPOCH) * DAY
LAST_SECOND = (dt.date.max.toordinal() - _EPOCH + 1) * DAY - 1
_NEVER = -(2**63)  # the start of a zone's first offset: any moment at all
#: 400 Gregorian years, in seconds: 146,097 days, a whole number of weeks.
CYCLE = 146_097 * DAY


@dataclass(frozen=True, slots=True)
class ZoneOffsets:
    """A zone's offset from UTC at every moment of the years 1–9999: `offsets[i]` seconds east
    of UTC from `starts[i]` (seconds since 1970, UTC) until the next start. From the moment
    `cycle` on, the zone follows a yearly rule, and the offsets repeat every 400 years (the
    Gregorian calendar does, weekdays included): the table holds the first 400 of them."""

    key: str
    starts: tuple[int, ...]
    offsets: tuple[int, ...]
    cycle: int = LAST_SECOND + 1

    def at(self, moment: int) -> int:
        """Seconds east of UTC at `moment` (seconds since 1970, UTC)."""
        if moment >= self.cycle:
            moment = self.cycle + (moment - self.cycle) % CYCLE
        return self.offsets[bisect.bisect_right(self.starts, moment) - 1]


@functools.cache
def zone_offsets(key: str) -> ZoneOffsets:
    """The offsets `zoneinfo.ZoneInfo(key)` gives, as a table (one per zone per process).

    Read from the zone's TZif file like `zoneinfo` reads it: the transitions it lists, before
    the first the first standard-time type, and after the last its POSIX TZ rule, applied per
    UTC year. A test holds the table to `zoneinfo` in every zone.
    """
    zoneinfo.ZoneInfo(key)  # refuses what zoneinfo refuses (unknown zones, paths)
    times, kinds, types, rule = _read_tzif(_tzif_bytes(key))
    offsets = [types[k][0] for k in kinds]
    before = next((offset for offset, dst in types if not dst), offsets[0] if offsets else 0)
    table: list[tuple[int, int]] = [(_NEVER, before), *zip(times, offsets, strict=True)]
    after = times[-1] + 1 if times else FIRST_SECOND
    cycle = LAST_SECOND + 1
    if isinstance(rule, _Rule):
        yearly, cycle = rule.offsets(after)
        table += yearly
    elif not times:
        table = [(_NEVER, rule if rule is not None else types[-1][0])]
    elif len(times) == 1 and rule is not None:  # zoneinfo's rule when one transition is listed
        table.append((after, rule))
    starts: list[int] = []
    compact: list[int] = []
    for start, offset in table:  # one entry per change of offset within the years 1-9999
        if start > LAST_SECOND:
            break
        if start <= FIRST_SECOND and starts:  # still before the year 1: replaces the first
            compact[-1] = offset
        elif not compact or compact[-1] != offset:
            starts.append(start if starts else _NEVER)
            compact.append(offset)
    return ZoneOffsets(key, tuple(starts), tuple(compact), cycle)


def _tzif_bytes(key: str) -> bytes:
    """The TZif file `zoneinfo` reads for `key`: the first in `zoneinfo.TZPATH`, else `tzdata`'s."""
    for root in zoneinfo.TZPATH:
        path = os.path.join(root, key)
        if os.path.isfile(path):
            with open(path, "rb") as stream:
                return stream.read()
    *package, name = key.split("/")
    return resources.files(".".join(["tzdata.zoneinfo", *package])).joinpath(name).read_bytes()


def _read_tzif(data: bytes) -> tuple[list[int], list[int], list[tuple[int, bool]], _Rule | int | None]:
    """(transition times, the type of each, (offset, is DST) of each type, the rule after the
    last transition: a `_Rule`, a fixed offset, or None) of a TZif file (RFC 8536)."""

    def header(at: int) -> tuple[int, ...]:
        if data[at : at + 4] != b"TZif":
            raise ValueError("not a TZif file")
        return struct.unpack_from(">6l", data, at + 20)  # isut, isstd, leap, time, type, char counts

    isut, isstd, leap, timecnt, typecnt, charcnt = header(0)
    at, size, version = 44, 4, data[4:5]
    if version not in (b"\x00", b"1"):  # version 2+: skip the 32-bit data for the 64-bit data
        at += timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut
        isut, isstd, leap, timecnt, typecnt, charcnt = header(at)
        at, size = at + 44, 8
    times = list(struct.unpack_from(f">{timecnt}{'q' if size == 8 else 'l'}", data, at))
    at += timecnt * size
    kinds = list(data[at : at + timecnt])
    at += timecnt
    types = [
        (offset, bool(dst)) for offset, dst, _ in (struct.unpack_from(">lbb", data, at + 6 * i) for i in range(typecnt))
    ]
    at += typecnt * 6 + charcnt + leap * (size + 4) + isstd + isut
    footer = data[at:].strip(b"\n").decode("ascii") if size == 8 else ""
    return times, kinds, types, _parse_rule(footer) if footer else None


_TZ_RULE = re.compile(
    r"(?P<std><[A-Za-z0-9+-]+>|[^<0-9:.,+-]+)(?P<stdoff>[+-]?[0-9]{1,3}(?::[0-9]{2}){0,2})"
    r"(?:(?P<dst><[A-Za-z0-9+-]+>|[^<0-9:.,+-]+)(?P<dstoff>[+-]?[0-9]{1,3}(?::[0-9]{2}){0,2})?"
    r",M(?P<m1>[0-9]{1,2})\.(?P<w1>[1-5])\.(?P<d1>[0-6])(?:/(?P<t1>[+-]?[0-9]{1,3}(?::[0-9]{2}){0,2}))?"
    r",M(?P<m2>[0-9]{1,2})\.(?P<w2>[1-5])\.(?P<d2>[0-6])(?:/(?P<t2>[+-]?[0-9]{1,3}(?::[0-9]{2}){0,2}))?)?",
    re.ASCII,
)


def _seconds(text: str) -> int:
    """`[+-]h[:mm[:ss]]` in seconds."""
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    return sign * sum(p * unit for p, unit in zip(parts, (3600, 60, 1), strict=False))


def _parse_rule(footer: str) -> _Rule | int:
    """A TZif footer (a POSIX TZ string): a fixed offset, or standard and daylight time with the
    `Mm.w.d/time` rules the tz database uses."""
    match = _TZ_RULE.fullmatch(footer)
    if match is None:
        raise ValueError(f"time zone rule {footer!r} is not one this version reads")
    std = -_seconds(match["stdoff"])  # POSIX offsets count west of UTC
    if match["dst"] is None:
        return std
    dst = -_seconds(match["dstoff"]) if match["dstoff"] else std + 3600
    start = (int(match["m1"]), int(match["w1"]), int(match["d1"]), _seconds(match["t1"] or "2"))
    end = (int(match["m2"]), int(match["w2"]), int(match["d2"]), _seconds(match["t2"] or "2"))
    return _Rule(std, dst, start, end)


@dataclass(frozen=True, slots=True)
class _Rule:
    """Standard time, and daylight time from `start` to `end` each year ((month, week, weekday,
    local time) each), applied as `zoneinfo` does: per UTC year, the start in standard time and
    the end in daylight time."""

    std: int
    dst: int
    start: tuple[int, int, int, int]
    end: tuple[int, int, int, int]

    def offsets(self, since: int) -> tuple[list[tuple[int, int]], int]:
        """(start, offset) from the moment `since` on, and the moment from which they repeat
        every 400 years: the year after `since`'s starts the cycle, the table ends with it."""
        first = dt.date.fromordinal(min(max(since // DAY + _EPOCH, 1), dt.date.max.toordinal())).year
        table: list[tuple[int, int]] = []
        for year in range(first, min(first + 400, 9999) + 1):
            opens = max((dt.date(year, 1, 1).toordinal() - _EPOCH) * DAY, since)
            closes = (dt.date(year, 12, 31).toordinal() - _EPOCH + 1) * DAY
            start = _when(year, self.start) - self.std
            end = _when(year, self.end) - self.dst
            for moment in sorted({opens, start, end}):
                if opens <= moment < closes:
                    daylight = start <= moment < end if start < end else not end <= moment < start
                    table.append((moment, self.dst if daylight else self.std))
        if first + 400 > 9999:
            return table, LAST_SECOND + 1
        return table, (dt.date(first + 1, 1, 1).toordinal() - _EPOCH) * DAY


def _when(year: int, rule: tuple[int, int, int, int]) -> int:
    """`Mm.w.d/time` in `year`: day `d` (0 = Sunday) of week `w` of month `m` (5 = the last),
    at local time `time`, in seconds since 1970 as if local time were UTC."""
    month, week, weekday, time = rule
    first_weekday, days = calendar.monthrange(year, month)  # Monday = 0
    day = (weekday - (first_weekday + 1)) % 7 + 1 + (week - 1) * 7
    if day > days:
        day -= 7
    return (dt.date(year, month, day).toordinal() - _EPOCH) * DAY + time


def _offset_minutes(offset: str) -> int | None:
    """Minutes east of UTC; None when out of range."""
    if offset == "Z":
        return 0
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or "0")
    if hours > 23 or minutes > 59:
        return None
    return (hours * 60 + minutes) * (-1 if offset[0] == "-" else 1)


def _read(text: str, zone: str) -> tuple[dt.date | None, int | None, int | None]:
    """(the date written, its moment in seconds since 1970 UTC, the local time then in `zone`, in
    the same seconds): all None when `text` is no timestamp; no moment without an offset; no
    local time when the moment is outside the years 1-9999."""
    match = _TIMESTAMP.fullmatch(text)  # not `match`: `$` would allow a trailing newline
    if match is None:
        return None, None, None
    day_text, hour, minute, second, offset = match.groups()
    try:
        day = dt.date.fromisoformat(day_text)
    except ValueError:
        return None, None, None
    if hour is not None and (int(hour) > 23 or int(minute) > 59 or int(second or "0") > 59):
        return None, None, None
    if offset is None:
        return day, None, None
    minutes = _offset_minutes(offset)
    if minutes is None:
        return None, None, None
    moment = (day.toordinal() - _EPOCH) * DAY + int(hour) * 3600 + int(minute) * 60 + int(second or "0") - minutes * 60
    if not FIRST_SECOND <= moment <= LAST_SECOND:
        return day, moment, None
    return day, moment, moment + zone_offsets(zone).at(moment)


def local_date(text: str, zone: str) -> dt.date | None:
    """The order date a timestamp gives in `zone`; None when it is not a valid timestamp."""
    day, moment, local = _read(text, zone)
    if moment is None:
        return day
    if local is None or not FIRST_SECOND <= local <= LAST_SECOND:
        return None
    return dt.date.fromordinal(local // DAY + _EPOCH)


def beyond_the_years(text: str, zone: str) -> str | None:
    """Why a well-formed timestamp gives no order date, when the reason is the years 1-9999:
    its moment, or its local date in `zone`, lies outside them. None for any other timestamp."""
    _, moment, local = _read(text, zone)
    if moment is None:
        return None
    if local is None:
        return f"is a moment {'before 0001-01-01' if moment < FIRST_SECOND else 'after 9999-12-31'} in UTC"
    if local < FIRST_SECOND:
        return f"falls on 0000-12-31 in {zone}"
    if local > LAST_SECOND:
        return f"falls on 10000-01-01 in {zone}"
    return None


def local_date_expr(text: pl.Expr, zone: str) -> pl.Expr:
    """The same rule as a Polars expression, on one value (tests; `with_local_date` for files)."""
    frame = pl.LazyFrame().select(text.alias("text"))
    return pl.lit(with_local_date(frame, "text", zone, "date").select("date").collect().to_series())


def with_local_date(frame: pl.LazyFrame, column: str, zone: str, alias: str) -> pl.LazyFrame:
    """`frame` with `alias`: the Date `local_date` gives for `column`, null where it gives None.

    One pass of the pattern takes every part of a timestamp (its groups: the date, the hour,
    minute and second, the offset); a value it does not match has none. The zone's offset is
    looked up in its `zone_offsets` table (a binary search per row), in whole seconds as in
    `local_date`. Each step is a column of its own, so the streaming engine computes each part
    once.
    """
    c = pl.col
    parts = frame.with_columns(c(column).str.extract_groups(TIMESTAMP_PATTERN).alias("__parts"))
    written, hour, minute, second, offset = (c("__parts").struct.field(str(group)) for group in range(1, 6))
    day = written.str.to_date("%Y-%m-%d", strict=False)
    off_hours = _number(offset.str.slice(1, 2))
    off_minutes = pl.when(offset.str.len_bytes() > 3).then(_number(offset.str.slice(-2, 2))).otherwise(0)
    sign = pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
    read = parts.with_columns(
        pl.when(day.dt.year() >= 1).then(day).alias("__day"),
        _number(hour).alias("__hour"),
        _number(minute).alias("__minute"),
        _number(second).fill_null(0).alias("__second"),
        pl.when(offset == "Z").then(0).otherwise(sign * (off_hours * 60 + off_minutes)).alias("__east"),
        (offset.is_null() | (offset == "Z") | ((off_hours <= 23) & (off_minutes <= 59))).alias("__offset_ok"),
        offset.is_null().alias("__local_time"),
    )
    hour, minute = c("__hour"), c("__minute")
    ok = c("__day").is_not_null() & c("__offset_ok")
    ok = ok & (hour.is_null() | ((hour <= 23) & (minute <= 59) & (c("__second") <= 59)))
    utc = c("__day").cast(pl.Int64) * DAY + hour.fill_null(0) * 3600 + minute.fill_null(0) * 60 + c("__second")
    moments = read.with_columns(ok.alias("__ok"), (utc - c("__east").fill_null(0) * 60).alias("__utc"))
    return _in_zone(moments, zone, alias).drop(
        "__parts", "__day", "__hour", "__minute", "__second", "__east", "__offset_ok", "__local_time", "__ok", "__utc"
    )


def _number(digits: pl.Expr) -> pl.Expr:
    return digits.cast(pl.Int64, strict=False)


def _in_zone(moments: pl.LazyFrame, zone: str, alias: str) -> pl.LazyFrame:
    """`alias`: the local date in `zone` of each moment `__utc`, or the date written (`__day`)
    of a local time (`__local_time`), where `__ok`; null elsewhere."""
    c = pl.col
    table = zone_offsets(zone)
    starts = pl.Series(table.starts, dtype=pl.Int64)
    offsets = pl.lit(pl.Series(table.offsets, dtype=pl.Int64))
    utc = c("__utc")
    folded = pl.when(utc >= table.cycle).then(table.cycle + (utc - table.cycle) % CYCLE).otherwise(utc)
    # Row by row, so the query streams: a search with the table as a literal is not streamed,
    # and Polars then holds every row of the file at once.
    position = folded.fill_null(0).map_batches(
        lambda moments: starts.search_sorted(moments, side="right"), pl.get_index_type(), is_elementwise=True
    )
    # The local time is a column of its own: used twice, it would be looked up twice (the
    # streaming engine does not share a subexpression with a Python function in it).
    local = moments.with_columns((utc + offsets.gather(position.cast(pl.Int64) - 1)).alias("__local"))
    in_range = utc.is_between(FIRST_SECOND, LAST_SECOND) & c("__local").is_between(FIRST_SECOND, LAST_SECOND)
    converted = (c("__local") // DAY).cast(pl.Int32).cast(pl.Date)
    date = pl.when(c("__local_time")).then(c("__day")).when(in_range).then(converted)
    return local.with_columns(pl.when(c("__ok")).then(date).alias(alias)).drop("__local")
