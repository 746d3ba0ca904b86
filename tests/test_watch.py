"""`orderpipe watch --workers 2` with 200 files dropped at once (duplicates and invalid files
among them, overlapping orders so commit order matters): input/ ends empty, every file is
archived, and the KPIs equal a sequential run of the accepted files in commit order."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orderpipe.watch import is_candidate
from tests.conftest import order, write

pytestmark = pytest.mark.slow


def orderpipe(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orderpipe", "--home", str(home), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def make_files(folder: Path, count: int = 200) -> list[Path]:
    rng = random.Random(42)
    dates = [f"2025-08-{d:02d}" for d in range(1, 31)]
    files: list[Path] = []
    for n in range(count):
        path = folder / f"drop-{n:03d}.csv"
        if n % 10 == 3 and files:  # a duplicate: the bytes of an earlier file
            shutil.copyfile(rng.choice(files), path)
        elif n % 10 == 7:  # an invalid file
            write(path, [order(f"Z{n}"), order(f"Z{n}b", date="2025-08-32")])
        else:  # ids from a shared pool: later files correct earlier ones
            days = rng.sample(dates, 2)
            write(
                path,
                [
                    order(
                        f"O{oid}",
                        f"C{rng.randrange(60)}",
                        rng.choice(days),
                        rng.choice(["Books", "Toys", "Home"]),
                        "P",
                        str(rng.randint(1, 4)),
                        f"{rng.randint(1, 9999) / 100:.2f}",
                        rng.choice(["true", "false", "false"]),
                    )
                    for oid in rng.sample(range(400), 15)
                ],
            )
        files.append(path)
    return files


def stop_when_drained(watcher: subprocess.Popen[str], drained: Callable[[], bool], timeout: float = 240) -> str:
    """Wait until input/ is drained, then SIGTERM: the watcher must exit 0; returns its stdout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not drained():
        assert watcher.poll() is None, "the watcher died"
        time.sleep(0.5)
    time.sleep(0.5)
    watcher.send_signal(signal.SIGTERM)
    out, _ = watcher.communicate(timeout=60)
    assert watcher.returncode == 0
    return out


def test_temporary_and_hidden_names_are_ignored() -> None:
    assert is_candidate("orders.csv") and is_candidate("ORDERS.CSV")
    assert not is_candidate(".orders.csv")
    assert not is_candidate("orders.csv.part")
    assert not is_candidate("orders.tmp")


def test_two_workers_equal_the_sequential_result(tmp_path: Path) -> None:
    files = make_files(tmp_path)
    home = tmp_path / "home"
    (home / "input").mkdir(parents=True)
    (home / "input" / ".hidden.csv").write_text("ignored")
    (home / "input" / "partial.csv.part").write_text("ignored")
    staging = tmp_path / "staging"
    staging.mkdir()
    for path in files:  # drop all 200 at once: copy aside, then rename in
        shutil.copyfile(path, staging / path.name)
    for path in files:
        os.replace(staging / path.name, home / "input" / path.name)

    watcher = subprocess.Popen(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "watch", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "ORDERPIPE_WATCH_POLL_INTERVAL": "0.1"},
    )
    out = stop_when_drained(watcher, lambda: not [p for p in (home / "input").iterdir() if is_candidate(p.name)])
    assert len(out.splitlines()) == 200

    assert sorted(p.name for p in (home / "input").iterdir()) == [".hidden.csv", "partial.csv.part"]
    archived = {p.name for p in (home / "processed").iterdir()} | {
        p.name for p in (home / "rejected").iterdir() if not p.name.endswith(".report.json")
    }
    assert archived == {p.name for p in files}
    invalid = {p.name for p in files if "2025-08-32" in p.read_text()}
    assert {p.name.removesuffix(".report.json") for p in (home / "rejected").glob("*.report.json")} == invalid

    history = json.loads(orderpipe(home, "batches", "--format", "json").stdout)
    statuses = [h["status"] for h in history]
    assert statuses.count("rejected") == len(invalid)
    assert statuses.count("duplicate") == 200 - len(invalid) - len(
        {p.read_bytes() for p in files} - {p.read_bytes() for p in files if p.name in invalid}
    )
    commit_order = [h["file"] for h in sorted(history, key=lambda h: h["seq"]) if h["status"] == "accepted"]
    assert len(commit_order) == len(set(commit_order))

    reference = tmp_path / "reference"
    result = orderpipe(reference, "run", *(str(tmp_path / name) for name in commit_order))
    assert result.returncode == 0, result.stderr
    for view in (["kpis", "daily", "--format", "json"], ["kpis", "category", "--format", "json"]):
        assert orderpipe(home, *view).stdout == orderpipe(reference, *view).stdout


def test_two_workers_on_s3_and_dynamodb_equal_the_sequential_result(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import boto3

    env = request.getfixturevalue("aws_env")
    files = make_files(tmp_path, count=40)
    s3 = boto3.client("s3")
    for path in files:
        s3.upload_file(str(path), env["ORDERPIPE_AWS_BUCKET"], f"input/{path.name}")
    home = tmp_path / "home"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "watch", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **env, "ORDERPIPE_WATCH_POLL_INTERVAL": "0.2"},
    )
    out = stop_when_drained(
        watcher, lambda: not s3.list_objects_v2(Bucket=env["ORDERPIPE_AWS_BUCKET"], Prefix="input/").get("KeyCount")
    )
    assert len(out.splitlines()) == 40

    history = json.loads(orderpipe_env(home, env, "batches", "--format", "json").stdout)
    commit_order = [h["file"] for h in sorted(history, key=lambda h: h["seq"]) if h["status"] == "accepted"]
    reference = tmp_path / "reference"
    assert orderpipe(reference, "run", *(str(tmp_path / name) for name in commit_order)).returncode == 0
    for view in (["kpis", "daily", "--format", "json"], ["kpis", "category", "--format", "json"]):
        assert orderpipe_env(home, env, *view).stdout == orderpipe(reference, *view).stdout


def orderpipe_env(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orderpipe", "--home", str(home), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **env},
    )


def test_a_backlog_is_drained_with_few_scans_of_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each scan stats every waiting file, so with thousands waiting a scan per finished file
    starved the workers: a scan queues many files and the next waits until they run low."""
    from orderpipe import watch
    from orderpipe.adapters.folder import FolderStore
    from orderpipe.bootstrap import open_pipeline
    from orderpipe.config import load_settings
    from tests.conftest import order, write

    home = tmp_path / "home"
    open_pipeline(load_settings(home, environ={}))
    count = 60
    for n in range(count):
        write(home / "input" / f"f{n:03d}.csv", [order(f"O{n}")])
    scans: list[str] = []
    real = FolderStore.list

    def counted(self, prefix):  # type: ignore[no-untyped-def]
        if prefix.endswith("input/"):
            scans.append(prefix)
        return real(self, prefix)

    monkeypatch.setattr(FolderStore, "list", counted)
    stop = threading.Event()
    outcomes: list[object] = []
    watcher = watch.Watcher(lambda: open_pipeline(load_settings(home, environ={})), 1, 0.05, settle_time=0.0)
    runner = threading.Thread(target=watcher.run, args=(stop, outcomes.append))
    runner.start()
    deadline = time.monotonic() + 120
    while len(outcomes) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    runner.join()
    assert [getattr(o, "status", None) for o in outcomes] == ["accepted"] * count
    assert len(scans) <= count // 4, f"{len(scans)} scans of input/ for {count} files"
