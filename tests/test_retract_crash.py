"""kill -9 at every step of `orderpipe batches retract`, then the same command again: the KPIs,
the history and the ledger's entries are those of an uninterrupted retraction; two retractions
of one batch at once retract it once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from tests.conftest import order, write
from tests.test_crash import orderpipe

pytestmark = pytest.mark.slow

DAYS = ["2025-07-01", "2025-07-02"]
#: In the order a retraction passes them: 07-01's rows were merged with a.csv's (compacted): a
#: rewrite, then its switch; 07-02 is b.csv's own entry: a switch, then its bundle freed.
POINTS = [
    "retract-begun",
    "retract-rewritten",
    "retract-switch-inside#1",
    "retract-switched#1",
    "retract-switch-inside#2",
    "retract-switched#2",
    "compact-bundles-cleaned",
    "before-kpi-write",
    "kpi-commit-inside",
    "retract-recomputed",
    "retract-finished",
]


def prepared(home: Path, folder: Path, env: dict[str, str] | None = None) -> str:
    """a.csv on 07-01; b.csv corrects a's O1 and adds orders on both dates; 07-01's two entries
    are merged into one. Returns b's batch id."""
    pipeline = open_pipeline(load_settings(home, environ=env or {}))
    pipeline.compact_after = 1
    a = write(folder / "a.csv", [order("O1", "C1", DAYS[0], price="10.00"), order("O2", "C2", DAYS[0])])
    b = write(
        folder / "b.csv",
        [
            order("O1", "C1", DAYS[0], price="99.00", returned="true"),
            order("O3", "C3", DAYS[1], "Books", quantity="3", price="2.50"),
        ],
    )
    pipeline.process(pipeline.submit(a))
    batch = pipeline.process(pipeline.submit(b)).batch_id
    assert pipeline.ledger.fact_entries([DAYS[0]])[DAYS[0]][0].batch_id.startswith("compact-")
    return str(batch)


def state(home: Path, env: dict[str, str] | None = None) -> tuple[str, str, list[str], dict[str, list[str]]]:
    daily = orderpipe(home, "kpis", "daily", "--format", "json", extra=env).stdout
    category = orderpipe(home, "kpis", "category", "--format", "json", extra=env).stdout
    listing = orderpipe(home, "batches", "--format", "jsonl", extra=env).stdout
    runs = [json.loads(line) for line in listing.splitlines()]
    ledger = open_pipeline(load_settings(home, environ=env or {})).ledger
    entries = {d: [e.batch_id for e in es] for d, es in ledger.fact_entries(DAYS).items()}
    return daily, category, [f"{r['status']} {r['file']}" for r in runs], entries


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, list[str], dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("reference")
    batch = prepared(root / "home", root)
    done = orderpipe(root / "home", "batches", "retract", batch[:12])
    assert done.returncode == 0, done.stderr
    return state(root / "home")


@pytest.mark.parametrize("crash", POINTS)
def test_a_retract_killed_anywhere_finishes_when_run_again(
    crash: str, tmp_path: Path, reference: tuple[str, str, list[str], dict[str, list[str]]]
) -> None:
    home = tmp_path / "home"
    batch = prepared(home, tmp_path)
    killed = orderpipe(home, "batches", "retract", batch[:12], crash=crash)
    assert killed.returncode == -9, (crash, killed.stderr)  # the point was reached
    rerun = orderpipe(home, "batches", "retract", batch[:12])
    assert rerun.returncode == 0, rerun.stderr
    assert state(home) == reference
    again = orderpipe(home, "batches", "retract", batch[:12])
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_two_retractions_at_once_retract_once(
    tmp_path: Path, reference: tuple[str, str, list[str], dict[str, list[str]]]
) -> None:
    home = tmp_path / "home"
    batch = prepared(home, tmp_path)
    command = [sys.executable, "-m", "orderpipe", "--home", str(home), "batches", "retract", batch[:12]]
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for process in both:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert state(home) == reference
    assert [run for run in state(home)[2] if run.startswith("retracted")] == ["retracted b.csv"]


@pytest.mark.parametrize(
    "crash", ["retract-rewritten", "retract-switch-inside#2", "retract-switched#1", "retract-recomputed"]
)
def test_a_retract_on_s3_and_dynamodb_killed_finishes_when_run_again(
    crash: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    reference: tuple[str, str, list[str], dict[str, list[str]]],
) -> None:
    """The same steps on S3 + DynamoDB (moto): the same KPIs, history and entries as the
    uninterrupted retraction on a folder + SQLite."""
    env = request.getfixturevalue("aws_env")
    home = tmp_path / "home"
    batch = prepared(home, tmp_path, env)
    killed = orderpipe(home, "batches", "retract", batch[:12], crash=crash, extra=env)
    assert killed.returncode == -9, (crash, killed.stderr)
    rerun = orderpipe(home, "batches", "retract", batch[:12], extra=env)
    assert rerun.returncode == 0, rerun.stderr
    assert state(home, env) == reference
