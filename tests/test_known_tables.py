"""What a process keeps of the header and line tables between files (`relational.KnownTables`):
only what was committed since is read, and what it gives is what a fresh read gives."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

import orderpipe.relational as relational
from orderpipe.adapters.folder import FolderStore
from orderpipe.core.relational import HEADER_SCHEMA, LINE_SCHEMA, latest_rows, waiting
from orderpipe.facts import FACTS_PREFIX
from orderpipe.ports import FactEntry
from orderpipe.relational import HEADERS, LINES, ROW_ID, KnownTables, current_tables, load_part, part_key
from orderpipe.workflow import Pipeline
from tests.conftest import MUTATION, run_file, snapshot
from tests.lab_reference import LabData
from tests.test_lab_reference import HEADERS as HEADER_COLUMNS
from tests.test_lab_reference import ITEMS
from tests.test_line_items import comparable
from tests.test_relational import lab_like, lab_pipeline, run_all, write


class ReadCounting:
    """Names every object a store hands out a local copy of (the real store does the work)."""

    def __init__(self, store: FolderStore) -> None:
        self.keys: list[str] = []
        self._local_copy = store.local_copy
        store.local_copy = self.local_copy  # type: ignore[method-assign]

    def local_copy(self, key: str, version: str | None = None) -> AbstractContextManager[Path]:
        self.keys.append(key)
        return self._local_copy(key, version)

    def tables(self) -> set[str]:
        """The header and line files read (the catalog, merged to one row per product, is
        read by every recompute)."""
        named = {k.rsplit("/", 2)[-2] + "/" + k.rsplit("/", 1)[-1] for k in self.keys if "/batch-" in k}
        return {k for k in named if k.startswith(("headers/", "lines/"))}


def stored(
    store: FolderStore, kind: str, seq: int, frame: pl.DataFrame, batch_id: str = "", prefix: str = FACTS_PREFIX
) -> FactEntry:
    """A committed header (line) batch: its part file and its entry."""
    entry = FactEntry(kind, batch_id or f"b{seq}", seq, (0,))
    local = store.root.parent / "scratch.parquet"
    frame.write_parquet(local)
    store.put_file(local, part_key(kind, entry.batch_id, prefix))  # (moved into the store)
    return entry


def line_entry(
    store: FolderStore, seq: int, rows: list[tuple[str, str]], batch_id: str = "", prefix: str = FACTS_PREFIX
) -> FactEntry:
    """A committed line batch's part file: (line id, order id) rows, product P, price 1."""
    frame = pl.DataFrame(
        {
            "line_id": [r[0] for r in rows],
            "order_id": [r[1] for r in rows],
            "product_id": ["P"] * len(rows),
            "unit_price": [Decimal(1)] * len(rows),
        },
        schema=LINE_SCHEMA,
    )
    return stored(store, LINES, seq, frame, batch_id, prefix)


def header_entry(
    store: FolderStore, seq: int, rows: list[tuple[str, int | None]], prefix: str = FACTS_PREFIX
) -> FactEntry:
    """A committed header batch: (order id, lines it announces) rows."""
    frame = pl.DataFrame(
        {
            "order_id": [r[0] for r in rows],
            "customer_id": ["C"] * len(rows),
            "order_date": [dt.date(2025, 3, 1)] * len(rows),
            "returned": [False] * len(rows),
            "items_expected": [r[1] for r in rows],
        },
        schema=HEADER_SCHEMA,
    )
    return stored(store, HEADERS, seq, frame, prefix=prefix)


def orders_of(tables: KnownTables, entries: list[FactEntry], remember: bool = False) -> dict[str, str]:
    """Each line's order in the table read; a line id twice in it fails."""
    with ExitStack() as stack:
        rows = (tables.current if remember else tables.rows)(LINES, entries, stack)
    ids = rows.get_column("line_id").to_list()
    assert len(ids) == len(set(ids)), f"a line twice: {sorted(ids)}"
    return dict(zip(ids, rows.get_column("order_id"), strict=True))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FolderStore]:
    yield FolderStore(tmp_path / "bucket")


def test_a_later_read_loads_only_the_entries_committed_since(store: FolderStore) -> None:
    first = [line_entry(store, 1, [("1", "A"), ("2", "A")]), line_entry(store, 2, [("3", "B")])]
    tables = KnownTables(store)
    assert orders_of(tables, first, remember=True) == {"1": "A", "2": "A", "3": "B"}
    later = [*first, line_entry(store, 5, [("2", "C"), ("4", "C")])]
    reads = ReadCounting(store)
    assert orders_of(tables, later, remember=True) == {"1": "A", "2": "C", "3": "B", "4": "C"}
    assert reads.tables() == {"lines/batch-b5.parquet"}
    reads.keys.clear()
    assert orders_of(tables, later) == {"1": "A", "2": "C", "3": "B", "4": "C"}
    assert reads.keys == [], "nothing new: nothing read"


def test_a_compaction_of_what_was_read_is_not_read_again(store: FolderStore) -> None:
    """A merged entry takes the highest seq it covers: a process that read up to there or
    beyond reads it never; one that read less reads it, its rows the latest up to that seq."""
    first = [line_entry(store, 1, [("1", "A")]), line_entry(store, 2, [("1", "B"), ("2", "B")])]
    third = line_entry(store, 3, [("3", "C")])
    behind, ahead = KnownTables(store), KnownTables(store)
    orders_of(behind, first[:1], remember=True)
    orders_of(ahead, [*first, third], remember=True)
    merged = line_entry(store, 2, [("1", "B"), ("2", "B")], batch_id="compact-000000000002")
    reads = ReadCounting(store)
    after = [merged, third, line_entry(store, 4, [("4", "D")])]
    expected = {"1": "B", "2": "B", "3": "C", "4": "D"}
    assert orders_of(ahead, after) == expected
    assert reads.tables() == {"lines/batch-b4.parquet"}
    assert orders_of(behind, after) == expected


def test_an_older_read_or_one_with_a_retraction_is_read_whole(store: FolderStore) -> None:
    entries = [line_entry(store, 1, [("1", "A")]), line_entry(store, 2, [("1", "B")])]
    tables = KnownTables(store)
    assert orders_of(tables, entries, remember=True) == {"1": "B"}
    assert orders_of(tables, entries[:1]) == {"1": "A"}, "the table below a batch, as it was"
    marked = [*entries, FactEntry(LINES, "retracted-b2", 2, ())]
    reads = ReadCounting(store)
    assert orders_of(tables, marked) == {"1": "B"}
    assert reads.tables() == {"lines/batch-b1.parquet", "lines/batch-b2.parquet"}


def test_what_waits_is_counted_whole_once_then_kept_by_order(
    store: FolderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first count of a process goes over every line; from the second on it is kept by
    order and changed by each batch, never counted whole again while both tables are kept."""
    lines = [line_entry(store, 1, [("1", "A")])]
    headers = [header_entry(store, 2, [("A", 2)])]
    tables = KnownTables(store)
    counted: list[int] = []
    monkeypatch.setattr(relational, "waiting", lambda *frames: counted.append(1) or waiting(*frames))
    for seq in range(3, 7):
        with ExitStack() as stack:
            now = [f.collect() for f in current_tables(tables, {HEADERS: headers, LINES: lines}, stack)]
            assert tables.waiting(*now) == waiting(*(f.lazy() for f in now))
        lines.append(line_entry(store, seq, [(str(seq), "B")]))
    assert counted == [1], "counted whole once"


def test_what_waits_follows_a_read_that_is_read_whole(store: FolderStore) -> None:
    """Kept by order once counted twice; a read older than the kept tables is read whole, and
    what waits is then counted from it, not changed from what was kept."""
    lines = [line_entry(store, 1, [("1", "A")]), line_entry(store, 3, [("2", "B")])]
    headers = [header_entry(store, 2, [("A", 2)])]
    tables = KnownTables(store)
    for _ in range(2):
        with ExitStack() as stack:
            now = [f.collect() for f in current_tables(tables, {HEADERS: headers, LINES: lines}, stack)]
            assert tables.waiting(*now)["waiting_lines"] == 1
    with ExitStack() as stack:
        older = [f.collect() for f in current_tables(tables, {HEADERS: headers, LINES: lines[:1]}, stack)]
        assert tables.waiting(*older) == waiting(*(f.lazy() for f in older))
        assert tables.waiting(*older)["waiting_lines"] == 0


def test_tables_too_big_to_keep_are_read_again(
    store: FolderStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """... and the process says so once."""
    entries = [line_entry(store, 1, [("1", "A"), ("2", "A")])]
    monkeypatch.setattr(relational, "KNOWN_TABLE_ROWS", 2)
    kept = KnownTables(store)
    orders_of(kept, entries, remember=True)
    monkeypatch.setattr(relational, "KNOWN_TABLE_ROWS", 1)
    dropped = KnownTables(store)
    with caplog.at_level("INFO", logger="orderpipe"):
        orders_of(dropped, entries, remember=True)
        orders_of(dropped, entries, remember=True)
    assert [r.getMessage() for r in caplog.records].count("tables.not_kept") == 1
    reads = ReadCounting(store)
    orders_of(kept, entries)
    assert reads.keys == []
    orders_of(dropped, entries)
    assert reads.tables() == {"lines/batch-b1.parquet"}


def test_a_late_header_finds_its_lines_without_reading_a_line_file(tmp_path: Path) -> None:
    """After a run of files, one header file reads its own file only; a new process reads the
    tables once."""
    files = lab_like(tmp_path / "files", seed=3)
    pipeline = lab_pipeline(tmp_path / "home")
    run_all(pipeline, files)
    late = write(tmp_path / "files", "orders_late.csv", HEADER_COLUMNS, ["999,5,delivered,2025-03-02T10:00:00,,,,1"])
    reads = ReadCounting(pipeline.store)  # type: ignore[arg-type]
    run_file(pipeline, late)
    (own,) = [e.batch_id for e in pipeline.ledger.fact_entries(["headers"])["headers"]][-1:]
    assert reads.tables() == {f"headers/batch-{own}.parquet"}
    fresh = lab_pipeline(tmp_path / "home")
    reads = ReadCounting(fresh.store)  # type: ignore[arg-type]
    more = write(tmp_path / "files", "order_items_late.csv", ITEMS, ["900,999,5,P1,x,t,,,,2.00"])
    run_file(fresh, more)
    entries = fresh.ledger.fact_entries(["headers", "lines"])
    every = {f"{k}/batch-{e.batch_id}.parquet" for k in ("headers", "lines") for e in entries[k]}
    assert reads.tables() == every
    assert comparable(snapshot(fresh)) == comparable(LabData().add_all([*files, late, more]).kpis())


def test_two_processes_taking_turns_keep_the_kpis_of_the_reference(tmp_path: Path) -> None:
    """Each process keeps its own tables while the other commits and compacts under it: every
    file, on either, leaves the KPIs of the reference fed the files in the same order."""
    rng = random.Random(5)
    for n in range(2 if MUTATION else 4):
        files = lab_like(tmp_path / f"files-{n}", seed=20 + n)
        rng.shuffle(files)
        home = tmp_path / f"home-{n}"
        workers: list[Pipeline] = [lab_pipeline(home), lab_pipeline(home)]
        for worker in workers:
            worker.warehouse.compact_after = 2
        reference = LabData()
        for path in files:
            worker = rng.choice(workers)
            outcome = run_file(worker, path)
            assert outcome.status == "accepted", outcome.message
            reference.add_all([path])
            assert comparable(snapshot(worker)) == comparable(reference.kpis()), (n, path.name)
            assert worker.engine.unjoined == reference.waiting(), (n, path.name)


@pytest.mark.parametrize("prefix", ["", "facts/daily/"])
def test_the_big_merge_of_a_table_is_not_rewritten_by_every_compaction(tmp_path: Path, prefix: str) -> None:
    """A big line file, then one-line files: the small entries are merged among themselves
    (tiers, as a date's, their sizes read where the files are), the big one stays as it is,
    and two processes taking turns keep the KPIs of the reference through merges of runs that
    start after the oldest entry."""
    folder = tmp_path / "files"
    rng = random.Random(3)  # (prices that do not compress: the big file's bytes are many times a small one's)
    rows = [f"{n},{n % 40},0,P{n % 7},x,t,,,,{rng.randint(1, 10**6)}.{rng.randint(10, 99)}" for n in range(1, 2001)]
    big = write(folder, "order_items_big.csv", ITEMS, rows)
    header_rows = [f"{o},{o % 9},delivered,2025-03-0{o % 5 + 1}T10:00:00,,,,3" for o in range(40)]
    headers = write(folder, "orders_all.csv", HEADER_COLUMNS, header_rows)
    home = tmp_path / "home"
    environ = {"ORDERPIPE_PREFIXES_WAREHOUSE": prefix} if prefix else None
    workers = [lab_pipeline(home, environ), lab_pipeline(home, environ)]
    for worker in workers:
        worker.warehouse.compact_after = 2
    run_all(workers[0], [big, headers])
    (big_entry,) = workers[0].ledger.fact_entries(["lines"])["lines"]
    small = [
        write(folder, f"order_items_s{n}.csv", ITEMS, [f"{n if n % 3 else 5000 + n},{n % 41},0,P1,x,t,,,,{n}.50"])
        for n in range(1, 13)
    ]
    reference = LabData().add_all([big, headers])
    merged_later = False
    for n, path in enumerate(small):
        outcome = run_file(workers[n % 2], path)
        assert outcome.status == "accepted", outcome.message
        reference.add_all([path])
        assert comparable(snapshot(workers[n % 2])) == comparable(reference.kpis()), path.name
        entries = workers[0].ledger.fact_entries(["lines"])["lines"]
        assert entries[0] == big_entry, "the big entry is never merged again"
        assert len(entries) <= 3
        merged_later |= any(e.batch_id.startswith("compact-") for e in entries[1:])
    assert merged_later, "the small entries were merged among themselves"


@pytest.mark.parametrize("bound", [relational.KNOWN_TABLE_ROWS, 25])
def test_what_waits_kept_by_order_is_what_a_fresh_count_finds_at_every_step(
    store: FolderStore, bound: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random header and line batches (lines moving between orders, headers sent again with
    another number of lines or none) and merges of runs of entries, read by a process that
    keeps the tables (all of them; or, with a bound of 25 rows, now both, now one, as the
    tables grow past it): after every batch, what waits is what `waiting` finds in a fresh read."""
    monkeypatch.setattr(relational, "KNOWN_TABLE_ROWS", bound)
    for seed in range(3 if MUTATION else 5):
        rng = random.Random(seed)
        tables = KnownTables(store, prefix=f"run{seed}/")
        read: dict[str, list[FactEntry]] = {HEADERS: [], LINES: []}
        for seq in range(1, 40):
            kind = rng.choice([HEADERS, LINES])
            if kind == HEADERS:
                rows = {f"O{rng.randint(0, 9)}": rng.choice([None, 1, 2, 3]) for _ in range(rng.randint(1, 3))}
                entry = header_entry(store, seq, list(rows.items()), prefix=f"run{seed}/")
            else:
                lines = {f"L{rng.randint(0, 29)}": f"O{rng.randint(0, 11)}" for _ in range(rng.randint(1, 4))}
                entry = line_entry(store, seq, list(lines.items()), prefix=f"run{seed}/")
            read[kind].append(entry)
            if rng.random() < 0.2 and len(read[kind]) > 2:
                read[kind] = merged_run(store, f"run{seed}/", kind, read[kind], rng)
            if rng.random() < 0.4:  # not read this time: the next read finds merges past what is kept
                continue
            with ExitStack() as stack:
                headers, lines = (f.collect() for f in current_tables(tables, read, stack))
                kept = tables.waiting(headers, lines)
                fresh = KnownTables(store, prefix=f"run{seed}/")
                expected = waiting(*current_tables(fresh, read, stack))
            assert kept == expected, (seed, seq)


def merged_run(
    store: FolderStore, prefix: str, kind: str, entries: list[FactEntry], rng: random.Random
) -> list[FactEntry]:
    """`entries` with a run of two or more consecutive ones replaced by their merge (the latest
    row per id among them, under the highest seq), as a compaction does."""
    start = rng.randint(0, len(entries) - 2)
    end = rng.randint(start + 2, len(entries))
    run = entries[start:end]
    with ExitStack() as stack:
        rows = latest_rows(load_part(store, kind, run, stack, prefix).lazy(), ROW_ID[kind]).collect().drop("seq")
    top = run[-1].seq
    entry = stored(store, kind, top, rows, batch_id=f"compact-{run[0].seq:012d}-{top:012d}", prefix=prefix)
    return [*entries[:start], entry, *entries[end:]]
