"""`orderpipe status` on a real home: what waits, what failed or was stranded, what was
rejected, how far the KPIs reach, the store sizes and where each setting came from; it
changes nothing, and works on S3 + DynamoDB (moto) as on a folder."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orderpipe.bootstrap import open_pipeline
from orderpipe.cli import main
from orderpipe.config import load_settings
from tests.conftest import order, write


def status(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), "status", *args], env=env, catch_exceptions=False)


def tree(home: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (str(Path(root, name).relative_to(home)), (s := os.stat(Path(root, name))).st_size, s.st_mtime_ns)
        for root, _, names in os.walk(home)
        for name in names
    )


@pytest.fixture
def busy_home(home: Path, tmp_path: Path) -> Path:
    """Two accepted files, one rejected, one waiting; a failed and a stranded batch."""
    runner = CliRunner()
    first = write(tmp_path / "july.csv", [order("O1", date="2025-07-01"), order("O2", date="2025-07-09")])
    second = write(tmp_path / "more.csv", [order("O3", date="2025-07-05")])
    bad = write(tmp_path / "bad.csv", [order("O4", quantity="0")])
    result = runner.invoke(main, ["--home", str(home), "run", str(first), str(second), str(bad)])
    assert result.exit_code == 1, result.output  # one file rejected
    write(home / "input" / "waiting.csv", [order("O5")])
    ledger = open_pipeline(load_settings(home, environ={})).ledger
    ledger.commit("f" * 64, "broken.csv", 1, {"2025-07-02": [0]})
    ledger.mark_failed("f" * 64)
    ledger.commit("e" * 64, "halfway.csv", 1, {"2025-07-03": [0]})
    del ledger
    gc.collect()  # the pipeline's scratch folder goes now, not in the middle of a test
    (home / "orderpipe.toml").write_text(
        'log_level = "WARNING"\n[notify]\nwebhook_url = "https://user:pw@hooks.example/x?token=s3cret"\n'
    )
    return home


def test_status_shows_the_home_at_a_glance(busy_home: Path) -> None:
    result = status(busy_home, "--format", "json", env={"ORDERPIPE_WATCH_POLL_INTERVAL": "2"})
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["home"] == str(busy_home) and found["backend"] == "local"
    assert found["waiting"] == {"count": 1, "files": ["waiting.csv"]}
    assert found["rejected"] == {"count": 1, "files": ["bad.csv"]}  # its report is not a second file
    assert [(b["file"], b["dates"]) for b in found["failed"]] == [("broken.csv", ["2025-07-02"])]
    assert [(b["file"], b["dates"]) for b in found["stranded"]] == [("halfway.csv", ["2025-07-03"])]
    assert found["kpis"] == {"dates": 3, "first_date": "2025-07-01", "newest_date": "2025-07-09"}
    assert found["last_run"]["status"] == "rejected" and found["last_run"]["file"] == "bad.csv"
    assert found["settings_recorded"] is True
    sizes = found["sizes"]
    assert sizes["processed"]["objects"] == 2 and sizes["rejected"]["objects"] == 2 and sizes["input"]["objects"] == 1
    assert sizes["processed"]["bytes"] == sum(p.stat().st_size for p in (busy_home / "processed").iterdir())
    assert sizes["database"]["bytes"] > 0
    settings = {s["name"]: s for s in found["settings"]}
    assert settings["log_level"] == {
        "name": "log_level",
        "value": "WARNING",
        "from": f"in {busy_home / 'orderpipe.toml'}",
    }
    assert settings["watch.poll_interval"]["from"] == "from ORDERPIPE_WATCH_POLL_INTERVAL"
    assert settings["watch.poll_interval"]["value"] == 2.0
    assert settings["input.grain"] == {"name": "input.grain", "value": "order", "from": "default"}
    assert "s3cret" not in result.output and "pw@" not in result.output  # a URL's secrets stay hidden


def test_status_for_a_person(busy_home: Path) -> None:
    result = status(busy_home)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "waiting    1 in input/: waiting.csv" in lines
    assert "rejected   1 in rejected/: bad.csv" in lines
    assert "kpis       3 dates, 2025-07-01 to 2025-07-09" in lines
    assert any(line.startswith("failed     1: ffffffff broken.csv") for line in lines)
    assert any(line.startswith("stranded   1: eeeeeeee halfway.csv") for line in lines)
    assert f"  log_level = 'WARNING'  (in {busy_home / 'orderpipe.toml'})" in lines


def test_status_changes_nothing(busy_home: Path) -> None:
    before = tree(busy_home)
    assert status(busy_home).exit_code == 0
    assert tree(busy_home) == before


def test_status_of_a_missing_home_says_so(tmp_path: Path) -> None:
    result = status(tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "no orderpipe home at" in result.output
    assert not (tmp_path / "nowhere").exists()


def test_status_on_s3_and_dynamodb(aws_env: dict[str, str], home: Path, tmp_path: Path) -> None:
    pipeline = open_pipeline(load_settings(home, environ=aws_env))
    pipeline.store.put_file(write(tmp_path / "a.csv", [order("O1")]), "input/a.csv")
    pipeline.process("input/a.csv")
    pipeline.store.put_file(write(tmp_path / "b.csv", [order("O2")]), "input/b.csv")  # waits
    found = json.loads(status(home, "--format", "json", env=aws_env).output)
    assert found["home"] == f"s3://{aws_env['ORDERPIPE_AWS_BUCKET']}" and found["backend"] == "aws"
    assert found["waiting"] == {"count": 1, "files": ["b.csv"]}
    assert found["kpis"]["newest_date"] == "2025-07-06"
    assert found["sizes"]["processed"] == {"objects": 1}  # no bytes: a request per object on S3
    assert found["settings_recorded"] is True
