"""Every value rule of the input contract with a passing and a failing example."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from orderpipe.core.rules import DEFAULT_CATEGORIES, INVISIBLE, WHITESPACE, check_value, is_blank

CATS = frozenset(DEFAULT_CATEGORIES)

PASSING = [
    ("order_id", "ORD1"),
    ("customer_id", "C"),
    ("product_id", "P-1"),
    ("category", "Electronics"),
    ("category", "Grocery"),
    ("order_date", "2024-02-29"),
    ("order_date", "2025-12-31"),
    ("quantity", "1"),
    ("quantity", "007"),
    ("quantity", "999999999"),
    ("unit_price", "5"),
    ("unit_price", "0.0001"),
    ("unit_price", "19.99"),
    ("unit_price", "1234.5678"),
    ("returned", "true"),
    ("returned", "FALSE"),
    ("returned", "True"),
    ("order_id", "O\u200b1"),  # visible characters around an invisible one: not blank
    ("product_id", "\u00adP"),
]

FAILING = [
    ("order_id", "", "blank-value"),
    ("customer_id", "", "blank-value"),
    ("product_id", "", "blank-value"),
    ("category", "", "blank-value"),
    ("category", "electronics", "unknown-category"),
    ("category", "Gadgets", "unknown-category"),
    ("order_date", "2025-02-30", "invalid-date"),
    ("order_date", "2023-02-29", "invalid-date"),
    ("order_date", "2025-13-01", "invalid-date"),
    ("order_date", "2025-7-6", "invalid-date"),
    ("order_date", "06/07/2025", "invalid-date"),
    ("order_date", "2025-07-06T10:00", "invalid-date"),
    ("order_date", "0000-01-01", "invalid-date"),
    ("order_date", "２０２５-07-06", "invalid-date"),
    ("quantity", "2.0", "invalid-integer"),
    ("quantity", "-1", "invalid-integer"),
    ("quantity", "1e3", "invalid-integer"),
    ("quantity", "+3", "invalid-integer"),
    ("quantity", "٣", "invalid-integer"),
    ("quantity", "0", "not-positive"),
    ("quantity", "000", "not-positive"),
    ("quantity", "1000000000", "out-of-range"),
    ("unit_price", "-5", "invalid-decimal"),
    ("unit_price", "0", "not-positive"),
    ("unit_price", "0.0000", "not-positive"),
    ("unit_price", "1e3", "invalid-decimal"),
    ("unit_price", "NaN", "invalid-decimal"),
    ("unit_price", "$5", "invalid-decimal"),
    ("unit_price", "1,000", "invalid-decimal"),
    ("unit_price", "1.23456", "invalid-decimal"),
    ("unit_price", ".5", "invalid-decimal"),
    ("unit_price", "5.", "invalid-decimal"),
    ("unit_price", "Infinity", "invalid-decimal"),
    ("unit_price", "1234567890123", "out-of-range"),
    ("returned", "yes", "invalid-boolean"),
    ("returned", "1", "invalid-boolean"),
    ("returned", "", "blank-value"),
    ("order_id", "\u200b", "blank-value"),
    ("customer_id", " \u00ad\u2060 ", "blank-value"),
    ("product_id", "\u200e\u200f", "blank-value"),
    ("category", "\ufeff", "blank-value"),
    ("quantity", "\u200b", "blank-value"),
    ("returned", "\u202e", "blank-value"),
    # the patterns are matched whole, as Polars matches them: Python's `$` alone would also
    # match before a final newline
    ("quantity", "5\n", "invalid-integer"),
    ("unit_price", "5.5\n", "invalid-decimal"),
]


@pytest.mark.parametrize(("column", "value"), PASSING)
def test_valid_values_pass(column: str, value: str) -> None:
    assert check_value(column, value, CATS) is None


@pytest.mark.parametrize(("column", "value", "code"), FAILING)
def test_invalid_values_fail_with_their_code(column: str, value: str, code: str) -> None:
    error = check_value(column, value, CATS)
    assert error is not None
    assert error.code == code
    assert error.column == column


def test_mis_cased_category_names_the_right_spelling() -> None:
    error = check_value("category", "books", CATS)
    assert error is not None and "did you mean 'Books'" in error.message


def test_every_format_character_is_invisible() -> None:
    """The written-out set covers all of category Cf this Python knows (none forgotten)."""
    missing = [
        hex(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf" and chr(c) not in INVISIBLE
    ]
    assert missing == []


def test_blank_is_only_white_space_and_invisible_characters() -> None:
    assert is_blank("") and is_blank(WHITESPACE) and is_blank(INVISIBLE) and is_blank(" \u200b\t\u2060 ")
    assert not is_blank("a\u200b") and not is_blank("\u200ba") and not is_blank(".")


@pytest.mark.parametrize(
    ("column", "value", "code", "message"),
    [
        ("order_id", "", "blank-value", "order_id is empty"),
        ("customer_id", "\u200b", "blank-value", "customer_id holds only invisible characters"),
        ("order_date", "2025-7-6", "invalid-date", "'2025-7-6' is not a date in YYYY-MM-DD form"),
        ("order_date", "2025-02-30", "invalid-date", "'2025-02-30' is not a real calendar date"),
        ("order_date", "2025-07-06\n", "invalid-date", "'2025-07-06\\n' is not a date in YYYY-MM-DD form"),
        ("quantity", "2.0", "invalid-integer", "'2.0' is not a whole number of digits"),
        ("quantity", "0001000000000", "out-of-range", "'0001000000000' has more than 9 digits"),
        ("quantity", "00", "not-positive", "quantity must be greater than 0, got '00'"),
        ("unit_price", "1.23456", "invalid-decimal", "'1.23456' is not a price with digits and at most 4 decimals"),
        ("unit_price", "1234567890123.5", "out-of-range", "'1234567890123.5' has more than 12 integer digits"),
        ("unit_price", "0.0", "not-positive", "unit_price must be greater than 0, got '0.0'"),
        ("returned", "yes", "invalid-boolean", "'yes' is not true or false"),
        ("category", "Gadgets", "unknown-category", "'Gadgets' is not an allowed category"),
        (
            "category",
            "BOOKS",
            "unknown-category",
            "'BOOKS' is not an allowed category (did you mean 'Books'? categories are case-sensitive)",
        ),
        ("quantity", "x" * 100, "invalid-integer", f"'{'x' * 80}…' is not a whole number of digits"),
    ],
)
def test_each_broken_rule_says_what_is_wrong(column: str, value: str, code: str, message: str) -> None:
    error = check_value(column, value, CATS)
    assert error is not None
    assert (error.code, error.column, error.value, error.message) == (code, column, value, message)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("quantity", "000999999999"),  # leading zeros do not count as digits
        ("unit_price", "000999999999999.9999"),
        ("unit_price", "0.0001"),
        ("quantity", "1"),
    ],
)
def test_the_bounds_are_inclusive(column: str, value: str) -> None:
    assert check_value(column, value, CATS) is None


def test_a_quantity_with_thousands_of_leading_zeros_is_valid() -> None:
    """Leading zeros are not digits of the number (nor would int() take more than 4300)."""
    assert check_value("quantity", "0" * 5000 + "7", CATS) is None


def test_a_value_of_exactly_80_characters_is_quoted_whole() -> None:
    error = check_value("quantity", "x" * 80, CATS)
    assert error is not None and error.message == f"'{'x' * 80}' is not a whole number of digits"
