"""The ledger's contract, the same on SQLite and on DynamoDB."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from orderpipe.adapters import sqlite as sqlite_adapter
from orderpipe.adapters.sqlite import SqliteDatabase, SqliteLedger
from orderpipe.errors import InfrastructureError, OrderpipeError
from orderpipe.ports import FactEntry, RunRecord
from orderpipe.workflow import Pipeline


def test_fact_entries_reads_any_number_of_dates_in_commit_order(any_pipeline: Pipeline) -> None:
    # More dates than SQLite takes as parameters of one statement (999 in older builds).
    count = 1_200 if isinstance(any_pipeline.ledger, SqliteLedger) else 30
    first = dt.date(2025, 1, 1)
    dates = [(first + dt.timedelta(days=i)).isoformat() for i in range(count)]
    ledger = any_pipeline.ledger
    a = ledger.commit("batch-a", "a.csv", 10, {d: [0] for d in dates})
    b = ledger.commit("batch-b", "b.csv", 10, {d: [0, 1] for d in dates[::2]})
    c = ledger.commit("batch-c", "c.csv", 10, {dates[-1]: [2]})
    unknown = "1999-12-31"
    asked = [dates[-1], unknown, *dates, dates[0]]  # in any order, repeated, some never committed

    read = ledger.fact_entries(asked)

    assert set(read) == {*dates, unknown}
    assert read[unknown] == []
    for i, day in enumerate(dates):
        expected = [FactEntry(day, "batch-a", a.seq, (0,))]
        if i % 2 == 0:
            expected.append(FactEntry(day, "batch-b", b.seq, (0, 1)))
        if day == dates[-1]:
            expected.append(FactEntry(day, "batch-c", c.seq, (2,)))
        assert read[day] == expected, day


def refusing(monkeypatch: pytest.MonkeyPatch, table: str) -> None:
    """Every SQLite connection opened from now on refuses to read `table` (a real SQLite, with
    an authorizer)."""
    real_connect = sqlite3.connect

    def connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        connection = real_connect(*args, **kwargs)  # type: ignore[arg-type]
        deny = sqlite3.SQLITE_DENY
        connection.set_authorizer(lambda _action, name, *_: deny if name == table else sqlite3.SQLITE_OK)
        return connection

    monkeypatch.setattr(sqlite_adapter.sqlite3, "connect", connect)


def test_a_sqlite_without_json_functions_is_refused_at_open_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a build without them answers: no such table (function) json_each.
    monkeypatch.setattr(sqlite_adapter, "JSON_PROBE", "SELECT value FROM json_each_missing('[]')")
    with pytest.raises(OrderpipeError, match=r"has no JSON functions .*any SQLite 3\.38 or newer"):
        SqliteDatabase(tmp_path / "orderpipe.db")


def test_any_other_failure_of_the_json_check_stays_a_database_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusing(monkeypatch, "sqlite_master")  # the check's statement reads the schema first
    with pytest.raises(InfrastructureError, match="cannot open the database"):
        SqliteDatabase(tmp_path / "orderpipe.db")


def _run(batch_id: str, file: str, n: int) -> RunRecord:
    at = f"2025-07-01T00:00:{n:02d}.000+00:00"
    return RunRecord(batch_id, file, "rejected", 1, ("2025-07-01",), at, at, "m")


def test_the_runs_of_a_batch_by_its_id_or_the_start_of_it(any_pipeline: Pipeline) -> None:
    ledger = any_pipeline.ledger
    ids = ["abc1" + "0" * 60, "abc2" + "0" * 60, "abd0" + "0" * 60, "ab" + "f" * 62]
    for n, batch_id in enumerate([*ids, ids[0]]):
        ledger.record_run(_run(batch_id, f"f{n}.csv", n))
    assert [r.file for r in ledger.runs(batch_id=ids[0])] == ["f0.csv", "f4.csv"]  # oldest first
    assert [r.file for r in ledger.runs(batch_id="abc")] == ["f0.csv", "f1.csv", "f4.csv"]
    assert [r.file for r in ledger.runs(batch_id="ab")] == ["f0.csv", "f1.csv", "f2.csv", "f3.csv", "f4.csv"]
    assert ledger.runs(batch_id="abe") == []


def test_the_runs_of_a_batch_are_found_through_an_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file asks for its batch's runs: a scan of the whole history would make each file
    slower than the last."""
    db = SqliteDatabase(tmp_path / "ledger.db")
    ledger = SqliteLedger(db)
    asked: list[tuple[str, list[object]]] = []
    real_query = db.query
    monkeypatch.setattr(
        db, "query", lambda sql, params=(): asked.append((sql, list(params))) or real_query(sql, params)
    )
    ledger.runs(batch_id="abc")
    ((sql, params),) = asked
    plan = " ".join(str(row[-1]) for row in db.query(f"EXPLAIN QUERY PLAN {sql}", params))
    assert "USING INDEX runs_by_batch" in plan, plan
    assert "SCAN runs" not in plan, plan


def test_the_runs_of_exactly_one_batch(any_pipeline: Pipeline) -> None:
    ledger = any_pipeline.ledger
    ids = ["abc1" + "0" * 60, "abc1" + "0" * 59 + "1"]  # one id is the start of no other, but close
    for n, batch_id in enumerate([ids[0], ids[1], ids[0]]):
        ledger.record_run(_run(batch_id, f"f{n}.csv", n))
    assert [r.file for r in ledger.runs_of(ids[0])] == ["f0.csv", "f2.csv"]
    assert [r.file for r in ledger.runs_of(ids[1])] == ["f1.csv"]
    assert ledger.runs_of("abc1") == []  # not a prefix lookup
    assert ledger.runs_of(ids[0]) == [r for r in ledger.runs() if r.batch_id == ids[0]]  # the same records


# -- retracting a batch ----------------------------------------------------------------------------
def test_a_retraction_begins_once_and_finishes_once_with_its_run(any_pipeline: Pipeline) -> None:
    ledger = any_pipeline.ledger
    assert ledger.begin_retract("never-committed") is None
    ledger.commit("batch-a", "a.csv", 2, {"2025-07-01": [0]})
    began = ledger.begin_retract("batch-a")
    assert began is not None and began.retracted == "retracting" and began.retracted_at
    again = ledger.begin_retract("batch-a")
    assert again is not None and again.retracted_at == began.retracted_at  # the first time stays
    run = RunRecord("batch-a", "a.csv", "retracted", 2, ("2025-07-01",), began.retracted_at, began.retracted_at, "m")
    assert ledger.finish_retract("batch-a", run)
    assert not ledger.finish_retract("batch-a", run)  # finished: the second one changes nothing
    record = ledger.get("batch-a")
    assert record is not None and record.retracted == "retracted" and record.retracted_at == began.retracted_at
    assert [r.status for r in ledger.runs_of("batch-a")] == ["retracted"]


def test_a_retractions_switch_replaces_entries_and_takes_the_next_seq(any_pipeline: Pipeline) -> None:
    ledger = any_pipeline.ledger
    day = "2025-07-01"
    a = ledger.commit("batch-a", "a.csv", 1, {day: [0]})
    b = ledger.commit("batch-b", "b.csv", 1, {day: [0], "2025-07-02": [1]})
    [_, own] = ledger.fact_entries([day])[day]
    rewritten = FactEntry(day, "compact-x", a.seq, (0, 2_000_000))
    assert ledger.retract_entries(day, [own], [rewritten], "retracted-batch-b")
    entries = ledger.fact_entries([day])[day]
    assert [e.batch_id for e in entries] == ["batch-a", "compact-x", "retracted-batch-b"]
    assert entries[1] == rewritten
    marker = entries[2]
    assert marker.parts == () and marker.seq == b.seq + 1  # past every seq so far
    # The same switch again: the covered entry is gone and the marker there: nothing changes.
    assert not ledger.retract_entries(day, [own], [], "retracted-batch-b")
    assert not ledger.retract_entries(day, [], [], "retracted-batch-b")
    assert ledger.fact_entries([day])[day] == entries
    c = ledger.commit("batch-c", "c.csv", 1, {day: [0]})
    assert c.seq == marker.seq + 1  # commits and retractions take from one sequence
    assert ledger.retract_entries("2025-07-02", [], [], "retracted-batch-b")
    assert ledger.fact_entries(["2025-07-02"])["2025-07-02"][-1].seq == c.seq + 1


def test_runs_before_a_position_go_on_after_it_whatever_was_recorded_since(any_pipeline: Pipeline) -> None:
    """The API pages the history by the position of the last run it showed: a run recorded
    between two pages neither moves nor repeats the ones after it."""
    ledger = any_pipeline.ledger
    for n in range(5):
        ledger.record_run(_run(f"{n:08x}", f"f{n}.csv", n))
    newest = ledger.runs(limit=2)
    assert [r.file for r in newest] == ["f3.csv", "f4.csv"]
    ledger.record_run(_run("0000000a", "new.csv", 9))
    rest = ledger.runs(limit=2, before=newest[0].position)
    assert [r.file for r in rest] == ["f1.csv", "f2.csv"]
    assert [r.file for r in ledger.runs(before=rest[0].position)] == ["f0.csv"]
    assert ledger.runs(before=ledger.runs(limit=6)[0].position) == []
    assert len({r.position for r in ledger.runs()}) == 6
