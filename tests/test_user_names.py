"""The run history and every message show the name the user gave a file, never the name its
upload waited under in input/ (`aug10.2.csv` when a different `aug10.csv` was waiting): in the
ledger, in a later duplicate's "same bytes as", and after a crash between commit and finish."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orderpipe.core.names import MAX_NAME_BYTES, fit_name, is_upload_of, tagged_name
from tests.conftest import order, write

DIGEST = "ab" * 32


def orderpipe(home: Path, *args: str, crash_at: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")}
    if crash_at:
        env["ORDERPIPE_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "orderpipe", "--home", str(home), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [re.sub(r"  [0-9.]+ s$", "", line) for line in result.stdout.splitlines()]


@pytest.fixture
def waiting(tmp_path: Path) -> tuple[Path, Path]:
    """A home where a different `aug10.csv` waits in input/, and the user's own `aug10.csv`."""
    home = tmp_path / "home"
    (home / "input").mkdir(parents=True)
    (tmp_path / "mine").mkdir()
    write(home / "input" / "aug10.csv", [order("X1", date="2025-08-10")])
    mine = write(tmp_path / "mine" / "aug10.csv", [order("O1"), order("O2", "C2")])
    return home, mine


def history(home: Path) -> list[tuple[str, str]]:
    runs = json.loads(orderpipe(home, "batches", "--format", "json").stdout)
    return [(r["status"], r["file"]) for r in runs]


def test_a_rerun_says_same_bytes_as_the_users_name(waiting: tuple[Path, Path]) -> None:
    home, mine = waiting
    first = orderpipe(home, "run", str(mine))
    assert first.returncode == 0, first.stderr
    assert [line.split()[:2] for line in lines(first)] == [["accepted", "aug10.csv"]] * 2
    again = orderpipe(home, "run", str(mine))
    assert lines(again) == [
        "duplicate aug10.csv  2 rows  same bytes as aug10.csv (batch "
        + json.loads(orderpipe(home, "batches", "--format", "json").stdout)[1]["batch_id"][:12]
        + ")"
    ]
    assert history(home) == [("accepted", "aug10.csv"), ("accepted", "aug10.csv"), ("duplicate", "aug10.csv")]
    assert "aug10.2.csv" not in first.stdout + again.stdout


def test_after_a_crash_between_commit_and_finish_the_users_name_stays(waiting: tuple[Path, Path]) -> None:
    """The upload waits as input/aug10.2.csv, its batch committed under the user's name: the
    next start leaves it to its own run (it is still waiting), which reports it by that name."""
    home, mine = waiting
    crashed = orderpipe(home, "run", str(mine), crash_at="after-commit#2")  # the second file's commit
    assert crashed.returncode == -9
    assert sorted(p.name for p in (home / "input").iterdir()) == ["aug10.2.csv"]
    again = orderpipe(home, "run", str(mine))
    assert again.returncode == 0, again.stderr
    assert [line.split()[:2] for line in lines(again)] == [["accepted", "aug10.csv"], ["duplicate", "aug10.csv"]]
    assert history(home) == [("accepted", "aug10.csv"), ("accepted", "aug10.csv"), ("duplicate", "aug10.csv")]
    assert "finished after an interruption" not in orderpipe(home, "batches", "--format", "json").stdout
    assert "aug10.2.csv" not in again.stdout  # (stderr may say where an upload waits: input/aug10.2.csv)
    assert not any(p.name == "aug10.2.csv" for p in (home / "processed").iterdir())


@pytest.mark.parametrize(
    ("candidate", "name", "expected"),
    [
        ("aug10.csv", "aug10.csv", True),
        ("aug10.2.csv", "aug10.csv", True),
        ("aug10.17.csv", "aug10.csv", True),
        ("aug10.1.csv", "aug10.csv", False),  # uploads are tagged from 2
        ("aug10.02.csv", "aug10.csv", False),
        ("aug11.2.csv", "aug10.csv", False),
        ("aug10.2.tsv", "aug10.csv", False),
        ("notes.3", "notes", True),
        ("a.b.2.csv", "a.b.csv", True),
    ],
)
def test_the_names_an_upload_waits_under(candidate: str, name: str, expected: bool) -> None:
    assert is_upload_of(candidate, name, DIGEST) is expected


def test_a_long_names_uploads_are_found_too() -> None:
    long = "x" * 300 + ".csv"
    assert len(fit_name(long, DIGEST[:12]).encode()) <= MAX_NAME_BYTES
    assert is_upload_of(fit_name(long, DIGEST[:12]), long, DIGEST)
    assert is_upload_of(tagged_name(long, "4"), long, DIGEST)
    assert not is_upload_of(fit_name(long, "cd" * 6), long, DIGEST)
