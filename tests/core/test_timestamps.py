"""Order dates from timestamps: the forms accepted, time zones across DST and the date line,
and the Python and Polars readings held to each other and to `zoneinfo`, in every zone of the
tz database, over the years 1-9999."""

from __future__ import annotations

import datetime as dt
import io
import random
import struct
import zoneinfo
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orderpipe.ingest as ingest
from orderpipe.core.rules import DEFAULT_CATEGORIES
from orderpipe.core.shape import InputShape
from orderpipe.core.shape_validate import validate_shaped
from orderpipe.core.timestamps import (
    CYCLE,
    FIRST_SECOND,
    LAST_SECOND,
    _parse_rule,
    _read_tzif,
    _Rule,
    _tzif_bytes,
    beyond_the_years,
    local_date,
    local_date_expr,
    with_local_date,
    zone_offsets,
)
from tests.conftest import examples

ALL_ZONES = sorted(zoneinfo.available_timezones())
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
DAY = 86_400


def both(text: str, zone: str) -> dt.date | None:
    """The date both readings give; they must agree."""
    python = local_date(text, zone)
    polars = pl.select(local_date_expr(pl.lit(text), zone)).item()
    assert python == polars, (text, zone, python, polars)
    return python


@pytest.mark.parametrize(
    ("text", "zone", "day"),
    [
        # Shopify's form, with and without its offset
        ("2025-10-07 09:50:26 +0200", "Europe/Berlin", "2025-10-07"),
        ("2025-10-07 23:50:26 +0000", "Europe/Berlin", "2025-10-08"),
        ("2025-10-07 09:50:26", "Europe/Berlin", "2025-10-07"),
        # ISO 8601
        ("2025-10-07T09:50:26+02:00", "UTC", "2025-10-07"),
        ("2025-10-07T01:50:26+02:00", "UTC", "2025-10-06"),
        ("2025-10-07T09:50:26.123456Z", "Asia/Tokyo", "2025-10-07"),
        ("2025-10-07T20:00Z", "Asia/Tokyo", "2025-10-08"),
        ("2025-10-07T20:00+05", "UTC", "2025-10-07"),
        ("2025-10-07", "America/New_York", "2025-10-07"),
        # the date line: 23:30 in UTC-5 is the next day in UTC, and 00:30 in UTC+14 the day before
        ("2025-01-01T23:30:00-05:00", "UTC", "2025-01-02"),
        ("2025-01-02T00:30:00+14:00", "UTC", "2025-01-01"),
        ("2025-01-01T11:30:00Z", "Pacific/Kiritimati", "2025-01-02"),
        ("2025-01-01T11:30:00Z", "Pacific/Pago_Pago", "2025-01-01"),
        # DST in Berlin ends on 2025-10-26: 22:30 UTC is 00:30 CEST the day before, 23:30 CET after
        ("2025-10-25T22:30:00Z", "Europe/Berlin", "2025-10-26"),
        ("2025-10-26T22:30:00Z", "Europe/Berlin", "2025-10-26"),
        # DST in New York begins on 2025-03-09: 04:30 UTC is 23:30 EST before, 00:30 EDT after
        ("2025-03-09T04:30:00Z", "America/New_York", "2025-03-08"),
        ("2025-03-10T04:30:00Z", "America/New_York", "2025-03-10"),
        # a wall-clock time that does not exist (skipped by DST) still has its date
        ("2025-03-30 02:30:00", "Europe/Berlin", "2025-03-30"),
        # daylight saving time goes on after 2099 (Polars' own zones stop it there: 2100-06-30)
        ("2100-07-01T04:30:00Z", "America/New_York", "2100-07-01"),
        ("2100-07-01T09:30:00Z", "America/Adak", "2100-07-01"),
        ("3168-07-15T19:08:30+05:45", "Australia/Lord_Howe", "3168-07-15"),
        # the first and last days: a moment whose local date is still in the years 1-9999
        ("0001-01-01T00:30:00+00:30", "Asia/Tokyo", "0001-01-01"),
        ("9999-12-31T23:59:59+01:00", "America/New_York", "9999-12-31"),
        # zones Polars does not know are read all the same
        ("2025-10-07T23:30:00Z", "Factory", "2025-10-07"),
    ],
)
def test_local_dates(text: str, zone: str, day: str) -> None:
    assert both(text, zone) == dt.date.fromisoformat(day)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2025-02-30 10:00:00",
        "2025-10-07T24:00",
        "2025-10-07T10:60",
        "2025-10-07T10:00:60",
        "2025-10-07T10:00+24:00",
        "2025-10-07T10:00+02:60",
        "2025-10-07Z",
        "07/10/2025 09:50",
        "2025-10-07T9:50",
        "2025-10-07  09:50",
        "2025-10-07T09:50:26 CEST",
        "1760000000",
        "0001-01-01T00:30+01:00",
        "9999-12-31T23:30-05:00",
    ],
)
def test_invalid_timestamps(text: str) -> None:
    assert both(text, "UTC") is None


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("0000-01-01", "UTC"),  # the year 0 is no date, with or without an offset
        ("0000-12-31T23:00:00-05:00", "Asia/Tokyo"),
        ("0001-01-01T00:30:00Z", "America/New_York"),  # 0000-12-31 in New York
        ("0001-01-01T09:00:00+14:00", "Pacific/Kiritimati"),  # the moment is in the year 0
        ("9999-12-31T23:30:00Z", "Asia/Kolkata"),  # 10000-01-01 in Kolkata
        ("9999-12-31T11:00:00-12:00", "Pacific/Kiritimati"),
    ],
)
def test_a_local_date_outside_the_years_1_to_9999_is_invalid(text: str, zone: str) -> None:
    assert both(text, zone) is None


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Pacific/Kiritimati", "Asia/Kathmandu", "Australia/Lord_Howe"]
pieces = st.tuples(
    st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat)
    | st.text("0123456789-", min_size=8, max_size=11),
    st.sampled_from(["", "T", " ", "t"]),
    st.integers(0, 25).map("{:02d}".format),
    st.sampled_from([":", ""]),
    st.integers(0, 61).map("{:02d}".format),
    st.sampled_from(["", ":00", ":59", ":60", ":07.5", ":07.1234567891"]),
    st.sampled_from(["", "Z", " +0200", "+02:00", "-05:00", "+14", "-1200", " Z", "+2400", "+0260", "+5"]),
)


@settings(max_examples=examples(300), deadline=None, derandomize=True)
@given(parts=pieces, zone=st.sampled_from(ZONES) | st.sampled_from(ALL_ZONES))
def test_python_and_polars_agree(parts: tuple[str, ...], zone: str) -> None:
    day, sep, hour, colon, minute, second, offset = parts
    text = day if not sep else f"{day}{sep}{hour}{colon}{minute}{second}{offset}"
    both(text, zone)


def zoneinfo_offset(zone: zoneinfo.ZoneInfo, moment: int) -> int:
    local = (EPOCH + dt.timedelta(seconds=moment)).astimezone(zone)
    offset = local.utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def test_the_offsets_are_zoneinfos_in_every_zone() -> None:
    """The one table both paths read is the tz database as `zoneinfo` reads it: checked a
    second before, at and after every change of offset the zone's file lists, at changes drawn
    from its yearly rule's first 400 years (what the table holds) and from the cycles after
    (what it repeats), and at moments drawn from the years 1-9999."""
    # Compiled here, not taken from what earlier tests left in the per-process cache: this test
    # must read every zone's file itself (mutation testing counts a test as covering only the
    # code it runs).
    zone_offsets.cache_clear()
    rng = random.Random(2026)
    low, high = FIRST_SECOND + DAY, LAST_SECOND - DAY  # zoneinfo overflows within a day of the ends
    wrong = []
    for key in ALL_ZONES:
        table, zone = zone_offsets(key), zoneinfo.ZoneInfo(key)
        changes = [start for start in table.starts[1:] if start < table.cycle]
        cycle = [start for start in table.starts[1:] if start >= table.cycle]
        changes += rng.sample(cycle, min(len(cycle), 80))
        changes += [
            start + CYCLE * rng.randint(1, (high - start) // CYCLE) for start in rng.sample(cycle, min(len(cycle), 40))
        ]
        moments = {change + step for change in changes for step in (-1, 0, 1)}
        moments |= {rng.randint(low, high) for _ in range(60)} | {low, high}
        wrong += [(key, m) for m in sorted(moments) if low <= m <= high and table.at(m) != zoneinfo_offset(zone, m)]
    assert wrong == []


#: Offsets a timestamp may carry: the half and quarter hours, the date line, the bounds.
OFFSETS = [0, 330, -210, 345, 840, -720, 120, -300, 1439, -1439, 525, -570]


def written(moment: int, offset: int | None, rng: random.Random) -> str | None:
    """`moment` as a timestamp with `offset` minutes (None: as a wall time without an offset),
    in one of the accepted forms; None when its wall time leaves the years 1-9999."""
    wall = moment + (offset or 0) * 60
    if not FIRST_SECOND <= wall <= LAST_SECOND:
        return None
    text = (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=wall)).isoformat(sep=rng.choice("T "))
    if offset is None:
        return text
    sign = "-" if offset < 0 else "+"
    hh, mm = divmod(abs(offset), 60)
    marks = ["Z" if offset == 0 else f"{sign}{hh:02d}:{mm:02d}", f" {sign}{hh:02d}{mm:02d}", f"{sign}{hh:02d}{mm:02d}"]
    return text + rng.choice(["", ".5"]) + rng.choice(marks)


def zoneinfo_date(text: str, zone: zoneinfo.ZoneInfo) -> dt.date | None:
    """The date `zoneinfo` alone gives (None when the moment or its local time overflows)."""
    moment = dt.datetime.fromisoformat(text.replace(" +", "+").replace(" -", "-"))
    if moment.tzinfo is None:
        return moment.date()
    try:
        return moment.astimezone(zone).date()
    except OverflowError:
        return None


def test_python_polars_and_zoneinfo_agree_in_every_zone() -> None:
    """Every zone, 0001-9999: moments at the zone's changes of offset (a second before, at and
    after, so on both sides of every gap and fold), moments drawn from the whole range and the
    two ends, each written with an offset from the date line to ±23:59 and the half and quarter
    hours, and wall times without an offset at the changes. The Polars reading (one query per
    zone) and the Python reading give `zoneinfo`'s date, or both refuse."""
    rng = random.Random(7)
    texts: dict[str, list[str]] = {}
    for key in ALL_ZONES:
        table = zone_offsets(key)
        changes = table.starts[1:]
        moments = [change + step for change in rng.sample(changes, min(len(changes), 30)) for step in (-1, 0, 1)]
        moments += [rng.randint(FIRST_SECOND, LAST_SECOND) for _ in range(30)]
        moments += [FIRST_SECOND, FIRST_SECOND + DAY - 1, LAST_SECOND - DAY + 1, LAST_SECOND]
        drawn = [written(moment, rng.choice(OFFSETS), rng) for moment in moments]
        walls = [change + table.at(change - 1) for change in rng.sample(changes, min(len(changes), 10))]
        drawn += [written(wall + step, None, rng) for wall in walls for step in (-1, 0, 1)]  # into a gap or fold
        texts[key] = [text for text in drawn if text is not None]
    dates = [with_local_date(pl.LazyFrame({"t": texts[key]}), "t", key, "d").collect()["d"] for key in ALL_ZONES]
    wrong = []
    for key, polars in zip(ALL_ZONES, dates, strict=True):
        zone = zoneinfo.ZoneInfo(key)
        for text, day in zip(texts[key], polars, strict=True):
            python, reference = local_date(text, key), zoneinfo_date(text, zone)
            if not python == day == reference:
                wrong.append((key, text, python, day, reference))
    assert wrong == [], f"{len(wrong)} of {sum(map(len, texts.values()))}: {wrong[:10]}"


@pytest.mark.parametrize(
    ("stamp", "zone", "why"),
    [
        ("9999-12-31T23:30:00Z", "Asia/Kolkata", "falls on 10000-01-01 in Asia/Kolkata"),
        ("0001-01-01T00:30:00Z", "America/New_York", "falls on 0000-12-31 in America/New_York"),
        ("0001-01-01T00:30:00+01:00", "Asia/Tokyo", "is a moment before 0001-01-01 in UTC"),
        ("9999-12-31T23:30:00-05:00", "UTC", "is a moment after 9999-12-31 in UTC"),
    ],
)
def test_a_date_beyond_the_years_1_to_9999_is_reported_with_what_to_do(stamp: str, zone: str, why: str) -> None:
    """Beyond the range both paths agree on, the report names the line, the column, the value,
    the date it would fall on and what to check: not just "not a timestamp"."""
    shape = InputShape(columns=(("order_timestamp", "Created at"),), timezone=zone)
    header = "order_id,customer_id,Created at,category,product_id,quantity,unit_price,returned"
    data = f"{header}\nO1,C1,{stamp},Books,P1,1,2,false\n"
    report = validate_shaped(io.BytesIO(data.encode()), "f.csv", shape, frozenset(DEFAULT_CATEGORIES))
    (issue,) = report.errors
    (sample,) = issue.samples
    assert (issue.code, report.file, sample.line, sample.column, sample.value) == (
        "invalid-timestamp",
        "f.csv",
        2,
        "Created at",
        stamp,
    )
    message = f"'{stamp}' {why}: order dates run from 0001-01-01 to 9999-12-31, check its year"
    assert sample.message == f"{message} ('Created at' is read as order_timestamp)"


#: Offsets of a whole hour and a half or three quarters, each 15 minutes either side of midnight:
#: in the zone that uses the offset (India, Newfoundland in winter, Nepal) and in UTC. Reading the
#: minutes with the wrong sign, or not at all, moves each by half an hour or more: a day off.
HALF_HOURS = [
    ("2025-01-15T23:45:00+05:30", "Asia/Kolkata", "2025-01-15"),
    ("2025-01-16T00:15:00+05:30", "Asia/Kolkata", "2025-01-16"),
    ("2025-01-16 05:15:00 +0530", "UTC", "2025-01-15"),
    ("2025-01-16T05:45:00+0530", "UTC", "2025-01-16"),
    ("2025-01-15T23:45:00-03:30", "America/St_Johns", "2025-01-15"),
    ("2025-01-16T00:15:00-03:30", "America/St_Johns", "2025-01-16"),
    ("2025-01-15 20:15:00 -0330", "UTC", "2025-01-15"),
    ("2025-01-15T20:45:00-0330", "UTC", "2025-01-16"),
    ("2025-01-15T23:45:00+05:45", "Asia/Kathmandu", "2025-01-15"),
    ("2025-01-16T00:15:00+05:45", "Asia/Kathmandu", "2025-01-16"),
    ("2025-01-16 06:00:00 +0545", "UTC", "2025-01-16"),
    ("2025-01-16T05:30:00+0545", "UTC", "2025-01-15"),
]


@pytest.mark.parametrize(("text", "zone", "day"), HALF_HOURS)
def test_an_offset_with_minutes_near_midnight(text: str, zone: str, day: str) -> None:
    python = local_date(text, zone)
    polars = with_local_date(pl.LazyFrame({"t": [text]}), "t", zone, "d").collect()["d"].item()
    assert (python, polars) == (dt.date.fromisoformat(day), dt.date.fromisoformat(day))


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu", "UTC"])
def test_a_file_of_such_offsets_is_staged_on_the_same_dates_by_both_paths(zone: str, tmp_path: Path) -> None:
    """A file of orders written with these offsets, read in each zone: the fast path alone
    decides it (the exact validator is never called) and stages every order on its local date;
    the exact validator, made to read the file, stages the same dates."""
    shape = InputShape(grain="order", columns=(("order_timestamp", "Created at"),), timezone=zone, dates="any")
    rows = [f"O{n},C1,{text},Books,P1,1,2.50,false" for n, (text, _, _) in enumerate(HALF_HOURS)]
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,customer_id,Created at,category,product_id,quantity,unit_price,returned\n" + "\n".join(rows)
    )
    want = {f"O{n}": local_date(text, zone) for n, (text, _, _) in enumerate(HALF_HOURS)}
    for text, written_in, day in HALF_HOURS:  # the dates expected, not only the two paths agreeing
        if written_in == zone:
            assert local_date(text, zone) == dt.date.fromisoformat(day)
    assert [staged_dates(path, shape, tmp_path / "fast", fast=True), staged_dates(path, shape, tmp_path / "exact")] == [
        want,
        want,
    ]


def staged_dates(path: Path, shape: InputShape, workdir: Path, fast: bool = False) -> dict[str, dt.date]:
    """order id -> the date its row is staged on, the file read by the fast path alone (`fast`:
    the exact validator must not be called), or by the exact validator."""
    calls: list[int] = []
    real = ingest.validate
    workdir.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
        if not fast:
            patch.setattr(ingest, "_screened", lambda *a, **k: None)
        inspection = ingest.inspect_file(path, path.name, DEFAULT_CATEGORIES, workdir, shape=shape)
    assert inspection.report.valid and inspection.facts is not None, inspection.report.to_dict()
    assert calls == ([] if fast else [1])
    frame = pl.concat([pl.read_parquet(p) for p in inspection.facts.paths])
    return dict(frame.select("order_id", "order_date").iter_rows())


def _version_1(data: bytes) -> bytes:
    """The 32-bit block of a TZif file alone, marked version 1 (no footer): a file as old
    systems write it."""
    isut, isstd, leap, timecnt, typecnt, charcnt = struct.unpack_from(">6l", data, 20)
    end = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut
    return data[:4] + b"\x00" + data[5:end]


@pytest.mark.parametrize("key", ["Europe/Berlin", "America/St_Johns", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"])
def test_a_version_1_file_gives_the_changes_of_offset_its_32_bits_hold(key: str) -> None:
    """The same changes as the 64-bit block where 32 bits reach (less the first, zic's mark at
    -2**31), and no rule after them."""
    data = _tzif_bytes(key)
    times, kinds, types, rule = _read_tzif(_version_1(data))
    full_times, full_kinds, full_types, _ = _read_tzif(data)
    old = [(t, types[k]) for t, k in zip(times, kinds, strict=True) if t != -(2**31)]
    assert old == [(t, full_types[k]) for t, k in zip(full_times, full_kinds, strict=True) if -(2**31) < t < 2**31]
    assert rule is None


def test_a_file_that_is_no_tzif_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^not a TZif file$"):
        _read_tzif(b"TZxf" + _tzif_bytes("UTC")[4:])


@pytest.mark.parametrize(
    ("footer", "rule"),
    [
        ("CET-1CEST,M3.5.0,M10.5.0/3", _Rule(3600, 7200, (3, 5, 0, 7200), (10, 5, 0, 10800))),
        ("NST3:30NDT,M3.2.0,M11.1.0", _Rule(-12600, -9000, (3, 2, 0, 7200), (11, 1, 0, 7200))),
        ("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", _Rule(37800, 39600, (10, 1, 0, 7200), (4, 1, 0, 7200))),
        ("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", _Rule(-7200, -3600, (3, 5, 0, -3600), (10, 5, 0, 0))),
        ("EST5EDT,M3.2.0/2:30:15,M11.1.0/25", _Rule(-18000, -14400, (3, 2, 0, 9015), (11, 1, 0, 90000))),
        ("IST-5:30", 19800),
        ("<+0545>-5:45", 20700),
        ("<-0330>3:30", -12600),
    ],
)
def test_the_yearly_rules_the_tz_database_writes(footer: str, rule: object) -> None:
    assert _parse_rule(footer) == rule


def test_a_rule_this_version_cannot_read_says_which() -> None:
    with pytest.raises(ValueError, match=r"^time zone rule 'EST5EDT,J60,J300' is not one this version reads$"):
        _parse_rule("EST5EDT,J60,J300")


@pytest.mark.parametrize(
    ("stamp", "zone"),
    [
        ("0001-01-01T00:00:00Z", "UTC"),
        ("9999-12-31T23:59:59Z", "UTC"),
        ("0001-01-01T09:00:00+09:00", "Asia/Tokyo"),
        ("9999-12-31T18:29:59Z", "Asia/Kolkata"),
        ("2025-10-07T09:50:26+02:00", "Europe/Berlin"),
        ("not a timestamp", "UTC"),
    ],
)
def test_the_first_and_last_moments_of_the_years_are_not_beyond_them(stamp: str, zone: str) -> None:
    assert beyond_the_years(stamp, zone) is None
