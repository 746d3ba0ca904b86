"""Nothing waiting is replaced, no name is too long, no batch wedges the files behind it, and
concurrent runs of one batch report it once: through the real workflow on both adapter sets."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.core.names import MAX_NAME_BYTES
from orderpipe.workflow import Pipeline
from tests.conftest import keys, order, run_file, write


def totals(pipeline: Pipeline) -> dict[str, tuple[int, Decimal]]:
    return {str(r["order_date"]): (r["total_orders"], r["total_revenue"]) for r in pipeline.kpis.daily(None, None)}  # type: ignore[misc]


def two_files_named_alike(tmp_path: Path, name: str = "orders.csv") -> tuple[Path, Path]:
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    return (
        write(tmp_path / "d1" / name, [order("A1", price="1.00")]),
        write(tmp_path / "d2" / name, [order("B1", price="2.00")]),
    )


def commit_by_hand(pipeline: Pipeline, path: Path, workdir: Path) -> str:
    """Stage and commit a file's facts as a worker killed right after its commit leaves them."""
    from orderpipe.ingest import inspect_file, publish_facts

    inspection = inspect_file(path, path.name, pipeline.categories, workdir)
    assert inspection.facts is not None
    parts = publish_facts(inspection.facts, inspection.batch_id, pipeline.store)
    pipeline.ledger.commit(inspection.batch_id, path.name, inspection.report.rows, parts)
    return inspection.batch_id


def break_inspection_of(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make reading `name` raise as a bug would (not a transient error)."""
    import orderpipe.workflow as workflow

    real = workflow.inspect_file

    def broken(path, file, categories, workdir, *rest):  # type: ignore[no-untyped-def]
        if file == name:
            raise KeyError("unexpected shape")
        return real(path, file, categories, workdir, *rest)

    monkeypatch.setattr(workflow, "inspect_file", broken)


# -- a different file waiting under the same name -------------------------------------------------
def test_an_upload_never_replaces_a_different_waiting_file(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    d1, d2 = two_files_named_alike(tmp_path)
    waiting = pipeline.submit(d1)  # e.g. left by a run that stopped with exit 3
    second = pipeline.submit(d2)
    assert second != waiting
    assert keys(pipeline, "input/") == sorted(k.removeprefix("input/") for k in (waiting, second))
    outcome = pipeline.process(second)
    assert (outcome.status, outcome.file) == ("accepted", "orders.csv")  # the user's name, not the upload's
    with pipeline.store.local_copy(waiting) as path:
        assert path.read_bytes() == d1.read_bytes()
    assert pipeline.process(waiting).status == "accepted"
    assert totals(pipeline) == {"2025-07-06": (2, Decimal("3.00"))}
    assert keys(pipeline, "input/") == []
    assert len(keys(pipeline, "processed/")) == 2


def test_the_same_bytes_waiting_under_the_name_are_reused(any_pipeline: Pipeline, tmp_path: Path) -> None:
    """A rerun after a failure uploads the same file again: it takes the waiting copy's place."""
    pipeline = any_pipeline
    d1, _ = two_files_named_alike(tmp_path)
    assert pipeline.submit(d1) == pipeline.submit(d1) == "input/orders.csv"
    assert keys(pipeline, "input/") == ["orders.csv"]


def test_run_on_the_command_line_never_replaces_a_copied_in_file_and_counts_it_first(
    home: Path, tmp_path: Path
) -> None:
    """A file waiting under the same name landed first: it is counted first (so it can never
    count after the file given, and undo it), kept under its own name, and the user is told."""
    from click.testing import CliRunner

    from orderpipe.cli import main

    d1, d2 = two_files_named_alike(tmp_path)
    (home / "input").mkdir(parents=True)
    (home / "input" / "orders.csv").write_bytes(d1.read_bytes())
    result = CliRunner().invoke(main, ["--home", str(home), "run", str(d2)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "an earlier upload of orders.csv has been waiting as input/orders.csv" in result.stderr
    assert list((home / "input").iterdir()) == []
    pipeline = open_pipeline(load_settings(home, environ={}))
    landed = [hashlib.sha256(d.read_bytes()).hexdigest() for d in (d1, d2)]
    assert [(r.batch_id, r.status) for r in pipeline.ledger.runs()] == [(b, "accepted") for b in landed]
    assert totals(pipeline) == {"2025-07-06": (2, Decimal("3.00"))}


def test_replay_never_replaces_a_waiting_file(home: Path, tmp_path: Path) -> None:
    strict = open_pipeline(load_settings(home, environ={}))
    (tmp_path / "a").mkdir()
    rejected = run_file(strict, write(tmp_path / "a" / "orders.csv", [order("G1", category="Garden", price="5.00")]))
    assert rejected.status == "rejected"
    d1, _ = two_files_named_alike(tmp_path)
    waiting = strict.submit(d1)
    relaxed = open_pipeline(load_settings(home, environ={"ORDERPIPE_CATEGORIES": "Electronics,Garden"}))
    (quarantined,) = relaxed.quarantined()
    requeued = relaxed.requeue(quarantined)
    assert requeued != waiting
    assert relaxed.process(requeued).status == "accepted"
    assert relaxed.process(waiting).status == "accepted"
    assert totals(relaxed) == {"2025-07-06": (2, Decimal("6.00"))}


# -- names at the file-name limit ---------------------------------------------------------------
def all_names(pipeline: Pipeline) -> list[str]:
    return [
        k.rsplit("/", 1)[-1] for prefix in ("input/", "processed/", "rejected/") for k in pipeline.store.list(prefix)
    ]


def test_long_legal_names_never_wedge_archiving(any_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = any_pipeline
    wide = "注" * 80 + ".csv"  # 244 bytes: room for neither a temporary suffix nor a report's
    assert len(wide.encode()) == 244
    bad = run_file(pipeline, write(tmp_path / wide, [order("X1", quantity="0")]))
    assert bad.status == "rejected"
    long_name = "a" * 251 + ".csv"  # 255 bytes, the limit itself
    d1, d2 = two_files_named_alike(tmp_path, long_name)
    waiting = pipeline.submit(d1)
    first = pipeline.process(pipeline.submit(d2))  # a second upload under a taken, maximal name
    second = pipeline.process(waiting)
    again = run_file(pipeline, write(tmp_path / long_name, [order("C1", price="4.00")]))
    assert [o.status for o in (first, second, again)] == ["accepted"] * 3
    assert {o.file for o in (first, second, again)} == {long_name}
    assert keys(pipeline, "input/") == []
    assert len(keys(pipeline, "processed/")) == 3
    rejected = keys(pipeline, "rejected/")
    assert len(rejected) == 2 and any(k.endswith(".report.json") for k in rejected)
    assert all(len(n.encode()) <= MAX_NAME_BYTES for n in all_names(pipeline))
    assert totals(pipeline) == {"2025-07-06": (3, Decimal("7.00"))}
    (quarantined,) = pipeline.quarantined()  # the report is found beside its file
    assert json.loads(pipeline.store.get_bytes(quarantined + ".report.json"))["file"] == wide


# -- a batch that cannot be finished ----------------------------------------------------------------
def failing_recompute(pipeline: Pipeline, poisoned: set[str]):  # type: ignore[no-untyped-def]
    """Recompute raises (as a bug would) while any date in `poisoned` is asked for."""
    real = pipeline.recompute

    def recompute(dates, staged=None):  # type: ignore[no-untyped-def]
        if poisoned & set(dates):
            raise ValueError("a bug in the KPI maths")
        return real(dates, staged)

    return recompute


def test_a_batch_that_cannot_be_finished_is_failed_and_the_next_file_goes_on(
    any_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = any_pipeline
    monkeypatch.setattr(pipeline, "recompute", failing_recompute(pipeline, {"2025-07-01"}))
    poison = run_file(pipeline, write(tmp_path / "poison.csv", [order("P1", date="2025-07-01")]))
    good = run_file(pipeline, write(tmp_path / "good.csv", [order("G1", price="3.00")]))
    assert (poison.status, good.status) == ("failed", "accepted")
    assert "ValueError: a bug in the KPI maths" in poison.message
    assert totals(pipeline) == {"2025-07-06": (1, Decimal("3.00"))}
    assert keys(pipeline, "input/") == []
    report = json.loads(pipeline.store.get_bytes("rejected/poison.csv.report.json"))
    assert report["status"] == "failed" and "a bug in the KPI maths" in report["reason"]
    runs = {r.file: r.status for r in pipeline.ledger.runs()}
    assert runs == {"poison.csv": "failed", "good.csv": "accepted"}
    assert pipeline.ledger.unfinished() == []  # it never blocks a start-up
    assert pipeline.recover() == []
    # Once the cause is fixed, replay finishes it.
    monkeypatch.undo()
    (key,) = pipeline.quarantined(poison.batch_id[:8])
    assert pipeline.replay(key).status == "accepted"
    assert totals(pipeline) == {"2025-07-01": (1, Decimal("10.00")), "2025-07-06": (1, Decimal("3.00"))}
    assert keys(pipeline, "rejected/") == []


def test_a_failure_before_the_commit_quarantines_the_file(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    break_inspection_of("odd.csv", monkeypatch)
    odd = run_file(pipeline, write(tmp_path / "odd.csv", [order("O1")]))
    fine = run_file(pipeline, write(tmp_path / "fine.csv", [order("O2")]))
    assert (odd.status, fine.status) == ("failed", "accepted")
    assert keys(pipeline, "rejected/") == ["odd.csv", "odd.csv.report.json"]
    assert keys(pipeline, "input/") == []


def test_recovery_marks_an_unfinishable_batch_failed_instead_of_failing_every_start(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "x.csv", [order("O1", date="2025-07-01")])
    batch_id = commit_by_hand(pipeline, path, tmp_path)  # committed, then the process died
    monkeypatch.setattr(pipeline, "recompute", failing_recompute(pipeline, {"2025-07-01"}))
    assert pipeline.recover() == []
    assert pipeline.ledger.unfinished() == []
    record = pipeline.ledger.get(batch_id)
    assert record is not None and record.failed and not record.done
    assert [(r.file, r.status) for r in pipeline.ledger.runs()] == [("x.csv", "failed")]
    assert run_file(pipeline, write(tmp_path / "y.csv", [order("O2", price="2.00")])).status == "accepted"


# -- two runs of the same batch at once ----------------------------------------------------------
def test_two_concurrent_runs_of_the_same_file_report_it_once(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    same = write(tmp_path / "same.csv", [order("O1", price="2.50")])
    first, second = (open_pipeline(load_settings(home, environ={})) for _ in range(2))
    real = first.recompute

    def slow(dates, staged=None):  # type: ignore[no-untyped-def]
        time.sleep(1.0)  # the second run arrives while the first is between commit and done
        return real(dates, staged)

    monkeypatch.setattr(first, "recompute", slow)
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(run_file(first, same)))
    worker.start()
    time.sleep(0.4)
    outcomes.append(run_file(second, same))
    worker.join()
    # The second run reused the upload waiting with the same bytes: one upload, one outcome,
    # recorded by the run that finished it; the other run tells its user what became of it.
    assert sorted((o.status, o.elsewhere) for o in outcomes) == [("accepted", False), ("accepted", True)]
    from orderpipe.cli import FileResults

    shown = FileResults(load_settings(home, environ={})).line(next(o for o in outcomes if o.elsewhere), None)
    assert shown == "accepted  same.csv  1 row  2025-07-06  (by another process, which recorded it)"
    assert [r.status for r in second.ledger.runs()] == ["accepted"]
    assert totals(second) == {"2025-07-06": (1, Decimal("2.50"))}


# -- what lands in the archive ------------------------------------------------------------------
def test_a_symlink_in_input_is_archived_as_the_bytes_processed(pipeline: Pipeline, home: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "outside.csv", [order("O1", price="4.00")])
    original = outside.read_bytes()
    (home / "input" / "linked.csv").symlink_to(outside)
    assert pipeline.process("input/linked.csv").status == "accepted"
    archived = home / "processed" / "linked.csv"
    assert not archived.is_symlink() and archived.read_bytes() == original
    assert outside.read_bytes() == original  # the link's target is left alone


def test_archived_files_and_reports_respect_the_umask(home: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        pipeline = open_pipeline(load_settings(home, environ={}))
        run_file(pipeline, write(tmp_path / "ok.csv", [order("O1")]))
        run_file(pipeline, write(tmp_path / "bad.csv", [order("O2", quantity="0")]))
    finally:
        os.umask(old)
    import orderpipe.adapters.folder as folder

    expected = 0o666 & ~folder._UMASK
    for path in (
        home / "processed" / "ok.csv",
        home / "rejected" / "bad.csv",
        home / "rejected" / "bad.csv.report.json",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_recovery_leaves_a_batch_another_process_is_finishing(pipeline: Pipeline, tmp_path: Path) -> None:
    from orderpipe.adapters.workspace import BatchLocks

    path = write(tmp_path / "x.csv", [order("O1")])
    batch_id = commit_by_hand(pipeline, path, tmp_path)
    with BatchLocks(pipeline.locks.root).hold(batch_id):  # another worker is on it
        assert pipeline.recover() == []
    assert [b.batch_id for b in pipeline.ledger.unfinished()] == [batch_id]
    assert pipeline.recover() == [batch_id]


def test_a_file_written_in_place_while_being_read_is_not_committed(
    pipeline: Pipeline, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderpipe.workflow as workflow
    from orderpipe.errors import InfrastructureError

    target = home / "input" / "grow.csv"
    write(target, [order("O1")])
    real = workflow.inspect_file

    def inspect_then_append(path, name, categories, workdir, *rest):  # type: ignore[no-untyped-def]
        inspection = real(path, name, categories, workdir, *rest)
        with target.open("a") as out:  # the writer appends in place, after our read
            out.write(order("O2") + "\n")
        return inspection

    monkeypatch.setattr(workflow, "inspect_file", inspect_then_append)
    with pytest.raises(InfrastructureError, match="changed while it was being processed"):
        pipeline.process("input/grow.csv")
    assert pipeline.ledger.runs() == [] and totals(pipeline) == {}
    monkeypatch.undo()
    assert pipeline.process("input/grow.csv").rows == 2
    assert (home / "processed" / "grow.csv").read_text().count("\n") == 3


def test_run_goes_on_after_a_failed_batch_and_exits_3(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from orderpipe.cli import main

    break_inspection_of("odd.csv", monkeypatch)
    odd = write(tmp_path / "odd.csv", [order("O1")])
    bad = write(tmp_path / "bad.csv", [order("O2", quantity="0")])
    fine = write(tmp_path / "fine.csv", [order("O3")])
    result = CliRunner().invoke(main, ["--home", str(home), "run", str(odd), str(bad), str(fine)])
    assert result.exit_code == 3, result.output
    statuses = [line.split()[0] for line in result.stdout.splitlines()]
    assert statuses == ["failed", "rejected", "accepted"]


def test_two_files_shown_under_one_name_archived_at_once_both_survive(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload and its `NAME.2.csv` twin finished at the same moment by two workers."""
    d1, d2 = two_files_named_alike(tmp_path)
    first, second = (open_pipeline(load_settings(home, environ={})) for _ in range(2))
    waiting, other = first.submit(d1), second.submit(d2)
    real = first.archive.target

    def slow_choice(prefix, name, batch_id, size):  # type: ignore[no-untyped-def]
        target = real(prefix, name, batch_id, size)
        time.sleep(0.8)  # the other worker chooses meanwhile
        return target

    monkeypatch.setattr(first.archive, "target", slow_choice)
    worker = threading.Thread(target=lambda: first.process(waiting))
    worker.start()
    time.sleep(0.3)
    second.process(other)
    worker.join()
    archived = sorted((home / "processed").iterdir())
    assert len(archived) == 2
    assert {p.read_bytes() for p in archived} == {d1.read_bytes(), d2.read_bytes()}


def test_a_file_name_that_is_not_utf8_is_processed_and_archived(pipeline: Pipeline, home: Path) -> None:
    good, bad = os.fsdecode(b"caf\xe9.csv"), os.fsdecode(b"\xff" * 250 + b".csv")  # Latin-1 bytes
    write(home / "input" / good, [order("O1", price="2.00")])
    write(home / "input" / bad, [order("O2", quantity="0")])
    accepted = pipeline.process("input/" + good)
    rejected = pipeline.process("input/" + bad)
    assert (accepted.status, rejected.status) == ("accepted", "rejected")
    assert accepted.file == "caf\ufffd.csv"  # archived and shown under its name as UTF-8 text
    assert (home / "processed" / "caf\ufffd.csv").read_text().count("O1") == 1
    assert [r.status for r in pipeline.ledger.runs()] == ["accepted", "rejected"]
    assert keys(pipeline, "input/") == []
    quarantined = [p.name for p in (home / "rejected").iterdir()]
    assert len(quarantined) == 2 and all(len(os.fsencode(n)) <= MAX_NAME_BYTES for n in quarantined)


def test_a_hard_link_of_an_archived_file_dropped_into_input_leaves_input(pipeline: Pipeline, home: Path) -> None:
    """rename() between two links of one file does nothing: the input link must still go."""
    source = write(home / "elsewhere.csv", [order("O1")])
    assert pipeline.process(pipeline.submit(source)).status == "accepted"
    os.link(home / "processed" / "elsewhere.csv", home / "input" / "elsewhere.csv")
    assert pipeline.process("input/elsewhere.csv").status == "duplicate"
    assert keys(pipeline, "input/") == [] and keys(pipeline, "processed/") == ["elsewhere.csv"]


def test_a_failed_batch_with_no_file_left_is_finished_by_replay(
    any_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up recovery failed it after its file was archived: replay finishes it from its facts."""
    pipeline = any_pipeline
    path = write(tmp_path / "x.csv", [order("O1", date="2025-07-01", price="6.00")])
    batch_id = commit_by_hand(pipeline, path, tmp_path)
    monkeypatch.setattr(pipeline, "recompute", failing_recompute(pipeline, {"2025-07-01"}))
    assert pipeline.recover() == []
    assert [b.batch_id for b in pipeline.ledger.failed()] == [batch_id]
    monkeypatch.undo()
    (stranded,) = pipeline.stranded(batch_id[:8])
    assert pipeline.finish(stranded).status == "accepted"
    assert pipeline.ledger.failed() == [] and pipeline.stranded() == []
    assert totals(pipeline) == {"2025-07-01": (1, Decimal("6.00"))}


def test_watch_retries_a_file_whose_processing_failed_for_a_transient_reason(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderpipe.watch as watch
    from orderpipe.errors import InfrastructureError

    monkeypatch.setattr(watch, "RETRY_AFTER", 0.5)
    (home / "input").mkdir(parents=True)
    write(home / "input" / "busy.csv", [order("O1")])
    attempts: list[str] = []

    def open_flaky() -> Pipeline:
        pipeline = open_pipeline(load_settings(home, environ={}))
        real = pipeline.process

        def process(key, progress=None):  # type: ignore[no-untyped-def]
            attempts.append(key)
            if len(attempts) == 1:
                raise InfrastructureError("database is locked")  # e.g. a long write elsewhere
            return real(key)

        pipeline.process = process  # type: ignore[method-assign]
        return pipeline

    stop = threading.Event()
    outcomes: list[object] = []
    watcher = watch.Watcher(open_flaky, workers=1, poll_interval=0.05, settle_time=0.1)
    runner = threading.Thread(target=watcher.run, args=(stop, outcomes.append))
    runner.start()
    deadline = time.monotonic() + 20
    while not outcomes and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    runner.join()
    assert len(attempts) == 2 and [o.status for o in outcomes] == ["accepted"]  # type: ignore[attr-defined]
    assert keys(open_pipeline(load_settings(home, environ={})), "input/") == []


def test_a_file_removed_from_input_before_its_archive_is_archived_from_the_bytes_read(
    any_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never report an archive that did not happen: the bytes counted are the snapshot's."""
    import orderpipe.workflow as workflow

    pipeline = any_pipeline
    path = write(tmp_path / "x.csv", [order("O1", price="2.00")])
    key = pipeline.submit(path)
    real = workflow.checkpoint

    def removed_by_hand(name: str) -> None:
        if name == "after-recompute":
            pipeline.store.delete(key)
        real(name)

    monkeypatch.setattr(workflow, "checkpoint", removed_by_hand)
    outcome = pipeline.process(key)
    assert (outcome.status, outcome.archived_as) == ("accepted", "processed/x.csv")
    assert pipeline.store.get_bytes("processed/x.csv") == path.read_bytes()
    assert list(pipeline.store.list("input/")) == []


def test_a_rejected_file_removed_from_input_before_its_quarantine_is_quarantined_from_the_bytes_read(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderpipe.archive as archive  # the report is written as the file is quarantined

    path = write(tmp_path / "bad.csv", [order("O1", quantity="0")])
    key = pipeline.submit(path)
    real = archive.checkpoint

    def removed_by_hand(name: str) -> None:
        if name == "after-report":
            pipeline.store.delete(key)
        real(name)

    monkeypatch.setattr(archive, "checkpoint", removed_by_hand)
    outcome = pipeline.process(key)
    assert (outcome.status, outcome.archived_as) == ("rejected", "rejected/bad.csv")
    assert pipeline.store.get_bytes("rejected/bad.csv") == path.read_bytes()


def test_archived_copies_and_reports_never_widen_the_permissions_of_what_they_copy(home: Path, tmp_path: Path) -> None:
    pipeline = open_pipeline(load_settings(home, environ={}))
    private = write(tmp_path / "private.csv", [order("O1", quantity="0")])  # rejected: its report quotes it
    private.chmod(0o600)
    (home / "input" / "linked.csv").symlink_to(private)
    assert pipeline.process("input/linked.csv").status == "rejected"
    mine = write(tmp_path / "mine.csv", [order("O2")])
    mine.chmod(0o600)
    assert run_file(pipeline, mine).status == "accepted"
    for archived in ("rejected/linked.csv", "rejected/linked.csv.report.json", "processed/mine.csv"):
        assert stat.S_IMODE((home / archived).stat().st_mode) == 0o600, archived
    assert private.exists() and stat.S_IMODE(private.stat().st_mode) == 0o600  # the target is left alone
