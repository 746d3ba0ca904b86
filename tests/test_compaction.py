"""Compaction: a date's facts entries stay few however many batches touch it, and the KPIs are
exactly those without compaction, on both adapter sets, beside concurrent work and kill -9."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.ingest import fact_key
from orderpipe.workflow import Pipeline
from tests.conftest import keys, order, run_file, snapshot, write


def batches(seed: int, count: int, folder: Path) -> list[Path]:
    """New orders, corrections (price, return, category moves) and re-sent orders over 3 dates."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for n in range(count):
        rows = [
            order(
                f"O{oid}",
                f"C{rng.randrange(9)}",
                f"2025-07-0{1 + oid % 3}",
                rng.choice(["Books", "Toys", "Home"]),
                "P",
                str(rng.randint(1, 5)),
                f"{rng.randint(1, 9999) / 100:.2f}",
                rng.choice(["true", "false"]),
            )
            for oid in rng.sample(range(40), rng.randint(1, 8))
        ]
        files.append(write(folder / f"b{n:03d}.csv", rows))
    return files


def big_first(folder: Path, orders: int) -> Path:
    """A first file of many orders over the dates of `batches`, which later correct some."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        order(f"O{oid}", f"C{oid}", f"2025-07-0{1 + oid % 3}", "Books", "P", "1", f"{oid % 9973 + 1}.{oid % 97:02d}")
        for oid in range(orders)
    ]
    return write(folder / "a-big.csv", rows)


def entries_per_date(pipeline: Pipeline) -> dict[str, int]:
    dates = ["2025-07-01", "2025-07-02", "2025-07-03"]
    return {d: len(e) for d, e in pipeline.ledger.fact_entries(dates).items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compaction_after_every_k_batches_changes_no_kpi(
    any_pipeline: Pipeline, home: Path, tmp_path: Path, seed: int
) -> None:
    files = batches(seed, 24, tmp_path / "files")
    reference = open_pipeline(load_settings(tmp_path / "reference", environ={}))
    reference.compact_after = 10_000  # never
    compacting = any_pipeline
    compacting.compact_after = 2 + seed % 3
    for path in files:
        assert run_file(reference, path).status in ("accepted", "duplicate")
        assert run_file(compacting, path).status in ("accepted", "duplicate")
        assert snapshot(compacting) == snapshot(reference)
    assert max(entries_per_date(compacting).values()) <= compacting.compact_after
    assert max(entries_per_date(reference).values()) > compacting.compact_after  # it did compact


# One order row: date, customer, category, quantity, cents, returned. A batch maps order ids to
# rows (so ids are unique in a file); ids repeat across batches, so later batches correct
# earlier ones: a new price, a return, a move to another category.
ROW = st.tuples(
    st.sampled_from(["2025-07-01", "2025-07-02"]),
    st.integers(0, 3),
    st.sampled_from(["Books", "Toys", "Home"]),
    st.integers(1, 5),
    st.integers(1, 99_999),
    st.booleans(),
)
BATCH = st.dictionaries(st.sampled_from([f"O{i}" for i in range(10)]), ROW, min_size=1, max_size=6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(BATCH, min_size=1, max_size=10), every=st.integers(1, 4))
def test_any_history_compacted_every_k_batches_gives_the_kpis_without_compaction(
    tmp_path_factory: pytest.TempPathFactory, history: list[dict[str, tuple[str, int, str, int, int, bool]]], every: int
) -> None:
    root = tmp_path_factory.mktemp("history")
    plain = open_pipeline(load_settings(root / "plain", environ={}))
    plain.compact_after = 10_000  # never
    compacting = open_pipeline(load_settings(root / "compacting", environ={}))
    compacting.compact_after = every
    for n, batch in enumerate(history):
        rows = [
            order(oid, f"C{c}", day, cat, "P", str(q), f"{cents // 100}.{cents % 100:02d}", str(r).lower())
            for oid, (day, c, cat, q, cents, r) in batch.items()
        ]
        path = write(root / f"b{n}.csv", rows)
        assert run_file(plain, path).status in ("accepted", "duplicate")
        assert run_file(compacting, path).status in ("accepted", "duplicate")
    assert snapshot(compacting) == snapshot(plain)
    assert max(entries_per_date(compacting).values(), default=0) <= every


def test_a_big_oldest_entry_is_merged_again_only_once_the_newer_ones_have_grown(
    any_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches after a big one: compaction merges the small ones among themselves (named
    by the seqs they span) and leaves the big entry alone, until they are a share of its size.
    The KPIs are those without compaction all along."""
    import orderpipe.warehouse as warehouse

    base = big_first(tmp_path / "files", 10_000)
    files = batches(5, 14, tmp_path / "files")
    reference = open_pipeline(load_settings(tmp_path / "reference", environ={}))
    reference.compact_after = 10_000  # never
    compacting = any_pipeline
    compacting.compact_after = 3
    first = compacting.ledger.get(run_file(compacting, base).batch_id)
    assert first is not None
    run_file(reference, base)
    for path in files[:10]:
        run_file(reference, path)
        run_file(compacting, path)
        assert snapshot(compacting) == snapshot(reference)
    dates = ["2025-07-01", "2025-07-02", "2025-07-03"]
    for date, entries in compacting.ledger.fact_entries(dates).items():
        assert entries[0].batch_id == first.batch_id, date  # never rewritten
        assert len(entries) <= compacting.compact_after
        merged = [e for e in entries if e.batch_id.startswith("compact-")]
        assert merged, date
        lowest, top = merged[0].batch_id.removeprefix("compact-").split("-")
        assert int(top) == merged[0].seq
        # The rows of the seqs after the big entry only, from the first batch after it on.
        after = [r.seq for r in compacting.ledger.runs(status="accepted") if date in r.dates and r.seq > first.seq]
        assert int(lowest) == min(after)
    monkeypatch.setattr(warehouse, "FOLD_SHARE", 10**9)  # from now on the newer ones are enough
    for path in files[10:]:
        run_file(reference, path)
        run_file(compacting, path)
        assert snapshot(compacting) == snapshot(reference)
    folded = compacting.ledger.fact_entries(dates)
    assert all(es[0].batch_id == f"compact-{es[0].seq:012d}" for es in folded.values()), folded


def test_the_work_per_file_does_not_grow_with_history(pipeline: Pipeline, tmp_path: Path) -> None:
    """Facts objects read per recompute and kept in the warehouse, after 500 batches on one date."""
    for n in range(500):
        run_file(pipeline, write(tmp_path / f"f{n}.csv", [order(f"O{n}"), order(f"O{n % 7}", price="3.00")]))
    read: list[str] = []
    real = pipeline.store.local_copy

    def counting(key, version=None):  # type: ignore[no-untyped-def]
        read.append(key)
        return real(key, version)

    pipeline.store.local_copy = counting  # type: ignore[method-assign]
    pipeline.recompute(["2025-07-06"])
    assert len(read) <= pipeline.compact_after + 1
    assert len(keys(pipeline, "warehouse/orders/order_date=2025-07-06/")) <= pipeline.compact_after + 1
    assert pipeline.kpis.daily(None, None)[0]["total_orders"] == 500


def test_compaction_beside_a_concurrent_commit_to_the_same_date(
    any_pipeline: Pipeline, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderpipe.warehouse as warehouse

    files = batches(7, 12, tmp_path / "files")
    first = any_pipeline
    first.compact_after = 3
    for path in files[:4]:
        run_file(first, path)
    env = {k: v for k, v in os.environ.items() if k.startswith("ORDERPIPE_")}
    second = open_pipeline(load_settings(home, environ=env))
    real = warehouse.write_compacted

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        parts = real(*args, **kwargs)
        time.sleep(0.6)  # the other worker commits and recomputes meanwhile
        return parts

    monkeypatch.setattr(warehouse, "write_compacted", slow)
    worker = threading.Thread(target=lambda: run_file(first, files[4]))
    worker.start()
    time.sleep(0.2)
    run_file(second, files[5])
    worker.join()
    monkeypatch.undo()
    for path in files[6:]:
        run_file(first, path)
    reference = open_pipeline(load_settings(tmp_path / "reference", environ={}))
    commit_order = [r.file for r in sorted(first.ledger.runs(), key=lambda r: r.seq) if r.status == "accepted"]
    for name in commit_order:
        run_file(reference, tmp_path / "files" / name)
    assert snapshot(first) == snapshot(reference)


POINTS = [
    "compact-written#1",
    "compact-switch-inside#1",
    "compact-switched#1",
    "compact-cleaned#1",
    "compact-bundles-cleaned#1",
    "compact-written#3",
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "big"), [(p, 0) for p in POINTS] + [(p, 10_000) for p in POINTS[:3]], ids=lambda v: str(v)
)
def test_kill_inside_compaction_then_rerun(point: str, big: int, tmp_path: Path) -> None:
    """`big`: after a first file of that many orders, which the compactions then leave alone."""
    files = [str(p) for p in batches(11, 14, tmp_path / "files")]
    if big:
        files.insert(0, str(big_first(tmp_path / "files", big)))

    def orderpipe(home: Path, crash: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "ORDERPIPE_CRASH_AT"}
        if crash:
            env["ORDERPIPE_CRASH_AT"] = crash
        return subprocess.run(
            [sys.executable, "-m", "orderpipe", "--home", str(home), "run", *files],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=300,
        )

    def state(home: Path) -> tuple[object, ...]:
        pipeline = open_pipeline(load_settings(home, environ={}))
        warehouse = sorted(p.name for p in (home / "warehouse").rglob("*.parquet"))
        return (*snapshot(pipeline), warehouse, sorted(p.name for p in (home / "input").iterdir()))

    clean = tmp_path / "clean"
    assert orderpipe(clean).returncode == 0
    crashed = tmp_path / "crashed"
    first = orderpipe(crashed, point)
    assert first.returncode == -signal.SIGKILL, f"{point} never reached: {first.stderr[-500:]}"
    assert orderpipe(crashed).returncode == 0
    daily, category, warehouse, waiting = state(crashed)
    assert (daily, category, waiting) == (*state(clean)[:2], [])
    # Nothing counted twice or lost: every facts file is named by an entry, or is a file a
    # crash left between writing and switching, which a later compaction removes once old.
    assert set(state(clean)[2]) <= set(warehouse)


def test_a_recompute_whose_files_a_compaction_removed_reads_again(
    any_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderpipe.kpi_engine as kpi_engine
    import orderpipe.warehouse as warehouse

    pipeline = any_pipeline
    pipeline.compact_after = 10_000
    for path in batches(5, 6, tmp_path / "files"):
        run_file(pipeline, path)
    expected = snapshot(pipeline)
    real = kpi_engine.load_facts
    calls = []

    def compaction_in_between(store, entries, stack, prefix):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:  # the entries were read; another process compacts before the files are
            pipeline.compact_after = 1
            assert pipeline.compact(list(entries))
            pipeline.compact_after = 10_000
        return real(store, entries, stack, prefix)

    real_history = warehouse.history_rows

    def counted(store, order_date, entries, stack, prefix):  # type: ignore[no-untyped-def]
        calls.append(1)  # the compaction's own reads
        return real_history(store, order_date, entries, stack, prefix)

    monkeypatch.setattr(kpi_engine, "load_facts", compaction_in_between)
    monkeypatch.setattr(warehouse, "history_rows", counted)
    pipeline.engine.known.clear()  # as another process, which has not read these dates yet
    pipeline.recompute(["2025-07-01", "2025-07-02", "2025-07-03"])
    assert len(calls) > 2  # the first read, the compaction's own, then the read again
    assert snapshot(pipeline) == expected


def test_a_compaction_that_lost_the_race_changes_nothing(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    pipeline.compact_after = 10_000
    for path in batches(9, 5, tmp_path / "files"):
        run_file(pipeline, path)
    date = "2025-07-01"
    stale = pipeline.ledger.fact_entries([date])[date]
    pipeline.compact_after = 1
    assert pipeline.compact([date]) == [date]  # another process wins
    after = pipeline.ledger.fact_entries([date])[date]
    loser = type(stale[0])(date, "compact-loser", stale[-1].seq, (0,))
    assert pipeline.ledger.compact(date, stale, loser) is False
    assert pipeline.ledger.fact_entries([date])[date] == after


def test_a_compaction_beaten_to_its_date_skips_it(
    any_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers compact one date at once: the one whose files vanish steps aside, no error."""
    import orderpipe.warehouse as warehouse

    pipeline = any_pipeline
    pipeline.compact_after = 10_000
    for path in batches(4, 6, tmp_path / "files"):
        run_file(pipeline, path)
    expected = snapshot(pipeline)
    real = warehouse.history_rows
    calls = []

    def beaten(store, order_date, entries, stack, prefix):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:  # the other worker compacts the same entries first
            assert pipeline.compact([order_date]) == [order_date]
        return real(store, order_date, entries, stack, prefix)

    monkeypatch.setattr(warehouse, "history_rows", beaten)
    pipeline.compact_after = 1
    assert pipeline.compact(["2025-07-01"]) == []
    monkeypatch.undo()
    pipeline.recompute(["2025-07-01", "2025-07-02", "2025-07-03"])
    assert snapshot(pipeline) == expected


def test_a_new_batch_computes_the_dates_it_alone_holds_from_its_stage(any_pipeline: Pipeline, tmp_path: Path) -> None:
    """Its facts objects are not read back (on S3: not downloaded); the KPIs are those of a
    recompute from the facts."""
    run_file(
        any_pipeline,
        write(
            tmp_path / "a.csv",
            [order("O1", date="2025-07-06"), order("O2", date="2025-07-07"), order("O5", date="2025-07-07")],
        ),
    )
    read: list[str] = []
    real = any_pipeline.store.local_copy

    def counting(key, version=None):  # type: ignore[no-untyped-def]
        read.append(key)
        return real(key, version)

    any_pipeline.store.local_copy = counting  # type: ignore[method-assign]
    any_pipeline.engine.known.clear()  # as another process: the shared date is read from its facts
    rows = [
        order("O2", date="2025-07-07", price="5.00"),
        order("O3", date="2025-07-08"),
        order("O4", date="2025-07-08"),
    ]
    outcome = run_file(any_pipeline, write(tmp_path / "b.csv", rows))
    assert outcome.status == "accepted"
    facts = sorted(k for k in read if k.startswith("warehouse/"))
    shared = any_pipeline.ledger.fact_entries(["2025-07-07"])["2025-07-07"]
    prefix = any_pipeline.prefixes.warehouse
    assert facts == sorted(fact_key("2025-07-07", e.batch_id, p, prefix) for e in shared for p in e.parts)
    assert len(shared) == 2  # the shared date is read from both batches' facts, each file once
    staged = snapshot(any_pipeline)
    assert any_pipeline.recompute(["2025-07-06", "2025-07-07", "2025-07-08"]) == []
    assert snapshot(any_pipeline) == staged
    daily = {d["order_date"]: (d["total_orders"], str(d["total_revenue"])) for d in staged[0]}
    assert daily == {"2025-07-06": (1, "10.00"), "2025-07-07": (2, "15.00"), "2025-07-08": (2, "20.00")}


# -- bundles: the small dates of a slice share one file ------------------------------------------
def facts_files(pipeline: Pipeline) -> list[str]:
    return keys(pipeline, pipeline.prefixes.warehouse)


def daily_orders(pipeline: Pipeline) -> dict[str, tuple[int, str]]:
    return {str(d["order_date"]): (d["total_orders"], str(d["total_revenue"])) for d in pipeline.kpis.daily(None, None)}


def test_a_file_of_many_small_dates_writes_one_bundle_and_big_dates_their_own_file(
    any_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderpipe.ingest as ingest

    monkeypatch.setattr(ingest, "BUNDLE_BELOW", 3)  # a date of 3 rows or more is "big"
    rows = [order(f"A{i}", date="2025-07-01") for i in range(4)]
    rows += [order("B1", date="2025-07-02"), order("C1", date="2025-07-03"), order("D1", date="2025-07-04")]
    outcome = run_file(any_pipeline, write(tmp_path / "mixed.csv", rows))
    batch = outcome.batch_id
    assert facts_files(any_pipeline) == [
        f"bundles/batch-{batch}-0000.parquet",
        f"order_date=2025-07-01/batch-{batch}-0000.parquet",
    ]
    assert daily_orders(any_pipeline) == {
        "2025-07-01": (4, "40.00"),
        "2025-07-02": (1, "10.00"),
        "2025-07-03": (1, "10.00"),
        "2025-07-04": (1, "10.00"),
    }
    before = snapshot(any_pipeline)
    any_pipeline.recompute(["2025-07-01", "2025-07-02", "2025-07-03", "2025-07-04"])  # from the facts
    assert snapshot(any_pipeline) == before
    # A lone small date is a file of its own: a bundle of one date would save nothing.
    single = run_file(any_pipeline, write(tmp_path / "one.csv", [order("E1", date="2025-07-05")]))
    assert f"order_date=2025-07-05/batch-{single.batch_id}-0000.parquet" in facts_files(any_pipeline)


def test_slices_of_a_big_file_each_bundle_their_small_dates(any_pipeline: Pipeline, tmp_path: Path) -> None:
    any_pipeline.rows_per_part = 3
    rows = [order(f"O{i}", date=f"2025-07-0{1 + i % 3}", price=f"{i + 1}.00") for i in range(7)]
    outcome = run_file(any_pipeline, write(tmp_path / "big.csv", rows))
    batch = outcome.batch_id
    # Slices of 3 rows: [07-01, 07-02, 07-03], [07-01, 07-02, 07-03], [07-01]: two bundles, one file.
    assert facts_files(any_pipeline) == [
        f"bundles/batch-{batch}-0000.parquet",
        f"bundles/batch-{batch}-0001.parquet",
        f"order_date=2025-07-01/batch-{batch}-0002.parquet",
    ]
    assert daily_orders(any_pipeline) == {
        "2025-07-01": (3, "12.00"),
        "2025-07-02": (2, "7.00"),
        "2025-07-03": (2, "9.00"),
    }
    before = snapshot(any_pipeline)
    any_pipeline.recompute(["2025-07-01", "2025-07-02", "2025-07-03"])  # from the facts, not the stage
    assert snapshot(any_pipeline) == before


def test_a_bundle_is_deleted_when_the_last_date_it_holds_is_compacted(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    pipeline.compact_after = 1
    both = run_file(
        pipeline, write(tmp_path / "a.csv", [order("X1", date="2025-07-01"), order("Y1", date="2025-07-02")])
    )
    bundle = f"bundles/batch-{both.batch_id}-0000.parquet"
    assert facts_files(pipeline) == [bundle]
    run_file(pipeline, write(tmp_path / "b.csv", [order("X2", date="2025-07-01", price="2.00")]))
    # 07-01 is compacted into a file of its own; 07-02 still reads the bundle, so it stays.
    assert bundle in facts_files(pipeline)
    assert [k for k in facts_files(pipeline) if k.startswith("order_date=2025-07-01/")] == [
        "order_date=2025-07-01/batch-compact-000000000002-0000.parquet",
        "order_date=2025-07-01/history-compact-000000000002-0000.parquet",  # what a retraction reads
    ]
    run_file(pipeline, write(tmp_path / "c.csv", [order("Y1", date="2025-07-02", price="3.00")]))
    assert bundle not in facts_files(pipeline)  # no entry names it any more
    assert not [k for k in facts_files(pipeline) if k.startswith("bundles/")]
    assert daily_orders(pipeline) == {"2025-07-01": (2, "12.00"), "2025-07-02": (1, "3.00")}
    before = snapshot(pipeline)
    pipeline.recompute(["2025-07-01", "2025-07-02"])
    assert snapshot(pipeline) == before


def test_an_old_bundle_no_entry_names_is_deleted_a_named_or_young_one_kept(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.compact_after = 1
    kept = run_file(
        pipeline, write(tmp_path / "a.csv", [order("X1", date="2025-07-01"), order("Y1", date="2025-07-02")])
    )
    named = pipeline.store.path(f"{pipeline.prefixes.warehouse}bundles/batch-{kept.batch_id}-0000.parquet")
    stray_old = named.with_name(f"batch-{'e' * 64}-0000.parquet")  # a batch that never committed
    stray_young = named.with_name(f"batch-{'f' * 64}-0000.parquet")
    other = named.with_name("notes.txt")  # not a bundle's name: left alone
    for path in (stray_old, stray_young, other):
        path.write_bytes(named.read_bytes())
    old = time.time() - 7 * 3600
    for path in (named, stray_old, other):
        os.utime(path, (old, old))
    run_file(pipeline, write(tmp_path / "b.csv", [order("X2", date="2025-07-01")]))  # compacts 07-01
    assert named.exists()  # 07-02 still names it
    assert not stray_old.exists()
    assert stray_young.exists() and other.exists()
    assert daily_orders(pipeline) == {"2025-07-01": (2, "20.00"), "2025-07-02": (1, "10.00")}


@pytest.mark.parametrize("warehouse", ["warehouse/orders/", "facts/daily/"])
def test_a_compaction_merges_the_oldest_entries_and_deletes_what_it_replaced(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse: str
) -> None:
    """At most COMPACT_MAX entries at once, the latest row of an order among them, under the
    highest seq merged; then the replaced files and strays old enough go. A young stray (maybe a
    batch about to commit) stays, and so does every file an entry names, however old, on this
    date or another."""
    import orderpipe.warehouse as room  # (`warehouse` is the parameter: the prefix)

    monkeypatch.setattr(room, "COMPACT_MAX", 3)
    env = {} if warehouse == "warehouse/orders/" else {"ORDERPIPE_PREFIXES_WAREHOUSE": warehouse}
    pipeline = open_pipeline(load_settings(home, environ=env))
    pipeline.compact_after = 4
    date, other = "2025-07-06", "2025-07-01"
    folder = home / warehouse / f"order_date={date}"
    hours_ago = time.time() - 7 * 3600

    def facts_file(batch_id: str, day: str = date) -> Path:
        return home / warehouse / f"order_date={day}" / f"batch-{batch_id}-0000.parquet"

    run_file(pipeline, write(tmp_path / "a.csv", [order("O1", price="1.00"), order("O2", price="2.00")]))
    other_day = run_file(pipeline, write(tmp_path / "o.csv", [order("X1", date=other)]))
    old, young = folder / "batch-stray-old-0000.parquet", folder / "batch-stray-young-0000.parquet"
    for stray in (old, young):
        stray.write_bytes(b"left by a crash")
    run_file(pipeline, write(tmp_path / "b.csv", [order("O1", price="5.00")]))  # a correction of O1
    run_file(pipeline, write(tmp_path / "c.csv", [order("O3", price="7.00")]))
    fifth = run_file(pipeline, write(tmp_path / "e.csv", [order("O5", price="3.00")]))
    for path in (old, facts_file(other_day.batch_id, other), facts_file(fifth.batch_id)):
        os.utime(path, (hours_ago, hours_ago))
    assert [e.seq for e in pipeline.ledger.fact_entries([date])[date]] == [1, 3, 4, 5]
    assert old.exists()  # no compaction yet: 4 entries are not more than 4
    # The next batch also touches a date with few entries, which comes first and is left alone.
    last = run_file(pipeline, write(tmp_path / "d.csv", [order("X2", date=other), order("O4", price="1.00")]))
    entries = pipeline.ledger.fact_entries([date])[date]
    assert [(e.batch_id, e.seq) for e in entries] == [
        ("compact-000000000004", 4),
        (fifth.batch_id, 5),
        (last.batch_id, 6),
    ]
    # (the last batch's two small dates share one bundle file, outside the date's folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            young.name,
            "batch-compact-000000000004-0000.parquet",
            "history-compact-000000000004-0000.parquet",
            facts_file(fifth.batch_id).name,
        ]
    )
    assert [e.seq for e in pipeline.ledger.fact_entries([other])[other]] == [2, 6]
    assert facts_file(other_day.batch_id, other).exists()
    pipeline.recompute([date])  # from the merged entry: O1 once, at its corrected price
    (day,) = [d for d in pipeline.kpis.daily(None, None) if str(d["order_date"]) == date]
    assert (day["total_orders"], str(day["total_revenue"])) == (5, "18.00")


@pytest.mark.parametrize("lost", ["files", "switch"])
def test_a_date_another_worker_compacted_first_does_not_stop_the_next_dates(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    """The first date was compacted by another worker (its files vanished under the read, or
    its ledger switch was refused): the dates after it are still compacted."""
    import orderpipe.warehouse as warehouse

    pipeline.compact_after = 10_000
    for path in batches(4, 8, tmp_path / "files"):
        run_file(pipeline, path)
    expected = snapshot(pipeline)
    first, later = "2025-07-01", ["2025-07-02", "2025-07-03"]
    if lost == "files":
        real_load = warehouse.history_rows

        def beaten(store, order_date, entries, stack, prefix):  # type: ignore[no-untyped-def]
            if order_date == first and not beaten.done:  # type: ignore[attr-defined]
                beaten.done = True  # type: ignore[attr-defined]
                assert pipeline.compact([first]) == [first]
            return real_load(store, order_date, entries, stack, prefix)

        beaten.done = False  # type: ignore[attr-defined]
        monkeypatch.setattr(warehouse, "history_rows", beaten)
    else:
        real_switch = pipeline.ledger.compact
        monkeypatch.setattr(
            pipeline.ledger, "compact", lambda date, old, new: date != first and real_switch(date, old, new)
        )
    pipeline.compact_after = 1
    assert pipeline.compact([first, *later]) == later
    monkeypatch.undo()
    pipeline.recompute([first, *later])
    assert snapshot(pipeline) == expected


def test_two_entries_merged_keep_the_later_row_of_an_order(pipeline: Pipeline, tmp_path: Path) -> None:
    """The merged entry is then the date's only one: nothing de-duplicates its rows later."""
    pipeline.compact_after = 1
    run_file(pipeline, write(tmp_path / "a.csv", [order("O1", price="1.00"), order("O2", price="2.00")]))
    run_file(pipeline, write(tmp_path / "b.csv", [order("O1", price="5.00")]))  # a correction of O1
    date = "2025-07-06"
    (merged,) = pipeline.ledger.fact_entries([date])[date]
    assert (merged.batch_id, merged.seq) == ("compact-000000000002", 2)
    pipeline.recompute([date])  # from the merged entry
    (day,) = pipeline.kpis.daily(None, None)
    assert (day["total_orders"], str(day["total_revenue"])) == (2, "7.00")


def test_a_due_date_brings_the_batchs_other_dates_with_half_as_many_entries(pipeline: Pipeline, tmp_path: Path) -> None:
    """Dates a stream of batches shares stay in step: merged in the same event."""
    pipeline.compact_after = 4
    a, b, c = "2025-07-01", "2025-07-02", "2025-07-03"
    for n, dates in enumerate([[b], [b], [b], [a, c], [a, b], [a, b, c]]):
        rows = [order(f"O{n}-{day}", date=day) for day in dates]
        run_file(pipeline, write(tmp_path / f"f{n}.csv", rows))
    counts = {d: len(es) for d, es in pipeline.ledger.fact_entries([a, b, c]).items()}
    assert counts == {a: 1, b: 1, c: 2}  # b was due (5 > 4), a had 3 > 2, c only 2
    assert [d["total_orders"] for d in pipeline.kpis.daily(None, None)] == [3, 5, 2]
