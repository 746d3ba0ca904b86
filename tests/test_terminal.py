"""What a person sees on an 80-column terminal (a pseudo-terminal), and what a script gets
from a pipe: exact lines, the progress bar drawn and then cleared, logs by destination."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

from orderpipe.progress import MIN_BYTES
from tests.conftest import REPO, csv_text, order, write

COLUMNS = 80


class Terminal:
    """A command whose stdin, stdout and stderr are one 80x24 pseudo-terminal."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, COLUMNS, 0, 0))
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_") and k != "COLUMNS"}
        environment |= {"TZ": "UTC", "ORDERPIPE_WATCH_POLL_INTERVAL": "0.1"} | (env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orderpipe", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environment,
            cwd=REPO,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.raw = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every end of the slave is closed
                return
            if not chunk:
                return
            self.raw += chunk

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.raw.decode(errors="replace"):
            assert time.monotonic() < deadline, f"timed out waiting for {text!r}: {self.raw!r}"
            time.sleep(0.05)

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        self._reader.join(10)
        os.close(self.master)
        return code

    @property
    def text(self) -> str:
        return self.raw.decode()

    @property
    def screen(self) -> list[str]:
        """The lines as the terminal shows them: carriage returns and erase-to-end applied."""
        lines: list[str] = []
        line: list[str] = []
        column = 0
        for token in re.findall(r"\x1b\[K|\r|\n|[^\r\n\x1b]", self.text):
            if token == "\r":
                column = 0
            elif token == "\n":
                lines.append("".join(line))
                line, column = [], 0
            elif token == "\x1b[K":
                del line[column:]
            else:
                line[column : column + 1] = [token]
                column += 1
        if line:
            lines.append("".join(line))
        return lines


def run_on_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, Terminal]:
    terminal = Terminal(*args, env=env)
    return terminal.finish(), terminal


def without_times(line: str) -> str:
    return re.sub(r"(?<=  )[0-9]+\.[0-9]+ s\b", "T", line)


def files(tmp_path: Path) -> tuple[Path, Path]:
    good = write(tmp_path / "good.csv", [order("O1", date="2025-07-06"), order("O2", date="2025-07-07")])
    bad = write(tmp_path / "bad.csv", [order("O3", quantity="0"), order("O4", returned="maybe")])
    return good, bad


def test_run_shows_one_line_per_file_and_no_log_lines(tmp_path: Path) -> None:
    good, bad = files(tmp_path)
    home = tmp_path / "home"
    code, terminal = run_on_terminal("--home", str(home), "run", str(good), str(bad))
    assert code == 1
    assert [without_times(line) for line in terminal.screen] == [
        "accepted  good.csv  2 rows  2025-07-06…2025-07-07  T",
        f"rejected  bad.csv  2 rows  not-positive at line 2 (quantity); 1 more kind of error  T  "
        f"report: {home}/rejected/bad.csv.report.json",
    ]
    assert "{" not in terminal.text  # no JSON log line on a terminal


def test_a_small_file_shows_no_bar(tmp_path: Path) -> None:
    rows = [order(f"O{n}", date=f"2025-07-{n % 3 + 1:02d}") for n in range(12)]
    small = write(tmp_path / "small.csv", rows)
    code, terminal = run_on_terminal("--home", str(tmp_path / "home"), "run", str(small))
    assert code == 0
    assert "\x1b" not in terminal.text  # nothing drawn, nothing erased
    assert [without_times(line) for line in terminal.screen] == [
        "accepted  small.csv  12 rows  2025-07-01…2025-07-03  T"
    ]


#: Over the bar's threshold (MIN_BYTES, 4 MB): ~5.8 MB. The quoted category sends it to the
#: exact validator, row by row (a second or more), so the bar has time to show its rate.
BIG_ROWS = 100_000


def big_file(path: Path, bad_last_row: bool = False) -> Path:
    rows = [
        f'O{n:09d},C{n % 5000:05d},2025-07-{n % 28 + 1:02d},"Books",P{n % 100:03d},1,12.50,false'
        for n in range(BIG_ROWS)
    ]
    # A quote inside an unquoted product id: Python's csv keeps it, Polars would not, so the
    # exact validator reads the file after the fast path (both steps draw the bar).
    rows[0] = rows[0].replace(",P000,", ',P"000,')
    if bad_last_row:
        rows[-1] = rows[-1].replace(",1,", ",0,")
    path.write_text(csv_text(rows), encoding="utf-8")
    assert path.stat().st_size > MIN_BYTES
    return path


#: A frame of the bar: a step, the bar, the percentage, the amount done of the total, a rate.
BAR = re.compile(r"^  [a-z ]+ \[[#.]+\] +[0-9]+%  [0-9.]+/[0-9.]+ MB  [0-9.]+ MB/s")


def frames(terminal: Terminal) -> list[str]:
    """Every line the bar drew (each `\\r…\\x1b[K`), in order."""
    return [frame for frame in re.findall(r"\r([^\r\n]*?)\x1b\[K", terminal.text) if frame]


def test_a_big_file_shows_a_bar_with_amount_and_rate_then_only_its_outcome(tmp_path: Path) -> None:
    big = big_file(tmp_path / "big.csv")
    began = time.monotonic()
    code, terminal = run_on_terminal("--home", str(tmp_path / "home"), "run", str(big))
    seconds = time.monotonic() - began
    assert code == 0, terminal.text
    drawn = frames(terminal)
    assert any(BAR.match(frame) and frame.endswith(" s left") for frame in drawn), drawn
    assert any(frame.startswith("  validating [") for frame in drawn)  # the exact validator's bytes
    assert all(len(frame) < COLUMNS for frame in drawn)
    assert len(drawn) <= 10 * seconds + 2  # at most ~10 frames a second
    # Erased when the file is done: the outcome line stands alone.
    assert [without_times(line) for line in terminal.screen] == [
        f"accepted  big.csv  {BIG_ROWS} rows  2025-07-01…2025-07-28  T"
    ]


def test_a_big_file_gets_no_bar_in_a_pipe_nor_with_quiet(tmp_path: Path) -> None:
    big = big_file(tmp_path / "big.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")}
    result = subprocess.run(
        [sys.executable, "-m", "orderpipe", "--home", str(tmp_path / "home"), "run", str(big)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0
    assert [line[:20] for line in result.stdout.splitlines()] == ["accepted  big.csv  1"]
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    assert [json.loads(line)["message"] for line in result.stderr.splitlines()] == ["batch.accepted"]
    bad = big_file(tmp_path / "bad.csv", bad_last_row=True)
    code, terminal = run_on_terminal("--home", str(tmp_path / "home"), "run", "-q", str(big), str(bad))
    assert code == 1
    assert "\x1b" not in terminal.text
    assert [line[:44] for line in terminal.screen] == [f"rejected  bad.csv  {BIG_ROWS} rows  not-positive"]


def test_validate_shows_the_bar_then_only_the_report(tmp_path: Path) -> None:
    big = big_file(tmp_path / "big.csv")
    code, terminal = run_on_terminal("--home", str(tmp_path / "home"), "validate", str(big))
    assert code == 0
    assert any(BAR.match(frame) and frame.startswith("  validating [") for frame in frames(terminal))
    assert terminal.screen == [f"big.csv: valid, {BIG_ROWS} rows"]


def test_watch_shows_the_bar_of_a_big_file_then_its_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "input").mkdir(parents=True)
    big_file(home / "input" / "big.csv")
    terminal = Terminal("--home", str(home), "watch", env={"ORDERPIPE_WATCH_SETTLE_TIME": "0"})
    terminal.wait_for("accepted  big.csv")
    time.sleep(0.3)
    os.killpg(terminal.process.pid, signal.SIGINT)
    assert terminal.finish() == 0
    assert any(BAR.match(frame) for frame in frames(terminal))
    assert [without_times(line) for line in terminal.screen] == [
        f"watching {home / 'input'} with 1 worker(s); Ctrl-C to stop",
        f"accepted  big.csv  {BIG_ROWS} rows  2025-07-01…2025-07-28  T",
        "orderpipe: stopping after the file(s) in flight… (Ctrl-C again to stop at once; nothing is lost either way)",
    ]


def test_quiet_shows_only_problems(tmp_path: Path) -> None:
    good, bad = files(tmp_path)
    code, terminal = run_on_terminal("--home", str(tmp_path / "home"), "run", "-q", str(good), str(bad))
    assert code == 1
    assert [line[:17] for line in terminal.screen] == ["rejected  bad.csv"]
    assert "validating" not in terminal.text


def test_json_logs_on_a_terminal_when_asked(tmp_path: Path) -> None:
    good, _ = files(tmp_path)
    code, terminal = run_on_terminal("--home", str(tmp_path / "home"), "--log-format", "json", "run", str(good))
    assert code == 0
    events = [json.loads(line)["message"] for line in terminal.screen if line.startswith("{")]
    assert events == ["batch.accepted"]


def test_tables_fit_80_columns(tmp_path: Path) -> None:
    home = tmp_path / "home"
    long_name = tmp_path / ("orders_exported_from_the_shop_backend_every_night_" + "x" * 30 + "_2025.csv")
    write(long_name, [order("O1", date="2025-07-06"), order("O2", date="2025-07-09", price="1234567.89")])
    assert (
        subprocess.run(
            [sys.executable, "-m", "orderpipe", "--home", str(home), "run", str(long_name)], capture_output=True
        ).returncode
        == 0
    )
    code, daily = run_on_terminal("--home", str(home), "kpis", "daily")
    assert code == 0
    assert daily.screen == [
        "date        orders     revenue  items  return_rate  customers",
        "----------  ------  ----------  -----  -----------  ---------",
        "2025-07-06       1       10.00      1     0.000000          1",
        "2025-07-09       1  1234567.89      1     0.000000          1",
    ]
    code, history = run_on_terminal("--home", str(home), "batches")
    assert code == 0
    lines = [re.sub(r"20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$", "WHEN", line) for line in history.screen]
    assert lines == [
        "batch     file               status    rows  dates             finished",
        "--------  -----------------  --------  ----  ----------------  ----------------",
        "142f6ffe  orders_e…2025.csv  accepted     2  2025-07-06…07-09  WHEN",
    ]
    assert max(len(line) for line in history.screen) == COLUMNS - 1
    assert "…" in history.screen[2]


def test_watch_prints_a_line_per_file_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "input").mkdir(parents=True)
    write(home / "input" / "a.csv", [order("O1")])
    terminal = Terminal("--home", str(home), "watch", env={"ORDERPIPE_WATCH_SETTLE_TIME": "0"})
    terminal.wait_for("accepted  a.csv")
    time.sleep(0.3)
    os.killpg(terminal.process.pid, signal.SIGINT)
    assert terminal.finish() == 0
    assert [without_times(line) for line in terminal.screen] == [
        f"watching {home / 'input'} with 1 worker(s); Ctrl-C to stop",
        "accepted  a.csv  1 row  2025-07-06  T",
        "orderpipe: stopping after the file(s) in flight… (Ctrl-C again to stop at once; nothing is lost either way)",
    ]


def test_in_a_pipe_stdout_has_the_results_and_stderr_only_json(tmp_path: Path) -> None:
    good, bad = files(tmp_path)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")}
    result = subprocess.run(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "run", str(good), str(bad)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert [line[:18] for line in result.stdout.splitlines()] == ["accepted  good.csv", "rejected  bad.csv "]
    assert "\r" not in result.stdout + result.stderr and "\x1b" not in result.stdout + result.stderr
    events = [json.loads(line)["message"] for line in result.stderr.splitlines()]
    assert events == ["batch.accepted", "batch.rejected"]
    jsonl = subprocess.run(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "run", "--format", "jsonl", str(good), str(bad)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    results = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [(r["status"], r["file"], r["rows"], r["report"]) for r in results] == [
        ("duplicate", "good.csv", 2, None),
        ("rejected", "bad.csv", 2, f"{home}/rejected/bad.csv.report.json"),
    ]


def test_verbose_shows_every_event_as_a_short_line(tmp_path: Path) -> None:
    good, _ = files(tmp_path)
    code, terminal = run_on_terminal("--home", str(tmp_path / "home"), "run", "-v", str(good))
    assert code == 0
    events = [line for line in terminal.screen if line.startswith("orderpipe: ")]
    assert len(events) == 1
    assert events[0].startswith("orderpipe: info: batch.accepted (event=accepted, file=good.csv, batch_id=")
    assert "{" not in events[0].split(" (", 1)[0]


#: What a hostile or broken file name can hold: a colour, a window title, a carriage return that
#: lets the rest of the line overwrite its start, a right-to-left override, a C1 CSI.
HOSTILE = ("\x1b[31m", "\x1b]0;owned\x07", "\r", "\u202e", "\x9b2J")


def test_control_characters_in_names_are_shown_escaped(tmp_path: Path) -> None:
    """Every name and message printed in a text format; JSON keeps the exact name."""
    red = "Red\x1b[31mStuff"
    good = write(tmp_path / "ok\x1b[31mred\rX.csv", [order("O1", category=red)])
    bad = write(tmp_path / "bad\x1b]0;owned\x07\u202e\x9b2J.csv", [order("O3", quantity="0")])
    home = tmp_path / "home"
    env = {"ORDERPIPE_CATEGORIES": f"Books,{red}"}
    sessions = [
        ("--home", str(home), "-v", "run", str(good), str(bad)),  # -v: every log event, as a line
        ("--home", str(home), "batches"),
        ("--home", str(home), "batches", "--wide"),
        ("--home", str(home), "kpis", "category"),
        ("--home", str(home), "validate", str(bad)),
        ("--home", str(home), "validate", str(tmp_path / "gone\r\x1b[2K.csv")),  # an error quoting a name
        ("--home", str(home), "replay", "--rejected"),
    ]
    shown = ""
    for args in sessions:
        code, terminal = run_on_terminal(*args, env=env)
        assert code in (0, 1, 2), terminal.text
        # The progress bar's own drawing and clearing (`\r  step…\x1b[K`), and the pty's line ends.
        text = re.sub(r"\r[^\r\n\x1b]*\x1b\[K", "", terminal.text).replace("\r\n", "\n")
        for raw in HOSTILE:
            assert raw not in text, (args, text)
        shown += text
    for escaped in ("ok\\x1b[31mred\\rX.csv", "bad\\x1b]0;owned\\x07\\u202e\\x9b2J.csv", "Red\\x1b[31mStuff"):
        assert escaped in shown
    assert "gone\\r\\x1b[2K.csv" in shown
    jsonl = subprocess.run(
        [sys.executable, "-m", "orderpipe", "--home", str(home), "batches", "--format", "jsonl"],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")},
    )
    assert {json.loads(line)["file"] for line in jsonl.stdout.splitlines()} == {good.name, bad.name}
