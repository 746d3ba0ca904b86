"""Quoted files of many megabytes: Polars reads them in chunks, cut by its own reckoning of where
a row ends, so a line break or a comma inside quotes near a cut must still end up in its value.
The fast path must decide the file alone and stage exactly the exact validator's rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import orderpipe.ingest as ingest
from orderpipe.core.rules import COLUMNS

ROWS = 400_000


def orders(rows: int) -> pl.DataFrame:
    """Valid orders whose product ids hold, now and then, a line break, a comma or a quote."""
    i = pl.int_range(0, rows, eager=True)
    tail = pl.Series(["", "\nB", ",B", '"B"', "", "", "", ""]).gather(i % 8)
    return pl.DataFrame(
        {
            "order_id": "O" + i.cast(pl.String),
            "customer_id": "C" + (i % 997).cast(pl.String),
            "order_date": pl.Series(["2025-07-06", "2025-07-07"]).gather(i % 2),
            "category": pl.Series(["Books", "Toys"]).gather(i % 2),
            "product_id": "P" + (i % 5003).cast(pl.String) + tail,
            "quantity": (1 + i % 5).cast(pl.String),
            "unit_price": pl.Series(["9.99", "10", "0.5"]).gather(i % 3),
            "returned": pl.Series(["true", "false", "False"]).gather(i % 3),
        }
    ).select(COLUMNS)


@pytest.mark.slow
@pytest.mark.parametrize(("style", "end"), [("always", "\r\n"), ("necessary", "\n")])
def test_a_big_quoted_file_is_read_by_the_fast_path_as_the_exact_validator_reads_it(
    style: str, end: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    orders(ROWS).write_csv(path, quote_style=style, line_terminator=end)  # type: ignore[arg-type]
    calls: list[int] = []
    real = ingest.validate
    monkeypatch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    fast = ingest.inspect_file(path, path.name, ["Books", "Toys"], tmp_path)
    assert fast.report.valid and fast.report.rows == ROWS and not calls, fast.report.to_dict()
    monkeypatch.setattr(ingest, "_screened", lambda *a, **k: None)
    exact = ingest.inspect_file(path, path.name, ["Books", "Toys"], tmp_path)
    assert exact.report.to_dict() == fast.report.to_dict() and calls == [1]
    assert fast.facts is not None and exact.facts is not None
    read = [pl.read_parquet(facts.paths).sort("order_id") for facts in (fast.facts, exact.facts)]
    assert read[0].equals(read[1])
    assert read[0].filter(pl.col("product_id").str.contains("\n")).height == ROWS // 8
