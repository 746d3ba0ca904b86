"""`orderpipe watch` beside real writers: a file is read only after its writer closed it, and
the bytes counted are exactly the bytes archived, whatever the writer does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import HEADER, order

pytestmark = pytest.mark.slow


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "watch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ORDERPIPE_WATCH_POLL_INTERVAL": "0.1"},
    )
    deadline = time.monotonic() + 30
    while not (home / "orderpipe.db").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # past start-up recovery: the watcher is listening
    yield home
    watcher.send_signal(signal.SIGTERM)
    watcher.wait(timeout=60)
    assert watcher.returncode == 0


def wait_until_drained(home: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not list((home / "input").glob("*.csv")):
            time.sleep(0.5)  # let a last commit land
            return
        time.sleep(0.1)
    raise AssertionError(f"input/ not drained: {list((home / 'input').iterdir())}")


def total_orders(home: Path) -> int:
    result = subprocess.run(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "kpis", "daily", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(row["total_orders"] for row in json.loads(result.stdout))


def lines(rows: list[str]) -> str:
    return "".join(f"{r}\n" for r in rows)


def archived(home: Path) -> dict[str, bytes]:
    return {
        p.relative_to(home).as_posix(): p.read_bytes()
        for folder in ("processed", "rejected")
        for p in (home / folder).iterdir()
        if not p.name.endswith(".report.json")
    }


def test_a_writer_that_pauses_is_read_only_after_it_closes(watching: Path) -> None:
    home = watching
    rows = [order(f"O{i}") for i in range(6)]
    with (home / "input" / "slow.csv").open("w") as out:
        out.write(lines([HEADER, *rows[:2]]))
        out.flush()
        time.sleep(3)  # longer than any settle time: only the close may say it is done
        out.write(lines(rows[2:]))
    wait_until_drained(home)
    assert total_orders(home) == 6
    assert archived(home) == {"processed/slow.csv": lines([HEADER, *rows]).encode()}


def test_a_truncated_and_rewritten_file_counts_as_its_last_version(watching: Path) -> None:
    home = watching
    first = lines([HEADER, *(order(f"O{i}") for i in range(3))])
    second = lines([HEADER, *(order(f"O{i}") for i in range(5))])
    target = home / "input" / "daily.csv"
    target.write_text(first)
    target.write_text(second)  # truncate and write again, straight after the close
    wait_until_drained(home)
    assert total_orders(home) == 5
    assert set(archived(home).values()) <= {first.encode(), second.encode()}
    assert second.encode() in archived(home).values()


def test_an_append_after_close_loses_no_row(watching: Path) -> None:
    home = watching
    head = lines([HEADER, *(order(f"O{i}") for i in range(3))])
    tail = lines([order(f"O{i}") for i in range(3, 6)])
    target = home / "input" / "grow.csv"
    target.write_text(head)
    with target.open("a") as out:
        out.write(tail)
    wait_until_drained(home)
    files = archived(home)
    # Either the watcher read the whole file, or it read the first version and the append made
    # a new, headerless file that is rejected: never a count of bytes other than those archived.
    counted = [b for k, b in files.items() if k.startswith("processed/")]
    assert counted in ([(head + tail).encode()], [head.encode()])
    if counted == [head.encode()]:
        assert list(files.values()).count(tail.encode()) == 1
    assert total_orders(home) == counted[0].count(b"\n") - 1
