"""What a person or a script reads about each file, exactly: the outcome and its message, the
run history, the notification, the quarantine report of a failed batch and the progress steps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orderpipe.core.names import REPORT_SUFFIX
from orderpipe.ports import Notification
from orderpipe.progress import UNKNOWN
from orderpipe.workflow import Outcome, Pipeline
from tests.conftest import order, run_file, write
from tests.test_nothing_lost import break_inspection_of, commit_by_hand, failing_recompute


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.sent.append(notification)


@pytest.fixture
def sent(pipeline: Pipeline) -> list[Notification]:
    recorder = Recorder()
    pipeline.notifier = recorder
    return recorder.sent


def history(pipeline: Pipeline) -> list[tuple[str, str, str, int, tuple[str, ...], str]]:
    return [(r.batch_id, r.file, r.status, r.rows, r.dates, r.message) for r in pipeline.ledger.runs()]


def as_sent(outcome: Outcome, details: dict[str, object]) -> Notification:
    return Notification(
        outcome.status, outcome.file, outcome.batch_id, outcome.message, outcome.rows, outcome.dates, details
    )


def test_an_accepted_file(pipeline: Pipeline, sent: list[Notification], tmp_path: Path) -> None:
    rows = [order("O1"), order("O2", date="2025-07-08"), order("O3", date="2025-07-07")]
    outcome = run_file(pipeline, write(tmp_path / "week.csv", rows))
    assert (outcome.status, outcome.file, outcome.rows, outcome.dates, outcome.archived_as) == (
        "accepted",
        "week.csv",
        3,
        ("2025-07-06", "2025-07-07", "2025-07-08"),
        "processed/week.csv",
    )
    assert outcome.message == "week.csv: accepted, 3 rows over 3 date(s) 2025-07-06…2025-07-08"
    assert outcome.report is not None and outcome.report.valid
    assert history(pipeline) == [
        (outcome.batch_id, "week.csv", "accepted", 3, outcome.dates, outcome.message),
    ]
    (run,) = pipeline.ledger.runs()
    assert run.started_at <= run.finished_at
    # UTC, to the millisecond, with its offset: comparable across machines and time zones.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", run.started_at), run.started_at
    assert sent == [as_sent(outcome, {"archived_as": "processed/week.csv"})]


def test_a_duplicate_names_the_file_that_was_counted(
    pipeline: Pipeline, sent: list[Notification], tmp_path: Path
) -> None:
    first = run_file(pipeline, write(tmp_path / "a.csv", [order("O1")]))
    again = run_file(pipeline, write(tmp_path / "b.csv", [order("O1")]))
    assert (again.status, again.file, again.batch_id, again.rows, again.dates, again.archived_as) == (
        "duplicate",
        "b.csv",
        first.batch_id,
        1,
        ("2025-07-06",),
        "processed/b.csv",
    )
    assert (
        again.message == f"b.csv: same bytes as a.csv (batch {first.batch_id[:12]}), already counted; nothing changed"
    )
    assert again.report is not None and (again.report.file, again.report.valid) == ("b.csv", True)
    assert history(pipeline)[1] == (first.batch_id, "b.csv", "duplicate", 1, ("2025-07-06",), again.message)
    assert sent[1] == as_sent(again, {"archived_as": "processed/b.csv"})


def test_a_rejected_file_says_what_is_wrong_and_where(
    pipeline: Pipeline, sent: list[Notification], tmp_path: Path
) -> None:
    outcome = run_file(pipeline, write(tmp_path / "bad.csv", [order("O1"), order("O2", quantity="x")]))
    assert (outcome.status, outcome.file, outcome.rows, outcome.dates, outcome.archived_as) == (
        "rejected",
        "bad.csv",
        2,
        (),
        "rejected/bad.csv",
    )
    assert outcome.report is not None
    assert outcome.message == outcome.report.summary()
    assert outcome.message.startswith("bad.csv: invalid, invalid-integer ×1 (first at line 3, quantity: ")
    report = json.loads(pipeline.store.get_bytes("rejected/bad.csv.report.json"))
    assert report == {
        **outcome.report.to_dict(),
        "batch_id": outcome.batch_id,
        "checked_with": pipeline.archive.checked_with,
    }
    assert history(pipeline) == [(outcome.batch_id, "bad.csv", "rejected", 2, (), outcome.message)]
    first = outcome.report.errors[0].samples[0].to_dict()
    errors = [{"code": "invalid-integer", "count": 1, "first": first}]
    assert sent == [as_sent(outcome, {"archived_as": "rejected/bad.csv", "errors": errors})]


def test_a_batch_failed_after_its_commit(
    pipeline: Pipeline, sent: list[Notification], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "recompute", failing_recompute(pipeline, {"2025-07-01"}))
    outcome = run_file(pipeline, write(tmp_path / "poison.csv", [order("P1", date="2025-07-01")]))
    reason = "ValueError: a bug in the KPI maths"
    assert (outcome.status, outcome.file, outcome.rows, outcome.dates, outcome.archived_as) == (
        "failed",
        "poison.csv",
        1,
        ("2025-07-01",),
        "rejected/poison.csv",
    )
    assert outcome.message == (
        f"poison.csv: failed (its rows are committed but its KPIs may be stale): {reason}; "
        "kept as rejected/poison.csv; `orderpipe replay` retries it"
    )
    assert outcome.report is None
    record = pipeline.ledger.get(outcome.batch_id)
    assert record is not None and record.failed and not record.done
    assert json.loads(pipeline.store.get_bytes("rejected/poison.csv.report.json")) == {
        "file": "poison.csv",
        "valid": False,
        "status": "failed",
        "reason": reason,
        "batch_id": outcome.batch_id,
        "hint": "an internal error stopped this file; once the cause is fixed, "
        f"`orderpipe replay {outcome.batch_id[:12]}` runs it again",
    }
    assert history(pipeline) == [(outcome.batch_id, "poison.csv", "failed", 1, ("2025-07-01",), outcome.message)]
    assert sent == [as_sent(outcome, {"archived_as": "rejected/poison.csv"})]


@pytest.mark.parametrize("uploaded", [True, False], ids=["submitted", "dropped-in"])
def test_a_file_failed_before_its_commit(
    pipeline: Pipeline, sent: list[Notification], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uploaded: bool
) -> None:
    """Submitted, its batch id is known from the upload; dropped into input/ and failed before
    it was read, it is not, and `replay --rejected` is the way back."""
    break_inspection_of("odd.csv", monkeypatch)
    path = write(tmp_path / "odd.csv", [order("O1")])
    if uploaded:
        key = pipeline.submit(path)
    else:
        key = "input/odd.csv"
        pipeline.store.put_bytes(key, path.read_bytes())
    outcome = pipeline.process(key)
    batch_id = outcome.batch_id
    assert len(batch_id) == (64 if uploaded else 0)
    assert (outcome.status, outcome.file, outcome.rows, outcome.dates, outcome.archived_as) == (
        "failed",
        "odd.csv",
        0,
        (),
        "rejected/odd.csv",
    )
    reason = "KeyError: 'unexpected shape'"
    assert outcome.message == f"odd.csv: failed: {reason}; kept as rejected/odd.csv; `orderpipe replay` retries it"
    assert json.loads(pipeline.store.get_bytes("rejected/odd.csv.report.json")) == {
        "file": "odd.csv",
        "valid": False,
        "status": "failed",
        "reason": reason,
        "batch_id": batch_id,
        "hint": "an internal error stopped this file; once the cause is fixed, "
        f"`orderpipe replay {batch_id[:12] if uploaded else '--rejected'}` runs it again",
    }
    assert pipeline.ledger.failed() == []  # nothing was committed: there is no batch to mark
    assert history(pipeline) == [(batch_id, "odd.csv", "failed", 0, (), outcome.message)]
    assert sent == [as_sent(outcome, {"archived_as": "rejected/odd.csv"})]
    assert pipeline.store.get_bytes("rejected/odd.csv.report.json").startswith(b'{\n  "file": "odd.csv",\n')


def test_a_submitted_file_whose_original_went_fails_before_it_was_read_under_no_batch(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its bytes cannot be hashed from the user's file any more: as a file dropped into input/."""
    break_inspection_of("odd.csv", monkeypatch)
    path = write(tmp_path / "odd.csv", [order("O1")])
    key = pipeline.submit(path)
    path.unlink()
    outcome = pipeline.process(key)
    assert (outcome.status, outcome.batch_id, outcome.archived_as) == ("failed", "", "rejected/odd.csv")
    report = json.loads(pipeline.store.get_bytes("rejected/odd.csv.report.json"))
    assert report["batch_id"] == "" and report["hint"].endswith("`orderpipe replay --rejected` runs it again")


def test_the_same_failing_bytes_twice_are_quarantined_once(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_inspection_of("odd.csv", monkeypatch)
    odd = write(tmp_path / "odd.csv", [order("O1")])
    assert [run_file(pipeline, odd).archived_as for _ in range(2)] == ["rejected/odd.csv", "rejected/odd.csv"]
    assert sorted(pipeline.store.list("rejected/")) == ["rejected/odd.csv", "rejected/odd.csv.report.json"]


def test_different_unknown_files_failed_under_one_name_are_all_kept(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropped into input/ and failed before they were read: each gets a name of its own."""
    break_inspection_of("odd.csv", monkeypatch)
    kept = []
    for n in range(3):
        pipeline.store.put_bytes("input/odd.csv", f"file {n}".encode())
        kept.append(pipeline.process("input/odd.csv").archived_as)
    assert len(set(kept)) == 3
    assert sorted(pipeline.store.get_bytes(k) for k in kept) == [b"file 0", b"file 1", b"file 2"]


def test_a_long_failure_reason_is_cut_to_500_characters(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderpipe.workflow as workflow

    def broken(path, file, categories, workdir, *rest):  # type: ignore[no-untyped-def]
        raise ValueError("x" * 2000)

    monkeypatch.setattr(workflow, "inspect_file", broken)
    outcome = run_file(pipeline, write(tmp_path / "odd.csv", [order("O1")]))
    reason = ("ValueError: " + "x" * 2000)[:500]
    assert json.loads(pipeline.store.get_bytes("rejected/odd.csv.report.json"))["reason"] == reason
    assert outcome.message == f"odd.csv: failed: {reason}; kept as rejected/odd.csv; `orderpipe replay` retries it"


def test_a_failed_batch_whose_file_is_gone_is_kept_nowhere(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file left input/ meanwhile (another worker archived it): nothing to quarantine."""
    real = pipeline.recompute

    def recompute_then_lose_the_file(dates, *rest):  # type: ignore[no-untyped-def]
        pipeline.store.delete("input/gone.csv")
        raise ValueError("a bug in the KPI maths")

    monkeypatch.setattr(pipeline, "recompute", recompute_then_lose_the_file)
    outcome = run_file(pipeline, write(tmp_path / "gone.csv", [order("O1")]))
    assert (outcome.status, outcome.archived_as) == ("failed", "")
    assert outcome.message == (
        "gone.csv: failed (its rows are committed but its KPIs may be stale): ValueError: a bug in the KPI maths; "
        "`orderpipe replay` retries it"
    )
    assert list(pipeline.store.list("rejected/")) == []
    monkeypatch.setattr(pipeline, "recompute", real)


def test_recovery_tells_what_it_finished_and_what_it_could_not(
    pipeline: Pipeline, sent: list[Notification], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = commit_by_hand(pipeline, write(tmp_path / "x.csv", [order("O1"), order("O2", date="2025-07-09")]), tmp_path)
    bad = commit_by_hand(pipeline, write(tmp_path / "y.csv", [order("O3", date="2025-07-01")]), tmp_path)
    monkeypatch.setattr(pipeline, "recompute", failing_recompute(pipeline, {"2025-07-01"}))
    assert pipeline.recover() == [good]
    finished = "x.csv: accepted (finished after an interruption), 2 rows 2025-07-06…2025-07-09"
    failed = "y.csv: failed while finishing its KPIs: ValueError: a bug in the KPI maths; `orderpipe replay` retries it"
    assert sorted(history(pipeline)) == sorted(
        [
            (good, "x.csv", "accepted", 2, ("2025-07-06", "2025-07-09"), finished),
            (bad, "y.csv", "failed", 1, ("2025-07-01",), failed),
        ]
    )
    assert sorted((n.event, n.file, n.batch_id, n.summary, n.rows, n.dates) for n in sent) == sorted(
        [
            ("accepted", "x.csv", good, finished, 2, ("2025-07-06", "2025-07-09")),
            ("failed", "y.csv", bad, failed, 1, ("2025-07-01",)),
        ]
    )
    records = {b: pipeline.ledger.get(b) for b in (good, bad)}
    assert [(r.done, r.failed) for r in records.values() if r is not None] == [(True, False), (False, True)]


def test_replay_of_a_stranded_batch_that_fails_again_says_so(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = commit_by_hand(pipeline, write(tmp_path / "x.csv", [order("O1", date="2025-07-01")]), tmp_path)
    monkeypatch.setattr(pipeline, "recompute", failing_recompute(pipeline, {"2025-07-01"}))
    assert pipeline.recover() == []
    (stranded,) = pipeline.stranded()
    outcome = pipeline.finish(stranded)
    assert (outcome.status, outcome.file, outcome.batch_id, outcome.rows, outcome.dates) == (
        "failed",
        "x.csv",
        batch_id,
        1,
        ("2025-07-01",),
    )
    assert outcome.message == "x.csv: failed again while finishing its KPIs: ValueError: a bug in the KPI maths"
    record = pipeline.ledger.get(batch_id)
    assert record is not None and record.failed and not record.done
    monkeypatch.undo()
    done = pipeline.finish(stranded)
    assert (done.status, done.message, done.archived_as) == (
        "accepted",
        "x.csv: accepted, 1 rows over 1 date(s) 2025-07-01…2025-07-01",
        "",  # its file was archived long ago
    )
    assert [r.status for r in pipeline.ledger.runs()] == ["failed", "failed", "accepted"]


def test_stranded_lists_only_failed_batches_with_no_file_to_replay(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # x: failed by recovery, its file long archived (stranded); q: failed in its own run, its
    # file quarantined (replayed from rejected/, not stranded).
    x = commit_by_hand(pipeline, write(tmp_path / "x.csv", [order("O1", date="2025-07-01")]), tmp_path)
    monkeypatch.setattr(pipeline, "recompute", failing_recompute(pipeline, {"2025-07-01"}))
    assert pipeline.recover() == []
    q = run_file(pipeline, write(tmp_path / "q.csv", [order("O2", date="2025-07-01")]))
    assert q.status == "failed"
    assert {b.batch_id for b in pipeline.ledger.failed()} == {x, q.batch_id}
    assert [b.batch_id for b in pipeline.stranded()] == [x]
    assert [b.batch_id for b in pipeline.stranded(x[:8])] == [x]
    assert pipeline.stranded(q.batch_id[:8]) == []
    # A file waiting in input/ under its name will replay it: not stranded either.
    pipeline.store.put_bytes("input/x.csv", b"anything")
    assert pipeline.stranded() == []


def test_progress_names_each_step(pipeline: Pipeline, tmp_path: Path) -> None:
    steps: list[tuple[str, int, int]] = []
    pipeline.rows_per_part = 2
    path = write(tmp_path / "x.csv", [order(f"O{i}") for i in range(5)])
    size = path.stat().st_size
    key = pipeline.submit(path)
    assert pipeline.process(key, lambda step, done, total: steps.append((step, done, total))).status == "accepted"
    reading = [s for s in steps if s[0] == "reading"]
    # Every byte, hashed and screened:
    assert reading[0] == ("reading", 0, size) and reading[-1] == ("reading", size, size)
    assert steps[-1] == ("recomputing KPIs", 0, UNKNOWN)  # no amount to count: its time is shown
    staging = [s for s in steps if s[0] == "staging facts"]
    assert [s[1:] for s in staging] == [(1, 3), (2, 3), (3, 3)]
    assert [s[0] for s in steps] == ["reading"] * len(reading) + ["staging facts"] * 3 + ["recomputing KPIs"]
    steps.clear()  # the same bytes again: a duplicate, whose bytes are compared as it is archived
    key = pipeline.submit(path)
    assert pipeline.process(key, lambda step, done, total: steps.append((step, done, total))).status == "duplicate"
    assert steps[-1] == ("archiving", 0, UNKNOWN)


# -- replay -------------------------------------------------------------------------------------
def test_replay_puts_a_file_back_under_the_name_the_user_gave(pipeline: Pipeline, tmp_path: Path) -> None:
    (tmp_path / "2").mkdir()
    first = run_file(pipeline, write(tmp_path / "bad.csv", [order("O1", quantity="x")]))
    second = run_file(pipeline, write(tmp_path / "2" / "bad.csv", [order("O2", quantity="y")]))
    assert (first.archived_as, second.archived_as) == ("rejected/bad.csv", f"rejected/bad.{second.batch_id[:12]}.csv")
    assert pipeline.quarantined(second.batch_id[:8]) == [second.archived_as]
    assert sorted(pipeline.quarantined()) == sorted([first.archived_as, second.archived_as])
    assert pipeline.requeue(second.archived_as) == "input/bad.csv"
    # Both stay quarantined: a replay removes its copy only once the new outcome is recorded.
    quarantined = [first.archived_as, second.archived_as]
    assert sorted(pipeline.store.list("rejected/")) == sorted(quarantined + [k + REPORT_SUFFIX for k in quarantined])
    # The same bytes already waiting under the name: that copy is used, nothing is added.
    pipeline.store.put_bytes("input/bad.2.csv", b"another file")
    with pipeline.store.local_copy("input/bad.csv") as path:
        waiting = path.read_bytes()
    run_file(pipeline, write(tmp_path / "2" / "bad.csv", [order("O2", quantity="y")]))  # rejected again
    pipeline.store.put_bytes("input/bad.csv", waiting)
    (again,) = pipeline.quarantined(second.batch_id[:8])
    assert pipeline.requeue(again) == "input/bad.csv"
    assert sorted(pipeline.store.list("input/")) == ["input/bad.2.csv", "input/bad.csv"]


def test_a_quarantined_file_without_its_report_is_replayed_under_its_own_name(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    outcome = run_file(pipeline, write(tmp_path / "bad.csv", [order("O1", quantity="x")]))
    pipeline.store.delete("rejected/bad.csv.report.json")
    assert pipeline.requeue(outcome.archived_as) == "input/bad.csv"
    assert list(pipeline.store.list("rejected/")) == ["rejected/bad.csv"]


def test_a_report_left_beside_nothing_is_not_a_quarantined_file(pipeline: Pipeline, tmp_path: Path) -> None:
    """A crash between writing the report and moving the file: there is nothing to replay."""
    outcome = run_file(pipeline, write(tmp_path / "bad.csv", [order("O1", quantity="x")]))
    report = pipeline.store.get_bytes("rejected/bad.csv.report.json")
    pipeline.store.put_bytes("rejected/gone.csv.report.json", report)
    assert pipeline.quarantined() == ["rejected/bad.csv"]
    assert pipeline.quarantined(outcome.batch_id[:8]) == ["rejected/bad.csv"]


def test_the_report_of_a_rejected_file_names_each_rule_its_line_column_and_fix(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    rows = [
        order("O1"),
        order("O2", quantity="x"),
        order("O3", quantity="0", date="2025-13-01"),
        order("O3"),
        order("O4", category="Food", returned="maybe"),
    ]
    header = "order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned,note"
    outcome = run_file(pipeline, write(tmp_path / "bad.csv", [r + ",z" for r in rows], header=header))

    def issue(code: str, hint: str, line: int, column: str, value: str, message: str) -> dict[str, object]:
        sample = {"line": line, "column": column, "value": value, "message": message}
        return {"code": code, "count": 1, "hint": hint, "samples": [sample]}

    assert json.loads(pipeline.store.get_bytes("rejected/bad.csv.report.json")) == {
        "file": "bad.csv",
        "verdict": "invalid",
        "rows": 5,
        "errors": [
            issue(
                "invalid-integer",
                "write the quantity as whole digits, e.g. 3",
                3,
                "quantity",
                "x",
                "'x' is not a whole number of digits",
            ),
            issue(
                "invalid-date",
                "write the date as YYYY-MM-DD with a real calendar day",
                4,
                "order_date",
                "2025-13-01",
                "'2025-13-01' is not a real calendar date",
            ),
            issue(
                "not-positive",
                "use a value greater than zero",
                4,
                "quantity",
                "0",
                "quantity must be greater than 0, got '0'",
            ),
            issue(
                "duplicate-order-id",
                "give each order one row per file",
                5,
                "order_id",
                "O3",
                "order_id 'O3' already appears at line 4",
            ),
            issue(
                "unknown-category",
                "use one of the allowed categories, or add it to the configuration",
                6,
                "category",
                "Food",
                "'Food' is not an allowed category",
            ),
            issue("invalid-boolean", "write true or false", 6, "returned", "maybe", "'maybe' is not true or false"),
        ],
        "warnings": ["extra columns ignored: 'note'"],
        "batch_id": outcome.batch_id,
        "checked_with": pipeline.archive.checked_with,
    }
    assert outcome.message == (
        "bad.csv: invalid, invalid-integer ×1 (first at line 3, quantity: 'x' is not a whole number of digits; "
        "write the quantity as whole digits, e.g. 3); invalid-date ×1 (first at line 4, order_date: '2025-13-01' "
        "is not a real calendar date; write the date as YYYY-MM-DD with a real calendar day); not-positive ×1 "
        "(first at line 4, quantity: quantity must be greater than 0, got '0'; use a value greater than zero); "
        "and 3 more kinds"
    )


def test_the_same_rejected_bytes_twice_are_quarantined_once(pipeline: Pipeline, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.csv", [order("O1", quantity="x")])
    first, second = run_file(pipeline, bad), run_file(pipeline, bad)
    assert (first.archived_as, second.archived_as) == ("rejected/bad.csv", "rejected/bad.csv")
    assert sorted(pipeline.store.list("rejected/")) == ["rejected/bad.csv", "rejected/bad.csv.report.json"]
    # A person reads the report: one field per line, indented.
    assert b'{\n  "file": "bad.csv",\n  "verdict": "invalid",' in pipeline.store.get_bytes(
        "rejected/bad.csv.report.json"
    )


def test_a_rejected_file_replaced_while_being_read_quarantines_the_bytes_read(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new upload stays in input/ for its own run; the bytes validated are what is kept."""
    import orderpipe.workflow as workflow

    bad = write(tmp_path / "daily.csv", [order("O1", quantity="x")])
    (tmp_path / "v2").mkdir()
    fixed = write(tmp_path / "v2" / "daily.csv", [order("O1")])
    key = pipeline.submit(bad)
    real = workflow.inspect_file

    def replaced_after_reading(path, file, categories, workdir, *rest):  # type: ignore[no-untyped-def]
        inspection = real(path, file, categories, workdir, *rest)
        pipeline.store.put_file(fixed, key)
        return inspection

    monkeypatch.setattr(workflow, "inspect_file", replaced_after_reading)
    assert pipeline.process(key).status == "rejected"
    monkeypatch.undo()
    with pipeline.store.local_copy("rejected/daily.csv") as kept:
        assert kept.read_bytes() == bad.read_bytes()
    assert pipeline.process(key).status == "accepted"


def test_recovery_skips_the_batches_it_must_leave_and_finishes_the_others(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed before a crash, in this order: one another worker is finishing, one whose
    recompute fails while its file waits, one whose file waits, one whose file is archived."""
    from orderpipe.adapters.workspace import BatchLocks

    def committed(name: str, row: str, waiting: bool) -> str:
        path = write(tmp_path / name, [row])
        if waiting:
            pipeline.store.put_bytes("input/" + name, path.read_bytes())
        return commit_by_hand(pipeline, path, tmp_path)

    busy = committed("busy.csv", order("O1"), waiting=False)
    poisoned = committed("poisoned.csv", order("O2", date="2025-07-01"), waiting=True)
    waiting = committed("waiting.csv", order("O3"), waiting=True)
    archived = committed("archived.csv", order("O4", price="4.00"), waiting=False)
    monkeypatch.setattr(pipeline, "recompute", failing_recompute(pipeline, {"2025-07-01"}))
    with BatchLocks(pipeline.locks.root).hold(busy):
        assert pipeline.recover() == [archived]
    assert [b.batch_id for b in pipeline.ledger.unfinished()] == [busy, poisoned, waiting]
    assert [(r.file, r.status) for r in pipeline.ledger.runs()] == [("archived.csv", "accepted")]
    assert pipeline.ledger.failed() == []  # its own run quarantines the poisoned file


def test_a_waiting_file_that_vanishes_while_compared_is_not_taken_for_the_same_bytes(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.store.put_bytes("input/x.csv", b"another file")

    def vanished(key):  # type: ignore[no-untyped-def]
        raise FileNotFoundError(key)

    monkeypatch.setattr(pipeline.store, "local_copy", vanished)
    assert pipeline.submit(write(tmp_path / "x.csv", [order("O1")])) == "input/x.2.csv"


def test_the_container_task_reports_a_second_name_for_counted_bytes_as_a_duplicate(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """On AWS the transform task finishes a batch without the workflow's lock: the file that
    did not commit is told which one did."""
    from orderpipe.tasks import transform

    data = write(tmp_path / "a.csv", [order("O1"), order("O2", date="2025-07-07")]).read_bytes()
    for name in ("a.csv", "b.csv"):
        pipeline.store.put_bytes("input/" + name, data)
    first, second = transform(pipeline, "input/a.csv"), transform(pipeline, "input/b.csv")
    span = ("2025-07-06", "2025-07-07")
    assert (first.status, first.file, first.rows, first.dates) == ("accepted", "a.csv", 2, span)
    assert first.message == "a.csv: accepted, 2 rows over 2 date(s) 2025-07-06…2025-07-07"
    assert (second.status, second.file, second.batch_id, second.rows, second.dates, second.archived_as) == (
        "duplicate",
        "b.csv",
        first.batch_id,
        2,
        span,
        "",
    )
    assert second.message == f"b.csv: same bytes as a.csv (batch {first.batch_id[:12]}), counted once"
    assert second.report is not None and second.report.file == "b.csv"


def test_a_name_with_1000_different_files_waiting_is_refused(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orderpipe.errors import InfrastructureError

    tried: list[str] = []

    def taken(local, key):  # type: ignore[no-untyped-def]
        tried.append(key)
        return False

    monkeypatch.setattr(pipeline.store, "put_new", taken)
    monkeypatch.setattr(pipeline.archive, "_same_bytes", lambda key, digest: False)
    with pytest.raises(InfrastructureError) as refused:
        pipeline.submit(write(tmp_path / "x.csv", [order("O1")]))
    assert str(refused.value) == "x.csv: 1000 different files are waiting under this name in input/"
    assert tried[:3] == ["input/x.csv", "input/x.2.csv", "input/x.3.csv"]
    assert (len(tried), tried[-1]) == (1000, "input/x.1000.csv")


def test_a_file_another_run_finished_while_this_one_read_it_is_reported_once(
    pipeline: Pipeline, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderpipe.workflow as workflow
    from orderpipe.bootstrap import open_pipeline
    from orderpipe.config import load_settings

    other = open_pipeline(load_settings(home, environ={}))
    key = pipeline.submit(write(tmp_path / "x.csv", [order("O1")]))
    checkpoint = workflow.checkpoint
    overtaken: list[str] = []

    def other_run_finishes_first(name: str) -> None:
        if name == "after-inspect" and not overtaken:
            overtaken.append(name)
            assert other.process(key).status == "accepted"
        checkpoint(name)

    monkeypatch.setattr(workflow, "checkpoint", other_run_finishes_first)
    outcome = pipeline.process(key)
    assert overtaken
    # One file, one outcome: the other run's. This one records and sends nothing.
    assert (outcome.status, outcome.elsewhere, outcome.archived_as) == ("accepted", True, "")
    assert sorted(pipeline.store.list("processed/")) == ["processed/x.csv"]
    assert [r.status for r in pipeline.ledger.runs()] == ["accepted"]


def test_an_upload_another_run_counted_before_this_one_began_is_reported_once(
    pipeline: Pipeline, home: Path, tmp_path: Path
) -> None:
    from orderpipe.bootstrap import open_pipeline
    from orderpipe.config import load_settings

    key = pipeline.submit(write(tmp_path / "x.csv", [order("O1")]))
    first = open_pipeline(load_settings(home, environ={})).process(key)  # e.g. the watcher
    assert first.status == "accepted"
    outcome = pipeline.process(key)
    assert (outcome.status, outcome.batch_id, outcome.archived_as) == ("accepted", first.batch_id, "")
    assert outcome.elsewhere
    assert outcome.message == (
        "x.csv: accepted by another process (as x.csv: accepted, 1 rows over 1 date(s) 2025-07-06…2025-07-06)"
    )
    assert [r.status for r in pipeline.ledger.runs()] == ["accepted"]


def test_a_file_dropped_into_input_that_fails_after_it_was_read_is_failed_under_its_batch(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    data = write(tmp_path / "x.csv", [order("O1", date="2025-07-01")]).read_bytes()
    pipeline.store.put_bytes("input/x.csv", data)
    monkeypatch.setattr(pipeline, "recompute", failing_recompute(pipeline, {"2025-07-01"}))
    outcome = pipeline.process("input/x.csv")
    batch_id = hashlib.sha256(data).hexdigest()
    assert (outcome.status, outcome.batch_id) == ("failed", batch_id)
    assert [b.batch_id for b in pipeline.ledger.failed()] == [batch_id]
    assert json.loads(pipeline.store.get_bytes("rejected/x.csv.report.json"))["batch_id"] == batch_id


def test_a_duplicate_replaced_while_being_read_archives_the_bytes_read(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderpipe.workflow as workflow

    counted = write(tmp_path / "a.csv", [order("O1")])
    assert run_file(pipeline, counted).status == "accepted"
    (tmp_path / "v2").mkdir()
    newer = write(tmp_path / "v2" / "a.csv", [order("O1"), order("O2")])
    key = pipeline.submit(counted)
    real = workflow.inspect_file

    def replaced_after_reading(path, file, categories, workdir, *rest):  # type: ignore[no-untyped-def]
        inspection = real(path, file, categories, workdir, *rest)
        replacement = tmp_path / "replacement.csv"  # another writer replaces the key by rename
        replacement.write_bytes(newer.read_bytes())
        pipeline.store.put_file(replacement, key)
        return inspection

    monkeypatch.setattr(workflow, "inspect_file", replaced_after_reading)
    assert pipeline.process(key).status == "duplicate"
    monkeypatch.undo()
    with pipeline.store.local_copy(key) as waiting:
        assert waiting.read_bytes() == newer.read_bytes()
    assert run_file(pipeline, newer).status == "accepted"


def test_two_files_quarantined_under_one_long_name_leave_room_for_their_reports(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    name = "r" * 236 + ".csv"  # with ".report.json" exactly 252 bytes: fits, untagged
    outcomes = []
    for n in range(2):
        (tmp_path / str(n)).mkdir()
        outcomes.append(run_file(pipeline, write(tmp_path / str(n) / name, [order(f"O{n}", quantity="x")])))
    first, second = outcomes
    assert first.archived_as == "rejected/" + name
    tag = second.batch_id[:12]
    assert second.archived_as == "rejected/" + "r" * (255 - len(".report.json") - len(f".{tag}.csv")) + f".{tag}.csv"
    assert sorted(pipeline.store.list("rejected/")) == sorted(
        [first.archived_as, first.archived_as + ".report.json", second.archived_as, second.archived_as + ".report.json"]
    )


def test_an_invalid_file_another_run_quarantined_while_this_one_read_it_keeps_its_problems(
    pipeline: Pipeline, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderpipe.workflow as workflow
    from orderpipe.bootstrap import open_pipeline
    from orderpipe.config import load_settings

    other = open_pipeline(load_settings(home, environ={}))
    key = pipeline.submit(write(tmp_path / "bad.csv", [order("O1", quantity="x")]))
    checkpoint = workflow.checkpoint
    overtaken: list[str] = []

    def other_run_finishes_first(name: str) -> None:
        if name == "after-inspect" and not overtaken:
            overtaken.append(name)
            assert other.process(key).status == "rejected"
        checkpoint(name)

    monkeypatch.setattr(workflow, "checkpoint", other_run_finishes_first)
    outcome = pipeline.process(key)
    assert overtaken
    assert (outcome.status, outcome.elsewhere, outcome.archived_as) == ("rejected", True, "")
    # What `run` shows its user: the problems of the report this run read.
    assert outcome.report is not None and [i.code for i in outcome.report.errors] == ["invalid-integer"]
    assert [r.status for r in pipeline.ledger.runs()] == ["rejected"]


def test_the_words_of_outcomes_the_workflow_rarely_reaches() -> None:
    from orderpipe import outcomes
    from orderpipe.core.report import ValidationReport
    from orderpipe.ports import BatchRecord

    # A catalog batch recovery finished: no date had a changed product sold.
    batch = BatchRecord("ab" * 32, 3, "products.csv", 2, ("catalog",), done=True)
    late = outcomes.finished_late(batch, [])
    assert (late.message, late.dates) == ("products.csv: accepted (finished after an interruption), 2 rows", ())
    # No run of the batch recorded yet: nothing to report as another process's.
    assert outcomes.taken_elsewhere("x.csv", "ab" * 32, None, []) is None
    # A catalog batch as the container task reports it (`won` false): under another name, the
    # same bytes; under its own, or finished under the caller's lock, accepted.
    report = ValidationReport("copy.csv", valid=True, rows=2)
    copy = outcomes.accepted("copy.csv", batch, report, "processed/copy.csv", dates=["2025-07-01"])
    assert (copy.status, copy.dates, copy.report, copy.archived_as) == (
        "duplicate",
        ("2025-07-01",),
        report,
        "processed/copy.csv",
    )
    assert copy.message == f"copy.csv: same bytes as products.csv (batch {'ab' * 6}), counted once"
    own = "products.csv: accepted, catalog of 2 products; recomputed 1 date(s) 2025-07-01…2025-07-01"
    assert outcomes.accepted("products.csv", batch, None, "", dates=["2025-07-01"]).message == own
    won = outcomes.accepted("copy.csv", batch, report, "processed/copy.csv", won=True, dates=["2025-07-01"])
    assert (won.status, won.message) == ("accepted", own.replace("products.csv", "copy.csv"))
    assert (won.report, won.archived_as) == (report, "processed/copy.csv")
    # One product, sold on no date yet: nothing to recompute.
    single = BatchRecord("cd" * 32, 4, "one.csv", 1, ("catalog",), done=True)
    assert outcomes.accepted("one.csv", single, None, "", won=True).message == (
        "one.csv: accepted, catalog of 1 product; recomputed 0 date(s)"
    )
