"""The jobs `make bench` compares orderpipe with must do the work they stand for: read every
row, reject a file with one bad row, and count every order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BASELINES = ["pandas_baseline.py", "polars_baseline.py"]


def job(script: str, path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "benchmarks" / script), str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("baselines") / "orders.csv"
    command = [sys.executable, str(REPO / "benchmarks" / "generate.py"), str(path), "--rows", "3000", "--days", "30"]
    subprocess.run(command, check=True)
    return path


@pytest.mark.parametrize("script", BASELINES)
def test_a_baseline_reads_every_order(script: str, generated: Path) -> None:
    done = job(script, generated)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["240", "category", "rows;", "30", "daily", "rows;", "3000", "orders"]


@pytest.mark.parametrize(
    "bad",
    [
        ("2025-02-30", "2"),  # no such date
        ("2025-01-05", "0"),  # quantity must be above 0
    ],
)
@pytest.mark.parametrize("script", BASELINES)
def test_a_baseline_rejects_a_file_with_one_bad_row(
    script: str, bad: tuple[str, str], generated: Path, tmp_path: Path
) -> None:
    lines = generated.read_text().splitlines()
    fields = lines[-1].split(",")
    fields[2], fields[5] = bad
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([*lines[:-1], ",".join(fields)]) + "\n")
    assert job(script, path).returncode == 1
