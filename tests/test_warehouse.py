"""The warehouse room on its own: a batch's facts files in, and compaction decided and done,
over a real folder store and SQLite ledger (no workflow around it)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import polars as pl
import pytest

from orderpipe import warehouse as warehouse_module
from orderpipe.adapters.folder import FolderStore
from orderpipe.adapters.sqlite import SqliteDatabase, SqliteLedger
from orderpipe.adapters.workspace import Workspace
from orderpipe.catalogs import CATALOG, catalog_history, current_catalog
from orderpipe.config import load_settings
from orderpipe.core.shape import SEED_SHAPE
from orderpipe.facts import BUNDLE, HISTORY, fact_key, load_facts
from orderpipe.ingest import inspect_file
from orderpipe.ports import FactEntry
from orderpipe.warehouse import Warehouse, merge_start, merged_id
from tests.conftest import order, write

PREFIX = "facts/daily/"  # not the default: every key must be made under the warehouse's own prefix
DATE = "2025-07-06"


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    home = tmp_path / "home"
    home.mkdir()
    ledger = SqliteLedger(SqliteDatabase(home / "orderpipe.db"))
    return Warehouse(FolderStore(home), ledger, SEED_SHAPE, PREFIX, Workspace(home / ".work"), 1_000_000, 2)


def add(warehouse: Warehouse, path: Path) -> FactEntry:
    """Stage a file's facts, store them through the warehouse and commit the batch; its entry."""
    inspection = inspect_file(path, path.name, ["Electronics", "Books"], warehouse.scratch)
    assert inspection.facts is not None
    parts = warehouse.publish(inspection.facts, inspection.batch_id, on_file=lambda done, total: None)
    record = warehouse.ledger.commit(inspection.batch_id, path.name, inspection.report.rows, parts)
    return FactEntry(DATE, record.batch_id, record.seq or 0, tuple(parts[DATE]))


def rows_of(warehouse: Warehouse, order_date: str = DATE) -> list[tuple[str, str]]:
    entries = warehouse.ledger.fact_entries([order_date])
    with ExitStack() as stack:
        facts = load_facts(warehouse.store, entries, stack, PREFIX).collect()
    return sorted((r["order_id"], str(r["unit_price"])) for r in facts.iter_rows(named=True))


@pytest.mark.parametrize(
    ("sizes", "first"),
    [
        ([1000, 100, 20, 1, 1, 1, 1, 1, 1], 3),  # the newest batches among themselves
        ([1000, 100, 20, 9, 1, 1, 1, 1, 1], 2),  # they reach half of the tier before: it joins
        ([1000, 100, 30, 30, 1, 1, 1, 1, 1], 1),
        ([1000, 600, 1, 1, 1, 1, 1, 1, 1], 0),  # the oldest too: every row of the date
        ([1000, 100, 10, 3, 2], 2),  # exactly half
        ([1000, 100, 10, 1], 2),  # no tier has grown enough: the last two
        ([5], 0),  # one entry: itself
    ],
)
def test_a_merge_starts_at_the_oldest_entry_whose_newer_ones_hold_half_its_bytes(sizes: list[int], first: int) -> None:
    assert merge_start(sizes) == first


def test_a_merged_entry_is_named_by_the_seqs_whose_rows_it_holds() -> None:
    entries = [FactEntry(DATE, "compact-000000000004", 4, (0,)), *(FactEntry(DATE, f"b{n}", n, (0,)) for n in (7, 9))]
    assert merged_id(entries, entries) == "compact-000000000009"  # from the oldest: every row up to 9
    assert merged_id(entries[1:], entries) == "compact-000000000007-000000000009"
    later = [FactEntry(DATE, "compact-000000000005-000000000006", 6, (0,)), entries[2]]
    assert merged_id(later, entries) == "compact-000000000005-000000000009"  # its first seq, from its name
    assert merged_id([FactEntry(DATE, "compact-000000000006", 6, (0,)), entries[2]], entries) == (
        "compact-000000000000-000000000009"  # a full merge not first any more holds every seq up to its top
    )


def test_publish_stores_a_batchs_facts_under_names_derived_from_it(warehouse: Warehouse, tmp_path: Path) -> None:
    entry = add(warehouse, write(tmp_path / "a.csv", [order("O1"), order("O2", price="3.00")]))
    assert list(warehouse.store.list(PREFIX)) == [fact_key(DATE, entry.batch_id, 0, PREFIX)]
    assert rows_of(warehouse) == [("O1", "10.0000"), ("O2", "3.0000")]


def test_a_date_past_compact_after_becomes_one_entry_with_the_latest_row_of_each_order(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    add(warehouse, write(tmp_path / "a.csv", [order("O1", price="1.00"), order("O2", price="2.00")]))
    add(warehouse, write(tmp_path / "b.csv", [order("O1", price="5.00")]))  # a correction of O1
    assert warehouse.compact([DATE]) == []  # 2 entries: not more than compact_after
    third = add(warehouse, write(tmp_path / "c.csv", [order("O3", price="7.00")]))
    stray = warehouse.store.path(fact_key(DATE, "stray", 0, PREFIX))  # left by a crash long ago
    stray.write_bytes(b"x")
    os.utime(stray, (time.time() - 7 * 3600,) * 2)
    assert warehouse.compact([DATE]) == [DATE]
    (merged,) = warehouse.ledger.fact_entries([DATE])[DATE]
    assert (merged.batch_id, merged.seq) == ("compact-000000000003", third.seq)
    # The replaced files and the old stray are gone; only the merged file and its history are left.
    assert list(warehouse.store.list(PREFIX)) == [
        fact_key(DATE, merged.batch_id, 0, PREFIX),
        fact_key(DATE, merged.batch_id, HISTORY, PREFIX),
    ]
    assert rows_of(warehouse) == [("O1", "5.0000"), ("O2", "2.0000"), ("O3", "7.0000")]


def test_a_big_oldest_entry_waits_until_the_newer_ones_hold_half_its_bytes(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # ~87 KB of facts; a 1-row file is ~2 KB (Parquet's own overhead)
    rows = [order(f"O{i}", f"C{i}", price=f"{i % 9973 + 1}.{i % 97:02d}") for i in range(20_000)]
    big = add(warehouse, write(tmp_path / "big.csv", rows))
    small = [add(warehouse, write(tmp_path / f"s{n}.csv", [order(f"N{n}")])) for n in range(3)]
    entries = warehouse.ledger.fact_entries([DATE])[DATE]
    assert warehouse.to_merge(DATE, entries) == entries[1:]  # measured on the files themselves
    assert warehouse.compact([DATE]) == [DATE]
    kept, merged = warehouse.ledger.fact_entries([DATE])[DATE]
    assert kept.batch_id == big.batch_id  # never rewritten
    assert merged.batch_id == f"compact-{small[0].seq:012d}-{small[-1].seq:012d}"
    assert len(rows_of(warehouse)) == 20_003


def test_the_batchs_other_dates_with_half_as_many_entries_are_merged_in_the_same_event(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    warehouse.compact_after = 4
    a, b, c = "2025-07-01", "2025-07-02", "2025-07-03"
    for n, dates in enumerate([[b], [b], [b], [a, c], [a, b], [a, b, c]]):
        inspection = inspect_file(
            write(tmp_path / f"f{n}.csv", [order(f"O{n}-{d}", date=d) for d in dates]),
            f"f{n}.csv",
            ["Electronics"],
            warehouse.scratch,
        )
        assert inspection.facts is not None
        parts = warehouse.publish(inspection.facts, inspection.batch_id, on_file=lambda done, total: None)
        warehouse.ledger.commit(inspection.batch_id, f"f{n}.csv", inspection.report.rows, parts)
    assert warehouse.compact([a, b, c]) == [a, b]  # b was due (5 > 4), a had 3 > 2, c only 2
    counts = {d: len(es) for d, es in warehouse.ledger.fact_entries([a, b, c]).items()}
    assert counts == {a: 1, b: 1, c: 2}


def test_a_failed_compaction_is_logged_never_raised(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        add(warehouse, write(tmp_path / f"f{n}.csv", [order(f"O{n}")]))

    def broken(*args: object) -> pl.DataFrame:
        raise RuntimeError("a bug")

    logged: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr("orderpipe.warehouse.write_compacted", broken)
    monkeypatch.setattr("orderpipe.warehouse.log_event", lambda event, level, **fields: logged.append((event, fields)))
    with pytest.raises(RuntimeError):
        warehouse.compact([DATE])
    warehouse.compact_quietly([DATE])  # the batch just counted is not failed by it
    assert [(event, fields["error"]) for event, fields in logged] == [("compact.skipped", "RuntimeError: a bug")]
    assert len(warehouse.ledger.fact_entries([DATE])[DATE]) == 3


def test_the_oldest_finished_catalog_batches_become_one_entry_under_the_warehouse_prefix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shape = load_settings(home, environ={"ORDERPIPE_INPUT_CATALOG": "true"}).shape
    ledger = SqliteLedger(SqliteDatabase(home / "orderpipe.db"))
    prefix = "facts/daily/"  # not the default: every key is made under the warehouse's own prefix
    warehouse = Warehouse(FolderStore(home), ledger, shape, prefix, Workspace(home / ".work"), 1_000_000, 2)

    def add_catalog(name: str, text: str) -> FactEntry:
        path = tmp_path / name
        path.write_text("product_id,category\n" + text)
        inspection = inspect_file(path, name, ["Books", "Toys"], warehouse.scratch, shape=shape)
        assert inspection.catalog is not None
        warehouse.publish_table("catalog", inspection.catalog, inspection.batch_id)
        record = ledger.commit(inspection.batch_id, name, inspection.report.rows, {CATALOG: [0]})
        ledger.mark_done(record.batch_id)
        return FactEntry(CATALOG, record.batch_id, record.seq or 0, (0,))

    add_catalog("products-1.csv", "P1,Books\nP2,Books\n")
    add_catalog("products-2.csv", "P1,Toys\n")
    assert warehouse.compact([CATALOG]) == []  # 2 entries: not more than compact_after
    third = add_catalog("products-3.csv", "P3,Toys\n")
    assert keys_under(warehouse, prefix) == sorted(f"catalog/batch-{b}.parquet" for b in batch_ids(ledger))
    assert warehouse.compact([CATALOG]) == [CATALOG]
    merged = f"compact-{third.seq:012d}"
    assert ledger.fact_entries([CATALOG])[CATALOG] == [FactEntry(CATALOG, merged, third.seq, (0, HISTORY))]
    assert keys_under(warehouse, prefix) == [f"catalog/batch-{merged}.parquet", f"catalog/history-{merged}.parquet"]
    with ExitStack() as stack:
        rows = current_catalog(warehouse.store, ledger.fact_entries([CATALOG])[CATALOG], stack, prefix)
    assert sorted(rows.iter_rows()) == [("P1", "Toys"), ("P2", "Books"), ("P3", "Toys")]

    # Merged again with newer batches: its history and their own rows read together, every row
    # under its batch's seq.
    fourth = add_catalog("products-4.csv", "P2,Toys\n")
    add_catalog("products-5.csv", "P4,Books\n")
    last = add_catalog("products-6.csv", "P1,Books\n")
    assert warehouse.compact([CATALOG]) == [CATALOG]
    again = f"compact-{last.seq:012d}"
    assert ledger.fact_entries([CATALOG])[CATALOG] == [FactEntry(CATALOG, again, last.seq, (0, HISTORY))]
    assert keys_under(warehouse, prefix) == [f"catalog/batch-{again}.parquet", f"catalog/history-{again}.parquet"]
    with ExitStack() as stack:
        entries = ledger.fact_entries([CATALOG])[CATALOG]
        rows = current_catalog(warehouse.store, entries, stack, prefix)
        history = catalog_history(warehouse.store, entries, stack, prefix)
    assert sorted(rows.iter_rows()) == [("P1", "Books"), ("P2", "Toys"), ("P3", "Toys"), ("P4", "Books")]
    first = third.seq - 2
    assert sorted(history.iter_rows()) == [
        ("P1", "Books", first),
        ("P1", "Books", last.seq),
        ("P1", "Toys", first + 1),
        ("P2", "Books", first),
        ("P2", "Toys", fourth.seq),
        ("P3", "Toys", third.seq),
        ("P4", "Books", last.seq - 1),
    ]
    assert history.schema["seq"] == pl.Int64


def keys_under(warehouse: Warehouse, prefix: str) -> list[str]:
    return sorted(k.removeprefix(prefix) for k in warehouse.store.list(prefix))


def batch_ids(ledger: SqliteLedger) -> list[str]:
    return [e.batch_id for e in ledger.fact_entries([CATALOG])[CATALOG]]


def commit_file(warehouse: Warehouse, path: Path) -> str:
    """Stage, store and commit a file of any dates; its batch id."""
    inspection = inspect_file(path, path.name, ["Electronics", "Books"], warehouse.scratch)
    assert inspection.facts is not None
    parts = warehouse.publish(inspection.facts, inspection.batch_id, on_file=lambda done, total: None)
    return warehouse.ledger.commit(inspection.batch_id, path.name, inspection.report.rows, parts).batch_id


def test_a_bundle_goes_once_no_entry_names_it_and_old_strays_go_with_the_first_compaction(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d1, d2 = "2025-07-01", "2025-07-02"
    first = commit_file(warehouse, write(tmp_path / "a.csv", [order("X1", date=d1), order("Y1", date=d2)]))
    bundle = fact_key("", first, BUNDLE, PREFIX)
    assert list(warehouse.store.list(PREFIX)) == [bundle]  # two small dates: one file
    # Left in the bundles' folder: a file that is no bundle (listed first), a young stray (a
    # batch about to commit), an old one (a batch that never did), each no entry names.
    strays = {name: PREFIX + "bundles/" + name for name in ("README", f"batch-{'a' * 64}-0000.parquet")}
    old_stray = fact_key("", "e" * 64, BUNDLE, PREFIX)
    for key in [*strays.values(), old_stray]:
        warehouse.store.put_bytes(key, b"x")
    for key in (strays["README"], old_stray):
        os.utime(warehouse.store.path(key), (time.time() - 7 * 3600,) * 2)  # type: ignore[attr-defined]
    listed: list[str] = []
    real_list = warehouse.store.list

    def listing(prefix: str) -> Iterator[str]:
        listed.append(prefix)
        return real_list(prefix)

    monkeypatch.setattr(warehouse.store, "list", listing)
    for n in (2, 3):
        commit_file(warehouse, write(tmp_path / f"{n}.csv", [order(f"X{n}", date=d1)]))
    assert warehouse.compact([d1]) == [d1]
    # Only the folders compaction sweeps are listed, never the whole warehouse.
    assert sorted(set(listed)) == [PREFIX + "bundles/", f"{PREFIX}order_date={d1}/"]
    assert warehouse.store.exists(bundle)  # d2 still names it
    assert not warehouse.store.exists(old_stray)
    assert all(warehouse.store.exists(key) for key in strays.values())
    for n in (4, 5):
        commit_file(warehouse, write(tmp_path / f"{n}.csv", [order(f"Y{n}", date=d2)]))
    assert warehouse.compact([d2]) == [d2]
    assert not warehouse.store.exists(bundle)  # released by the last date that named it
    assert rows_of(warehouse, d1) == [("X1", "10.0000"), ("X2", "10.0000"), ("X3", "10.0000")]
    assert rows_of(warehouse, d2) == [("Y1", "10.0000"), ("Y4", "10.0000"), ("Y5", "10.0000")]


def test_at_line_grain_a_merge_keeps_every_line_of_each_orders_latest_batch(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shape = load_settings(home, environ={"ORDERPIPE_INPUT_GRAIN": "line"}).shape
    ledger = SqliteLedger(SqliteDatabase(home / "orderpipe.db"))
    warehouse = Warehouse(FolderStore(home), ledger, shape, PREFIX, Workspace(home / ".work"), 1_000_000, 2)

    def commit(name: str, rows: list[str]) -> None:
        inspection = inspect_file(
            write(tmp_path / name, rows), name, ["Electronics", "Books"], warehouse.scratch, shape=shape
        )
        assert inspection.facts is not None
        parts = warehouse.publish(inspection.facts, inspection.batch_id, on_file=lambda done, total: None)
        ledger.commit(inspection.batch_id, name, inspection.report.rows, parts)

    commit("a.csv", [order("O1", product="P1", price="1.00"), order("O2", product="P1", price="2.00")])
    commit("b.csv", [order("O1", product="P1", price="3.00"), order("O1", product="P2", price="4.00")])
    commit("c.csv", [order("O3", product="P3", price="5.00")])
    assert warehouse.compact([DATE]) == [DATE]
    assert len(ledger.fact_entries([DATE])[DATE]) == 1
    assert rows_of(warehouse) == [("O1", "3.0000"), ("O1", "4.0000"), ("O2", "2.0000"), ("O3", "5.0000")]


def test_a_read_that_fails_is_raised_unless_another_process_compacted_the_date_first(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on S3, where a facts object another process deleted cannot be read: the merge is then
    skipped; the same failure with the date's entries unchanged is a real one (a full disk)."""
    for n in range(3):
        add(warehouse, write(tmp_path / f"f{n}.csv", [order(f"O{n}")]))
    other = Warehouse(
        warehouse.store, warehouse.ledger, SEED_SHAPE, PREFIX, Workspace(tmp_path / "other"), 1_000_000, 2
    )
    real_load = warehouse_module.history_rows
    failures: list[str] = []

    def load(*args: object) -> pl.LazyFrame:
        if failures:
            return real_load(*args)  # type: ignore[arg-type]
        failures.append("read")
        raise OSError("No space left on device")

    monkeypatch.setattr(warehouse_module, "history_rows", load)
    with pytest.raises(OSError, match="No space left"):
        warehouse.compact([DATE])
    assert len(warehouse.ledger.fact_entries([DATE])[DATE]) == 3

    def beaten(*args: object) -> pl.LazyFrame:
        if not failures[1:]:
            failures.append("beaten")
            assert other.compact([DATE]) == [DATE]
            raise FileNotFoundError("gone: compacted by the other process")
        return real_load(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(warehouse_module, "history_rows", beaten)
    assert warehouse.compact([DATE]) == []  # not this process's compaction
    assert [e.batch_id for e in warehouse.ledger.fact_entries([DATE])[DATE]] == ["compact-000000000003"]
    assert rows_of(warehouse) == [("O0", "10.0000"), ("O1", "10.0000"), ("O2", "10.0000")]
