"""Every user-supplied string that reaches a report or a message is bounded.

A 1.2 MB header once produced a 1.65 MB report; the same holds for huge values, order ids,
categories (and their did-you-mean hints) and file names, on the fast path and the exact one.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import orderpipe.ingest as ingest
from orderpipe.core.report import MAX_MESSAGE_CHARS, MAX_NAMED_COLUMNS, ReportBuilder, ValidationReport
from orderpipe.core.rules import COLUMNS, DEFAULT_CATEGORIES, MAX_VALUE_CHARS
from orderpipe.core.validate import validate_stream
from orderpipe.ingest import inspect_file

HEADER = ",".join(COLUMNS)
ROW = "O{i},C1,2025-07-06,Books,P1,1,2.00,false"
CATS = list(DEFAULT_CATEGORIES)
BIG = 200_000
# A report with a handful of samples: far below the size of any of the inputs below.
REPORT_LIMIT = 8_000


def both(tmp_path: Path, data: bytes, categories: list[str] = CATS) -> tuple[ValidationReport, ValidationReport]:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    fast = inspect_file(path, "f.csv", categories, tmp_path).report
    exact = validate_stream(io.BytesIO(data), "f.csv", frozenset(categories))
    return fast, exact


def size(report: ValidationReport) -> int:
    return len(json.dumps(report.to_dict(), ensure_ascii=False)) + len(report.summary())


def test_extra_columns_warning_names_the_first_few_on_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = [f"x{i}" for i in range(60_000)] + ["y" * 10_000]
    data = (f"{HEADER},{','.join(extra)}\n" + ROW.format(i=1) + ",v" * len(extra) + "\n").encode()
    exact_calls: list[str] = []
    real = ingest.validate
    monkeypatch.setattr(ingest, "validate", lambda *a, **k: exact_calls.append("x") or real(*a, **k))
    fast, exact = both(tmp_path, data)
    assert not exact_calls, "a plain clean file must take the fast path"
    assert fast.valid and exact.valid
    assert fast.warnings == exact.warnings
    (warning,) = fast.warnings
    assert warning.startswith("extra columns ignored: 'x0', 'x1'")
    assert warning.endswith(f"… and {len(extra) - MAX_NAMED_COLUMNS} more")
    assert len(warning) < 1_000
    assert size(fast) < REPORT_LIMIT


def test_a_header_line_over_a_megabyte_is_bounded_and_still_counts_fields(tmp_path: Path) -> None:
    """The fast path reads at most 1 MiB of header; a longer one must still count fields right."""
    extra = [f"extra_column_{i:06d}" for i in range(70_000)]  # about 1.4 MB
    full = ROW.format(i=1) + ",v" * len(extra)
    short = ROW.format(i=2) + ",v" * (len(extra) - 1)
    data = f"{HEADER},{','.join(extra)}\n{full}\n{short}\n".encode()
    fast, exact = both(tmp_path, data)
    assert not fast.valid and not exact.valid
    assert [i.code for i in fast.errors] == ["wrong-field-count"]
    assert fast.errors[0].samples[0].line == 3
    assert size(fast) < REPORT_LIMIT and size(exact) < REPORT_LIMIT


def _row(**values: str) -> str:
    row = dict(zip(COLUMNS, ROW.format(i=1).split(","), strict=True)) | values
    return ",".join(row[c] for c in COLUMNS)


HUGE = "Z" * BIG
CASES = {
    "order_date": _row(order_date=HUGE),
    "quantity": _row(quantity=HUGE),
    "quantity-zero-padded": _row(quantity="0" * BIG),
    "quantity-out-of-range": _row(quantity="9" * BIG),
    "unit_price": _row(unit_price=HUGE),
    "unit_price-out-of-range": _row(unit_price="9" * BIG),
    "returned": _row(returned=HUGE),
    "category": _row(category=HUGE),
    "short-row": "O9," + HUGE,
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_huge_value_gives_a_small_report(tmp_path: Path, name: str) -> None:
    data = f"{HEADER}\n{ROW.format(i=0)}\n{CASES[name]}\n{CASES[name]}\n".encode()
    fast, exact = both(tmp_path, data)
    assert not fast.valid and fast.to_dict() == exact.to_dict()
    for issue in exact.errors:
        for sample in issue.samples:
            assert len(sample.message) < MAX_MESSAGE_CHARS, "bounded by the rule, not by the backstop"
            assert sample.value is None or len(sample.value) <= MAX_VALUE_CHARS + 1
    assert size(exact) < REPORT_LIMIT


def test_a_huge_duplicate_order_id_gives_a_small_report(tmp_path: Path) -> None:
    row = _row(order_id=HUGE)
    fast, exact = both(tmp_path, f"{HEADER}\n{row}\n{row}\n".encode())
    assert [i.code for i in exact.errors] == ["duplicate-order-id"]
    assert exact.errors[0].samples[0].message.endswith("ZZZ…' already appears at line 2")
    assert size(fast) < REPORT_LIMIT and size(exact) < REPORT_LIMIT


def test_any_sample_message_is_bounded_as_a_backstop() -> None:
    """A future message that quotes a value unclipped still cannot blow up the report."""
    builder = ReportBuilder("f.csv")
    builder.add("csv-error", 2, "c" * BIG, "v" * BIG, "m" * BIG)
    (sample,) = builder.build(1).errors[0].samples
    assert len(sample.message) == MAX_MESSAGE_CHARS + 1
    assert len(sample.value or "") == MAX_VALUE_CHARS + 1
    assert len(sample.column or "") == MAX_VALUE_CHARS + 1


def test_a_did_you_mean_hint_for_a_huge_category_is_bounded(tmp_path: Path) -> None:
    category = "Books" + "k" * BIG
    fast, exact = both(tmp_path, f"{HEADER}\n{_row(category=category.lower())}\n".encode(), [*CATS, category])
    (issue,) = exact.errors
    message = issue.samples[0].message
    assert "did you mean 'Bookskkk" in message and message.endswith("categories are case-sensitive)")
    assert len(message) < MAX_MESSAGE_CHARS
    assert size(fast) < REPORT_LIMIT and size(exact) < REPORT_LIMIT


def test_huge_column_names_in_header_errors_are_bounded(tmp_path: Path) -> None:
    """A missing column's did-you-mean and a huge extra name next to duplicate columns."""
    header = HEADER.replace("order_id", "ORDER_ID") + ",quantity," + "n" * BIG
    fast, exact = both(tmp_path, f"{header}\n{ROW.format(i=1)},1,x\n".encode())
    assert {i.code for i in exact.errors} == {"missing-column", "duplicate-column"}
    assert any("found 'ORDER_ID'" in s.message for i in exact.errors for s in i.samples)
    assert size(fast) < REPORT_LIMIT and size(exact) < REPORT_LIMIT


def test_a_huge_file_name_is_cut_in_the_summary() -> None:
    name = "n" * BIG + ".csv"
    report = validate_stream(io.BytesIO(f"{HEADER}\n".encode()), name, frozenset(CATS))
    assert len(report.summary()) < 2_000
    valid = validate_stream(io.BytesIO(f"{HEADER}\n{ROW.format(i=1)}\n".encode()), name, frozenset(CATS))
    assert len(valid.summary()) < 2_000
