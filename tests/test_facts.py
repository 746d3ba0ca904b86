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
from orderpipe.facts import (
    BUNDLE,
    FACTS_PREFIX,
    HISTORY,
    SEQ_ONLY,
    bundle_of,
    fact_key,
    history_of,
    history_rows,
    latest_of,
    write_compacted,
    write_history,
)
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
    # As a merge before histories held only replaced rows wrote it: every row in the history,
    # the current ones in the entry's own files too.
    parts += write_compacted(rows.lazy().filter(latest_of()), "2025-07-06", "compact-1-2", store, work)
    entry = FactEntry("2025-07-06", "compact-1-2", 2, tuple(parts))
    with ExitStack() as stack:
        back = history_rows(store, "2025-07-06", [entry], stack).collect()
    key = ["seq", "order_id", "quantity"]
    assert back.sort(key).to_dicts() == rows.sort(key).to_dicts()


@pytest.mark.parametrize("prefix", [FACTS_PREFIX, "elsewhere/facts/"])
def test_a_merged_entry_keeps_the_replaced_rows_and_the_current_orders_seqs_and_gives_every_row_back(
    prefix: str, tmp_path: Path
) -> None:
    """Line grain: O1 sent by seq 1 (two lines), replaced by seq 3 (one line); O2 by seq 2,
    replaced by seq 3 and again by seq 4; O3 only in seq 2. The history holds the four replaced
    rows in full and one seq row per current order; with the current rows it gives back every
    row of every batch, with its seq, so any one of them can be retracted."""
    store = FolderStore(tmp_path / "store")
    lines = [("O1", "P1", 1, 1), ("O1", "P2", 2, 1), ("O2", "P1", 1, 2), ("O3", "P3", 5, 2)]
    lines += [("O1", "P1", 3, 3), ("O2", "P1", 4, 3), ("O2", "P2", 6, 4), ("O2", "P3", 7, 4)]
    rows = pl.DataFrame(
        {
            "order_date": [dt.date(2025, 7, 6)] * len(lines),
            "order_id": [o for o, _, _, _ in lines],
            "customer_id": ["C1"] * len(lines),
            "category": ["Books"] * len(lines),
            "product_id": [p for _, p, _, _ in lines],
            "quantity": [q for _, _, q, _ in lines],
            "unit_price": [Decimal("1.50")] * len(lines),
            "returned": [False] * len(lines),
            "seq": [s for _, _, _, s in lines],
        },
        schema={**FACT_SCHEMA, "seq": pl.Int64()},
    )
    work = tmp_path / "work"
    work.mkdir()
    history = history_of(rows)
    replaced = history.filter(pl.col(SEQ_ONLY).is_not_null())
    assert sorted(replaced.select("order_id", "quantity", "seq").rows()) == [
        ("O1", 1, 1), ("O1", 2, 1), ("O2", 1, 2), ("O2", 4, 3)
    ]  # fmt: skip
    seqs = history.filter(pl.col(SEQ_ONLY).is_null())
    assert sorted(seqs.select("order_id", "seq").rows()) == [("O1", 3), ("O2", 4), ("O3", 2)]
    assert seqs.drop("order_date", "order_id", "seq").null_count().row(0) == (seqs.height,) * 6  # nothing else
    current = rows.lazy().filter(latest_of())
    parts = write_compacted(current, "2025-07-06", "compact-1-4", store, work, rows_per_part=2, prefix=prefix)
    parts += write_history(history.lazy(), "2025-07-06", "compact-1-4", store, work, rows_per_part=3, prefix=prefix)
    entry = FactEntry("2025-07-06", "compact-1-4", 4, tuple(parts))
    with ExitStack() as stack:
        back = history_rows(store, "2025-07-06", [entry], stack, prefix).collect()
    key = ["seq", "order_id", "product_id"]
    assert back.sort(key).to_dicts() == rows.sort(key).to_dicts()
