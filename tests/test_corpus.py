"""The malformed-file corpus: each file is rejected with the right code and line, through the
whole workflow (fast screen and exact validator), the KPIs unchanged and the file quarantined;
and the well-formed oddities (BOM, CRLF, quoting, blank lines, extra columns) are accepted."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from orderpipe.workflow import Pipeline
from tests.conftest import HEADER, order, run_file, snapshot, write

H = HEADER.encode()
OK = order().encode()
OK2 = order("O2").encode()


def rows(*lines: bytes, header: bytes = H, end: bytes = b"\n") -> bytes:
    return end.join([header, *lines]) + end


def bad(**fields: str) -> bytes:
    return order("OX", **fields).encode()


random.seed(1)
GARBAGE = bytes(random.randrange(256) for _ in range(5000))

# (name, bytes, expected code, expected line of the first sample)
CORPUS: list[tuple[str, bytes, str, int]] = [
    ("empty", b"", "no-rows", 1),
    ("header-only", H + b"\n", "no-rows", 2),
    ("header-only-crlf", H + b"\r\n", "no-rows", 2),
    ("header-only-no-newline", H, "no-rows", 2),
    ("only-blank-lines", H + b"\n\n\n", "no-rows", 2),
    ("missing-column", rows(b"O1,C1,2025-07-06,Books,P1,1,2.00", header=H.rsplit(b",", 1)[0]), "missing-column", 1),
    ("two-missing-columns", rows(b"O1,2025-07-06", header=b"order_id,order_date"), "missing-column", 1),
    ("mis-cased-column", rows(OK, header=H.replace(b"order_id", b"Order_ID")), "missing-column", 1),
    ("duplicate-column", rows(OK + b",1", header=H + b",quantity"), "duplicate-column", 1),
    ("ragged-short", rows(OK, b"O2,C1,2025-07-06,Books"), "wrong-field-count", 3),
    ("ragged-long", rows(OK, OK2 + b",extra"), "wrong-field-count", 3),
    ("short-extra-column", rows(OK + b",note", OK2, header=H + b",note"), "wrong-field-count", 3),
    ("latin1", rows(OK, order("O2", customer="Jos\xe9").encode("latin-1")), "encoding-error", 3),
    ("utf16", (HEADER + "\n" + order() + "\n").encode("utf-16"), "encoding-error", 1),
    ("binary-garbage", GARBAGE, "encoding-error", 1),
    ("ten-megabyte-line", rows(OK, b"X" * (10 << 20)), "wrong-field-count", 3),
    ("unterminated-quote", rows(OK, b'O2,C1,2025-07-06,Books,"P1,1,2.00,false'), "csv-error", 3),
    ("text-after-quote", rows(OK, b'O2,C1,2025-07-06,Books,"P1"x,1,2.00,false'), "csv-error", 3),
    ("bare-cr", H + b"\r" + OK + b"\r", "csv-error", 1),
    ("bare-cr-last-byte", rows(OK, OK2)[:-1] + b"\r", "csv-error", 3),
    ("bare-cr-last-byte-header-only", H + b"\r", "csv-error", 1),
    ("bare-cr-after-crlf", rows(OK, OK2, end=b"\r\n") + b"\r", "csv-error", 4),
    ("bare-cr-inside-quotes", rows(OK, b'O2,C1,2025-07-06,Books,"P\r1",1,2.00,false'), "csv-error", 3),
    ("nul-byte", rows(OK, b"O2,C\x001,2025-07-06,Books,P1,1,2.00,false"), "csv-error", 3),
    ("blank-order-id", rows(order("").encode()), "blank-value", 2),
    ("blank-customer", rows(OK, order("O2", customer="").encode()), "blank-value", 3),
    ("whitespace-product", rows(order(product="   ").encode()), "blank-value", 2),
    ("zero-width-space-order-id", rows(order("\u200b").encode()), "blank-value", 2),
    ("invisible-order-id-among-valid", rows(OK, order("\u200b\u200d \u2060").encode()), "blank-value", 3),
    ("soft-hyphen-customer", rows(order(customer=" \u00ad ").encode()), "blank-value", 2),
    ("bidi-marks-product", rows(order(product="\u200e\u200f\u202a\u202e\u2066\u2069").encode()), "blank-value", 2),
    ("byte-order-mark-category", rows(order(category="\ufeff").encode()), "blank-value", 2),
    ("invisible-order-id-twice", rows(OK, order("\u200b").encode(), order("\u200b").encode()), "blank-value", 3),
    ("impossible-date", rows(bad(date="2025-02-30")), "invalid-date", 2),
    ("slash-date", rows(bad(date="2025/07/06")), "invalid-date", 2),
    ("quantity-decimal", rows(bad(quantity="2.0")), "invalid-integer", 2),
    ("quantity-negative", rows(bad(quantity="-1")), "invalid-integer", 2),
    ("quantity-exponent", rows(bad(quantity="1e3")), "invalid-integer", 2),
    ("quantity-zero", rows(bad(quantity="0")), "not-positive", 2),
    ("quantity-huge", rows(bad(quantity="12345678901")), "out-of-range", 2),
    ("price-negative", rows(bad(price="-5")), "invalid-decimal", 2),
    ("price-zero", rows(bad(price="0")), "not-positive", 2),
    ("price-exponent", rows(bad(price="1e3")), "invalid-decimal", 2),
    ("price-nan", rows(bad(price="NaN")), "invalid-decimal", 2),
    ("price-dollar", rows(bad(price="$5")), "invalid-decimal", 2),
    ("price-thousands", rows(b'OX,C1,2025-07-06,Books,P1,1,"1,000",false'), "invalid-decimal", 2),
    ("price-five-decimals", rows(bad(price="1.23456")), "invalid-decimal", 2),
    ("returned-yes", rows(bad(returned="yes")), "invalid-boolean", 2),
    ("unknown-category", rows(OK, bad(category="Gadgets")), "unknown-category", 3),
    ("mis-cased-category", rows(bad(category="electronics")), "unknown-category", 2),
    ("duplicate-order-id", rows(OK, OK2, OK), "duplicate-order-id", 4),
    ("duplicate-after-trim", rows(OK, b" O1 ,C2,2025-07-07,Books,P2,1,3.00,true"), "duplicate-order-id", 3),
    (
        "line-after-quoted-newline",
        rows(b'O1,C1,2025-07-06,Books,"P\n1",1,2.00,false', bad(quantity="x")),
        "invalid-integer",
        4,
    ),
    ("bom-then-bad-row", b"\xef\xbb\xbf" + rows(OK, bad(returned="no")), "invalid-boolean", 3),
    ("crlf-bad-row", rows(OK, bad(price="abc"), end=b"\r\n"), "invalid-decimal", 3),
    ("blank-line-then-bad-row", rows(OK, b"", bad(date="x")), "invalid-date", 4),
    (
        "one-bad-among-many",
        rows(*[order(f"O{i}").encode() for i in range(500)], bad(quantity="0")),
        "not-positive",
        502,
    ),
]


@pytest.fixture
def loaded(pipeline: Pipeline, tmp_path: Path) -> Pipeline:
    baseline = write(tmp_path / "baseline.csv", [order("B1"), order("B2", date="2025-07-07", category="Books")])
    assert run_file(pipeline, baseline).status == "accepted"
    return pipeline


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40
    assert len({name for name, *_ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("name", "data", "code", "line"), CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_file_is_rejected_with_code_and_line(
    loaded: Pipeline, tmp_path: Path, name: str, data: bytes, code: str, line: int
) -> None:
    before = snapshot(loaded)
    path = tmp_path / f"{name}.csv"
    path.write_bytes(data)
    outcome = run_file(loaded, path)
    assert outcome.status == "rejected"
    assert outcome.report is not None
    issue = next((i for i in outcome.report.errors if i.code == code), None)
    assert issue is not None, outcome.report.to_dict()
    assert issue.samples[0].line == line
    assert snapshot(loaded) == before
    home = loaded.store.root  # type: ignore[attr-defined]
    assert not (home / "input" / path.name).exists()
    assert (home / "rejected" / path.name).read_bytes() == data
    report = json.loads((home / "rejected" / f"{path.name}.report.json").read_text())
    assert report["verdict"] == "invalid"
    assert any(e["code"] == code for e in report["errors"])


# Well-formed files that look odd: each must be accepted with the KPIs of its two orders, and
# with exactly the warnings listed (none for most).
ODD_BUT_VALID: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("bom", b"\xef\xbb\xbf" + rows(OK, OK2), ()),
    ("crlf", rows(OK, OK2, end=b"\r\n"), ()),
    (
        "reordered-columns",
        rows(
            b"false,10.00,1,P1,Electronics,2025-07-06,C1,O1",
            b"false,10.00,1,P1,Electronics,2025-07-06,C1,O2",
            header=b",".join(reversed(H.split(b","))),
        ),
        (),
    ),
    ("extra-columns", rows(OK + b",x", OK2 + b",", header=H + b",note"), ("extra columns ignored: 'note'",)),
    ("quoted-comma", rows(b'O1,C1,2025-07-06,Electronics,"P,1",1,10.00,false', OK2), ()),
    ("quoted-newline", rows(b'O1,C1,2025-07-06,Electronics,"P\n1",1,10.00,false', OK2), ()),
    ("all-quoted", rows(*[b",".join(b'"' + f + b'"' for f in r.split(b",")) for r in (OK, OK2)]), ()),
    ("blank-lines", rows(OK, b"", b"   ", OK2, b""), ("3 blank line(s) skipped, first at line 3",)),
    ("spaces-around-values", rows(b" O1 , C1 ,2025-07-06 , Electronics,P1, 1 , 10.00 , FALSE ", OK2), ()),
    ("no-final-newline", rows(OK, OK2)[:-1], ()),
    ("quoted-header", rows(OK, OK2, header=b",".join(b'"' + n + b'"' for n in H.split(b","))), ()),
    ("quote-inside-a-value", rows(b'O1,C1,2025-07-06,Electronics,P"1,1,10.00,false', OK2), ()),
    (
        "duplicate-extra-columns",
        rows(OK + b",a,b", OK2 + b",c,d", header=H + b",x,x"),
        ("extra columns ignored: 'x', 'x'",),
    ),
    (
        "separators-around-values",
        rows(b"O1\x1f,C1,2025-07-06\x1d,Electronics\x1f,P1,1\x1f,10.00\x1c,false\x1e", OK2),
        (),
    ),
]


@pytest.mark.parametrize(("name", "data", "warnings"), ODD_BUT_VALID, ids=[c[0] for c in ODD_BUT_VALID])
def test_well_formed_oddities_are_accepted(
    pipeline: Pipeline, tmp_path: Path, name: str, data: bytes, warnings: tuple[str, ...]
) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_bytes(data)
    outcome = run_file(pipeline, path)
    assert outcome.status == "accepted", outcome.report and outcome.report.to_dict()
    assert outcome.rows == 2
    assert outcome.report is not None
    assert outcome.report.warnings == warnings
    daily, categories = snapshot(pipeline)
    assert daily == [
        {
            "order_date": "2025-07-06",
            "total_orders": 2,
            "total_revenue": Decimal("20.00"),
            "total_items_sold": 2,
            "return_rate": Decimal("0.000000"),
            "unique_customers": 1,
            "returned_orders": 0,
        }
    ]
    assert [(c["category"], c["daily_revenue"], c["avg_order_value"]) for c in categories] == [
        ("Electronics", Decimal("20.00"), Decimal("10.00"))
    ]
