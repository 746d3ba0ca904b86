"""Facts files: a bundle's key read back into its batch and part; a merged entry's history."""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from orderpipe.adapters.folder import FolderStore
from orderpipe.core.screen import FACT_SCHEMA
from orderpipe.facts import BUNDLE, FACTS_PREFIX, HISTORY, bundle_of, fact_key, history_rows, write_history
from orderpipe.ports import FactEntry


@pytest.mark.parametrize(
    ("batch_id", "part"),
    [
        ("c4b79232aa", BUNDLE),
        ("c4b79232aa", BUNDLE + 12),
        ("compact-3-17", BUNDLE + 1),
        ("compact-3-17-x9", BUNDLE + 9),
    ],
)
def test_a_bundle_key_gives_back_its_batch_and_part(batch_id: str, part: int) -> None:
    """Batch ids of merged entries hold dashes themselves: the part is what follows the last one."""
    key = fact_key("2025-07-06", batch_id, part)
    assert bundle_of(key) == (batch_id, part)
    assert bundle_of(fact_key("2025-07-06", batch_id, part, "elsewhere/"), "elsewhere/") == (batch_id, part)


@pytest.mark.parametrize(
    "key",
    [
        fact_key("2025-07-06", "c4b79232aa", 0),  # a date's own file
        fact_key("2025-07-06", "compact-3-17", HISTORY),  # a merged entry's history
        f"{FACTS_PREFIX}bundles/batch-c4b79232aa-0001.csv",  # not Parquet
        f"{FACTS_PREFIX}bundles/stray-c4b79232aa-0001.parquet",  # not a batch's
        f"{FACTS_PREFIX}bundles/batch-c4b79232aa-x1.parquet",  # no part number
        f"{FACTS_PREFIX}bundles/batch--0001.parquet",  # no batch id
        f"{FACTS_PREFIX}bundles/batch-0001.parquet",  # no batch id before the part
        "other/bundles/batch-c4b79232aa-0001.parquet",  # under another prefix
    ],
)
def test_any_other_key_is_not_a_bundle(key: str) -> None:
    assert bundle_of(key) is None


def test_a_merged_entrys_history_in_several_parts_holds_each_row_once(tmp_path: Path) -> None:
    """Parts of `rows_per_part` rows, numbered from HISTORY on (below it they would be read as
    current orders), read back as the same rows, each once: what a retraction rewrites from."""
    store = FolderStore(tmp_path / "store")
    rows = pl.DataFrame(
        {
            "order_date": [dt.date(2025, 7, 6)] * 5,
            "order_id": ["O1", "O2", "O3", "O1", "O4"],
            "customer_id": ["C1"] * 5,
            "category": ["Books"] * 5,
            "product_id": ["P1"] * 5,
            "quantity": [1, 2, 3, 4, 5],
            "unit_price": [Decimal("1.50")] * 5,
            "returned": [False] * 5,
            "seq": [1, 1, 1, 2, 2],
        },
        schema={**FACT_SCHEMA, "seq": pl.Int64()},
    )
    work = tmp_path / "work"
    work.mkdir()
    parts = write_history(rows.lazy(), "2025-07-06", "compact-1-2", store, work, rows_per_part=2)
    assert parts == [HISTORY, HISTORY + 1, HISTORY + 2]
    entry = FactEntry("2025-07-06", "compact-1-2", 2, tuple(parts))
    with ExitStack() as stack:
        back = history_rows(store, "2025-07-06", [entry], stack).collect()
    key = ["seq", "order_id", "quantity"]
    assert back.sort(key).to_dicts() == rows.sort(key).to_dicts()
