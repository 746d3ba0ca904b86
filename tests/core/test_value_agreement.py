"""Every value both paths compute, one definition: the exact validator's rules (`rules.py`,
Python) and the screen's expressions (`screen.py`, Polars) give the same verdict and the same
typed value for dates, quantities, prices, booleans, ids and categories, over the whole range
each accepts.

Exhaustive where the range is finite (every YYYY-MM-DD of the years 0000-9999, every Unicode
character for trimming, blanks and lower case), drawn where it is not (digit strings of any
length, any text). Each draw is a batch of values screened in one Polars query, so thousands
of values cost milliseconds. `test_rule_agreement.py` holds whole files and the staged facts
of both paths together; this file covers the values themselves, far more of them.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
import sys
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from orderpipe.core.rules import (
    BLANK_PATTERN,
    BOOLEAN_VALUES,
    COLUMNS,
    DEFAULT_CATEGORIES,
    EDGE_PATTERN,
    WHITESPACE,
    check_value,
    is_blank,
)
from orderpipe.core.screen import returned_from_status, screen_columns
from orderpipe.core.shape import InputShape
from tests.conftest import examples

#: Categories a configuration may hold: accents, other scripts, an invisible character inside.
CATS = [*DEFAULT_CATEGORIES, "Café", "Spiel\u200bzeug", "日用品", "ΟΔΟΣ"]
VALID = {
    "order_id": "O1",
    "customer_id": "C1",
    "order_date": "2025-07-06",
    "category": "Books",
    "product_id": "P1",
    "quantity": "1",
    "unit_price": "2.00",
    "returned": "false",
}
EVERY_CHARACTER = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]


def screened(column: str, values: list[str], trimmed: bool = True) -> pl.DataFrame:
    """The screen's typed columns and `ok` for rows valid but for `column`, which holds each of
    `values` as read; trimmed as the screen trims (the exact validator's `strip(WHITESPACE)`)."""
    frame = pl.DataFrame({c: values if c == column else [VALID[c]] * len(values) for c in COLUMNS})
    if trimmed:
        frame = frame.with_columns(pl.col(column).str.strip_chars(WHITESPACE))
    typed = frame.with_columns(pl.lit("x").alias("__last")).select(screen_columns(CATS, trimmed))
    return typed.select("ok", pl.when("ok").then(pl.col(column)).alias(column))  # a refused date may be year 0


def typed(column: str, value: str) -> object:
    """The staged value a valid value must become, read the way Python reads it."""
    if column == "order_date":
        return dt.date.fromisoformat(value)
    if column == "quantity":
        return int(value.lstrip("0") or "0")  # int() refuses more than 4,300 digits
    if column == "unit_price":
        return Decimal(value).quantize(Decimal("0.0001"))
    if column == "returned":
        return value.lower() == "true"
    return value


def disagreements(column: str, values: list[str]) -> list[tuple[str, object, object]]:
    """(value, Python's reading, Polars') wherever the two differ, for both screens: the trimmed
    one must agree exactly; the untrimmed one may refuse more, never accept more or otherwise."""
    found: list[tuple[str, object, object]] = []
    trimmed, untrimmed = screened(column, values), screened(column, values, trimmed=False)
    for value, row, raw in zip(values, trimmed.iter_rows(named=True), untrimmed.iter_rows(named=True), strict=True):
        clean = value.strip(WHITESPACE)
        python = typed(column, clean) if check_value(column, clean, frozenset(CATS)) is None else None
        polars = row[column] if row["ok"] else None
        if python != polars:
            found.append((value, python, polars))
        if raw["ok"] and raw[column] != python:
            found.append((value, python, ("untrimmed", raw[column])))
    return found


def test_every_day_of_the_years_0000_to_9999() -> None:
    """Every `YYYY-MM-DD` with a month 00-13 and a day 00-32 (4.6 million strings): the screen
    accepts exactly the days of Python's calendar from 0001-01-01, each as the day Python
    gives; `check_value` is asked about every string of a sample of years (every kind of leap
    year and century, the first and last)."""
    years = pl.int_range(0, 10_000, eager=True).alias("y").to_frame()
    grid = years.join(pl.int_range(0, 14, eager=True).alias("m").to_frame(), how="cross").join(
        pl.int_range(0, 33, eager=True).alias("d").to_frame(), how="cross"
    )
    text = pl.format("{}-{}-{}", *(pl.col(p).cast(pl.String).str.zfill(n) for p, n in (("y", 4), ("m", 2), ("d", 2))))
    strings = grid.with_columns(text.alias("order_date"))
    frame = strings.with_columns(*(pl.lit(VALID[c]).alias(c) for c in COLUMNS if c != "order_date"), __last=pl.lit("x"))
    screen = frame.select("y", "m", "d", *screen_columns(CATS))
    # Python's calendar, per month: its length and the ordinal of its first day.
    months = pl.DataFrame(
        [
            (y, m, calendar.monthrange(y, m)[1], dt.date(y, m, 1).toordinal() - dt.date(1970, 1, 1).toordinal())
            for y in range(1, 10_000)
            for m in range(1, 13)
        ],
        schema={"y": pl.Int64, "m": pl.Int64, "days": pl.Int64, "first": pl.Int64},
        orient="row",
    )
    joined = screen.join(months, on=["y", "m"], how="left")
    expected = pl.col("days").is_not_null() & pl.col("d").is_between(1, pl.col("days"))
    wrong = joined.filter(
        (pl.col("ok") != expected)
        | (pl.col("ok") & (pl.col("order_date").cast(pl.Int64) != pl.col("first") + pl.col("d") - 1))
    )
    assert wrong.height == 0, wrong.head(10)
    assert joined["ok"].sum() == dt.date.max.toordinal()  # every day of the years 1-9999, once
    sample = {0, 1, 4, 100, 400, 1582, 1900, 2000, 2024, 2100, 9996, 9999} | set(
        random.Random(1).sample(range(10_000), 40)
    )
    values = strings.filter(pl.col("y").is_in(sorted(sample)))["order_date"].to_list()
    assert disagreements("order_date", values) == []


def test_every_character_is_trimmed_blank_and_lowercased_alike() -> None:
    """Each of the 1.1 million characters, alone: trimmed away by both or neither, blank for
    both or neither, an edge (what sends a value to the trimmed screen) exactly when it is
    trimmed or blank; and no character but the ASCII letters lowercases into a letter of
    `true` or `false`, in Python or in Polars, so `returned` reads alike whatever the value."""
    chars = pl.Series(EVERY_CHARACTER)
    stripped = chars.str.strip_chars(WHITESPACE).to_list()
    blank = chars.str.contains(BLANK_PATTERN).to_list()
    edge = chars.str.contains(EDGE_PATTERN).to_list()
    lowered = chars.str.to_lowercase().to_list()
    letters = set("".join(BOOLEAN_VALUES))
    wrong = []
    for ch, strip, blank_polars, edge_polars, lower in zip(
        EVERY_CHARACTER, stripped, blank, edge, lowered, strict=True
    ):
        blank_python = is_blank(ch)
        if strip != ch.strip(WHITESPACE) or blank_polars != blank_python or edge_polars != blank_python:
            wrong.append((hex(ord(ch)), "trim/blank/edge"))
        if not ch.isascii() and letters & set(ch.lower() + lower):
            wrong.append((hex(ord(ch)), "lowercases into true/false"))
    assert wrong == []


@pytest.mark.parametrize("trimmed", [True, False], ids=["trimmed", "as-read"])
def test_every_status_means_on_the_fast_path_what_it_means_to_the_exact_validator(trimmed: bool) -> None:
    """Each character as a status, each character's Polars lower case as a configured value: the
    fast path says returned or not exactly as `InputShape.is_returned` does, or leaves the row to
    another reading (an empty `returned`); the trimmed screen decides every ASCII status but a
    blank, the screen of values as read every printable one without capitals."""
    lowered_by_polars = pl.Series(EVERY_CHARACTER).str.to_lowercase().to_list()
    values = ("Refunded", *lowered_by_polars)
    statuses = pl.lit(pl.Series(EVERY_CHARACTER))
    fast = pl.select(returned_from_status(statuses, values, trimmed)).to_series().to_list()
    meaning = {v.lower() for v in values}  # InputShape.is_returned, with its set built once
    wrong = []
    for ch, said in zip(EVERY_CHARACTER, fast, strict=True):
        printable = "!" <= ch <= "~" and not ch.isupper()  # what the screen of values as read maps
        decides = ch.isascii() and not is_blank(ch) if trimmed else printable
        if said == "":
            if decides:
                wrong.append((hex(ord(ch)), "left to another reading"))
        elif (said == "true") != (ch.lower() in meaning):
            wrong.append((hex(ord(ch)), said))
    assert wrong == []
    shape = InputShape(returned_column="Status", returned_values=("Refunded",))
    assert shape.is_returned("REFUNDED")
    assert pl.select(returned_from_status(pl.lit("REFUNDED"), shape.returned_values)).item() == "true"
    assert pl.select(returned_from_status(pl.lit("refunded"), shape.returned_values, False)).item() == "true"


noise = st.sampled_from(["+", "-", ".", "e", "E", "_", " ", "\n", "\t", "\u00a0", "\u200b", "٣", "３", ",", "x"])


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """Digits with up to 60 leading zeros and up to 6 decimals; now and then a stray
    character (a sign, a second point, an exponent, another script's digit) anywhere."""
    number = draw(st.text("0", max_size=60)) + draw(st.text("0123456789", min_size=1, max_size=20))
    number += draw(st.sampled_from(["", "."])) + draw(st.text("0123456789", max_size=6))
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(number)))
        number = number[:at] + draw(noise) + number[at:]
    return number


dates = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat) | st.text(
    "0123456789-", min_size=8, max_size=11
)
#: true and false in any case, with letters that lowercase or uppercase oddly in between.
spelled = st.lists(st.sampled_from([*"truefalsTRUEFALS", "İ", "ı", "ſ", "\u212a"]), max_size=6).map("".join)
ids = st.text(st.characters(exclude_categories=("Cs",)), max_size=6) | st.text(WHITESPACE + "\u200bab", max_size=4)
categories = st.sampled_from(CATS) | st.sampled_from(CATS).map(str.lower) | st.sampled_from(CATS).map(str.upper) | ids
padded = st.tuples(st.text(WHITESPACE, max_size=2), st.sampled_from(CATS), st.text(WHITESPACE, max_size=2))
DRAWN = {
    "order_date": dates,
    "quantity": numbers(),
    "unit_price": numbers(),
    "returned": spelled | st.sampled_from([spelling for b in BOOLEAN_VALUES for spelling in (b, b.title(), b.upper())]),
    "category": categories | padded.map("".join),
    "order_id": ids,
    "customer_id": ids,
    "product_id": ids,
}


# No shrinking: a failing batch is reported as drawn, in seconds rather than minutes.
@settings(max_examples=examples(40), deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate])
@given(data=st.data())
def test_every_value_reads_alike(data: st.DataObject) -> None:
    """A batch of drawn values per column: the same verdict and the same typed value."""
    for column in COLUMNS:
        values = data.draw(st.lists(DRAWN[column], min_size=1, max_size=60), label=column)
        assert disagreements(column, values) == [], column


def test_the_largest_and_longest_numbers_read_alike() -> None:
    """The bounds, and digits far beyond what a drawn string reaches: thousands of leading zeros."""
    quantities = ["999999999", "1000000000", "0" * 5000 + "999999999", "0" * 5000 + "1000000000", "0" * 40]
    prices = ["999999999999.9999", "1000000000000", "0" * 5000 + "1.5", "0" * 5000 + "0.0001", "0.0000"]
    assert disagreements("quantity", quantities) == []
    assert disagreements("unit_price", prices) == []


@pytest.mark.parametrize("trimmed", [True, False], ids=["trimmed", "as-read"])
def test_a_status_with_white_space_at_an_edge_is_left_to_another_reading(trimmed: bool) -> None:
    """A status with white space or an invisible character at an edge is not mapped as read (as
    read, it would not be one of the values), nor by the trimmed screen (an invisible one)."""
    statuses = [" refunded", "refunded\t", "\u3000Refunded", "\u200brefunded", "paid ", ""]
    if trimmed:  # the trimmed screen sees values already trimmed
        statuses = [s.strip(WHITESPACE) for s in statuses if not s.strip(WHITESPACE).isascii() or not s.strip()]
    mapped = pl.select(returned_from_status(pl.lit(pl.Series(statuses)), ("refunded",), trimmed)).to_series()
    assert mapped.to_list() == [""] * len(statuses)
