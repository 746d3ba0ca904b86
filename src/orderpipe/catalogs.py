"""Catalog batches on the object store: their rows, the current catalog, the products' dates.

A catalog batch is inspected like any file (`ingest.inspect_file`); its validated rows are one small Parquet file under
`warehouse/orders/catalog/batch-<sha256>.parquet` (named from the batch, so a retry overwrites
it), invisible until the ledger commits the batch under the pseudo-date `catalog`. The current
catalog is read from the ledger's catalog entries, the latest row per product winning.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import polars as pl

from orderpipe.core.catalog import changed_products, latest_catalog
from orderpipe.facts import FACTS_PREFIX, HISTORY, is_marker
from orderpipe.ports import FactEntry, ObjectStore

__all__ = [
    "CATALOG",
    "catalog_changes",
    "catalog_history",
    "catalog_history_key",
    "catalog_key",
    "current_catalog",
    "load_catalog",
    "product_index",
    "write_catalog",
    "write_catalog_merge",
]

#: The ledger key under which catalog batches are entries, beside the order dates.
CATALOG = "catalog"
_SCHEMA = {"product_id": pl.String(), "category": pl.String()}


def catalog_key(batch_id: str, prefix: str = FACTS_PREFIX) -> str:
    """Derived from the batch, so a retry overwrites its own file and never adds a copy."""
    return f"{prefix}{CATALOG}/batch-{batch_id}.parquet"


def catalog_history_key(batch_id: str, prefix: str = FACTS_PREFIX) -> str:
    """Where a merged catalog entry keeps every row of the batches it merged, with their seqs."""
    return f"{prefix}{CATALOG}/history-{batch_id}.parquet"


def catalog_history(
    store: ObjectStore, entries: Sequence[FactEntry], stack: ExitStack, prefix: str = FACTS_PREFIX
) -> pl.DataFrame:
    """Every row of the catalog batches these entries hold, each with its batch's seq: a batch's
    own, or a merged entry's history (a merge written before histories: its rows, its seq)."""
    frames = []
    for entry in entries:
        if HISTORY in entry.parts:
            path = stack.enter_context(store.local_copy(catalog_history_key(entry.batch_id, prefix)))
            frames.append(pl.read_parquet(path).select("product_id", "category", "seq"))
        elif not is_marker(entry):
            frames.append(load_catalog(store, [entry], stack, prefix))
    if not frames:
        return pl.DataFrame(schema={**_SCHEMA, "seq": pl.Int64()})
    return pl.concat(frames, how="vertical")


def write_catalog_merge(
    history: pl.DataFrame, merged: str, store: ObjectStore, workdir: Path, prefix: str = FACTS_PREFIX
) -> tuple[int, ...]:
    """Store the merged catalog entry `merged` of these rows (with their seqs): its current
    rows, and its history for a retraction to come. Returns its parts."""
    write_catalog(latest_catalog(history.lazy()).collect(), catalog_key(merged, prefix), store, workdir)
    local = workdir / f"catalog-history-{uuid.uuid4().hex}.parquet"
    history.select("product_id", "category", "seq").sort("seq", "product_id").write_parquet(local, compression="zstd")
    try:
        store.put_file(local, catalog_history_key(merged, prefix))
    finally:
        local.unlink(missing_ok=True)
    return (0, HISTORY)


def write_catalog(frame: pl.DataFrame, key: str, store: ObjectStore, workdir: Path) -> None:
    """Store catalog rows under `key` (sorted by product: two writers write identical files)."""
    local = workdir / f"catalog-{uuid.uuid4().hex}.parquet"
    frame.select("product_id", "category").sort("product_id").write_parquet(local, compression="zstd")
    try:
        store.put_file(local, key)
    finally:
        local.unlink(missing_ok=True)


def load_catalog(
    store: ObjectStore, entries: Sequence[FactEntry], stack: ExitStack, prefix: str = FACTS_PREFIX
) -> pl.DataFrame:
    """The rows of these catalog entries, each tagged with its batch seq."""
    frames = [
        pl.read_parquet(stack.enter_context(store.local_copy(catalog_key(e.batch_id, prefix)))).with_columns(
            pl.lit(e.seq, pl.Int64).alias("seq")
        )
        for e in entries
        if not is_marker(e)  # a retraction's mark: no rows
    ]
    if not frames:
        return pl.DataFrame(schema={**_SCHEMA, "seq": pl.Int64()})
    return pl.concat([f.select("product_id", "category", "seq") for f in frames], how="vertical")


def current_catalog(
    store: ObjectStore, entries: Sequence[FactEntry], stack: ExitStack, prefix: str = FACTS_PREFIX
) -> pl.DataFrame:
    """The catalog as these entries make it: the latest row per product."""
    return latest_catalog(load_catalog(store, entries, stack, prefix).lazy()).collect()


def catalog_changes(
    store: ObjectStore, entries: Sequence[FactEntry], batch_id: str, stack: ExitStack, prefix: str = FACTS_PREFIX
) -> list[str]:
    """The products whose category the catalog batch `batch_id` changed, against the catalog
    of the entries committed before it."""
    mine = next(e for e in entries if e.batch_id == batch_id)
    before = current_catalog(store, [e for e in entries if e.seq < mine.seq], stack, prefix)
    rows = pl.read_parquet(stack.enter_context(store.local_copy(catalog_key(batch_id, prefix))))
    return changed_products(rows.select("product_id", "category"), before)


def product_index(facts: list[Path]) -> Mapping[str, list[str]]:
    """product → the dates it sold on in a staged order batch (for the ledger's index)."""
    pairs = (
        pl.scan_parquet(facts)
        .select("product_id", pl.col("order_date").cast(pl.String))
        .unique()
        .group_by("product_id")
        .agg(pl.col("order_date").sort())
        .collect()
    )
    return {row[0]: row[1] for row in pairs.iter_rows()}
