"""The container's tasks on the local backend (a folder as the bucket): the verdicts `validate`
writes, and an attempt repeated after one cut short counting the same file."""

from __future__ import annotations

import json
from pathlib import Path

from orderpipe import tasks
from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from tests.conftest import order, write


def _pipeline(home: Path):  # type: ignore[no-untyped-def]
    return open_pipeline(load_settings(home, environ={}))


def test_an_attempt_repeated_after_counting_finishes_the_file_it_is_not_a_duplicate(tmp_path: Path) -> None:
    """A small-file invocation (or the ECS tasks after it) counted the batch, then was cut short
    before the run was recorded: the same execution's next attempt finds its own verdict and
    counts the file as accepted; another execution of the same bytes is a duplicate."""
    home = tmp_path / "home"
    pipeline = _pipeline(home)
    write(home / "input" / "o.csv", [order("O1"), order("O2", price="5.00")])
    first = tasks.validate(pipeline, "input/o.csv", "results/exec-1.json")
    assert first["verdict"] == "valid"
    with pipeline.inspected("input/o.csv") as (inspection, _, _snapshot):
        batch = pipeline.commit("o.csv", inspection)
    pipeline.ledger.mark_done(batch.batch_id)  # counted, and then the attempt ended: no run recorded
    again = tasks.validate_and_transform(_pipeline(home), "input/o.csv", "results/exec-1.json")
    assert again["verdict"] == "accepted" and again["batch_id"] == first["batch_id"]
    runs = [(r.status, r.file) for r in _pipeline(home).ledger.runs()]
    assert runs == [("accepted", "o.csv")]
    other = tasks.validate(_pipeline(home), "input/o.csv", "results/exec-2.json")
    assert other["verdict"] == "duplicate"
    assert json.loads((home / "results" / "exec-2.json").read_text())["verdict"] == "duplicate"
    daily = _pipeline(home).kpis.daily(None, None)
    assert [(d["order_date"], d["total_orders"]) for d in daily] == [("2025-07-06", 2)]
