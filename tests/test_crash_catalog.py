"""The kill -9 and two-worker guarantees once more with a product catalog: catalog batches
before and after the orders they categorize, an invalid catalog file, order files indexed by
product. The helpers are those of `test_crash.py` and `test_watch.py`."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.test_crash import kill_a_live_run, orderpipe, scratch_left, start_run, state, unfinished
from tests.test_watch import stop_when_drained

pytestmark = pytest.mark.slow

CONFIG = """
[input]
grain = "line"
catalog = true
"""
HEADER = "order_id,customer_id,order_date,product_id,quantity,unit_price,returned"
INVALID = {"products-bad.csv", "invalid.csv"}
# Files in order: products-a (catalog), first (orders), products-b (catalog changing sold
# products), products-bad (invalid catalog), correction, invalid (orders), first-again, more.
POINTS = [
    "after-inspect#1",
    "catalog-staged#1",
    "catalog-staged#2",
    "ledger-commit-inside#1",
    "after-commit#1",
    "after-commit#2",
    "after-index#1",
    "index-inside#1",
    "after-index#2",
    "ledger-commit-inside#3",
    "after-commit#3",
    "before-kpi-write#2",
    "kpi-commit-inside#3",
    "after-recompute#1",
    "after-recompute#3",
    "after-archive#3",
    "after-done#3",
    "after-quarantine#1",
    "before-notify#4",
]


def lines_of(rng: random.Random, order_ids: list[int], prefix: str = "O", days: int = 12) -> list[str]:
    rows = []
    for oid in order_ids:
        day = f"2025-07-{rng.randrange(1, days + 1):02d}"
        for k in rng.sample(range(8), rng.randint(1, 3)):
            returned = rng.choice(["true", "false", "false"])
            rows.append(
                f"{prefix}{oid},C{oid % 7},{day},SKU{k},{rng.randint(1, 4)},{rng.randint(1, 5000) / 100:.2f},{returned}"
            )
    return rows


def catalog_of(rng: random.Random, skus: list[int]) -> list[str]:
    return [f"SKU{k},{rng.choice(['Books', 'Toys', 'Home'])}" for k in skus]


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("catalog-files")
    rng = random.Random(5)
    first = lines_of(rng, list(range(100)))
    products = "product_id,category"
    return [
        write(folder / "products-a.csv", catalog_of(rng, [0, 1, 2, 3]), products),
        write(folder / "first.csv", first),
        write(folder / "products-b.csv", catalog_of(rng, [1, 4, 5, 6]), products),
        write(folder / "products-bad.csv", ["SKU1,Books", "SKU1,Toys"], products),  # duplicate-product
        # Later files touch 3 of the 12 dates: the others are recomputed only by products-b.
        write(folder / "correction.csv", lines_of(rng, list(range(0, 100, 3)), days=3)),
        write(folder / "invalid.csv", ["X1,C1,2025-07-01,SKU1,0,1.00,false"]),  # not-positive
        write(folder / "first-again.csv", first),
        write(folder / "more.csv", lines_of(rng, list(range(500, 540)), prefix="N", days=3)),
    ]


def new_home(root: Path) -> Path:
    home = root / "home"
    home.mkdir(parents=True)
    (home / "orderpipe.toml").write_text(CONFIG)
    return home


def check_history(
    home: Path,
    pending: set[str],
    extra: dict[str, str] | None = None,
    invalid: set[str] = INVALID,
    again: str = "first-again.csv",
) -> None:
    """Every batch finished, accepted at most once, the interrupted ones accepted by the rerun;
    the `invalid` files rejected, the file sent `again` a duplicate."""
    runs = json.loads(orderpipe(home, "batches", "--format", "json", extra=extra).stdout)
    assert unfinished(home, extra) == (set(), set())
    accepted = Counter(r["batch_id"] for r in runs if r["status"] == "accepted")
    assert max(accepted.values()) == 1, runs
    assert pending <= set(accepted), runs
    assert {r["status"] for r in runs if r["file"] in invalid} == {"rejected"}
    assert {r["status"] for r in runs if r["file"] not in invalid} <= {"accepted", "duplicate"}
    assert {r["file"]: r["status"] for r in runs}[again] == "duplicate"


@pytest.fixture(scope="module")
def clean_run(files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple, float]:
    home = new_home(tmp_path_factory.mktemp("catalog-reference"))
    process = start_run(home, files)
    started = time.monotonic()
    assert process.wait(timeout=120) == 1  # the invalid files are rejected
    seconds = time.monotonic() - started
    expected = state(home)
    assert expected[3] == [] and '"total_orders"' in expected[0]
    categories = {row["category"] for row in json.loads(expected[1])}
    assert {"Books", "Toys", "Home", "Unknown"} <= categories  # SKU7 is in no catalog
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
    home = kill_a_live_run(lambda attempt: new_home(tmp_path / f"try-{attempt}"), files, seconds * fraction)
    rerun = orderpipe(home, "run", *map(str, files))
    assert rerun.returncode == 1, rerun.stderr
    assert state(home) == reference
    check_history(home, set())


@pytest.mark.parametrize("point", ["catalog-staged#2", "index-inside#1", "after-commit#3", "kpi-commit-inside#3"])
def test_kill_on_s3_and_dynamodb_then_rerun(
    point: str, files: list[Path], clean_run: tuple, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = request.getfixturevalue("aws_env") | {"ORDERPIPE_INPUT": json.dumps({"grain": "line", "catalog": True})}
    home = tmp_path / "home"
    crashed = orderpipe(home, "run", *map(str, files), crash=point, extra=env)
    assert crashed.returncode == -signal.SIGKILL, f"{point} was never reached: {crashed.stdout}{crashed.stderr}"
    pending, failed = unfinished(home, env)
    assert failed == set()
    rerun = orderpipe(home, "run", *map(str, files), extra=env)
    assert rerun.returncode == 1, rerun.stderr
    daily, category, archived, leftovers = state(home, env)
    assert (daily, category) == clean_run[0][:2]
    assert archived == clean_run[0][2] and leftovers == []
    check_history(home, pending, env)


def test_catalog_and_order_batches_racing_on_two_workers(tmp_path: Path) -> None:
    """Catalog files and order files processed two at a time give the KPIs of processing the
    accepted files one by one in commit order."""
    rng = random.Random(13)
    folder = tmp_path / "drops"
    folder.mkdir()
    files: list[Path] = []
    for n in range(36):
        if n % 3 == 1:  # a catalog change of a few products, some of them sold already
            path = write(
                folder / f"products-{n:03d}.csv", catalog_of(rng, rng.sample(range(8), 3)), "product_id,category"
            )
        elif n % 12 == 5:
            path = write(folder / f"products-{n:03d}.csv", ["SKU1,Books", "SKU1,Books"], "product_id,category")
        else:
            path = write(folder / f"drop-{n:03d}.csv", lines_of(rng, rng.sample(range(60), 6)))
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
    assert len(out.splitlines()) == 36
    history = json.loads(orderpipe(home, "batches", "--format", "json").stdout)
    assert sum(h["status"] == "rejected" for h in history) == 3
    commit_order = [h["file"] for h in sorted(history, key=lambda h: h["seq"]) if h["status"] == "accepted"]
    reference = new_home(tmp_path / "reference")
    result = orderpipe(reference, "run", *(str(folder / name) for name in commit_order))
    assert result.returncode == 0, result.stderr
    for view in (["kpis", "daily", "--format", "json"], ["kpis", "category", "--format", "json"]):
        assert orderpipe(home, *view).stdout == orderpipe(reference, *view).stdout


@pytest.mark.parametrize(
    "point", ["compact-written#1", "compact-switch-inside#1", "compact-switched#1", "compact-cleaned#1"]
)
def test_kill_inside_catalog_compaction_then_rerun(point: str, tmp_path: Path) -> None:
    """Eleven catalog files after the orders: the ninth makes the catalog compact (one order
    file: no facts compaction shares these points). Killed there and rerun: the KPIs of an
    uninterrupted run, and every catalog file left is named by the ledger or was left by the
    kill between writing and switching."""
    rng = random.Random(3)
    folder = tmp_path / "files"
    folder.mkdir()
    files = [write(folder / "orders.csv", lines_of(rng, list(range(40))))]
    for n in range(11):
        files.append(
            write(folder / f"products-{n:02d}.csv", catalog_of(rng, rng.sample(range(8), 3)), "product_id,category")
        )
    clean = new_home(tmp_path / "clean")
    assert orderpipe(clean, "run", *map(str, files)).returncode == 0
    crashed = new_home(tmp_path / "crashed")
    killed = orderpipe(crashed, "run", *map(str, files), crash=point)
    assert killed.returncode == -signal.SIGKILL, f"{point} was never reached: {killed.stderr[-500:]}"
    assert orderpipe(crashed, "run", *map(str, files)).returncode == 0
    assert state(crashed)[:2] == state(clean)[:2]
    assert unfinished(crashed) == (set(), set())
    catalog = {p.name for p in (crashed / "warehouse" / "orders" / "catalog").iterdir()}
    assert {p.name for p in (clean / "warehouse" / "orders" / "catalog").iterdir()} <= catalog
