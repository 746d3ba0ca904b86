"""What the progress bar costs: `orderpipe run FILE` with the bar and without, alternating.

Each run takes a fresh home. Variants:
- `bar`: on an 80x24 pseudo-terminal, so the bar is drawn;
- `quiet`: on the same pseudo-terminal with `-q`: no bar;
- `pipe`: stdout and stderr to pipes: no bar;
- `base`: in a pipe, the code under `--base-src` (e.g. `git archive COMMIT src | tar -x -C /tmp/base`).

Prints each run's wall time, CPU time (user + system, of the command) and frames drawn, then the
medians. CPU time is the steadier measure on a shared machine.

`--in-process`: instead, in this one process, the exact validator over FILE (pure Python, holding
the interpreter: the worst case for a drawing thread) with the bar drawing on a pseudo-terminal
and with no bar, alternating.

    python benchmarks/progress_cost.py big.csv --rounds 6 --variants bar,quiet,pipe
    python benchmarks/progress_cost.py quoted.csv --rounds 8 --in-process
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def run(file: Path, variant: str, base_src: Path | None) -> tuple[float, float, int]:
    """One run: (wall seconds, CPU seconds, frames drawn)."""
    src = base_src if variant == "base" else SRC
    assert src is not None, "--base-src is needed for the base variant"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")} | {"PYTHONPATH": str(src)}
    with tempfile.TemporaryDirectory() as home:
        args = [
            sys.executable,
            "-m",
            "orderpipe",
            "--home",
            home,
            "run",
            *(["-q"] if variant == "quiet" else []),
            str(file),
        ]
        out = bytearray()
        began = time.monotonic()
        if variant in ("bar", "quiet"):
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env)
            os.close(slave)
            reader = threading.Thread(target=_drain, args=(master, out), daemon=True)
        else:
            master = -1
            process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            stream = process.stdout
            assert stream is not None
            reader = threading.Thread(target=lambda: out.extend(stream.read()), daemon=True)
        reader.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - began
        reader.join(5)
        if master >= 0:
            os.close(master)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{variant}: exit {os.waitstatus_to_exitcode(status)}: {bytes(out[-500:])!r}")
    return wall, usage.ru_utime + usage.ru_stime, out.count(b"\x1b[K")


def _drain(master: int, out: bytearray) -> None:
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the command is done
            return
        if not chunk:
            return
        out.extend(chunk)


def in_process(file: Path, rounds: int) -> None:
    """The exact validator with and without a bar drawing, alternating; process CPU time counts
    the drawing thread too."""
    from orderpipe.core.rules import DEFAULT_CATEGORIES
    from orderpipe.core.validate import validate_stream
    from orderpipe.progress import Bar, counted

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    threading.Thread(target=_drain, args=(master, bytearray()), daemon=True).start()
    size = file.stat().st_size
    runs: dict[str, list[tuple[float, float]]] = {"bar": [], "none": []}
    with os.fdopen(slave, "w") as terminal:
        for round_ in range(rounds):
            for variant in ("bar", "none") if round_ % 2 == 0 else ("none", "bar"):
                cpu, began = time.process_time(), time.perf_counter()
                with (
                    Bar(terminal if variant == "bar" else None) as bar,
                    bar.file() as progress,
                    counted(file, lambda done: progress("validating", done, size)) as stream,
                ):
                    report = validate_stream(stream, file.name, frozenset(DEFAULT_CATEGORIES))
                assert report.valid, report.verdict
                runs[variant].append((time.perf_counter() - began, time.process_time() - cpu))
                print(
                    f"round {round_} {variant:4s} wall {runs[variant][-1][0]:6.2f} s  cpu {runs[variant][-1][1]:6.2f} s"
                )
    for variant, results in runs.items():
        walls, cpus = [r[0] for r in results], [r[1] for r in results]
        print(
            f"{variant:4s} wall median {statistics.median(walls):6.3f} s ({min(walls):.2f}-{max(walls):.2f})"
            f"  cpu median {statistics.median(cpus):6.3f} s ({min(cpus):.2f}-{max(cpus):.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--variants", default="bar,quiet,pipe")
    parser.add_argument("--base-src", type=Path)
    parser.add_argument("--in-process", action="store_true")
    options = parser.parse_args()
    if options.in_process:
        in_process(options.file, options.rounds)
        return
    variants = options.variants.split(",")
    runs: dict[str, list[tuple[float, float, int]]] = {v: [] for v in variants}
    for round_ in range(options.rounds):
        for variant in variants if round_ % 2 == 0 else list(reversed(variants)):  # alternating order
            wall, cpu, frames = run(options.file, variant, options.base_src)
            runs[variant].append((wall, cpu, frames))
            print(f"round {round_} {variant:6s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  frames {frames}", flush=True)
    print("load average:", Path("/proc/loadavg").read_text().split()[:3])
    for variant, results in runs.items():
        walls, cpus = [r[0] for r in results], [r[1] for r in results]
        print(
            f"{variant:6s} wall median {statistics.median(walls):6.2f} s ({min(walls):.2f}-{max(walls):.2f})"
            f"  cpu median {statistics.median(cpus):6.2f} s ({min(cpus):.2f}-{max(cpus):.2f})"
            f"  frames {[r[2] for r in results]}"
        )


if __name__ == "__main__":
    main()
