"""The API and the page, measured: latency of a one-year range with 8 categories over SQLite
through the real `orderpipe serve`, and what the page transfers before any data.

Builds (once, cached in benchmarks/.data) a home holding 365 days × 8 categories, starts
`orderpipe serve --port 0`, sends WARMUP then REQUESTS sequential requests per endpoint over
one keep-alive connection, and reports p50/p95/max from the client's side and the server's
CPU time per request (what a request costs, whatever else the machine is doing).

"cold": every request asks a one-year range not asked before (shifted by a day each time), so
the server reads SQLite and writes the answer out; "warm": the same range again, answered from
the answers the server keeps per KPI version.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
sys.path.insert(0, str(HERE.parent))
from benchmarks.generate import generate  # noqa: E402

ROWS = 800_000  # ~1,100 orders a day: every category every day, for two years
START, DAYS = "2024-07-01", 730
WARMUP, REQUESTS = 20, 300
TARGET_P95_MS = 50.0
TARGET_PAGE_KB = 200.0
YEAR = {"from": "2025-01-01", "to": "2025-12-31"}


def year_from(day: int) -> dict[str, str]:
    """A one-year range starting `day` days after 2025-01-01, inside the data: a new question."""
    import datetime as dt

    start = dt.date(2025, 1, 1) + dt.timedelta(days=day % 180)
    return {"from": start.isoformat(), "to": (start + dt.timedelta(days=364)).isoformat()}


def home() -> Path:
    path = DATA / "home-api-2y"
    if not (path / "orderpipe.db").exists():
        DATA.mkdir(exist_ok=True)
        orders = DATA / "orders-api.csv"
        print(f"generating {orders.name} ({ROWS:,} rows over {DAYS} days) and running it…", flush=True)
        generate(orders, ROWS, days=DAYS, start=START)
        orderpipe = Path(sys.executable).with_name("orderpipe")
        subprocess.run([str(orderpipe), "--home", str(path), "-q", "run", str(orders)], check=True)
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: what a request costs whatever else runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    orderpipe = Path(sys.executable).with_name("orderpipe")
    server = subprocess.Popen(
        [str(orderpipe), "--home", str(home()), "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    found = re.search(r"http://\S+/", server.stdout.readline())
    assert found, "serve announced no URL"
    url = found.group(0).rstrip("/")
    try:
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print()
        print("| request | rows | bytes | p50 ms | p95 ms | max ms | server CPU ms/request | target (p95) |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        with httpx.Client(base_url=url, timeout=30) as client:
            for label, path, extra, cold in [
                ("daily KPIs, one year, cold", "/api/kpis/daily", {}, True),
                ("category KPIs, one year, 8 categories, cold", "/api/kpis/category", {}, True),
                ("category KPIs, one year, 8 categories, warm", "/api/kpis/category", {}, False),
                ("category KPIs, one year, as CSV, cold", "/api/kpis/category", {"format": "csv"}, True),
                ("version (the dashboard's poll)", "/api/version", None, False),
            ]:
                times = []
                cpu = 0.0
                for i in range(WARMUP + REQUESTS):
                    if i == WARMUP:
                        cpu = cpu_seconds(server.pid)
                    params = {} if extra is None else {**(year_from(i) if cold else YEAR), **extra}
                    start = time.perf_counter()
                    response = client.get(path, params=params)
                    elapsed = (time.perf_counter() - start) * 1000
                    response.raise_for_status()
                    if i >= WARMUP:
                        times.append(elapsed)
                cpu_ms = (cpu_seconds(server.pid) - cpu) / REQUESTS * 1000
                if "format" in (extra or {}):
                    rows: object = response.text.count("\n") - 1
                else:
                    rows = len(response.json().get("rows", [])) or "–"
                p95 = percentile(times, 0.95)
                goal = f"≤ {TARGET_P95_MS:.0f} ms: {'met' if p95 <= TARGET_P95_MS else 'MISSED'}"
                print(
                    f"| {label} | {rows} | {len(response.content):,} | {statistics.median(times):.1f} | "
                    f"{p95:.1f} | {max(times):.1f} | {cpu_ms:.1f} | {goal} |",
                    flush=True,
                )
            page = client.get("/")
            assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
            sizes = {"/": len(page.content)} | {a: len(client.get(a).content) for a in assets}
        total = sum(sizes.values()) / 1024
        print()
        print("| page (no data) | KB, uncompressed |")
        print("|---|---:|")
        for name, size in sizes.items():
            print(f"| {name} | {size / 1024:.1f} |")
        verdict = "met" if total <= TARGET_PAGE_KB else "MISSED"
        print(f"| **total** | **{total:.1f}** (≤ {TARGET_PAGE_KB:.0f} KB: {verdict}) |")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
