"""`replay`: an interruption at any moment leaves the quarantined copy, and the same command
finishes the work; a damaged report keeps no file from being replayed."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.workflow import Pipeline
from tests.conftest import order, run_file, write
from tests.test_crash import orderpipe
from tests.test_nothing_lost import totals

GARDEN = {"ORDERPIPE_CATEGORIES": "Electronics,Garden"}


def rejected_garden(home: Path, tmp_path: Path, name: str = "garden.csv") -> Pipeline:
    """A file rejected for its category, and a pipeline that now allows it."""
    strict = open_pipeline(load_settings(home, environ={}))
    outcome = run_file(strict, write(tmp_path / name, [order("G1", category="Garden", price="5.00")]))
    assert outcome.status == "rejected"
    return open_pipeline(load_settings(home, environ=GARDEN))


def test_a_replay_stopped_after_the_requeue_is_finished_by_the_same_command(home: Path, tmp_path: Path) -> None:
    relaxed = rejected_garden(home, tmp_path)
    (key,) = relaxed.quarantined()
    relaxed.requeue(key)  # ... and the process stops here
    assert relaxed.quarantined() == [key]  # still found: the same command has something to do
    outcome = relaxed.replay(key)
    assert outcome.status == "accepted"
    assert sorted(relaxed.store.list("rejected/")) == []
    assert sorted(relaxed.store.list("input/")) == []
    assert sorted(relaxed.store.list("processed/")) == ["processed/garden.csv"]
    assert totals(relaxed) == {"2025-07-06": (1, Decimal("5.00"))}


def test_a_replay_stopped_after_counting_is_settled_without_a_second_record(home: Path, tmp_path: Path) -> None:
    relaxed = rejected_garden(home, tmp_path)
    (key,) = relaxed.quarantined()
    counted = relaxed.process(relaxed.requeue(key))  # counted, then stopped before tidying up
    assert counted.status == "accepted"
    outcome = relaxed.replay(key)
    assert (outcome.status, outcome.batch_id) == ("accepted", counted.batch_id)
    assert outcome.archived_as == "processed/garden.csv"
    assert sorted(relaxed.store.list("rejected/")) == []
    assert sorted(relaxed.store.list("processed/")) == ["processed/garden.csv"]
    statuses = [r.status for r in relaxed.ledger.runs()]
    assert statuses == ["rejected", "accepted"]
    assert totals(relaxed) == {"2025-07-06": (1, Decimal("5.00"))}


def test_a_replay_stopped_before_its_run_was_recorded_records_it_once(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Done in the ledger but the history still says rejected: the rerun records the accepted run."""
    relaxed = rejected_garden(home, tmp_path)
    (key,) = relaxed.quarantined()
    monkeypatch.setattr(relaxed.ledger, "record_run", lambda run: None)
    assert relaxed.process(relaxed.requeue(key)).status == "accepted"
    monkeypatch.undo()
    assert relaxed.replay(key).status == "accepted"
    assert [r.status for r in relaxed.ledger.runs()] == ["rejected", "accepted"]


def test_a_file_rejected_again_stays_quarantined_under_its_name(home: Path, tmp_path: Path) -> None:
    strict = rejected_garden(home, tmp_path)
    strict = open_pipeline(load_settings(home, environ={}))
    (key,) = strict.quarantined()
    assert strict.replay(key).status == "rejected"
    assert sorted(strict.store.list("rejected/")) == [key, key + ".report.json"]
    assert list(strict.store.list("input/")) == []


def test_a_damaged_report_keeps_no_file_from_being_replayed(home: Path, tmp_path: Path) -> None:
    (tmp_path / "2").mkdir()
    rejected_garden(home, tmp_path, "a.csv")
    strict = open_pipeline(load_settings(home, environ={}))
    second = run_file(strict, write(tmp_path / "2" / "b.csv", [order("G2", category="Garden", price="7.00")]))
    assert second.status == "rejected"
    relaxed = open_pipeline(load_settings(home, environ=GARDEN))
    for damage in (b"{not json", b"\xff\xfe", b"[1, 2]", b"null"):
        relaxed.store.put_bytes("rejected/a.csv.report.json", damage)
        assert sorted(relaxed.quarantined()) == ["rejected/a.csv", "rejected/b.csv"]
        # Found by the hash of its own bytes, too: the batch id a rejected file has.
        assert relaxed.quarantined(second.batch_id[:8]) == ["rejected/b.csv"]
    outcomes = [relaxed.replay(key) for key in relaxed.quarantined()]
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert totals(relaxed) == {"2025-07-06": (2, Decimal("12.00"))}
    assert list(relaxed.store.list("rejected/")) == []


def test_replay_on_the_command_line_goes_on_past_a_damaged_report(home: Path, tmp_path: Path) -> None:
    rejected_garden(home, tmp_path)
    (home / "rejected" / "garden.csv.report.json").write_text("{", encoding="utf-8")
    result = orderpipe(home, "replay", "--rejected", extra=GARDEN)
    assert result.returncode == 0, result.stderr
    assert "internal error" not in result.stderr
    assert result.stdout.startswith("accepted  garden.csv")


# -- kill -9 at every moment of a replay, then the same command ---------------------------------
REPLAY_POINTS = [
    "after-inspect#1",
    "before-commit#1",
    "after-commit#1",
    "before-kpi-write#1",
    "after-recompute#1",
    "after-archive#1",
    "after-done#1",
    "before-notify#1",
    "replay-settle#1",
]


@pytest.mark.slow
@pytest.mark.parametrize("point", REPLAY_POINTS)
def test_a_replay_killed_anywhere_is_finished_by_running_it_again(point: str, home: Path, tmp_path: Path) -> None:
    first = write(tmp_path / "first.csv", [order("O1", price="3.00"), order("O2", date="2025-07-07")])
    garden = write(tmp_path / "garden.csv", [order("G1", category="Garden", price="5.00"), order("O1", price="4.00")])
    assert orderpipe(home, "run", str(first)).returncode == 0
    assert orderpipe(home, "run", str(garden)).returncode == 1
    killed = orderpipe(home, "replay", "--rejected", crash=point, extra=GARDEN)
    assert killed.returncode == -9, (point, killed.stderr)
    again = orderpipe(home, "replay", "--rejected", extra=GARDEN)
    assert again.returncode == 0, (point, again.stdout, again.stderr)
    daily = json.loads(orderpipe(home, "kpis", "daily", "--format", "json").stdout, parse_float=Decimal)
    revenue = {d["order_date"]: (d["total_orders"], d["total_revenue"]) for d in daily}
    assert revenue == {"2025-07-06": (2, Decimal("9.00")), "2025-07-07": (1, Decimal("10.00"))}, point
    assert sorted(p.name for p in (home / "rejected").iterdir()) == [], point
    assert sorted(p.name for p in (home / "input").iterdir()) == [], point
    assert sorted(p.name for p in (home / "processed").iterdir()) == ["first.csv", "garden.csv"], point
    runs = json.loads(orderpipe(home, "batches", "--format", "json").stdout)
    garden_runs = [r["status"] for r in runs if r["file"] == "garden.csv"]
    assert garden_runs[0] == "rejected" and garden_runs[-1] == "accepted", (point, runs)
    assert Counter(garden_runs)["accepted"] == 1, (point, runs)
