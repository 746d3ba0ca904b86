"""The kill -9 and two-worker guarantees once more with a configured shape: line items (orders
spanning rows, order-level fields only on an order's first row), renamed columns, timestamps
and a status column. The helpers are those of `test_crash.py` and `test_watch.py`."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_crash import check_history, kill_a_live_run, orderpipe, scratch_left, start_run, state, unfinished
from tests.test_watch import stop_when_drained

pytestmark = pytest.mark.slow

CONFIG = """
[input]
grain = "line"
timezone = "America/New_York"
[input.columns]
order_id = "Name"
customer_id = "Email"
order_timestamp = "Created at"
product_id = "Lineitem sku"
quantity = "Lineitem quantity"
unit_price = "Lineitem price"
[input.returned]
column = "Financial Status"
values = ["refunded"]
"""
HEADER = "Name,Email,Financial Status,Created at,category,Lineitem sku,Lineitem quantity,Lineitem price,Note"
POINTS = [
    "after-inspect#2",
    "facts-part#7",
    "before-commit#1",
    "ledger-commit-inside#2",
    "after-commit#2",
    "kpi-commit-inside#2",
    "after-recompute#2",
    "after-archive#1",
    "after-quarantine#1",
    "before-notify#4",
]


def lines_of(rng: random.Random, order_ids: list[int], prefix: str = "O") -> list[str]:
    """Orders of 1-3 lines; the order's own fields only on its first line, as Shopify writes them."""
    rows = []
    for oid in order_ids:
        day = rng.randrange(1, 13)
        status = rng.choice(["paid", "paid", "refunded", "pending"])
        stamp = f"2025-07-{day:02d} {rng.randrange(24):02d}:15:00 {rng.choice(['+0200', '-0500', '+0000'])}"
        for k in rng.sample(range(6), rng.randint(1, 3)):
            first = not rows or not rows[-1].startswith(f"{prefix}{oid},")
            order_fields = f"C{oid % 7},{status},{stamp}" if first else ",,"
            category = ["Books", "Toys", "Home"][k % 3]
            rows.append(
                f"{prefix}{oid},{order_fields},{category},SKU{k},{rng.randint(1, 4)},{rng.randint(1, 5000) / 100:.2f},x"
            )
    return rows


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("line-files")
    rng = random.Random(7)
    first = lines_of(rng, list(range(120)))
    correction = lines_of(rng, list(range(0, 120, 3)))  # whole orders again: lines added and dropped
    invalid = [*lines_of(rng, [900]), lines_of(rng, [900])[0]]
    invalid[-1] = invalid[0]  # the same line twice: duplicate-line
    return [
        write(folder / "first.csv", first),
        write(folder / "correction.csv", correction),
        write(folder / "invalid.csv", invalid),
        write(folder / "first-again.csv", first),
        write(folder / "more.csv", lines_of(rng, list(range(500, 560)), prefix="N")),
    ]


def new_home(root: Path) -> Path:
    home = root / "home"
    home.mkdir(parents=True)
    (home / "orderpipe.toml").write_text(CONFIG)
    return home


@pytest.fixture(scope="module")
def clean_run(files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple, float]:
    home = new_home(tmp_path_factory.mktemp("line-reference"))
    process = start_run(home, files)
    started = time.monotonic()
    assert process.wait(timeout=120) == 1  # invalid.csv is rejected
    seconds = time.monotonic() - started
    expected = state(home)
    assert expected[3] == [] and '"total_orders"' in expected[0]
    check_history(home, set())
    return expected, seconds


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_a_named_point_then_rerun(point: str, files: list[Path], clean_run: tuple, tmp_path: Path) -> None:
    home = new_home(tmp_path)
    crashed = orderpipe(home, "run", *map(str, files), crash=point)
    assert crashed.returncode == -signal.SIGKILL, f"{point} was never reached: {crashed.stdout}{crashed.stderr}"
    pending, failed = unfinished(home)
    assert failed == set()
    rerun = orderpipe(home, "run", *map(str, files))
    assert rerun.returncode == 1, rerun.stderr
    assert state(home) == clean_run[0]
    assert scratch_left(home) == []
    check_history(home, pending)


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_kill_from_outside_at_a_timed_instant(
    fraction: float, files: list[Path], clean_run: tuple[tuple, float], tmp_path: Path
) -> None:
    reference, seconds = clean_run
    home = kill_a_live_run(lambda attempt: new_home(tmp_path / f"attempt-{attempt}"), files, seconds * fraction)
    rerun = orderpipe(home, "run", *map(str, files))
    assert rerun.returncode == 1, rerun.stderr
    assert state(home) == reference
    check_history(home, set())


def test_two_workers_equal_the_sequential_result(tmp_path: Path) -> None:
    rng = random.Random(11)
    folder = tmp_path / "drops"
    folder.mkdir()
    files: list[Path] = []
    for n in range(40):
        path = folder / f"drop-{n:03d}.csv"
        if n % 10 == 3:
            shutil.copyfile(files[-1], path)
        elif n % 10 == 7:  # an order whose lines disagree on the customer: inconsistent-order
            write(path, ["Z1,C1,paid,2025-07-01 10:00:00 +0000,Books,SKU1,1,1.00,x", "Z1,C2,,,Books,SKU2,1,1.00,x"])
        else:  # orders from a shared pool: later files replace earlier versions whole
            write(path, lines_of(rng, rng.sample(range(80), 8)))
        files.append(path)
    home = new_home(tmp_path)
    (home / "input").mkdir()
    for path in files:
        shutil.copyfile(path, home / "input" / path.name)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "watch", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "ORDERPIPE_WATCH_POLL_INTERVAL": "0.1", "ORDERPIPE_WATCH_SETTLE_TIME": "0.2"},
    )
    out = stop_when_drained(watcher, lambda: not any((home / "input").glob("*.csv")))
    assert len(out.splitlines()) == 40
    history = json.loads(orderpipe(home, "batches", "--format", "json").stdout)
    assert sum(h["status"] == "rejected" for h in history) == 4
    commit_order = [h["file"] for h in sorted(history, key=lambda h: h["seq"]) if h["status"] == "accepted"]
    reference = new_home(tmp_path / "reference")
    result = orderpipe(reference, "run", *(str(folder / name) for name in commit_order))
    assert result.returncode == 0, result.stderr
    for view in (["kpis", "daily", "--format", "json"], ["kpis", "category", "--format", "json"]):
        assert orderpipe(home, *view).stdout == orderpipe(reference, *view).stdout
