"""Rendering rows for people (aligned tables) and programs (JSON, JSON lines, CSV).

Money and rates are Decimals end to end: JSON gets them as numbers written digit for digit
(`399.98`, never `399.97999…`), CSV and tables as the same text.

CSV cells are neutralised against spreadsheet formula injection: a text cell that a spreadsheet
would read as a formula (it starts with `=`, `+`, `-`, `@`, a tab, CR, LF or NUL, or their
full-width forms) gets a leading `'`; numbers such as `-1.5` stay as they are.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from orderpipe.core.schema import Column
from orderpipe.logs import printable

__all__ = ["FORMATS", "csv_cell", "csv_records", "json_object", "printable", "render", "render_kpis", "shown_columns"]

FORMATS = ("table", "json", "jsonl", "csv")

#: First characters that make Excel, LibreOffice or Google Sheets evaluate a cell (OWASP's list
#: plus LF, NUL and the full-width forms some locales also accept).
FORMULA_STARTS = frozenset("=+-@\t\r\n\x00\uff1d\uff0b\uff0d\uff20")
# A plain number in the text we write (Decimals and ints): what a spreadsheet reads as a number.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_json_value(v) for v in value) + "]"
    return json.dumps(value)


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


def json_object(row: dict[str, Any], columns: Sequence[str]) -> str:
    """One row as a one-line JSON object, its keys in `columns` order, numbers exact."""
    return "{" + ", ".join(f"{json.dumps(c)}: {_json_value(row.get(c))}" for c in columns) + "}"


def render(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, headers: Sequence[str] | None = None
) -> str:
    """`headers` label a table's columns (shorter than the field names, to fit a terminal);
    the other formats always use the field names."""
    if fmt == "json":
        if not rows:
            return "[]"
        return "[\n" + ",\n".join("  " + json_object(r, columns) for r in rows) + "\n]"
    if fmt == "jsonl":
        return "\n".join(json_object(r, columns) for r in rows)
    if fmt == "csv":
        return "".join(csv_records(rows, columns)).rstrip("\n")
    if not rows:
        return "(no rows)"
    labels = [printable(label) for label in headers or columns]
    cells = [[printable(_text(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(labels)]
    numeric = [all(_looks_numeric(row[i]) for row in cells) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(labels), line(["-" * w for w in widths]), *(line(row) for row in cells)])


def csv_records(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """The header, then one record per row, each ending in a newline (a quoted cell may hold
    more): one by one, so that the API can weigh each row before it puts it in an answer."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    records: list[str] = []
    for cells in itertools.chain([columns], ([_text(r.get(c)) for c in columns] for r in rows)):
        writer.writerow([csv_cell(c) for c in cells])
        records.append(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    return records


def shown_columns(columns: Sequence[Column]) -> list[Column]:
    """The KPI columns of the default table, fitted to a terminal: every one but the supporting
    counts."""
    return [c for c in columns if not c.support]


def render_kpis(rows: Sequence[dict[str, Any]], columns: Sequence[Column], fmt: str, wide: bool) -> str:
    """KPI rows in the schema's columns, the same fields the API serves: JSON, JSON lines, CSV
    and a `wide` table carry every one of them under its field name (the supporting counts
    such as `returned_orders` give exact sums of rates over many dates); the default table
    leaves the supporting counts out and uses the short headers."""
    if fmt != "table" or wide:
        return render(rows, [c.name for c in columns], fmt)
    shown = shown_columns(columns)
    return render(rows, [c.name for c in shown], fmt, [c.header for c in shown])


def _looks_numeric(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return text != ""


def csv_cell(text: str) -> str:
    """`text` as a spreadsheet will show it, never run it: a would-be formula gets a leading `'`.

    Leading spaces are looked through too: cheap insurance against importers that trim them.
    """
    if _NUMBER.fullmatch(text):
        return text
    head = text.lstrip(" ")
    if text[:1] in FORMULA_STARTS or head[:1] in FORMULA_STARTS:
        return "'" + text
    return text
