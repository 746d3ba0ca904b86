"""Names orderpipe makes: the longest that fits 255 bytes, the tag before the extension."""

from __future__ import annotations

import pytest

from orderpipe.core.names import MAX_NAME_BYTES, REPORT_SUFFIX, display_name, fit_name, tagged_name


@pytest.mark.parametrize(
    ("name", "tagged"),
    [
        ("orders.csv", "orders.T.csv"),
        ("orders.2025.csv", "orders.2025.T.csv"),  # the last dot starts the extension
        ("README", "README.T"),  # no extension
        (".env", ".env.T"),  # a leading dot starts no extension
        ("a." + "x" * 32, "a.T." + "x" * 32),  # 32 bytes is still an extension
        ("a." + "x" * 33, "a." + "x" * 33 + ".T"),  # longer is part of the stem
    ],
)
def test_the_tag_goes_before_the_extension(name: str, tagged: str) -> None:
    assert tagged_name(name, "T") == tagged


def test_a_long_name_is_shortened_to_exactly_the_limit() -> None:
    name = "a" * 300 + ".csv"
    assert tagged_name(name, "abc") == "a" * 247 + ".abc.csv"
    assert len(tagged_name(name, "abc")) == MAX_NAME_BYTES
    assert tagged_name(name, "abc", reserve=len(REPORT_SUFFIX)) == "a" * 235 + ".abc.csv"


def test_shortening_never_splits_a_character() -> None:
    name = "é" * 200 + ".csv"  # 2 bytes each: 400 bytes
    short = tagged_name(name, "abc")
    assert short == "é" * 123 + ".abc.csv"  # 246 + 8 bytes: one more é would be 256
    assert len(short.encode()) == MAX_NAME_BYTES - 1


def test_a_name_that_fits_is_kept() -> None:
    exact = "a" * 251 + ".csv"
    assert fit_name(exact, "abc") == exact
    assert fit_name(exact, "abc", reserve=1) == "a" * 246 + ".abc.csv"
    assert fit_name("a" * 239 + ".csv", "abc", reserve=len(REPORT_SUFFIX)) == "a" * 239 + ".csv"
    assert fit_name("a" * 240 + ".csv", "abc", reserve=len(REPORT_SUFFIX)) == "a" * 235 + ".abc.csv"


def test_bytes_that_are_not_utf8_are_shown_as_replacement_characters() -> None:
    raw = b"caf\xe9.csv".decode("utf-8", "surrogateescape")
    assert display_name(raw) == "caf\ufffd.csv"
    assert tagged_name(raw, "T") == raw.removesuffix(".csv") + ".T.csv"
