"""Order dates from timestamps: the forms accepted, time zones across DST and the date line,
and the Python and Polars readings held to each other."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderpipe.core.timestamps import local_date, local_date_expr


def both(text: str, zone: str) -> dt.date | None:
    """The date both readings give; they must agree."""
    python = local_date(text, ZoneInfo(zone))
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


@settings(max_examples=300, deadline=None, derandomize=True)
@given(parts=pieces, zone=st.sampled_from(ZONES))
def test_python_and_polars_agree(parts: tuple[str, ...], zone: str) -> None:
    day, sep, hour, colon, minute, second, offset = parts
    text = day if not sep else f"{day}{sep}{hour}{colon}{minute}{second}{offset}"
    both(text, zone)
