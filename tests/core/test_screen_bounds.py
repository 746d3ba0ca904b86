"""The screen at the edges of the rules: what the exact validator accepts, it must accept too
(its typed columns also stage the exact validator's rows, which must all pass them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from orderpipe import ingest
from orderpipe.core.rules import DEFAULT_CATEGORIES
from orderpipe.core.shape import InputShape
from orderpipe.ingest import inspect_file
from tests.conftest import order, write


@pytest.mark.parametrize("quoted", [False, True], ids=["fast-path", "exact-path"])
def test_the_first_day_of_year_one_is_a_date(tmp_path: Path, quoted: bool) -> None:
    row = order("O1", date="0001-01-01")
    path = write(tmp_path / "f.csv", [row.replace("O1", '"O1"') if quoted else row])
    # with the window of plausible dates off: year one is a date, however implausible an order's
    inspection = inspect_file(path, "f.csv", list(DEFAULT_CATEGORIES), tmp_path, shape=InputShape(dates="any"))
    assert inspection.report.valid, inspection.report.to_dict()
    assert inspection.facts is not None
    staged = pl.concat([pl.read_parquet(p) for p in inspection.facts.paths])
    assert staged["order_date"].to_list() == [dt.date(1, 1, 1)]


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("quantity", "999999999", True),
        ("quantity", "000999999999", True),
        ("quantity", "1000000000", False),
        ("quantity", "0001000000000", False),
        ("price", "999999999999.9999", True),
        ("price", "0999999999999.99", True),
        ("price", "1000000000000", False),
        ("price", "1000000000000.0001", False),
    ],
)
def test_the_largest_values_pass_the_screen_and_one_more_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, value: str, valid: bool
) -> None:
    """The screen's bounds are the exact validator's: its largest allowed value is staged
    without the exact path, and the next one up is out of range (located without it too)."""
    exact_calls: list[int] = []
    real = ingest.validate
    monkeypatch.setattr(ingest, "validate", lambda *a, **k: exact_calls.append(1) or real(*a, **k))
    path = write(tmp_path / "f.csv", [order("O1", **{field: value})])
    report = inspect_file(path, "f.csv", list(DEFAULT_CATEGORIES), tmp_path).report
    assert report.valid is valid, report.to_dict()
    assert not exact_calls
    if not valid:
        assert [issue.code for issue in report.errors] == ["out-of-range"]
