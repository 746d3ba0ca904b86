"""Files count in the order they landed: a stale upload never undoes the correction after it,
and two watchers on one home give each file one outcome."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.core.names import upload_family
from orderpipe.watch import Watcher
from orderpipe.workflow import Outcome, Pipeline
from tests.conftest import order, write
from tests.test_crash import orderpipe
from tests.test_nothing_lost import totals


def test_the_uploads_of_one_name_are_one_family() -> None:
    assert upload_family("input/orders.csv") == "orders.csv"
    assert upload_family("input/orders.2.csv") == "orders.csv"
    assert upload_family("input/orders.17.csv") == "orders.csv"
    assert upload_family("input/orders.1.csv") == "orders.1.csv"  # never a tag: counts start at 2
    assert upload_family("input/orders.02.csv") == "orders.02.csv"
    assert upload_family("input/orders.²2.csv") == "orders.²2.csv"
    assert upload_family("input/2.csv") == "2.csv"
    assert upload_family("input/orders") == "orders"


def stale_and_fixed(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "fixed").mkdir()
    stale = write(tmp_path / "orders.csv", [order("O1", price="100.00")])
    fixed = write(tmp_path / "fixed" / "orders.csv", [order("O1", price="1.00")])
    return stale, fixed


def test_a_run_counts_an_earlier_waiting_upload_of_the_same_name_first(pipeline: Pipeline, tmp_path: Path) -> None:
    stale, fixed = stale_and_fixed(tmp_path)
    waiting = pipeline.submit(stale)  # a run interrupted right after its upload
    os.utime(pipeline.store.path(waiting), (time.time() - 60, time.time() - 60))  # type: ignore[attr-defined]
    key = pipeline.submit(fixed)
    assert (waiting, key) == ("input/orders.csv", "input/orders.2.csv")
    assert [k for k, _ in pipeline.earlier_uploads(key)] == [waiting]
    assert pipeline.earlier_uploads(waiting)[0][0] == key  # either way, the other one of the family


def test_run_on_the_command_line_tells_and_keeps_the_correction(home: Path, tmp_path: Path) -> None:
    stale, fixed = stale_and_fixed(tmp_path)
    killed = orderpipe(home, "run", str(stale), crash="after-upload#1")
    assert killed.returncode == -9
    result = orderpipe(home, "run", str(fixed))
    assert result.returncode == 0, result.stderr
    assert "an earlier upload of orders.csv has been waiting as input/orders.csv" in result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["accepted", "accepted"]
    daily = json.loads(orderpipe(home, "kpis", "daily", "--format", "json").stdout, parse_float=Decimal)
    assert [d["total_revenue"] for d in daily] == [Decimal("1.00")]
    assert sorted(p.name for p in (home / "input").iterdir()) == []
    # A later watch finds nothing left to count last.
    pipeline = open_pipeline(load_settings(home, environ={}))
    assert totals(pipeline) == {"2025-07-06": (1, Decimal("1.00"))}


def watch_until(home: Path, count: int, workers: int = 1, timeout: float = 60) -> list[Outcome]:
    outcomes: list[Outcome] = []
    stop = threading.Event()
    watcher = Watcher(lambda: open_pipeline(load_settings(home, environ={})), workers, 0.05, settle_time=0.0)
    runner = threading.Thread(target=watcher.run, args=(stop, outcomes.append))
    runner.start()
    deadline = time.monotonic() + timeout
    while len(outcomes) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    stop.set()
    runner.join()
    return outcomes


@pytest.mark.parametrize("workers", [1, 2])
def test_watch_counts_the_uploads_of_one_name_in_the_order_they_landed(
    pipeline: Pipeline, home: Path, tmp_path: Path, workers: int
) -> None:
    """`x.2.csv` sorts before `x.csv` by name; the older upload must count first all the same."""
    stale, fixed = stale_and_fixed(tmp_path)
    waiting = pipeline.submit(stale)
    then = time.time() - 60
    os.utime(home / waiting, (then, then))
    correction = pipeline.submit(fixed)
    assert correction == "input/orders.2.csv"
    outcomes = watch_until(home, 2, workers)
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert totals(pipeline) == {"2025-07-06": (1, Decimal("1.00"))}


def test_watch_waits_for_an_earlier_upload_of_the_name_that_is_not_ready(home: Path, tmp_path: Path) -> None:
    """An older upload still settling holds back the newer ones of its name."""
    pipeline = open_pipeline(load_settings(home, environ={}))
    stale, fixed = stale_and_fixed(tmp_path)
    pipeline.submit(stale)
    then = time.time() - 60
    os.utime(home / "input" / "orders.csv", (then, then))
    pipeline.submit(fixed)
    outcomes: list[Outcome] = []
    stop = threading.Event()
    # A settle time no file reaches: neither may go (the older one is never ready).
    watcher = Watcher(lambda: open_pipeline(load_settings(home, environ={})), 1, 0.05, settle_time=3600)
    real_wait = watcher.run
    runner = threading.Thread(target=real_wait, args=(stop, outcomes.append))
    # The newer one is marked closed by its writer (inotify), the older one is not.
    runner.start()
    time.sleep(0.5)
    (home / "input" / "orders.2.csv").touch()  # a close-write event: ready at once
    time.sleep(1.0)
    stop.set()
    runner.join()
    assert outcomes == []
    assert sorted(p.name for p in (home / "input").iterdir()) == ["orders.2.csv", "orders.csv"]


# -- two watchers on one home: one file, one outcome ----------------------------------------------
@pytest.mark.slow
def test_two_watchers_on_one_home_give_each_file_one_outcome(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "input").mkdir(parents=True)
    staging = tmp_path / "staging"
    staging.mkdir()
    names = []
    for n in range(60):
        rows = [order(f"O{n}", price=f"{n + 1}.00")] if n % 6 else [order(f"Z{n}", quantity="0")]
        write(staging / f"f{n:02d}.csv", rows)
        names.append(f"f{n:02d}.csv")
    env = {**os.environ, "ORDERPIPE_WATCH_POLL_INTERVAL": "0.05", "ORDERPIPE_WATCH_SETTLE_TIME": "0"}
    env.pop("ORDERPIPE_CRASH_AT", None)
    watchers = [
        subprocess.Popen(
            [sys.executable, "-m", "orderpipe", "--home", str(home), "watch", "--format", "jsonl"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    time.sleep(2.0)  # both started and scanning
    for name in names:
        shutil.move(staging / name, home / "input" / name)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(p.suffix == ".csv" for p in (home / "input").iterdir()):
        time.sleep(0.2)
    time.sleep(1.0)
    lines = []
    for watcher in watchers:
        watcher.terminate()
        out, err = watcher.communicate(timeout=60)
        assert watcher.returncode == 0, err
        lines += [json.loads(line) for line in out.splitlines()]
    shown = Counter(line["file"] for line in lines)
    assert shown == Counter(names), "each file is shown once, by the watcher that processed it"
    history = json.loads(orderpipe(home, "batches", "--format", "json").stdout)
    recorded = Counter(run["file"] for run in history)
    assert recorded == Counter(names), [r for r in history if recorded[r["file"]] > 1]
    assert Counter(run["status"] for run in history) == {"accepted": 50, "rejected": 10}
