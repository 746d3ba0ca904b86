"""Output rendering: CSV cells can never run as spreadsheet formulas, numbers stay numbers."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest

from orderpipe.output import csv_cell, printable, render

FORMULAS = [
    "=2+5+cmd|' calc'!A0.csv",
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1",
    "\r=1",
    "\n=1",
    "\x00x",
    "\uff1d1+1",
    '  =HYPERLINK("http://x")',
    "-",
    "-orders.csv",
    "=",
]
NUMBERS = ["-1.5", "+3", "0", "399.98", "-0.000001", "12", "1e5", "-2E-3", ".5"]
PLAIN = ["Electronics", "orders-2025.csv", "", "a=b", "'quoted", "2025-07-06 2025-07-07", "accepted"]


@pytest.mark.parametrize("text", FORMULAS)
def test_would_be_formulas_get_a_leading_quote(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", NUMBERS + PLAIN)
def test_numbers_and_plain_text_are_unchanged(text: str) -> None:
    assert csv_cell(text) == text


def test_rendered_csv_neutralises_every_user_controlled_cell() -> None:
    """File names and categories come from users; rates and money may be negative numbers."""
    rows = [
        {"file": "=2+5+cmd|' calc'!A0.csv", "category": "@evil", "rows": 3, "rate": Decimal("-1.5"), "dates": None},
        {"file": "ok.csv", "category": "+x", "rows": -4, "rate": Decimal("0.25"), "dates": ["-a", "b"]},
    ]
    text = render(rows, ["file", "category", "rows", "rate", "dates"], "csv")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [
        ["file", "category", "rows", "rate", "dates"],
        ["'=2+5+cmd|' calc'!A0.csv", "'@evil", "3", "-1.5", ""],
        ["ok.csv", "'+x", "-4", "0.25", "'-a b"],
    ]


def test_json_and_table_keep_the_text_as_is() -> None:
    """Only CSV is opened by spreadsheets; JSON and tables show the exact value."""
    rows = [{"file": "=1+1"}]
    assert '"=1+1"' in render(rows, ["file"], "json")
    assert "=1+1" in render(rows, ["file"], "table").splitlines()[-1]
    assert "'=1+1" not in render(rows, ["file"], "table")


def test_printable_escapes_what_a_terminal_would_act_on_and_nothing_else() -> None:
    assert printable("ok\x1b[31mred\rX\tY\nZ\x00\x7f\x9b.csv") == "ok\\x1b[31mred\\rX\\tY\\nZ\\x00\\x7f\\x9b.csv"
    assert printable("a\u202eb\u2066c\u2028d\u200fe") == "a\\u202eb\\u2066c\\u2028d\\u200fe"
    plain = "Grüße – 東京 ✓ \\ ' \" café\u00a0.csv …"
    assert printable(plain) == plain
    assert printable(printable("x\x1by")) == printable("x\x1by")


def test_tables_show_control_characters_escaped_and_json_and_csv_keep_them() -> None:
    rows = [{"file": "a\x1b[2Jb.csv", "rows": 1}]
    table = render(rows, ["file", "rows"], "table").splitlines()
    assert table[2].split() == ["a\\x1b[2Jb.csv", "1"]
    assert json.loads(render(rows, ["file", "rows"], "json"))[0]["file"] == "a\x1b[2Jb.csv"
    assert render(rows, ["file", "rows"], "csv").splitlines()[1] == "a\x1b[2Jb.csv,1"
