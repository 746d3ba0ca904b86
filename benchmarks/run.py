"""`make bench`: orderpipe run end to end versus the pandas baseline, on the same files.

Generates (once, cached in benchmarks/.data) the 100 MB and 1 GB order files, then runs each
tool in a fresh subprocess and reads its peak RSS from the kernel (wait4), so the figures are
per tool and include the interpreter.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
SIZES = {"100MB": 1_500_000, "1GB": 15_000_000}
TARGETS = {"100MB": 2.0, "1GB": 12.0}
TARGET_RSS_MB = 1536
TARGET_SPEEDUP = 8.0


@dataclass
class Measure:
    seconds: float
    peak_mb: float
    code: int


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Measure:
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and process.stderr is not None:
        sys.stderr.write(process.stderr.read().decode(errors="replace")[-2000:])
    return Measure(elapsed, usage.ru_maxrss / 1024, code)


def ensure_file(label: str, rows: int) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"orders-{label}.csv"
    if not path.exists():
        print(f"generating {path.name} ({rows:,} rows)…", flush=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(path), "--rows", str(rows)], check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()
    orderpipe = str(Path(sys.executable).with_name("orderpipe"))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print("| file | MB | tool | wall s | MB/s | peak RSS MB | vs pandas | target |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for label in args.sizes:
        path = ensure_file(label, SIZES[label])
        size_mb = path.stat().st_size / 1e6
        home = DATA / f"home-{label}"
        shutil.rmtree(home, ignore_errors=True)
        ours = measure([orderpipe, "--home", str(home), "run", str(path)])
        shutil.rmtree(home, ignore_errors=True)
        base = None if args.skip_pandas else measure([sys.executable, str(HERE / "pandas_baseline.py"), str(path)])
        speedup = f"{base.seconds / ours.seconds:.1f}×" if base else "n/a"
        met = (
            ours.code == 0
            and ours.seconds <= TARGETS[label]
            and (label != "1GB" or ours.peak_mb <= TARGET_RSS_MB)
            and (label != "1GB" or base is None or base.seconds / ours.seconds >= TARGET_SPEEDUP)
        )
        goal = f"≤ {TARGETS[label]:.0f} s" + (
            f", ≤ {TARGET_RSS_MB} MB, ≥ {TARGET_SPEEDUP:.0f}×" if label == "1GB" else ""
        )
        print(
            f"| {label} | {size_mb:.0f} | orderpipe run | {ours.seconds:.2f} | {size_mb / ours.seconds:.0f} | "
            f"{ours.peak_mb:.0f} | {speedup} | {goal}: {'met' if met else 'MISSED'} |",
            flush=True,
        )
        if base:
            print(
                f"| {label} | {size_mb:.0f} | pandas baseline | {base.seconds:.2f} | {size_mb / base.seconds:.0f} | "
                f"{base.peak_mb:.0f} | 1.0× | |",
                flush=True,
            )


if __name__ == "__main__":
    main()
