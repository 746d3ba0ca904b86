"""A process keeps the current orders of the dates it recomputed, and then reads only the facts
committed since: the KPIs are those of a process that reads everything, whatever other
processes commit or compact meanwhile."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from orderpipe import kpi_engine
from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.workflow import Pipeline
from tests.conftest import order, run_file, snapshot, write

DATES = ["2025-07-01", "2025-07-02", "2025-07-03"]


def files(seed: int, count: int, folder: Path, lines: bool = False) -> list[Path]:
    """New orders, corrections (price, return, category, customer) over 3 dates; at line grain
    an order has 1-3 lines, so a correction may add or drop lines."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in range(count):
        rows = []
        for oid in rng.sample(range(30), rng.randint(1, 8)):
            customer, returned = f"C{rng.randrange(6)}", rng.choice(["true", "false"])  # the order's own
            for product in range(rng.randint(1, 3) if lines else 1):
                rows.append(
                    order(
                        f"O{oid}",
                        customer,
                        DATES[oid % 3],
                        rng.choice(["Books", "Toys", "Home"]),
                        f"P{product}",
                        str(rng.randint(1, 4)),
                        f"{rng.randint(1, 9999) / 100:.2f}",
                        returned,
                    )
                )
        out.append(write(folder / f"b{n:03d}.csv", rows))
    return out


def fresh(home: Path, env: dict[str, str]) -> Pipeline:
    """A process that knows nothing yet: it reads every date whole."""
    return open_pipeline(load_settings(home, environ=env))


@pytest.fixture
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings `any_pipeline` was opened with: another process opens the same home."""
    aws = request.node.callspec.params.get("any_pipeline") == "aws"
    return dict(request.getfixturevalue("aws_env")) if aws else {}


@pytest.mark.parametrize("grain", ["order", "line"])
@pytest.mark.parametrize("seed", [1, 2])
def test_kpis_from_known_orders_equal_a_full_read(
    any_pipeline: Pipeline, env: dict[str, str], home: Path, tmp_path: Path, seed: int, grain: str
) -> None:
    pipeline = any_pipeline
    if grain == "line":
        env = {**env, "ORDERPIPE_INPUT_GRAIN": "line"}
        pipeline = fresh(home, env)
    pipeline.compact_after = 3
    for path in files(seed, 14, tmp_path / "files", lines=grain == "line"):
        assert run_file(pipeline, path).status in ("accepted", "duplicate")
        assert pipeline.engine.known, "the process keeps what it recomputed"
        reader = fresh(home, env)
        reader.compact_after = 10_000
        expected = snapshot(pipeline)
        reader.recompute(DATES)  # the same versions: stored again, from a full read
        assert snapshot(reader) == expected
        # and the current orders a full read selects are those the process knew
        assert reader.engine.known.keys() == pipeline.engine.known.keys()
        for date in DATES:
            if date in pipeline.engine.known:
                mine, theirs = pipeline.engine.known[date], reader.engine.known[date]
                assert mine.upto == theirs.upto
                columns = [c for c in mine.rows.columns if c != "seq"]
                ours, full = (s.of(date).select(columns).sort(columns).collect() for s in (mine, theirs))
                assert ours.height and ours.equals(full)


def test_two_processes_see_each_others_commits_and_compactions(
    any_pipeline: Pipeline, env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    """Each process knows the dates as of its own last read; the other's batches and merges
    (some spanning what it knows and what it does not) come after."""
    first = any_pipeline
    second = fresh(home, env)
    first.compact_after, second.compact_after = 2, 4
    paths = files(7, 16, tmp_path / "files")
    rng = random.Random(3)
    for path in paths:
        rng.choice([first, second]).process(first.submit(path))
    for process in (first, second):
        process.recompute(DATES)
    reference = fresh(tmp_path / "reference", {})
    reference.compact_after = 10_000
    commit_order = [r.file for r in sorted(first.ledger.runs(), key=lambda r: r.seq) if r.status == "accepted"]
    for name in commit_order:
        run_file(reference, tmp_path / "files" / name)
    assert snapshot(first) == snapshot(reference)
    for process in (first, second):
        assert {d: (s.upto, s.of(d).collect().height) for d, s in process.engine.known.items()} == {
            d: (s.upto, s.of(d).collect().height) for d, s in reference.engine.known.items()
        }


def test_a_small_batch_on_a_known_date_reads_only_its_own_facts(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.compact_after = 10_000
    run_file(pipeline, write(tmp_path / "big.csv", [order(f"O{i}", price="2.00") for i in range(500)]))
    run_file(pipeline, write(tmp_path / "a.csv", [order("O1", price="5.00")]))
    read: list[str] = []
    real = pipeline.store.local_copy

    def counting(key, version=None):  # type: ignore[no-untyped-def]
        read.append(key)
        return real(key, version)

    pipeline.store.local_copy = counting  # type: ignore[method-assign]
    last = run_file(pipeline, write(tmp_path / "b.csv", [order("O2", price="7.00"), order("N1", price="1.00")]))
    facts = [k for k in read if k.startswith("warehouse/")]
    assert facts and all(last.batch_id in k for k in facts), facts
    (day,) = pipeline.kpis.daily(None, None)
    assert (day["total_orders"], str(day["total_revenue"])) == (501, str(498 * 2 + 5 + 7 + 1) + ".00")


@pytest.mark.parametrize("merge", ["all", "newer"])
def test_a_merge_spanning_what_a_process_knows_is_applied_whole(
    any_pipeline: Pipeline, env: dict[str, str], home: Path, tmp_path: Path, merge: str
) -> None:
    """Another process merges batches this one knows with batches it does not (all of the
    date's, or all but a big first one): the merged rows replace the known ones."""
    paths = files(11, 8, tmp_path / "files")
    first, second = any_pipeline, fresh(home, env)
    first.compact_after = second.compact_after = 10_000
    if merge == "newer":  # a big first entry, which the merge leaves alone
        run_file(
            first,
            write(
                tmp_path / "big.csv",
                [order(f"B{i}", f"C{i}", DATES[i % 3], price=f"{i % 9973 + 1}.{i % 97:02d}") for i in range(20_000)],
            ),
        )
    for path in paths[:4]:
        run_file(first, path)
    known = {d: s.upto for d, s in first.engine.known.items()}
    for path in paths[4:7]:
        run_file(second, path)
    second.compact_after = 2
    assert second.compact(DATES)
    spanning = [
        e
        for d, es in first.ledger.fact_entries(DATES).items()
        for e in es
        if e.batch_id.startswith("compact-") and e.seq > known[d]
    ]
    assert spanning, "a merge of batches the first process knows and batches it does not"
    if merge == "newer":
        assert all(e.batch_id.count("-") == 2 for e in spanning)
    run_file(first, paths[7])
    reference = fresh(tmp_path / "reference", {})
    if merge == "newer":
        run_file(reference, tmp_path / "big.csv")
    for path in paths:
        run_file(reference, path)
    assert snapshot(first) == snapshot(reference)


def test_a_small_batch_on_a_known_date_sums_only_its_own_rows(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The KPIs of a busy date are the known sums adjusted by a batch's rows and the rows they
    replace, never a pass over every current order again."""
    pipeline.compact_after = 10_000
    run_file(pipeline, write(tmp_path / "big.csv", [order(f"O{i}", f"C{i % 7}", price="2.00") for i in range(500)]))
    summed: list[int] = []  # the rows of every pass over current orders
    for name in ("kpi_sums", "compute_kpis"):
        real = getattr(kpi_engine, name)

        def counting(orders: pl.LazyFrame, *args: Any, real: Callable[..., Any] = real) -> Any:
            summed.append(orders.select(pl.len()).collect().item())
            return real(orders, *args)

        monkeypatch.setattr(kpi_engine, name, counting)
    run_file(pipeline, write(tmp_path / "b.csv", [order("O2", "C99", price="7.00"), order("N1", "C0", price="1.00")]))
    assert max(summed, default=0) <= 2, summed
    (day,) = pipeline.kpis.daily(None, None)
    assert (day["total_orders"], str(day["total_revenue"]), day["unique_customers"]) == (501, "1006.00", 8)


def test_orders_with_equal_hashed_keys_are_told_apart(
    pipeline: Pipeline, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Known rows are found by a hash of their key; when every key hashes alike, the batch
    still replaces exactly its own orders."""
    monkeypatch.setattr(
        kpi_engine,
        "with_order_keys",
        lambda rows: rows.with_columns(pl.lit(7, pl.UInt64).alias(kpi_engine.ORDER_KEY)),
    )
    pipeline.compact_after = 10_000
    for path in files(5, 10, tmp_path / "files"):
        run_file(pipeline, path)
    expected = snapshot(pipeline)
    reader = fresh(home, {})
    reader.recompute(DATES)
    assert snapshot(reader) == expected


def test_the_known_orders_stay_in_few_chunks(pipeline: Pipeline, tmp_path: Path) -> None:
    """Each batch adds chunks to the known orders; many chunks make every later batch slow."""
    pipeline.compact_after = 10_000
    for n in range(kpi_engine.MAX_CHUNKS * 2):
        rows = [order(f"{o}-{d}", date=d, price=f"{n + 1}.00") for d in DATES for o in (f"N{n}", "O0")]
        run_file(pipeline, write(tmp_path / f"b{n}.csv", rows))
        assert all(s.rows.n_chunks() <= kpi_engine.MAX_CHUNKS for s in pipeline.engine.known.values())
    (day, *_) = pipeline.kpis.daily(None, None)
    assert (day["total_orders"], str(day["total_revenue"])) == (kpi_engine.MAX_CHUNKS * 2 + 1, "560.00")


def test_a_batch_too_big_to_sum_in_memory_after_known_dates(
    pipeline: Pipeline, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Known dates (kept with their sums) then a batch whose rows take the streaming path: the
    known rows join it as facts."""
    pipeline.compact_after = 10_000
    paths = files(13, 6, tmp_path / "files")
    for path in paths[:3]:
        run_file(pipeline, path)
    assert pipeline.engine.known
    monkeypatch.setattr(kpi_engine, "CURRENT_IN_MEMORY_ROWS", 1)
    for path in paths[3:]:
        assert run_file(pipeline, path).status == "accepted"
    reader = fresh(home, {})
    expected = snapshot(pipeline)
    reader.recompute(DATES)
    assert snapshot(reader) == expected
