"""Many small files: does the cost of a file stay flat as history grows, and how fast does
`watch` drain a full folder?

The files (30 rows, the same 10 dates) are deterministic: file 0 holds 30 new orders; every
later file holds 15 new orders and 15 corrections of orders of earlier files (same date and
id, a new price and return flag), so half of all rows replace earlier ones.

- `run`: all files through one `orderpipe run`, in order. The per-file time is the interval
  between two result lines (upload included); the warehouse is then compared with the
  current orders written as one Parquet file (the storage bound: at most 2×).
- `drain`: the same files renamed at once into `input/` of a fresh home under
  `orderpipe watch --workers 2`; the time until every file has its result line.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl

from orderpipe.core.screen import FACT_SCHEMA

HEADER = "order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned\n"
ROWS = 30
CATEGORIES = ["Books", "Toys", "Home", "Beauty"]

Row = tuple[str, str, str, str, str, int, str, bool]


def _row(order_id: str, r: int, rng: random.Random) -> Row:
    cents = rng.randint(100, 99_999)
    return (
        order_id,
        f"C{rng.randrange(500)}",
        f"2025-07-{1 + r % 10:02d}",
        CATEGORIES[r % len(CATEGORIES)],
        f"P{rng.randrange(100)}",
        rng.randint(1, 5),
        f"{cents // 100}.{cents % 100:02d}",
        rng.random() < 0.1,
    )


def make_files(folder: Path, count: int) -> dict[str, Row]:
    """Write `count` files into `folder` (kept between runs); returns the current orders."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20251126)
    current: dict[str, Row] = {}
    for i in range(count):
        new = ROWS if i == 0 else ROWS // 2
        rows = [_row(f"N{i}-{r}", r, rng) for r in range(new)]
        if i:
            for j, r in {(rng.randrange(i), rng.randrange(ROWS // 2)) for _ in range(ROWS - new)}:
                rows.append(_row(f"N{j}-{r}", r, rng))
        current |= {row[0]: row for row in rows}
        path = folder / f"f{i:05d}.csv"
        if not path.exists():
            lines = (",".join([*map(str, row[:-1]), "true" if row[-1] else "false"]) for row in rows)
            path.write_text(HEADER + "\n".join(lines) + "\n")
    return current


def current_orders_bytes(current: dict[str, Row], scratch: Path) -> int:
    """The size of the current orders as one zstd Parquet file per date (the warehouse's own
    layout and compression, without any history)."""
    frame = pl.DataFrame(
        [list(r) for r in current.values()],
        schema=HEADER.strip().split(","),
        orient="row",
    ).with_columns(
        pl.col("order_date").str.to_date(),
        pl.col("unit_price").map_elements(Decimal, return_dtype=pl.Decimal(38, 4)),
    )
    total = 0
    for (day,), part in (
        frame.select(list(FACT_SCHEMA)).cast(FACT_SCHEMA).partition_by("order_date", as_dict=True).items()
    ):
        path = scratch / f"current-{day}.parquet"
        part.sort("order_id").write_parquet(path, compression="zstd", statistics=False)
        total += path.stat().st_size
        path.unlink()
    return total


@dataclass
class ScaleRun:
    files: int
    first_median_ms: float
    last_median_ms: float
    first_mean_ms: float  # with the files that merged entries (about 1 in 8)
    last_mean_ms: float
    seconds: float
    warehouse_files: int
    warehouse_bytes: int
    current_bytes: int
    statuses: dict[str, int]


def run_all(orderpipe: str, folder: Path, count: int, home: Path) -> ScaleRun:
    current = make_files(folder, count)
    paths = [str(folder / f"f{i:05d}.csv") for i in range(count)]
    start = last = time.monotonic()
    process = subprocess.Popen(
        [orderpipe, "--home", str(home), "run", "--format", "jsonl", *paths],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    times: list[float] = []
    statuses: dict[str, int] = {}
    for line in process.stdout:
        now = time.monotonic()
        times.append(now - last)
        last = now
        status = json.loads(line)["status"]
        statuses[status] = statuses.get(status, 0) + 1
    process.wait()
    seconds = time.monotonic() - start
    tenth = max(count // 10, 1)
    facts = list((home / "warehouse").rglob("*.parquet"))
    return ScaleRun(
        files=len(times),
        # The first interval also holds the interpreter's start: leave it out.
        first_median_ms=statistics.median(times[1 : tenth + 1] or times) * 1000,
        last_median_ms=statistics.median(times[-tenth:]) * 1000,
        first_mean_ms=statistics.mean(times[1 : tenth + 1] or times) * 1000,
        last_mean_ms=statistics.mean(times[-tenth:]) * 1000,
        seconds=seconds,
        warehouse_files=len(facts),
        warehouse_bytes=sum(p.stat().st_size for p in facts),
        current_bytes=current_orders_bytes(current, home),
        statuses=statuses,
    )


@dataclass
class DrainRun:
    files: int
    seconds: float
    statuses: dict[str, int]


def drain(orderpipe: str, folder: Path, count: int, home: Path, workers: int = 2) -> DrainRun:
    """Start the watcher on an empty home, then rename `count` files (copies of the `run`
    files, written beside input/ first) into input/ at once; time it until the last result."""
    make_files(folder, count)
    landing = home.parent / f"{home.name}-landing"
    landing.mkdir(parents=True)
    for i in range(count):
        name = f"f{i:05d}.csv"
        (landing / name).write_bytes((folder / name).read_bytes())
    process = subprocess.Popen(
        [orderpipe, "--home", str(home), "watch", "--workers", str(workers), "--format", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    while not (home / "orderpipe.db").exists():
        time.sleep(0.05)
    time.sleep(1.0)  # past start-up recovery
    start = time.monotonic()
    for i in range(count):
        name = f"f{i:05d}.csv"
        os.replace(landing / name, home / "input" / name)
    statuses: dict[str, int] = {}
    seen = 0
    for line in process.stdout:
        status = json.loads(line)["status"]
        statuses[status] = statuses.get(status, 0) + 1
        seen += 1
        if seen == count:
            break
    seconds = time.monotonic() - start
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    landing.rmdir()
    return DrainRun(seen, seconds, statuses)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    tool = str(Path(sys.executable).with_name("orderpipe"))
    work = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/orderpipe-scale")
    print(run_all(tool, work / f"files-{n}", n, work / f"home-run-{os.getpid()}"))
