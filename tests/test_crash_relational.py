"""The kill -9 and two-worker guarantees at relational grain: lines before and after their headers, the
catalog between them, a rejected header file, a duplicate, re-sent headers and lines, and a
compaction of the line table. The helpers are those of `test_crash.py` and
`test_crash_catalog.py`; the KPIs are held to the reference too."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from orderpipe.presets import PRESETS
from tests.lab_reference import LabData
from tests.test_crash import orderpipe, scratch_left, state, unfinished
from tests.test_crash_catalog import check_history as _check_history
from tests.test_lab_reference import HEADERS, ITEMS, PRODUCTS
from tests.test_line_items import comparable
from tests.test_relational import lab_like, write
from tests.test_watch import stop_when_drained

pytestmark = pytest.mark.slow

INVALID = {"orders_bad.csv"}
# Files in order: five line files (their headers not in yet), headers 1-30, the catalog, five
# more line files (the line table is compacted after the ninth), headers 31-60, an invalid
# header file, re-sent headers, re-sent lines, a second catalog, a line file again (duplicate).
POINTS = [
    "after-inspect#1",
    "part-staged#1",
    "ledger-commit-inside#2",
    "part-staged#6",
    "after-commit#6",
    "catalog-staged#1",
    "before-kpi-write#6",
    "kpi-commit-inside#7",
    "compact-written#1",
    "compact-switched#1",
    "compact-cleaned#1",
    "after-recompute#12",
    "after-archive#9",
    "after-done#13",
    "after-quarantine#1",
    "before-notify#16",
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("relational-files")
    base = {p.name: p for p in lab_like(folder / "base", seed=3)}
    rng = random.Random(3)
    items = [
        f"{n},{rng.randint(1, 60)},0,P{rng.randint(1, 12)},x,t,,,,{rng.randint(1, 9999) / 100:.2f}"
        for n in range(1, 101)
    ]
    lines = [write(folder, f"order_items_part{k:02d}.csv", ITEMS, items[10 * (k - 1) : 10 * k]) for k in range(1, 11)]
    bad = write(folder, "orders_bad.csv", HEADERS, ["1,,delivered,2025-03-01T10:00:00,,,,1"])  # blank user_id
    again = folder / "order_items_again.csv"
    shutil.copyfile(lines[0], again)
    return [
        *lines[:5],
        base["orders_part1.csv"],
        base["products.csv"],
        *lines[5:],
        base["orders_part2.csv"],
        bad,
        base["orders_part3.csv"],
        write(
            folder, "order_items_part11.csv", ITEMS, [f"{n},{n % 60 + 1},0,P3,x,t,,,,{n}.50" for n in range(5, 30, 4)]
        ),
        base["products_2.csv"],
        again,
    ]


def exact(kpis: tuple[list[dict[str, object]], ...]) -> list[list[dict[str, object]]]:
    """Numbers as exact decimals, whether read from JSON or computed in `decimal`."""
    return [
        [
            {k: Decimal(str(v)).normalize() if isinstance(v, float | Decimal) else v for k, v in row.items()}
            for row in rows
        ]
        for rows in kpis
    ]


def new_home(root: Path) -> Path:
    home = root / "home"
    home.mkdir(parents=True)
    (home / "orderpipe.toml").write_text(PRESETS["lab"])
    return home


def check_history(home: Path, pending: set[str], extra: dict[str, str] | None = None) -> None:
    _check_history(home, pending, extra, invalid=INVALID, again="order_items_again.csv")


@pytest.fixture(scope="module")
def clean_run(files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple:
    home = new_home(tmp_path_factory.mktemp("relational-reference"))
    assert orderpipe(home, "run", *map(str, files)).returncode == 1  # the invalid file is rejected
    expected = state(home)
    assert expected[3] == []
    daily = json.loads(expected[0])
    reference = LabData().add_all(f for f in files if f.name not in INVALID).kpis()
    assert exact(comparable((daily, json.loads(expected[1])))) == exact(comparable(reference))
    check_history(home, set())
    return expected


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_a_named_point_then_rerun(point: str, files: list[Path], clean_run: tuple, tmp_path: Path) -> None:
    home = new_home(tmp_path)
    crashed = orderpipe(home, "run", *map(str, files), crash=point)
    assert crashed.returncode == -signal.SIGKILL, f"{point} was never reached: {crashed.stdout}{crashed.stderr}"
    pending, failed = unfinished(home)
    assert failed == set()
    rerun = orderpipe(home, "run", *map(str, files))
    assert rerun.returncode == 1, rerun.stderr
    assert state(home) == clean_run
    assert scratch_left(home) == []
    check_history(home, pending)


@pytest.mark.parametrize("point", ["part-staged#6", "after-commit#6", "compact-switched#1"])
def test_kill_on_s3_and_dynamodb_then_rerun(
    point: str, files: list[Path], clean_run: tuple, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = request.getfixturevalue("aws_env")
    home = new_home(tmp_path)
    crashed = orderpipe(home, "run", *map(str, files), crash=point, extra=env)
    assert crashed.returncode == -signal.SIGKILL, f"{point} was never reached: {crashed.stdout}{crashed.stderr}"
    pending, failed = unfinished(home, env)
    assert failed == set()
    rerun = orderpipe(home, "run", *map(str, files), extra=env)
    assert rerun.returncode == 1, rerun.stderr
    daily, category, archived, leftovers = state(home, env)
    assert (daily, category) == clean_run[:2]
    assert archived == clean_run[2] and leftovers == []
    check_history(home, pending, env)


def test_header_line_and_catalog_batches_racing_on_two_workers(tmp_path: Path) -> None:
    """Header, line and catalog files processed two at a time: whichever of an order's header
    and lines commits last finds the other, so the KPIs are those of the reference fed the
    accepted files in commit order."""
    rng = random.Random(17)
    folder = tmp_path / "drops"
    files: list[Path] = []
    for n in range(30):
        if n % 5 == 4:
            rows = [f"P{p},S,1,{rng.choice(['Books', 'Toys', 'Beauty'])},n,b,2,d" for p in rng.sample(range(8), 3)]
            files.append(write(folder, f"products_{n:03d}.csv", PRODUCTS, rows))
        elif n % 2:
            status = ["delivered", "returned"]
            rows = [
                f"{o},{rng.randint(1, 9)},{rng.choice(status)},2025-03-0{rng.randint(1, 4)}T10:00:00,,,,2"
                for o in rng.sample(range(40), 5)
            ]
            files.append(write(folder, f"orders_{n:03d}.csv", HEADERS, rows))
        else:
            rows = [
                f"{line},{rng.randrange(40)},0,P{rng.randrange(8)},x,t,,,,{rng.randint(1, 999)}.99"
                for line in rng.sample(range(80), 6)
            ]
            files.append(write(folder, f"order_items_{n:03d}.csv", ITEMS, rows))
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
    assert len(out.splitlines()) == 30
    history = json.loads(orderpipe(home, "batches", "--format", "json").stdout)
    assert {h["status"] for h in history} == {"accepted"}
    commit_order = [folder / h["file"] for h in sorted(history, key=lambda h: h["seq"])]
    daily = json.loads(orderpipe(home, "kpis", "daily", "--format", "json").stdout)
    category = json.loads(orderpipe(home, "kpis", "category", "--format", "json").stdout)
    assert exact(comparable((daily, category))) == exact(comparable(LabData().add_all(commit_order).kpis()))
