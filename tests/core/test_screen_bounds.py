"""The screen at the edges of the rules: what the exact validator accepts, it must accept too
(its typed columns also stage the exact validator's rows, which must all pass them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from orderpipe.core.rules import DEFAULT_CATEGORIES
from orderpipe.ingest import inspect_file
from tests.conftest import order, write


@pytest.mark.parametrize("quoted", [False, True], ids=["fast-path", "exact-path"])
def test_the_first_day_of_year_one_is_a_date(tmp_path: Path, quoted: bool) -> None:
    row = order("O1", date="0001-01-01")
    path = write(tmp_path / "f.csv", [row.replace("O1", '"O1"') if quoted else row])
    inspection = inspect_file(path, "f.csv", list(DEFAULT_CATEGORIES), tmp_path)
    assert inspection.report.valid, inspection.report.to_dict()
    assert inspection.stage is not None
    staged = pl.concat([pl.read_parquet(p) for p in inspection.stage])
    assert staged["order_date"].to_list() == [dt.date(1, 1, 1)]
