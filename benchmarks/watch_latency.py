"""`watch` latency: from a 30-row file landing in input/ to its KPIs being readable.

Starts `orderpipe watch` on a fresh home, then drops N files one by one (each written beside
input/ and renamed in, as a careful writer does), and for each measures the time until the
KPI store shows its orders (read straight from SQLite, read-only, every 5 ms). Prints p50,
p90, p99 and max. Usage: `.venv/bin/python benchmarks/watch_latency.py [--files 200]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = "order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned\n"


def orders_counted(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            (total,) = connection.execute("SELECT COALESCE(SUM(total_orders), 0) FROM order_kpis").fetchone()
    except sqlite3.Error:
        return -1
    return int(total)


def measure_latency(files: int = 200, rows: int = 30) -> list[float]:
    """Seconds from each file's rename into input/ until its orders are counted, in order."""
    work = Path(tempfile.mkdtemp(prefix="orderpipe-latency-"))
    home, staging = work / "home", work / "staging"
    staging.mkdir()
    watcher = subprocess.Popen(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "watch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ORDERPIPE_WATCH_POLL_INTERVAL": "0.5"},
    )
    try:
        db = home / "orderpipe.db"
        while orders_counted(db) < 0:
            time.sleep(0.05)
        time.sleep(1.0)  # past start-up recovery
        latencies = []
        for n in range(files):
            body = "".join(f"L{n}-{r},C{r},2025-07-{1 + r % 10:02d},Books,P,1,2.50,false\n" for r in range(rows))
            temp = staging / f"f{n:05d}.csv"
            temp.write_text(HEADER + body)
            expected = (n + 1) * rows
            start = time.perf_counter()
            os.replace(temp, home / "input" / temp.name)
            while orders_counted(db) < expected:
                time.sleep(0.005)
            latencies.append(time.perf_counter() - start)
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return latencies


def percentile_ms(latencies: list[float], p: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rows", type=int, default=30)
    args = parser.parse_args()
    latencies = measure_latency(args.files, args.rows)
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return percentile_ms(latencies, p)

    print(
        f"watch latency over {len(ordered)} files of {args.rows} rows: p50 {pct(0.50):.0f} ms, "
        f"p90 {pct(0.90):.0f} ms, p99 {pct(0.99):.0f} ms, max {ordered[-1] * 1000:.0f} ms, "
        f"mean {statistics.mean(ordered) * 1000:.0f} ms (targets: p50 ≤ 500 ms, p99 ≤ 1500 ms)"
    )


if __name__ == "__main__":
    main()
