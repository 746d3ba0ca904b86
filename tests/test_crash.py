"""kill -9 at many points of `orderpipe run`, then run again: the same KPIs as an uninterrupted
run, nothing left in input/, every file archived exactly where the clean run put it.

Named points use `ORDERPIPE_CRASH_AT` (the process SIGKILLs itself there); a few more kills
come from outside at timed instants.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from orderpipe.bootstrap import open_reader
from orderpipe.config import load_settings
from tests.conftest import order, write

pytestmark = pytest.mark.slow

POINTS = [
    "after-upload#1",
    "after-upload#3",
    "after-inspect#1",
    "after-inspect#2",
    # Facts files, with 50-row slices: first.csv writes 5 bundles, correction.csv 2, more.csv 2.
    "facts-part#1",
    "facts-part#4",
    "facts-part#7",
    "facts-part#9",
    "before-commit#1",
    "ledger-commit-inside#1",
    "ledger-commit-inside#2",
    "after-commit#1",
    "after-commit#2",
    "before-kpi-write#1",
    # Inside the KPI transaction of the 1st, 2nd and 3rd recompute (SQLite writes all the dates
    # of one recompute set-wise: one point each).
    "kpi-commit-inside#1",
    "kpi-commit-inside#2",
    "kpi-commit-inside#3",
    "after-recompute#1",
    "after-recompute#2",
    "after-archive#1",
    "after-done#1",
    "after-done#2",
    "before-notify#1",
    "after-report#1",
    "after-quarantine#1",
    "before-notify#4",
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("files")
    dates = [f"2025-07-{d:02d}" for d in range(1, 13)]
    first = [
        order(f"O{i}", f"C{i % 7}", dates[i % 12], ["Books", "Toys", "Home"][i % 3], price=f"{i % 50 + 1}.25")
        for i in range(240)
    ]
    correction = [
        order(f"O{i}", f"C{i % 5}", dates[i % 12], "Books", quantity="2", price="3.10", returned="true")
        for i in range(0, 240, 4)
    ]
    more = [order(f"N{i}", f"C{i}", dates[(i * 5) % 12], "Sports", price="7.77") for i in range(90)]
    return [
        write(folder / "first.csv", first),
        write(folder / "correction.csv", correction),
        write(folder / "invalid.csv", [order("X1"), order("X2", quantity="0")]),
        write(folder / "first-again.csv", first),
        write(folder / "more.csv", more),
    ]


def orderpipe(
    home: Path, *args: str, crash: str | None = None, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORDERPIPE_FACTS_ROWS_PER_PART": "50", **(extra or {})}
    env.pop("ORDERPIPE_CRASH_AT", None)
    if crash:
        env["ORDERPIPE_CRASH_AT"] = crash
    return subprocess.run(
        [sys.executable, "-m", "orderpipe", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def state(home: Path, extra: dict[str, str] | None = None) -> tuple[str, str, list[str], list[str]]:
    daily = orderpipe(home, "kpis", "daily", "--format", "json", extra=extra).stdout
    category = orderpipe(home, "kpis", "category", "--format", "json", extra=extra).stdout
    if extra:  # the bucket is S3 on moto
        import boto3

        listing = boto3.client("s3").list_objects_v2(Bucket=extra["ORDERPIPE_AWS_BUCKET"]).get("Contents", [])
        # what a folder home's view below shows: objects in a folder (the settings record sits at the top)
        names = [o["Key"] for o in listing if "/" in o["Key"] and not o["Key"].startswith("warehouse/")]
        return (
            daily,
            category,
            sorted(n for n in names if not n.startswith("input/")),
            [n for n in names if n.startswith("input/")],
        )
    visible = sorted(p.relative_to(home).as_posix() for p in home.glob("[!.]*/*") if p.parent.name != "warehouse")
    leftovers = sorted(p.name for p in (home / "input").iterdir())
    return daily, category, visible, leftovers


def unfinished(home: Path, extra: dict[str, str] | None = None) -> tuple[set[str], set[str]]:
    """The ledger's committed batches that are (not done, failed)."""
    ledger = open_reader(load_settings(home, environ=extra or {})).ledger
    return {b.batch_id for b in ledger.unfinished()}, {b.batch_id for b in ledger.failed()}


def check_history(home: Path, pending: set[str], extra: dict[str, str] | None = None) -> None:
    """After the rerun: every batch is finished, each batch was accepted at most once, and each
    batch the kill left committed but unfinished was accepted by the rerun, not reported as a
    duplicate of itself."""
    runs = json.loads(orderpipe(home, "batches", "--format", "json", extra=extra).stdout)
    assert unfinished(home, extra) == (set(), set())
    accepted = Counter(r["batch_id"] for r in runs if r["status"] == "accepted")
    assert max(accepted.values()) == 1, runs
    assert pending <= set(accepted), runs
    assert {r["status"] for r in runs if r["file"] == "invalid.csv"} == {"rejected"}
    assert {r["status"] for r in runs if r["file"] != "invalid.csv"} <= {"accepted", "duplicate"}
    # The rerun goes through every file again; each valid one is accepted or a duplicate.
    last = {r["file"]: r["status"] for r in runs}
    assert last["first-again.csv"] == "duplicate"


def start_run(home: Path, files: list[Path]) -> subprocess.Popen[bytes]:
    """`orderpipe run` in the background; returns once it has opened its stores (its start-up,
    imports included, varies far more than the work that follows)."""
    env = {**os.environ, "ORDERPIPE_FACTS_ROWS_PER_PART": "50"}
    env.pop("ORDERPIPE_CRASH_AT", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "run", *map(str, files)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    while not (home / ".work").exists() and process.poll() is None:
        time.sleep(0.002)
    return process


@pytest.fixture(scope="module")
def clean_run(files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple, float]:
    """The state an uninterrupted run leaves, and how long its work took once started."""
    home = tmp_path_factory.mktemp("reference") / "home"
    process = start_run(home, files)
    started = time.monotonic()
    assert process.wait(timeout=120) == 1  # invalid.csv is rejected
    seconds = time.monotonic() - started
    expected = state(home)
    assert expected[3] == []
    assert '"total_orders"' in expected[0]
    check_history(home, set())
    return expected, seconds


@pytest.fixture(scope="module")
def reference(clean_run: tuple[tuple, float]) -> tuple[str, str, list[str], list[str]]:
    return clean_run[0]


def test_enough_distinct_crash_points() -> None:
    assert len(set(POINTS)) >= 20


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_a_named_point_then_rerun(point: str, files: list[Path], reference: tuple, tmp_path: Path) -> None:
    home = tmp_path / "home"
    crashed = orderpipe(home, "run", *map(str, files), crash=point)
    assert crashed.returncode == -signal.SIGKILL, f"{point} was never reached: {crashed.stdout}{crashed.stderr}"
    pending, failed = unfinished(home)
    assert failed == set()
    rerun = orderpipe(home, "run", *map(str, files))
    assert rerun.returncode == 1, rerun.stderr
    assert state(home) == reference
    assert scratch_left(home) == [], "the rerun must clear what the killed process left"
    check_history(home, pending)


def scratch_left(home: Path) -> list[str]:
    """Files left in the scratch folders (lock files excepted: they are reused, never grow)."""
    return [
        p.relative_to(home).as_posix()
        for folder in (home / ".tmp", home / ".work")
        for p in folder.rglob("*")
        if p.is_file() and "locks" not in p.relative_to(home).parts
    ]


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.35, 0.5])  # margin: a later run may be faster
def test_kill_from_outside_at_a_timed_instant(
    fraction: float, files: list[Path], clean_run: tuple[tuple, float], tmp_path: Path
) -> None:
    """Killed at a fraction of an uninterrupted run's work, so the kill lands mid-run on a slow
    machine as on a fast one; a kill of a run that had already ended would prove nothing."""
    reference, seconds = clean_run
    home = kill_a_live_run(lambda attempt: tmp_path / f"home-{attempt}", files, seconds * fraction)
    rerun = orderpipe(home, "run", *map(str, files))
    assert rerun.returncode == 1, rerun.stderr
    assert state(home) == reference
    assert scratch_left(home) == []
    check_history(home, set())


def kill_a_live_run(new_home: Callable[[int], Path], files: list[Path], delay: float) -> Path:
    """Start `orderpipe run` on a new home, SIGKILL it after `delay` s, and return the home. A
    run that ended first (the machine got quicker than when the reference ran) is tried again,
    aimed twice as early: only a kill of a live run counts."""
    for attempt in range(4):
        home = new_home(attempt)
        process = start_run(home, files)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            if process.wait() == -signal.SIGKILL:
                return home
        process.wait()
        delay /= 2
    pytest.fail(f"every run ended before its kill (last aimed at {delay * 2:.2f} s): nothing was tested")


AWS_POINTS = [
    "facts-part#7",
    "ledger-commit-inside#1",
    "after-commit#2",
    "kpi-commit-inside#9",
    "after-archive#1",
    "after-quarantine#1",
]


@pytest.mark.parametrize("point", AWS_POINTS)
def test_kill_on_s3_and_dynamodb_then_rerun(
    point: str, files: list[Path], reference: tuple, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The same guarantee on the AWS adapters (S3 + DynamoDB on moto's server)."""
    env = request.getfixturevalue("aws_env")
    home = tmp_path / "home"
    crashed = orderpipe(home, "run", *map(str, files), crash=point, extra=env)
    assert crashed.returncode == -signal.SIGKILL, f"{point} was never reached: {crashed.stdout}{crashed.stderr}"
    pending, failed = unfinished(home, env)
    assert failed == set()
    rerun = orderpipe(home, "run", *map(str, files), extra=env)
    assert rerun.returncode == 1, rerun.stderr
    daily, category, archived, leftovers = state(home, env)
    assert (daily, category) == reference[:2]  # the same KPIs as the local, uninterrupted run
    assert archived == [k for k in reference[2]]
    assert leftovers == []
    check_history(home, pending, env)
