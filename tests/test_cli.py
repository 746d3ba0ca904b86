"""The command line as users call it: exit codes and exact output."""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from orderpipe.cli import main
from tests.conftest import HEADER, REPO, order, write


@pytest.fixture
def cli(home: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(main, ["--home", str(home), *args], env=env, input=input, catch_exceptions=False)

    return invoke


def test_run_prints_one_line_per_file_and_exits_by_outcome(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = write(tmp_path / "good.csv", [order("O1", price="199.99", quantity="2")])
    bad = write(tmp_path / "bad.csv", [order("O2", quantity="0")])
    result = cli("run", str(good), str(bad))
    assert result.exit_code == 1
    assert without_times(result.stdout).splitlines() == [
        "accepted  good.csv  1 row  2025-07-06  T",
        f"rejected  bad.csv  1 row  not-positive at line 2 (quantity): quantity must be greater than 0, got '0'  T  "
        f"report: {home}/rejected/bad.csv.report.json",
    ]
    again = cli("run", str(good))
    assert again.exit_code == 0
    assert without_times(again.stdout) == "duplicate good.csv  1 row  same bytes as good.csv (batch f344cab3ee79)  T\n"


def without_times(text: str) -> str:
    """Each file's processing time (`0.03 s`, `12.4 s`, `2 min 05 s`) as `T`."""
    return re.sub(r"(?<=  )(?:[0-9]+ min [0-9]{2}|[0-9]+\.[0-9]+) s\b", "T", text)


def test_run_usage_and_configuration_errors_exit_2(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("run", str(tmp_path / "nope.csv")).exit_code == 2
    home.mkdir(parents=True)
    (home / "orderpipe.toml").write_text("categries = ['Books']\n")
    result = cli("run", str(write(tmp_path / "a.csv", [order()])))
    assert result.exit_code == 2
    assert "unknown setting 'categries'" in result.stderr


def test_infrastructure_failure_exits_3(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home.mkdir(parents=True)
    (home / "orderpipe.db").symlink_to("/dev/null/no-such-folder/orderpipe.db")  # SQLite cannot open it
    result = cli("run", str(write(tmp_path / "a.csv", [order()])))
    assert result.exit_code == 3
    assert "cannot open the database" in result.stderr


def test_kpis_json_csv_and_table(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [
        order("ORD123", "CUST001", "2025-07-06", "Electronics", "P1", "2", "199.99", "false"),
        order("ORD124", "CUST002", "2025-07-06", "Books", "P2", "1", "29.99", "true"),
        order("ORD125", "CUST001", "2025-07-07", "Books", "P2", "3", "10.10", "false"),
    ]
    assert cli("run", str(write(tmp_path / "o.csv", rows))).exit_code == 0
    result = cli("kpis", "daily", "--format", "json")
    assert json.loads(result.stdout) == [
        {
            "order_date": "2025-07-06",
            "total_orders": 2,
            "total_revenue": 429.97,
            "total_items_sold": 3,
            "return_rate": 0.5,
            "unique_customers": 2,
            "returned_orders": 1,
        },
        {
            "order_date": "2025-07-07",
            "total_orders": 1,
            "total_revenue": 30.3,
            "total_items_sold": 3,
            "return_rate": 0.0,
            "unique_customers": 1,
            "returned_orders": 0,
        },
    ]
    assert '"total_revenue": 30.30' in result.stdout  # two decimals, as written
    electronics = cli("kpis", "category", "Electronics", "--format", "csv")
    assert electronics.stdout == (
        "category,order_date,daily_revenue,avg_order_value,avg_return_rate,orders,returned_orders\n"
        "Electronics,2025-07-06,399.98,399.98,0.000000,1,0\n"
    )
    ranged = cli("kpis", "category", "--from", "2025-07-07", "--to", "2025-07-07")
    assert ranged.stdout.splitlines()[2].split() == ["Books", "2025-07-07", "30.30", "30.30", "0.000000", "1"]
    assert cli("kpis", "daily", "--from", "07/06/2025").exit_code == 2


def test_validate_prints_the_report_and_changes_nothing(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = write(tmp_path / "bad.csv", [order("O1"), order("O1", date="2025-02-30")])
    result = cli("validate", str(bad), "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "invalid"
    assert {e["code"]: e["samples"][0]["line"] for e in report["errors"]} == {
        "invalid-date": 3,
        "duplicate-order-id": 3,
    }
    table = cli("validate", str(bad))
    assert "line 3 [order_date]: '2025-02-30' is not a real calendar date" in table.stdout
    assert not (home / "input").exists()


def test_batches_shows_the_run_history(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = write(tmp_path / "good.csv", [order("O1"), order("O2", date="2025-07-08")])
    cli("run", str(good))
    cli("run", str(write(tmp_path / "bad.csv", [order("O3", returned="maybe")])))
    history = json.loads(cli("batches", "--format", "json").stdout)
    assert [(h["file"], h["status"], h["rows"], h["dates"]) for h in history] == [
        ("good.csv", "accepted", 2, ["2025-07-06", "2025-07-08"]),
        ("bad.csv", "rejected", 1, []),
    ]


def test_replay_rejected_after_config_change(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("run", str(write(tmp_path / "garden.csv", [order("O1", category="Garden")])))
    assert cli("replay", "--rejected").exit_code == 1  # still not allowed
    (home / "orderpipe.toml").write_text('categories = ["Garden", "Books"]\n')
    result = cli("replay", "--rejected")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("accepted  garden.csv")
    assert cli("replay", "--rejected").exit_code == 2  # nothing left to replay


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()

    def walk(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
        found = []
        for name, command in group.commands.items():
            found.append((f"{prefix} {name}", command))
            if isinstance(command, click.Group):
                found += walk(command, f"{prefix} {name}")
        return found

    commands = walk(main, "orderpipe")
    assert len(commands) >= 8
    for name, command in commands:
        assert command.help, name
        assert f"`{name}" in readme, f"{name} is not documented in README.md"


def test_a_data_problem_never_shows_a_traceback(home: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(256)) * 50)
    result = subprocess.run(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "run", str(garbage)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "csv-error" in result.stdout and "line 1: NUL byte" in result.stdout


def test_home_is_accepted_after_the_subcommand_and_wins(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    good = write(tmp_path / "good.csv", [order("O1", price="5.00")])
    decoy = tmp_path / "decoy"
    result = runner.invoke(main, ["--home", str(decoy), "run", "--home", str(home), str(good)], env={})
    assert result.exit_code == 0, result.output
    assert (home / "processed" / "good.csv").exists() and not decoy.exists()
    daily = runner.invoke(main, ["kpis", "daily", "--home", str(home), "--format", "csv"], env={})
    assert daily.stdout.splitlines()[1].startswith("2025-07-06,1,5.00")
    grouped = runner.invoke(main, ["kpis", "--home", str(home), "category", "Electronics", "--format", "csv"], env={})
    assert grouped.stdout.splitlines()[1].startswith("Electronics,2025-07-06,5.00")
    history = runner.invoke(main, ["batches", "--home", str(home), "--format", "json"], env={})
    assert json.loads(history.stdout)[0]["file"] == "good.csv"


def test_every_command_takes_the_global_options() -> None:
    def walk(command: click.Command) -> list[click.Command]:
        found = [command]
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                found += walk(sub)
        return found

    for command in walk(main):
        assert "--home" in [o for p in command.params for o in p.opts], command.name


@pytest.mark.parametrize("command", [["kpis", "daily"], ["kpis", "category"], ["kpis", "category", "Books"]])
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("20250701", "is not a date in YYYY-MM-DD form"),
        ("2025-W27-1", "is not a date in YYYY-MM-DD form"),
        ("2025-07-01T00:00", "is not a date in YYYY-MM-DD form"),
        ("２０２５-07-01", "is not a date in YYYY-MM-DD form"),
        ("2025-7-1", "is not a date in YYYY-MM-DD form"),
        ("2025-02-30", "is not a real calendar date"),
    ],
)
def test_dates_must_be_yyyy_mm_dd(cli, command: list[str], value: str, why: str) -> None:  # type: ignore[no-untyped-def]
    for option in ("--from", "--to"):
        result = cli(*command, option, value)
        assert result.exit_code == 2
        assert why in result.stderr and option in result.stderr


@pytest.mark.parametrize("command", [["kpis", "daily"], ["kpis", "category"], ["kpis", "category", "Books"]])
def test_from_after_to_is_a_usage_error(cli, home: Path, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    home.mkdir()
    result = cli(*command, "--from", "2025-07-08", "--to", "2025-07-01")
    assert result.exit_code == 2
    assert "--from 2025-07-08 is after --to 2025-07-01" in result.stderr
    assert cli(*command, "--from", "2025-07-08", "--to", "2025-07-08").exit_code == 0


def test_unknown_category_name_gets_a_hint(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("run", str(write(tmp_path / "o.csv", [order("O1", category="Books")])))
    wrong_case = cli("kpis", "category", "books")
    assert wrong_case.exit_code == 2
    assert "'books' is not a configured category (did you mean 'Books'?" in wrong_case.stderr
    assert wrong_case.stdout == ""
    typo = cli("kpis", "category", "Electronix")
    assert typo.exit_code == 2 and "did you mean 'Electronics'?" in typo.stderr
    unknown = cli("kpis", "category", "Garden")
    assert unknown.exit_code == 2
    assert "'Garden' is not a configured category; configured: Electronics, Books" in unknown.stderr
    empty = cli("kpis", "category", "Home")  # configured, no rows yet
    assert empty.exit_code == 0 and "(no rows)" in empty.stdout
    (home / "orderpipe.toml").write_text('categories = ["Garden"]\n')  # Books no longer allowed: its rows remain
    kept = cli("kpis", "category", "Books", "--format", "csv")
    assert kept.exit_code == 0 and kept.stdout.splitlines()[1].startswith("Books,2025-07-06")


READS = (["kpis", "daily"], ["kpis", "category"], ["kpis", "category", "Books"], ["batches"])


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and mtime: any write shows up here."""
    import gc

    gc.collect()  # pipelines of earlier in-process runs remove their scratch folders when collected
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("command", READS)
def test_reading_a_missing_home_is_exit_2_and_creates_nothing(cli, home: Path, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = cli(*command)
    assert result.exit_code == 2
    assert f"no orderpipe home at {home}: run `orderpipe run FILE` to create one" in result.stderr
    assert not home.exists()


def orderpipe(*args: str) -> subprocess.CompletedProcess[str]:
    """A separate process: when it ends, every file and connection it had is closed."""
    return subprocess.run([sys.executable, "-m", "orderpipe", *args], capture_output=True, text=True, check=False)


def test_read_commands_write_nothing(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    books = write(tmp_path / "b.csv", [order("O1", category="Books", price="3.00")])
    assert orderpipe("--home", str(home), "run", str(books)).returncode == 0
    before = listing(home)
    assert not any(name.endswith(("-wal", "-shm")) for name in before)
    for command in READS:
        assert cli(*command).exit_code == 0, command
    assert cli("validate", str(books)).exit_code == 0
    assert listing(home) == before


def test_reads_see_what_a_live_writer_has_not_checkpointed(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    cli("run", str(write(tmp_path / "a.csv", [order("O1", category="Books", price="3.00")])))
    writer = sqlite3.connect(home / "orderpipe.db", isolation_level=None)  # keeps the WAL alive, like `watch`
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        assert cli("run", str(write(tmp_path / "b.csv", [order("O2", date="2025-07-09")]))).exit_code == 0
        assert (home / "orderpipe.db-wal").stat().st_size > 0
        names = set(listing(home))
        daily = cli("kpis", "daily", "--format", "csv")
        assert [line.split(",")[0] for line in daily.stdout.splitlines()[1:]] == ["2025-07-06", "2025-07-09"]
        assert set(listing(home)) == names
    finally:
        writer.close()


def test_a_home_without_a_database_reads_as_empty(cli, home: Path) -> None:  # type: ignore[no-untyped-def]
    home.mkdir()
    (home / "orderpipe.toml").write_text('categories = ["Books"]\n')
    for command in READS:
        result = cli(*command)
        assert result.exit_code == 0 and "(no rows)" in result.stdout, command
    assert [p.name for p in home.iterdir()] == ["orderpipe.toml"]


def test_read_commands_work_on_a_read_only_home(home: Path, tmp_path: Path) -> None:
    """A read-only bind mount, because root (as in CI containers) ignores file permissions."""
    books = write(tmp_path / "b.csv", [order("O1", category="Books", price="3.00")])
    runner = CliRunner()
    assert orderpipe("--home", str(home), "run", str(books)).returncode == 0
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(home), str(home)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {mounted.stderr.decode().strip()}")
    try:
        assert subprocess.run(["touch", str(home / "probe")], capture_output=True, check=False).returncode != 0
        for command in READS:
            result = runner.invoke(main, [*command, "--home", str(home), "--format", "csv"], env={})
            assert result.exit_code == 0, (command, result.output)
            assert "2025-07-06" in result.stdout
        assert runner.invoke(main, ["--home", str(home), "validate", str(books)], env={}).exit_code == 0
    finally:
        gc.collect()  # close the read connections, or the mount stays busy
        subprocess.run(["umount", "-l", str(home)], check=True)


# -- Ctrl-C ------------------------------------------------------------------------------------
INTERRUPTED = (
    "orderpipe: interrupted; nothing is lost (every step is safe to repeat): run the same command again to finish it"
)


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orderpipe", "--home", str(home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")}
        | {"ORDERPIPE_WATCH_POLL_INTERVAL": "0.1"},
    )


def human_lines(stderr: str) -> list[str]:
    """stderr without the JSON log lines."""
    return [line for line in stderr.splitlines() if not line.startswith("{")]


def next_human_line(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    while (line := process.stderr.readline()).startswith("{"):
        pass
    return line


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def many_files(folder: Path, count: int) -> list[str]:
    folder.mkdir()
    return [
        str(write(folder / f"f{n:02d}.csv", [order(f"O{n}", f"C{n % 7}", f"2025-07-{n % 5 + 1:02d}", price=f"{n}.25")]))
        for n in range(count)
    ]


def test_ctrl_c_during_run_exits_130_and_running_again_finishes(home: Path, tmp_path: Path) -> None:
    files = many_files(tmp_path / "files", 40)
    process = start(home, "run", *files)
    assert process.stdout is not None
    first = process.stdout.readline()  # one file done: the run is well under way
    assert first.startswith("accepted")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 130
    assert human_lines(err) == [INTERRUPTED]
    assert 1 + len(out.splitlines()) < len(files), "the interrupt came too late to test anything"
    again = orderpipe("--home", str(home), "run", *files)
    assert again.returncode == 0, again.stderr
    reference = tmp_path / "reference"
    assert orderpipe("--home", str(reference), "run", *files).returncode == 0
    for read in (["kpis", "daily"], ["kpis", "category"]):
        expected = orderpipe("--home", str(reference), *read, "--format", "json").stdout
        assert orderpipe("--home", str(home), *read, "--format", "json").stdout == expected
    assert len(json.loads(expected)) == 5 * 1  # every file's category, on its date


def test_ctrl_c_is_not_ignored_while_waiting_for_the_database(home: Path, tmp_path: Path) -> None:
    """Waiting for a lock happens inside SQLite, where Python cannot run its signal handler."""
    import sqlite3

    assert orderpipe("--home", str(home), "run", *many_files(tmp_path / "first", 1)).returncode == 0
    blocker = sqlite3.connect(home / "orderpipe.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        late = write(tmp_path / "late.csv", [order("L1", date="2025-07-20")])
        process = start(home, "run", str(late))
        wait_for((home / "input" / "late.csv").exists, process)  # submitted; then it waits to commit
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        began = time.monotonic()
        _, err = process.communicate(timeout=10)
        assert time.monotonic() - began < 5
        assert process.returncode == 130
        assert human_lines(err) == [INTERRUPTED]
    finally:
        blocker.rollback()
        blocker.close()
    again = orderpipe("--home", str(home), "run", str(late))
    assert again.returncode == 0 and again.stdout.startswith("accepted  late.csv")


def test_watch_says_at_once_that_it_is_stopping_and_a_second_ctrl_c_exits_130(home: Path, tmp_path: Path) -> None:
    import sqlite3

    assert orderpipe("--home", str(home), "run", *many_files(tmp_path / "first", 1)).returncode == 0
    blocker = sqlite3.connect(home / "orderpipe.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the file in flight cannot finish until this ends
    try:
        write(home / "input" / "stuck.csv", [order("S1", date="2025-07-21")])
        process = start(home, "watch")
        assert process.stderr is not None
        line = process.stderr.readline()
        time.sleep(2.5)  # the file settles after one poll, then waits to commit
        process.send_signal(signal.SIGINT)
        assert line == "watching " + str(home / "input") + " with 1 worker(s); Ctrl-C to stop\n"
        began = time.monotonic()
        assert next_human_line(process).startswith("orderpipe: stopping after the file(s) in flight…")
        assert time.monotonic() - began < 1
        time.sleep(0.5)
        assert process.poll() is None  # still finishing the file in flight
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
        assert process.returncode == 130
        assert human_lines(err) == [INTERRUPTED]
    finally:
        blocker.rollback()
        blocker.close()
    assert (home / "input" / "stuck.csv").exists()  # nothing lost: it waits for the next run
    again = orderpipe("--home", str(home), "run", str(tmp_path / "first" / "f00.csv"))
    assert again.returncode == 0


def test_watch_stops_cleanly_after_one_ctrl_c(home: Path) -> None:
    home.mkdir()
    process = start(home, "watch")
    assert process.stderr is not None
    assert process.stderr.readline().startswith("watching")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert human_lines(err)[0].startswith("orderpipe: stopping after the file(s) in flight…")


def test_serve_says_it_stopped_and_a_reading_command_that_it_changed_nothing(home: Path, tmp_path: Path) -> None:
    """Neither has anything to finish: neither tells the user to run it again. The stop comes
    right after the announcement, before the server runs (three times each: it once printed a
    never-awaited warning or an event loop's half-made teardown about one time in three)."""
    home.mkdir()
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)) * 3:
        process = start(home, "serve", "--port", "0")
        assert process.stdout is not None
        assert process.stdout.readline().startswith("serving the dashboard of")
        process.send_signal(sig)
        _, err = process.communicate(timeout=10)
        assert process.returncode == code
        assert human_lines(err) == ["orderpipe: stopped serving the dashboard and its API"]
    reading = subprocess.Popen(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "validate", "-"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")},
    )
    assert reading.stdin is not None
    reading.stdin.write(HEADER + "\n")
    reading.stdin.flush()
    time.sleep(2)  # started, and waiting for the rest of standard input
    reading.send_signal(signal.SIGINT)
    _, err = reading.communicate(timeout=10)
    assert reading.returncode == 130
    assert human_lines(err) == ["orderpipe: interrupted; nothing was changed (this command only reads)"]


def test_ctrl_c_while_the_command_is_still_loading_is_quiet(tmp_path: Path) -> None:
    """The first moments go to importing Polars and click: a Ctrl-C there is exit 130 too, with
    one line, wherever in the imports it lands (one that lands in an import callback is not
    swallowed)."""
    data = write(tmp_path / "orders.csv", [order("O1")])
    landed = 0
    for delay in (0.15, 0.1, 0.2, 0.07, 0.3, 0.05, 0.12, 0.25, 0.09, 0.18):
        process = subprocess.Popen(
            [sys.executable, "-m", "orderpipe", "-q", "--home", str(tmp_path / "h"), "run", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # As from a terminal: a test run started in the background of a script inherits
            # SIGINT ignored, and Python keeps ignoring it until the command sets a handler.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        time.sleep(delay)  # past the interpreter's own start-up, inside the imports
        if process.poll() is not None:  # finished first: nothing to interrupt
            process.communicate()
            continue
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        if process.returncode == -signal.SIGINT:  # too early for Python to have a handler
            continue
        landed += 1
        assert process.returncode == 130, err
        assert "Traceback" not in err and "Exception ignored" not in err and err.count("\n") == 1, err
    assert landed, "no Ctrl-C landed while the command was loading"


# -- the smaller points of the command line ------------------------------------------------------
def test_every_command_takes_quiet_verbose_and_log_format() -> None:
    def walk(command: click.Command) -> list[click.Command]:
        found = [command]
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                found += walk(sub)
        return found

    for command in walk(main):
        options = {o for p in command.params for o in p.opts}
        assert {"-q", "--quiet", "-v", "--verbose", "--log-format"} <= options, command.name


def test_every_command_help_shows_an_example() -> None:
    runner = CliRunner()
    for path in (
        ["run"],
        ["watch"],
        ["validate"],
        ["kpis", "daily"],
        ["kpis", "category"],
        ["kpis", "rebuild"],
        ["batches"],
        ["replay"],
    ):
        text = runner.invoke(main, [*path, "--help"]).stdout
        assert re.search(r"Examples:\n +orderpipe " + " ".join(path), text), path


def test_validate_reads_standard_input(cli) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import csv_text

    result = cli("validate", "-", input=csv_text([order("O1")]))
    assert (result.exit_code, result.stdout) == (0, "stdin: valid, 1 row\n")
    bad = cli("validate", "-", input=csv_text([order("O1", quantity="x")]))
    assert bad.exit_code == 1 and bad.stdout.startswith("stdin: invalid, 1 row\n")


def test_validate_reads_a_named_pipe_once(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A pipe (`orderpipe validate <(gunzip -c f.gz)`) can be read only once: by the exact
    validator, not by the fast path, which reads a file more than once."""
    import os
    import threading

    from tests.conftest import csv_text

    pipe = tmp_path / "orders.csv"
    os.mkfifo(pipe)
    writer = threading.Thread(target=pipe.write_text, args=(csv_text([order("O1"), order("O2")]),))
    writer.start()
    result = cli("validate", str(pipe))
    writer.join()
    assert (result.exit_code, result.stdout) == (0, "orders.csv: valid, 2 rows\n")


def test_validate_reads_a_quoted_file_on_the_fast_path(cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`validate FILE` takes `run`'s fast path, quoted fields and CRLF included."""
    import orderpipe.ingest as ingest

    monkeypatch.setattr(ingest, "validate", lambda *a, **k: pytest.fail("the exact validator read the file"))
    quoted = tmp_path / "quoted.csv"
    rows = [",".join(f'"{v}"' for v in line.split(",")) for line in [HEADER, order("O1"), order("O2")]]
    quoted.write_text("\r\n".join(rows) + "\r\n")
    result = cli("validate", str(quoted))
    assert (result.exit_code, result.stdout) == (0, "quoted.csv: valid, 2 rows\n")


def test_header_errors_do_not_claim_zero_rows_and_name_the_separator(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    semicolons = write(tmp_path / "semi.csv", [order("O1").replace(",", ";")], header=HEADER.replace(",", ";"))
    result = cli("validate", str(semicolons))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:2] == [
        "semi.csv: invalid",
        "  the file seems to be separated by ';', not commas",
    ]
    run = cli("run", str(semicolons))
    assert "rejected  semi.csv  the file seems to be separated by ';', not commas  " in run.stdout


def test_run_on_a_directory_says_so(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", str(tmp_path))
    assert result.exit_code == 2
    assert f"orderpipe: {tmp_path} is a directory: give its files, e.g. {tmp_path}/*.csv" in result.stderr


def test_replay_of_an_accepted_batch_says_already_accepted(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = write(tmp_path / "good.csv", [order("O1")])
    result = cli("run", "--format", "jsonl", str(good))
    batch = json.loads(result.stdout)["batch_id"]
    replayed = cli("replay", batch[:8])
    assert replayed.exit_code == 0
    assert f"batch {batch[:8]} (good.csv) is already accepted; nothing to replay" in replayed.stderr


def test_kpis_and_batches_in_json_lines_and_wide(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("run", str(write(tmp_path / "a.csv", [order("O1"), order("O2", date="2025-07-07")])))
    daily = cli("kpis", "daily", "--format", "jsonl")
    assert [json.loads(line)["order_date"] for line in daily.stdout.splitlines()] == ["2025-07-06", "2025-07-07"]
    history = cli("batches", "--format", "jsonl")
    assert [json.loads(line)["status"] for line in history.stdout.splitlines()] == ["accepted"]
    assert cli("kpis", "daily", "--wide").stdout.split()[:2] == ["order_date", "total_orders"]
    assert cli("kpis", "daily").stdout.split()[:2] == ["date", "orders"]
    assert cli("batches", "--wide").stdout.split()[:3] == ["batch_id", "seq", "file"]
    assert cli("batches").stdout.split()[:3] == ["batch", "file", "status"]
    assert cli("kpis", "daily", "--format", "jsonl", "--from", "2030-01-01").stdout == ""


def test_kpis_rebuild_recomputes_the_stored_kpis(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    cli("run", str(write(tmp_path / "a.csv", [order("O1", price="5.00"), order("O2", date="2025-07-07")])))
    before = cli("kpis", "daily", "--format", "csv").stdout
    with sqlite3.connect(home / "orderpipe.db") as db:  # what an older formula would have stored
        db.execute("UPDATE order_kpis SET total_orders = 99")
    assert cli("kpis", "daily", "--format", "csv").stdout != before
    result = cli("kpis", "rebuild", "--from", "2025-07-07")
    assert (result.exit_code, result.stdout) == (0, "recomputed the KPIs of 1 date (2025-07-07)\n")
    assert cli("kpis", "daily", "--format", "csv").stdout.splitlines()[2] == before.splitlines()[2]
    assert cli("kpis", "rebuild").stdout == "recomputed the KPIs of 2 dates (2025-07-06…2025-07-07)\n"
    assert cli("kpis", "daily", "--format", "csv").stdout == before


def test_quiet_validate_prints_nothing_for_a_valid_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = write(tmp_path / "good.csv", [order("O1")])
    assert cli("validate", "-q", str(good)).stdout == ""
    assert cli("validate", "-q", str(write(tmp_path / "bad.csv", [order("O1", quantity="0")]))).stdout != ""


def test_a_run_never_imports_numpy(tmp_path: Path) -> None:
    """Polars imports numpy for a `Decimal` literal: 0.1 s per process, and BLAS threads that
    spin beside the work. A run, a rejected file and the KPI commands need none of it."""
    script = f"""
import sys
from orderpipe.cli import main
for args in (["run", {str(REPO / "data/sample/valid_order.csv")!r}, {str(REPO / "data/sample/invalid_order.csv")!r}],
             ["kpis", "daily"], ["kpis", "category"]):
    try:
        main(["--home", {str(tmp_path / "home")!r}, *args])
    except SystemExit:
        pass
print("numpy" in sys.modules, file=sys.stderr)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stderr.splitlines()[-1] == "False", done.stderr[-2000:]
    assert "2025-07-06" in done.stdout  # the KPIs were counted and shown


@pytest.mark.parametrize("table", ["daily", "category"])
def test_kpis_machine_formats_carry_every_field_the_api_serves(cli, home: Path, tmp_path: Path, table: str) -> None:  # type: ignore[no-untyped-def]
    """json, jsonl, csv and --wide: the API's fields, in its order, `returned_orders` included
    (what exact sums of return rates over many dates need)."""
    import csv
    import io

    import httpx

    from orderpipe.bootstrap import open_reader
    from orderpipe.config import load_settings
    from orderpipe.web.app import create_app
    from tests.web.conftest import running

    rows = [order("O1", returned="true"), order("O2", "C2", quantity="2"), order("O3", date="2025-07-07")]
    assert cli("run", str(write(tmp_path / "o.csv", rows))).exit_code == 0
    settings = load_settings(home, environ={})
    with running(create_app(lambda: open_reader(settings))) as url:
        answer = httpx.get(f"{url}/api/kpis/{table}", params={"from": "2025-07-01", "to": "2025-07-31"}).json()
    fields = [f["name"] for f in answer["fields"]]
    assert "returned_orders" in fields
    as_json = json.loads(cli("kpis", table, "--format", "json").stdout)
    assert [list(r) for r in as_json] == [fields] * len(answer["rows"])
    assert [r["returned_orders"] for r in as_json] == [r["returned_orders"] for r in answer["rows"]]
    assert 1 in [r["returned_orders"] for r in as_json]
    jsonl = [json.loads(line) for line in cli("kpis", table, "--format", "jsonl").stdout.splitlines()]
    assert jsonl == as_json
    parsed = list(csv.reader(io.StringIO(cli("kpis", table, "--format", "csv").stdout)))
    assert parsed[0] == fields and len(parsed) == len(as_json) + 1
    wide = cli("kpis", table, "--wide").stdout.splitlines()
    assert wide[0].split() == fields
    assert "returned_orders" not in cli("kpis", table).stdout  # the default table fits 80 columns


def test_a_ctrl_c_a_callback_swallows_still_ends_the_command_with_one_line() -> None:
    """Polars calls some Python code from Rust and only reports what it raises ("Exception
    ignored in …"): a Ctrl-C landing there would be lost and the command would go on. It ends
    the command at once, exit 130 and the one line; anything else a callback drops is reported
    as Python reports it."""
    script = (
        "import sys\n"
        "from orderpipe.cli import _Interrupts\n"
        "class Dropped:\n"
        "    def __del__(self): raise ZeroDivisionError('reported as usual')\n"
        "class Swallowing:\n"
        "    def __del__(self): raise KeyboardInterrupt\n"
        "with _Interrupts() as interrupts:\n"
        "    Dropped()\n"
        "    interrupts.code, interrupts._raised = 130, True  # a Ctrl-C came, its handler raised\n"
        "    Swallowing()\n"
        "    print('went on')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130 and "went on" not in done.stdout
    assert "ZeroDivisionError: reported as usual" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("orderpipe: interrupted; nothing is lost")
    assert "KeyboardInterrupt" not in done.stderr
