"""Processing semantics through the real workflow on a folder and SQLite."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path, PurePosixPath

import pytest

import orderpipe.kpi_engine
from orderpipe.core.kpis import DateKpis, OrderKpi
from orderpipe.workflow import Pipeline
from tests.conftest import keys, order, run_file, snapshot, write


def daily(pipeline: Pipeline) -> dict[str, tuple[int, Decimal, int]]:
    return {
        str(r["order_date"]): (r["total_orders"], r["total_revenue"], r["returned_orders"])  # type: ignore[misc]
        for r in pipeline.kpis.daily(None, None)
    }


def categories(pipeline: Pipeline) -> dict[tuple[str, str], tuple[Decimal, int]]:
    return {
        (str(r["category"]), str(r["order_date"])): (r["daily_revenue"], r["orders"])  # type: ignore[misc]
        for r in pipeline.kpis.category(None, None, None)
    }


def test_same_bytes_under_another_name_count_once(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    rows = [order("O1", price="10.00"), order("O2", price="5.50", returned="true")]
    first = run_file(pipeline, write(tmp_path / "a.csv", rows))
    second = run_file(pipeline, write(tmp_path / "b.csv", rows))
    assert (first.status, second.status) == ("accepted", "duplicate")
    assert first.batch_id == second.batch_id
    assert daily(pipeline) == {"2025-07-06": (2, Decimal("15.50"), 1)}
    assert keys(pipeline, "processed/") == ["a.csv", "b.csv"]
    assert keys(pipeline, "input/") == []


def test_same_name_new_content_is_archived_beside_the_old(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    run_file(pipeline, write(tmp_path / "daily.csv", [order("O1")]))
    (tmp_path / "again").mkdir()
    second = run_file(pipeline, write(tmp_path / "again" / "daily.csv", [order("O2")]))
    processed = keys(pipeline, "processed/")
    assert processed == sorted(["daily.csv", f"daily.{second.batch_id[:12]}.csv"])


def test_correction_file_updates_the_kpis(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    run_file(pipeline, write(tmp_path / "orders.csv", [order("O1", price="10.00"), order("O2", price="20.00")]))
    run_file(pipeline, write(tmp_path / "fix.csv", [order("O2", price="25.00", returned="true")]))
    assert daily(pipeline) == {"2025-07-06": (2, Decimal("35.00"), 1)}


def test_moving_a_dates_only_toys_order_to_books_removes_the_toys_row(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    run_file(pipeline, write(tmp_path / "a.csv", [order("O1", category="Toys"), order("O2", category="Books")]))
    assert ("Toys", "2025-07-06") in categories(pipeline)
    run_file(pipeline, write(tmp_path / "fix.csv", [order("O1", category="Books")]))
    assert categories(pipeline) == {("Books", "2025-07-06"): (Decimal("20.00"), 2)}


def test_batches_over_shared_dates_accumulate(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    dates = [f"2025-07-{d:02d}" for d in range(1, 21)]
    for b in range(5):
        rows = [order(f"B{b}-{i}", date=d, price="1.10") for i, d in enumerate(dates)]
        assert run_file(pipeline, write(tmp_path / f"b{b}.csv", rows)).status == "accepted"
    assert daily(pipeline) == {d: (5, Decimal("5.50"), 0) for d in dates}


def test_a_rejected_file_never_reaches_the_kpis(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    run_file(pipeline, write(tmp_path / "good.csv", [order("O1")]))
    before = snapshot(pipeline)
    bad = run_file(pipeline, write(tmp_path / "bad.csv", [order("O9", price="99.00"), order("O10", quantity="x")]))
    assert bad.status == "rejected"
    assert snapshot(pipeline) == before
    assert not [k for k in pipeline.store.list("warehouse/") if bad.batch_id in k]
    assert keys(pipeline, "rejected/") == ["bad.csv", "bad.csv.report.json"]


def test_replay_after_allowing_a_category(home: Path, tmp_path: Path) -> None:
    from orderpipe.bootstrap import open_pipeline
    from orderpipe.config import load_settings

    strict = open_pipeline(load_settings(home, environ={}))
    first = run_file(strict, write(tmp_path / "garden.csv", [order("O1", category="Garden")]))
    assert first.status == "rejected"
    relaxed = open_pipeline(load_settings(home, environ={"ORDERPIPE_CATEGORIES": "Books,Garden"}))
    (key,) = relaxed.quarantined(first.batch_id[:8])
    again = relaxed.replay(key)
    assert again.status == "accepted"
    assert list((home / "rejected").iterdir()) == []
    assert categories(relaxed) == {("Garden", "2025-07-06"): (Decimal("10.00"), 1)}


def test_a_stale_recompute_never_overwrites_a_newer_one(any_pipeline: Pipeline) -> None:
    pipeline = any_pipeline

    def kpis(total: int) -> DateKpis:
        order_kpi = OrderKpi("2025-07-06", total, Decimal(total), total, Decimal("0.000000"), 1, 0)
        return DateKpis("2025-07-06", order_kpi, ())

    assert pipeline.kpis.write({"2025-07-06": (2, kpis(2))}) == []
    assert pipeline.kpis.write({"2025-07-06": (1, kpis(1))}) == ["2025-07-06"]
    assert pipeline.kpis.daily(None, None)[0]["total_orders"] == 2
    assert pipeline.kpis.write({"2025-07-06": (3, kpis(3))}) == []
    assert pipeline.kpis.daily(None, None)[0]["total_orders"] == 3


def test_recover_finishes_a_committed_batch(pipeline: Pipeline, tmp_path: Path) -> None:
    """A crash between the ledger commit and the KPI write: the next start completes it."""
    key = pipeline.submit(write(tmp_path / "x.csv", [order("O1", price="3.00")]))
    inspection_outcome = run_file(pipeline, write(tmp_path / "y.csv", [order("O2", price="4.00")]))
    assert inspection_outcome.status == "accepted"
    # Commit x's facts by hand, as a crashed worker would have left them, without KPIs.
    from orderpipe.ingest import inspect_file, publish_facts

    with pipeline.store.local_copy(key) as path:
        inspection = inspect_file(path, "x.csv", pipeline.categories, tmp_path)
        assert inspection.facts is not None
        parts = publish_facts(inspection.facts, inspection.batch_id, pipeline.store)
    pipeline.ledger.commit(inspection.batch_id, "x.csv", 1, parts)
    pipeline.store.move(key, "processed/x.csv")
    assert daily(pipeline) == {"2025-07-06": (1, Decimal("4.00"), 0)}
    assert pipeline.recover() == [inspection.batch_id]
    assert daily(pipeline) == {"2025-07-06": (2, Decimal("7.00"), 0)}
    assert pipeline.ledger.unfinished() == []


def test_a_home_path_with_key_value_folders_works(tmp_path: Path) -> None:
    """Facts carry their date; nothing parses `key=value` out of paths (the home may have some)."""
    from orderpipe.bootstrap import open_pipeline
    from orderpipe.config import load_settings

    pipeline = open_pipeline(load_settings(tmp_path / "env=prod" / "home", environ={}))
    run_file(pipeline, write(tmp_path / "a.csv", [order("O1", price="3.00")]))
    run_file(pipeline, write(tmp_path / "b.csv", [order("O2", price="4.00"), order("O3", date="2025-07-08")]))
    assert daily(pipeline) == {"2025-07-06": (2, Decimal("7.00"), 0), "2025-07-08": (1, Decimal("10.00"), 0)}


def test_a_new_upload_during_processing_is_left_for_its_own_run(
    any_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes processed are the bytes archived; a re-upload meanwhile waits in input/."""
    pipeline = any_pipeline
    first = write(tmp_path / "daily.csv", [order("O1", price="1.00")])
    (tmp_path / "v2").mkdir()
    second = write(tmp_path / "v2" / "daily.csv", [order("O1", price="2.00"), order("O2", price="3.00")])
    key = pipeline.submit(first)
    recompute = pipeline.recompute

    def recompute_while_a_new_version_lands(dates, staged=None):  # type: ignore[no-untyped-def]
        replacement = tmp_path / "replacement.csv"  # another writer replaces the key by rename
        shutil.copyfile(second, replacement)
        pipeline.store.put_file(replacement, key)
        return recompute(dates, staged)

    monkeypatch.setattr(pipeline, "recompute", recompute_while_a_new_version_lands)
    assert pipeline.process(key).status == "accepted"
    monkeypatch.setattr(pipeline, "recompute", recompute)
    assert keys(pipeline, "input/") == ["daily.csv"]
    with pipeline.store.local_copy("processed/daily.csv") as archived:
        assert archived.read_bytes() == first.read_bytes()
    assert pipeline.process(key).status == "accepted"
    assert daily(pipeline) == {"2025-07-06": (2, Decimal("5.00"), 0)}


def commit_and_crash(pipeline: Pipeline, path: Path) -> tuple[str, str]:
    """Upload a file and commit its batch, then stop as a kill -9 after the commit would: no
    KPIs, not archived, not done. Returns (input key, batch id)."""
    key = pipeline.submit(path)
    with pipeline.inspected(key) as (inspection, _scratch, _):
        record = pipeline.commit(PurePosixPath(key).name, inspection)
    assert not record.done
    return key, record.batch_id


def test_a_file_still_waiting_after_a_crash_past_its_commit_is_accepted_by_its_own_run(
    any_pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline = any_pipeline
    assert run_file(pipeline, write(tmp_path / "y.csv", [order("O2", price="4.00")])).status == "accepted"
    key, batch_id = commit_and_crash(pipeline, write(tmp_path / "x.csv", [order("O1", price="3.00")]))
    # Start-up recovery leaves a batch whose file is still waiting to that file's run.
    assert pipeline.recover() == []
    assert [b.batch_id for b in pipeline.ledger.unfinished()] == [batch_id]
    record = pipeline.ledger.get(batch_id)
    assert record is not None and not record.done and not record.failed
    assert keys(pipeline, "input/") == ["x.csv"]

    outcome = pipeline.process(key)
    assert (outcome.status, outcome.batch_id, outcome.rows) == ("accepted", batch_id, 1)
    record = pipeline.ledger.get(batch_id)
    assert record is not None and record.done and not record.failed
    assert pipeline.ledger.unfinished() == []
    assert daily(pipeline) == {"2025-07-06": (2, Decimal("7.00"), 0)}
    assert keys(pipeline, "input/") == []
    assert keys(pipeline, "processed/") == ["x.csv", "y.csv"]
    assert [(r.file, r.status) for r in pipeline.ledger.runs()] == [("y.csv", "accepted"), ("x.csv", "accepted")]


def test_the_same_bytes_after_a_finished_batch_are_a_duplicate(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    first = run_file(pipeline, write(tmp_path / "a.csv", [order("O1", price="3.00")]))
    record = pipeline.ledger.get(first.batch_id)
    assert record is not None and record.done
    again = run_file(pipeline, write(tmp_path / "b.csv", [order("O1", price="3.00")]))
    assert (again.status, again.batch_id, again.rows, again.dates) == ("duplicate", first.batch_id, 1, ("2025-07-06",))
    assert [(r.file, r.status) for r in pipeline.ledger.runs()] == [("a.csv", "accepted"), ("b.csv", "duplicate")]


def test_a_stale_recompute_in_the_pipeline_never_overwrites_a_newer_one(
    pipeline: Pipeline, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker computes a date's KPIs from batch 1; before it writes them, another worker
    commits batch 2 on that date and writes its KPIs. The late, stale write must not win."""
    from orderpipe.bootstrap import open_pipeline
    from orderpipe.config import load_settings

    other = open_pipeline(load_settings(home, environ={}))
    correction = write(tmp_path / "fix.csv", [order("O1", price="5.00", returned="true"), order("O2", price="1.00")])
    checkpoint = orderpipe.kpi_engine.checkpoint  # the KPI write is the engine's
    overtaken: list[str] = []

    def newer_worker_overtakes(name: str) -> None:
        if name == "before-kpi-write" and not overtaken:
            overtaken.append(name)
            assert run_file(other, correction).status == "accepted"
            assert daily(other) == {"2025-07-06": (2, Decimal("6.00"), 1)}
        checkpoint(name)

    monkeypatch.setattr(orderpipe.kpi_engine, "checkpoint", newer_worker_overtakes)
    first = run_file(pipeline, write(tmp_path / "a.csv", [order("O1", price="10.00")]))
    assert first.status == "accepted" and overtaken
    assert daily(pipeline) == {"2025-07-06": (2, Decimal("6.00"), 1)}
    assert categories(pipeline) == {("Electronics", "2025-07-06"): (Decimal("6.00"), 2)}


def test_recovery_removes_what_killed_processes_left_in_scratch_space(pipeline: Pipeline, home: Path) -> None:
    """A dead process's workspace (its lock is free) goes, in each scratch root; the batch
    locks and the S3 downloads' root stay however old they are."""
    import os
    import time

    def dead_workspace(root: Path) -> Path:
        folder = root / "p1-dead"
        folder.mkdir(parents=True)
        (folder / ".owner").touch()
        (folder / "half-written.parquet").write_bytes(b"x")
        return folder

    dead = [dead_workspace(home / ".work"), dead_workspace(home / ".work" / "s3"), dead_workspace(home / ".tmp")]
    kept = [home / ".work" / "locks", home / ".work" / "s3"]
    (home / ".work" / "locks").mkdir(exist_ok=True)
    long_ago = time.time() - 7 * 3600
    for folder in kept:
        os.utime(folder, (long_ago, long_ago))
    assert pipeline.recover() == []
    assert [folder.exists() for folder in dead] == [False, False, False]
    assert [folder.is_dir() for folder in kept] == [True, True]


def test_the_garbage_collector_is_back_on_after_a_recompute_even_a_failed_one(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recompute pauses the cyclic garbage collector (it makes many objects, no cycles); a
    long-running `watch` must never be left without it."""
    import gc

    assert run_file(pipeline, write(tmp_path / "a.csv", [order("O1")])).status == "accepted"
    assert gc.isenabled()

    def broken(*args: object) -> None:
        assert not gc.isenabled(), "paused while the KPIs are computed"
        raise OSError("disk gone")

    monkeypatch.setattr(pipeline.kpis, "write", broken)
    with pytest.raises(OSError):
        pipeline.recompute(["2025-07-06"])
    assert gc.isenabled()


def test_the_container_task_names_where_a_file_will_be_archived(pipeline: Pipeline, tmp_path: Path) -> None:
    """`orderpipe task validate` (the state machine moves the file): the name `processed/` or
    `rejected/` gives it, as the workflow itself would."""
    from orderpipe.tasks import validate

    for folder in ("1", "2", "3"):
        (tmp_path / folder).mkdir()
    counted = run_file(pipeline, write(tmp_path / "1" / "daily.csv", [order("O1")]))
    again = validate(pipeline, pipeline.submit(write(tmp_path / "2" / "daily.csv", [order("O1")])), "results/a.json")
    assert (again["verdict"], again["archive_key"]) == ("duplicate", "processed/daily.csv")  # the same bytes
    pipeline.store.delete("input/daily.csv")
    other = validate(pipeline, pipeline.submit(write(tmp_path / "3" / "daily.csv", [order("O2")])), "results/b.json")
    assert other["archive_key"] == f"processed/daily.{other['batch_id'][:12]}.csv" != counted.archived_as
    invalid = write(tmp_path / "bad.csv", [order("O3", quantity="x")])
    bad = validate(pipeline, pipeline.submit(invalid), "results/c.json")
    assert (bad["verdict"], bad["archive_key"]) == ("invalid", "rejected/bad.csv")


# -- replay and finish: the outcomes of the rarer paths -------------------------------------------
def test_a_quarantined_copy_of_bytes_counted_under_another_name_is_settled_under_its_own(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes counted as `g2.csv` by a run killed before it recorded its run: replaying
    the quarantined `garden.csv` settles it, and the history says `garden.csv` was accepted."""
    from tests.test_replay import rejected_garden

    relaxed = rejected_garden(home, tmp_path)
    (key,) = relaxed.quarantined()
    (tmp_path / "2").mkdir()
    monkeypatch.setattr(relaxed.ledger, "record_run", lambda run: None)
    counted = run_file(relaxed, write(tmp_path / "2" / "g2.csv", [order("G1", category="Garden", price="5.00")]))
    monkeypatch.undo()
    outcome = relaxed.replay(key)
    assert (outcome.status, outcome.file, outcome.batch_id) == ("accepted", "garden.csv", counted.batch_id)
    assert outcome.message == "garden.csv: accepted, 1 rows over 1 date(s) 2025-07-06…2025-07-06"
    runs = [(r.status, r.file) for r in relaxed.ledger.runs()]
    assert runs == [("rejected", "garden.csv"), ("accepted", "garden.csv")]
    assert keys(relaxed, "processed/") == ["g2.csv", "garden.csv"]
    assert daily(relaxed) == {"2025-07-06": (1, Decimal("5.00"), 0)}


def test_a_replay_runs_under_the_users_name_and_tells_its_progress(home: Path, tmp_path: Path) -> None:
    """A second `garden.csv` was quarantined under a tagged name: replayed, it is `garden.csv`
    again, in input/ and in the history."""
    import hashlib

    from orderpipe.bootstrap import open_pipeline
    from orderpipe.config import load_settings
    from tests.test_replay import rejected_garden

    strict = open_pipeline(load_settings(home, environ={}))
    (tmp_path / "2").mkdir()
    second = write(tmp_path / "2" / "garden.csv", [order("G2", category="Garden", price="7.00")])
    other = rejected_garden(home, tmp_path)
    tagged = run_file(strict, second).archived_as
    assert tagged == f"rejected/garden.{hashlib.sha256(second.read_bytes()).hexdigest()[:12]}.csv"
    assert other.requeue(tagged, "mine.csv") == "input/mine.csv"  # the name asked for
    other.store.delete("input/mine.csv")
    steps: list[str] = []
    outcome = other.replay(tagged, lambda step, done, total: steps.append(step))
    assert (outcome.status, outcome.file, outcome.archived_as) == ("accepted", "garden.csv", "processed/garden.csv")
    assert steps[0] == "reading" and steps[-1] == "recomputing KPIs"
    assert [r.file for r in other.ledger.runs()] == ["garden.csv"] * 3
    assert daily(other) == {"2025-07-06": (1, Decimal("7.00"), 0)}


def test_a_catalog_batch_finished_after_a_failure_names_the_dates_it_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orderpipe.bootstrap import open_pipeline
    from orderpipe.config import load_settings
    from tests.test_catalog import DAYS, LINES, Line, drop_catalog, drop_orders

    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    drop_orders(pipeline, tmp_path / "o.csv", [Line("O1", "C1", DAYS[0], "", "P1", 1, Decimal("1.00"), False)])

    def failing(dates: object, staged: object = None) -> list[str]:
        raise ValueError("a bug in the KPI maths")

    monkeypatch.setattr(pipeline, "recompute", failing)
    failed = drop_catalog(pipeline, tmp_path / "products.csv", {"P1": "Books", "P2": "Toys"})
    assert failed.status == "failed"
    monkeypatch.undo()
    record = pipeline.ledger.get(failed.batch_id)
    assert record is not None and record.failed
    outcome = pipeline.finish(record)
    assert (outcome.status, outcome.dates) == ("accepted", (DAYS[0],))
    assert outcome.message == f"products.csv: accepted, catalog of 2 products; recomputed 1 date(s) {DAYS[0]}…{DAYS[0]}"
    assert [c["category"] for c in snapshot(pipeline)[1]] == ["Books"]
