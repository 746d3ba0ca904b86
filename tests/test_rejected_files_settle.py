"""Rejected files settle: a replay leaves alone a file that would be rejected again (same bytes,
same settings), and a person can set a rejected file aside (`orderpipe dismiss`): it moves to
dismissed/ with its report, the history says dismissed, and no replay counts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orderpipe.bootstrap import open_pipeline
from orderpipe.cli import main
from orderpipe.config import load_settings
from tests.conftest import order, write
from tests.test_crash import orderpipe


def cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)


def history(home: Path) -> list[tuple[str, str]]:
    runs = [json.loads(line) for line in cli(home, "batches", "--format", "jsonl").output.splitlines()]
    return [(r["status"], r["file"]) for r in runs]


@pytest.fixture
def rejected(home: Path, tmp_path: Path) -> Path:
    """A home with one file rejected for a category it does not allow."""
    bad = write(tmp_path / "gadgets.csv", [order("O1", category="Gadgets"), order("O2")])
    assert cli(home, "run", str(bad)).exit_code == 1
    return home


def test_a_replay_leaves_an_unchanged_rejected_file_alone(rejected: Path) -> None:
    for _ in range(3):
        again = cli(rejected, "replay", "--rejected")
        assert again.exit_code == 1  # still rejected
        assert "unchanged  rejected/gadgets.csv  rejected before with these bytes and settings" in again.output
        assert "orderpipe dismiss " in again.output
    assert history(rejected) == [("rejected", "gadgets.csv")]  # the history did not grow
    assert (rejected / "rejected" / "gadgets.csv").exists()


def test_new_settings_replay_it(rejected: Path) -> None:
    (rejected / "orderpipe.toml").write_text('categories = ["Electronics", "Gadgets"]\n')
    assert cli(rejected, "replay", "--rejected").exit_code == 0
    assert history(rejected) == [("rejected", "gadgets.csv"), ("accepted", "gadgets.csv")]


def test_new_bytes_replay_it(rejected: Path) -> None:
    quarantined = rejected / "rejected" / "gadgets.csv"
    quarantined.write_text(quarantined.read_text().replace("Gadgets", "Electronics"))  # fixed where it lies
    assert cli(rejected, "replay", "--rejected").exit_code == 0
    assert history(rejected)[-1] == ("accepted", "gadgets.csv")


def test_a_report_from_before_is_replayed(rejected: Path) -> None:
    report = rejected / "rejected" / "gadgets.csv.report.json"
    body = json.loads(report.read_text())
    del body["checked_with"]  # written by an older orderpipe
    report.write_text(json.dumps(body))
    assert cli(rejected, "replay", "--rejected").exit_code == 1
    assert history(rejected) == [("rejected", "gadgets.csv"), ("rejected", "gadgets.csv")]


def test_a_failed_file_is_always_replayed(home: Path, tmp_path: Path) -> None:
    pipeline = open_pipeline(load_settings(home, environ={}))
    pipeline.store.put_file(write(tmp_path / "f.csv", [order("O1")]), "input/f.csv")
    key = pipeline.archive.quarantine_failed("input/f.csv", "f.csv", "a" * 64, "disk full")
    assert key and not pipeline.unchanged_since_rejected(key)


def test_dismiss_sets_a_rejected_file_aside(rejected: Path) -> None:
    [(batch_id, _)] = [(r.batch_id, r) for r in open_pipeline(load_settings(rejected, environ={})).ledger.runs()]
    result = cli(rejected, "dismiss", batch_id[:12])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("dismissed gadgets.csv  set aside in dismissed/gadgets.csv")
    assert sorted(p.name for p in (rejected / "dismissed").iterdir()) == ["gadgets.csv", "gadgets.csv.report.json"]
    assert not list((rejected / "rejected").iterdir())
    assert history(rejected) == [("rejected", "gadgets.csv"), ("dismissed", "gadgets.csv")]
    assert cli(rejected, "replay", "--rejected").exit_code == 2  # nothing left to replay
    assert json.loads(cli(rejected, "status", "--format", "json").output)["rejected"]["count"] == 0
    again = cli(rejected, "dismiss", batch_id[:12])
    assert again.exit_code == 2 and "no rejected file for batch" in again.output


def test_two_files_of_one_name_dismissed_keep_both(rejected: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "gadgets.csv", [order("O9", category="Gadgets")])
    assert cli(rejected, "run", str(other)).exit_code == 1
    for run in open_pipeline(load_settings(rejected, environ={})).ledger.runs():
        assert cli(rejected, "dismiss", run.batch_id[:12]).exit_code == 0
    kept = sorted(p.name for p in (rejected / "dismissed").iterdir() if not p.name.endswith(".report.json"))
    assert len(kept) == 2 and "gadgets.csv" in kept


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["dismiss-recorded", "dismiss-report-copied", "dismiss-file-moved"])
def test_a_dismiss_killed_anywhere_finishes_when_run_again(crash: str, rejected: Path) -> None:
    [run] = open_pipeline(load_settings(rejected, environ={})).ledger.runs()
    killed = orderpipe(rejected, "dismiss", run.batch_id[:12], crash=crash)
    assert killed.returncode != 0
    rerun = orderpipe(rejected, "dismiss", run.batch_id[:12])
    assert rerun.returncode in (0, 2), rerun.stderr  # 2: the file had already left rejected/
    assert (rejected / "dismissed" / "gadgets.csv").exists()
    assert not list((rejected / "rejected").iterdir())  # neither the file nor its report
    assert [status for status, _ in history(rejected)] == ["rejected", "dismissed"]


def test_the_api_lists_dismissed_files(rejected: Path) -> None:
    import httpx

    from orderpipe.bootstrap import open_reader
    from orderpipe.web.app import create_app
    from tests.web.conftest import running

    [run] = open_pipeline(load_settings(rejected, environ={})).ledger.runs()
    assert cli(rejected, "dismiss", run.batch_id[:12]).exit_code == 0
    settings = load_settings(rejected, environ={})
    with running(create_app(lambda: open_reader(settings))) as url:
        answer = httpx.get(url + "/api/batches", params={"status": "dismissed"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert [(r["status"], r["file"]) for r in answer.json()["runs"]] == [("dismissed", "gadgets.csv")]
