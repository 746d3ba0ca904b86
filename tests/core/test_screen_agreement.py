"""The fast path may skip the exact validator only when both would say the same thing.

Random files mixing valid and invalid values, quoting, blank lines, CRLF and extra columns go
through `inspect_file` (screen + fallback) and through `validate_stream` alone: the verdicts
and row counts must agree, and an accepted file's staged facts must hold every row.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orderpipe.core.rules import COLUMNS, DEFAULT_CATEGORIES
from orderpipe.core.validate import validate_stream
from orderpipe.ingest import inspect_file
from tests.conftest import examples

VALUES = {
    "order_id": ["O1", "O2", "O3", " O4 ", "", "O\u00e9", "O1\x1f", "\x1f", "O2\u3000"],
    "customer_id": ["C1", "C2", "", "  "],
    "order_date": ["2025-07-06", "2024-02-29", "2025-02-30", "0000-01-01", "2025-7-6", " 2025-07-07 ", "9999-12-31"],
    "category": ["Books", "Toys", "books", "Gadgets", " Home ", ""],
    "product_id": ["P1", "P,2", "P\n3", 'P"4', ""],
    "quantity": ["1", "007", "0", "-1", "2.0", "1e3", "1234567890", "999999999", " 3 ", "2\x1f", "\xa04"],
    "unit_price": [
        "1",
        "0.0001",
        "19.99",
        "0",
        "-5",
        "1e3",
        "NaN",
        "1.23456",
        ".5",
        "1234567890123",
        "999999999999.9999",
    ],
    "returned": ["true", "FALSE", "yes", "", "True", "TRUE\x1e"],
}
VALID = {
    "order_id": None,  # unique per row in the valid mode
    "customer_id": ["C1", " C2 ", "C3\x1c"],
    "order_date": ["2025-07-06", "2024-02-29", " 2025-07-07 "],
    "category": ["Books", " Home "],
    "product_id": ["P1", "P,2", "P\n3", 'P"4'],
    "quantity": ["1", "007", " 3 ", "999999999"],
    "unit_price": ["1", "0.0001", "19.99", "999999999999.9999"],
    "returned": ["true", "FALSE"],
}
CATS = list(DEFAULT_CATEGORIES)


def quote(value: str, always: bool) -> str:
    if always or any(ch in value for ch in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def files(draw: st.DrawFn) -> bytes:
    columns = list(COLUMNS)
    if draw(st.booleans()):
        columns = draw(st.permutations(columns))
    extra = draw(st.booleans())
    header = [*columns, "note"] if extra else columns
    always_quote = draw(st.booleans())
    valid_mode = draw(st.booleans())
    lines = [",".join(header)]
    for index in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["row"] * 12 + ["blank", "short", "long"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", "  "])))
            continue
        if valid_mode:
            pool = {c: VALID[c] or [f"O{index}"] for c in columns}
            if draw(st.integers(0, 9)) == 0:  # now and then one bad value
                broken = draw(st.sampled_from(columns))
                pool[broken] = VALUES[broken]
        else:
            pool = VALUES
        values = [quote(draw(st.sampled_from(pool[c])), always_quote) for c in columns]
        if extra:
            values.append(draw(st.sampled_from(["", "x"])))
        if kind == "short":
            values = values[:-1]
        elif kind == "long":
            values.append("z")
        lines.append(",".join(values))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return (end.join(lines) + draw(st.sampled_from([end, ""]))).encode()


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_screen_and_exact_validator_agree(data: bytes) -> None:
    exact = validate_stream(io.BytesIO(data), "f.csv", frozenset(CATS))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_bytes(data)
        inspection = inspect_file(path, "f.csv", CATS, Path(tmp))
        assert inspection.report.valid == exact.valid, (exact.to_dict(), inspection.report.to_dict())
        assert inspection.report.rows == exact.rows
        event("valid" if exact.valid else "invalid")
        if exact.valid:
            assert inspection.facts is not None
            staged = pl.read_parquet(inspection.facts.paths)
            assert staged.height == exact.rows
            assert sorted(staged["order_date"].cast(pl.String).unique().to_list()) == list(exact.dates)
