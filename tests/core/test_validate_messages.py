"""What the exact validator says about a whole file: each file-level rule, its line and words."""

from __future__ import annotations

import io

import pytest

from orderpipe.core.rules import DEFAULT_CATEGORIES
from orderpipe.core.validate import validate_stream

H = b"order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned"
R = b"O1,C1,2025-07-06,Books,P1,1,10.00,false"
Sample = tuple[int, str | None, str | None, str]


def verdict(data: bytes) -> tuple[bool, int, tuple[str, ...], list[tuple[str, int, list[Sample]]], tuple[str, ...]]:
    report = validate_stream(io.BytesIO(data), "f.csv", frozenset(DEFAULT_CATEGORIES))
    errors = [(i.code, i.count, [(s.line, s.column, s.value, s.message) for s in i.samples]) for i in report.errors]
    return report.valid, report.rows, report.dates, errors, report.warnings


def one_error(code: str, line: int, message: str, column: str | None = None, value: str | None = None):  # type: ignore[no-untyped-def]
    return [(code, 1, [(line, column, value, message)])]


@pytest.mark.parametrize(
    ("data", "rows", "errors", "warnings"),
    [
        pytest.param(
            b"", 0, one_error("no-rows", 1, "the file is empty: expected a header and at least one row"), (), id="empty"
        ),
        pytest.param(
            H + b"\n", 0, one_error("no-rows", 2, "the file has a header but no order rows"), (), id="header-only"
        ),
        pytest.param(
            H.replace(b"quantity", b"Quantity") + b"\n" + R + b"\n",
            0,
            one_error(
                "missing-column",
                1,
                "the header has no 'quantity' column (found 'Quantity'; names are case-sensitive)",
                "quantity",
            ),
            ("extra columns ignored: 'Quantity'",),
            id="missing-column-spelled-otherwise",
        ),
        pytest.param(
            H.replace(b",returned", b"") + b"\n",
            0,
            one_error("missing-column", 1, "the header has no 'returned' column", "returned"),
            (),
            id="missing-column",
        ),
        pytest.param(
            H + b",order_id\n" + R + b",O9\n",
            0,
            one_error(
                "duplicate-column", 1, "column 'order_id' appears more than once in the header", "order_id", "order_id"
            ),
            (),
            id="duplicate-column",
        ),
        pytest.param(
            H + b"\n" + R + b",x\n",
            1,
            one_error("wrong-field-count", 2, "row has 9 fields, the header has 8"),
            (),
            id="wrong-field-count",
        ),
        pytest.param(
            H + b"\n" + b'O1,C1,2025-07-06,Books,"P1"x,1,10.00,false\n',
            0,
            one_error("csv-error", 2, "CSV cannot be parsed: ',' expected after '\"'"),
            (),
            id="csv-error",
        ),
        pytest.param(
            H + b"\n" + R.replace(b"P1", b"P\xff1") + b"\n",
            0,
            one_error("encoding-error", 2, "byte 0xff at position 25 is not valid UTF-8"),
            (),
            id="encoding-error",
        ),
        pytest.param(
            H + b"\n" + R.replace(b"P1", b"P\x001") + b"\n",
            0,
            one_error("csv-error", 2, "NUL byte in the line; this is not a text CSV file"),
            (),
            id="nul",
        ),
        pytest.param(
            H + b"\n" + R + b"\r",
            0,
            one_error("csv-error", 2, "bare carriage return (CR without LF) inside the line"),
            (),
            id="bare-cr-at-the-end",
        ),
        pytest.param(
            H + b"\n\n" + R + b"\n  \n" + R.replace(b"O1", b"O2") + b"\n",
            2,
            [],
            ("2 blank line(s) skipped, first at line 2",),
            id="blank-lines",
        ),
        pytest.param(b"\xef\xbb\xbf" + H + b"\r\n" + R + b"\r\n", 1, [], (), id="bom-and-crlf"),
        pytest.param(
            H + b'\nO1,C1,2025-07-06,Books,"P\n1",1,10.00,false\n' + R.replace(b"O1", b"O2").replace(b",1,", b",x,"),
            2,
            one_error("invalid-integer", 4, "'x' is not a whole number of digits", "quantity", "x"),
            (),
            id="lines-counted-inside-quotes",
        ),
    ],
)
def test_file_level_rules(
    data: bytes, rows: int, errors: list[tuple[str, int, list[Sample]]], warnings: tuple[str, ...]
) -> None:
    valid, counted, dates, found, warned = verdict(data)
    assert (valid, counted, found, warned) == (not errors, rows, errors, warnings)
    assert dates == (("2025-07-06",) if not errors else ())
