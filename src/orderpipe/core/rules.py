"""The input contract: columns, value rules and error codes, in one place.

Both validators use these definitions, for every shape of file: the exact row-by-row validator
(`exact.py`, with the row rules of `shape_validate.py` and `catalog.py`) and the vectorised
screen (`screen.py`). The screen may only be stricter, never looser.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "BLANK_PATTERN",
    "COLUMNS",
    "DATE_PATTERN",
    "DECIMAL_PATTERN",
    "DEFAULT_CATEGORIES",
    "EDGE_PATTERN",
    "ERROR_CODES",
    "INTEGER_PATTERN",
    "INVISIBLE",
    "MAX_PRICE_INTEGER_DIGITS",
    "MAX_QUANTITY_DIGITS",
    "MAX_VALUE_CHARS",
    "WHITESPACE",
    "RowError",
    "check_value",
    "clip",
    "is_blank",
    "shown",
]

COLUMNS: tuple[str, ...] = (
    "order_id",
    "customer_id",
    "order_date",
    "category",
    "product_id",
    "quantity",
    "unit_price",
    "returned",
)
DEFAULT_CATEGORIES: tuple[str, ...] = (
    "Electronics",
    "Books",
    "Clothing",
    "Home",
    "Toys",
    "Sports",
    "Beauty",
    "Grocery",
)

#: What "trimmed" means, for both validators: exactly the characters Python's `str.isspace()`
#: accepts (Polars' default trim would miss the separators \x1c-\x1f).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

#: Invisible characters, each [first, last] code point: the Unicode format characters
#: (category Cf — zero-width space and joiners, word joiner, BOM, soft hyphen, bidi marks,
#: embeddings, overrides and isolates, tag characters…) and the other default-ignorable code
#: points (variation selectors, Hangul fillers, combining grapheme joiner). Written out rather
#: than read from `unicodedata`, so both validators and every Python version agree.
INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
INVISIBLE = "".join(chr(c) for first, last in INVISIBLE_RANGES for c in range(first, last + 1))
#: A blank value: nothing but white space and invisible characters. One pattern for Python's
#: `re` and Polars (Rust `regex`): a character class of literal characters and ranges.
_UNSEEN = WHITESPACE + "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in INVISIBLE_RANGES)
BLANK_PATTERN = "^[" + _UNSEEN + "]*$"
#: A value that is empty or starts or ends with white space or an invisible character: what
#: only an untrimmed value can be, and every blank one is. Values free of it need no trimming.
EDGE_PATTERN = "^$|^[" + _UNSEEN + "]|[" + _UNSEEN + "]$"

# ASCII digits only: `\d` would also accept other scripts' digits.
INTEGER_PATTERN = r"^[0-9]+$"
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]{1,4})?$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
BOOLEAN_VALUES = ("true", "false")
# Bounds that keep every sum exact in 128-bit decimals; far above any real order.
MAX_QUANTITY_DIGITS = 9
MAX_PRICE_INTEGER_DIGITS = 12

#: How much of one user-supplied string (a value, a column or file name) a report or message
#: repeats: a 10 MB field must not become a 10 MB report.
MAX_VALUE_CHARS = 80

# Python matches with `fullmatch`: its `$` also matches before a final newline, Polars' does not.
_INTEGER = re.compile(INTEGER_PATTERN)
_DECIMAL = re.compile(DECIMAL_PATTERN)
_DATE = re.compile(DATE_PATTERN)
_BLANK = re.compile(BLANK_PATTERN)

#: Every code a report can carry, with what a person should do about it.
ERROR_CODES: dict[str, str] = {
    "missing-column": "add the column to the header (names are case-sensitive)",
    "duplicate-column": "keep one column of each name in the header",
    "wrong-field-count": "give the row exactly as many fields as the header",
    "blank-value": "fill in the value",
    "invalid-date": "write the date as YYYY-MM-DD with a real calendar day",
    "implausible-date": (
        "check the year; if the date is right, widen the window with input.earliest_date or input.latest_date"
        ' in orderpipe.toml, or set input.dates = "any"'
    ),
    "invalid-integer": "write the quantity as whole digits, e.g. 3",
    "invalid-decimal": "write the price as digits with at most 4 decimals, e.g. 19.99",
    "not-positive": "use a value greater than zero",
    "out-of-range": "check the value: it is larger than any real order allows",
    "invalid-boolean": "write true or false",
    "unknown-category": "use one of the allowed categories, or add it to the configuration",
    "duplicate-order-id": "give each order one row per file",
    "encoding-error": "save the file as UTF-8",
    "csv-error": "fix the CSV quoting and line ends (RFC 4180, LF or CRLF)",
    "no-rows": "add at least one order row",
    "invalid-timestamp": "write the timestamp as ISO 8601 (2025-10-07T09:50:26+02:00) or 2025-10-07 09:50:26 +0200",
    "duplicate-line": "give each line of an order once per file (one row per product, or distinct line ids)",
    "inconsistent-order": "give every line of an order the same customer, date and status (or leave later lines blank)",
    "duplicate-product": "give each product one row per catalog file",
    "unknown-file": "rename the file so that its name says what it holds, or change the file patterns",
}


@dataclass(frozen=True, slots=True)
class RowError:
    """One broken rule in one field."""

    code: str
    column: str
    value: str
    message: str


def clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """At most `limit` characters of `text`, marked with … when cut."""
    return text if len(text) <= limit else text[:limit] + "…"


def shown(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """A user-supplied string quoted for a message, bounded (see `clip`)."""
    return repr(clip(text, limit))


def is_blank(value: str) -> bool:
    """True when a person would see nothing: only white space and invisible characters."""
    return _BLANK.fullmatch(value) is not None


def check_value(column: str, value: str, categories: frozenset[str]) -> RowError | None:
    """Check one trimmed value of a known column; None when it is valid."""
    if value == "":
        return RowError("blank-value", column, value, f"{column} is empty")
    if is_blank(value):
        return RowError("blank-value", column, value, f"{column} holds only invisible characters")
    if column == "order_date":
        if not _DATE.fullmatch(value):
            return RowError("invalid-date", column, value, f"{shown(value)} is not a date in YYYY-MM-DD form")
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return RowError("invalid-date", column, value, f"{shown(value)} is not a real calendar date")
    elif column == "quantity":
        if not _INTEGER.fullmatch(value):
            return RowError("invalid-integer", column, value, f"{shown(value)} is not a whole number of digits")
        if len(value.lstrip("0")) > MAX_QUANTITY_DIGITS:
            return RowError("out-of-range", column, value, f"{shown(value)} has more than {MAX_QUANTITY_DIGITS} digits")
        if int(value.lstrip("0") or "0") <= 0:  # Python refuses int() of > 4300 digits
            return RowError("not-positive", column, value, f"quantity must be greater than 0, got {shown(value)}")
    elif column == "unit_price":
        if not _DECIMAL.fullmatch(value):
            return RowError(
                "invalid-decimal", column, value, f"{shown(value)} is not a price with digits and at most 4 decimals"
            )
        if len(value.split(".")[0].lstrip("0")) > MAX_PRICE_INTEGER_DIGITS:
            return RowError(
                "out-of-range", column, value, f"{shown(value)} has more than {MAX_PRICE_INTEGER_DIGITS} integer digits"
            )
        if Decimal(value) <= 0:
            return RowError("not-positive", column, value, f"unit_price must be greater than 0, got {shown(value)}")
    elif column == "returned":
        if value.lower() not in BOOLEAN_VALUES:
            return RowError("invalid-boolean", column, value, f"{shown(value)} is not true or false")
    elif column == "category" and value not in categories:
        hint = next((c for c in categories if c.lower() == value.lower()), None)
        extra = f" (did you mean {shown(hint)}? categories are case-sensitive)" if hint else ""
        return RowError("unknown-category", column, value, f"{shown(value)} is not an allowed category{extra}")
    return None
