"""The progress bar's text (amount, rate, time left; a step of unknown amount), what the work
reports to it, and when it draws nothing. What a terminal shows of it: tests/test_terminal.py."""

from __future__ import annotations

import io
import time
from pathlib import Path

from orderpipe.progress import UNKNOWN, Bar, Reading, counted, line
from tests.conftest import REPO


def test_a_known_amount_shows_bar_percentage_amount_rate_and_time_left() -> None:
    assert line("reading", 102_000_000, 290_000_000, 2.0) == (
        "  reading [#######.............]  35%  102/290 MB  51 MB/s  4 s left"
    )
    assert line("validating", 1_000_000, 6_000_000, 0.5) == (
        "  validating [###.................]  16%  1.0/6.0 MB  2.0 MB/s  3 s left"
    )
    assert line("staging facts", 2, 5, 1.0) == (
        "  staging facts [########............]  40%  2/5 files  2.0 files/s  2 s left"
    )


def test_the_readme_shows_the_bar_as_it_is_drawn() -> None:
    assert "\n" + line("reading", 102_000_000, 290_000_000, 2.0) + "\n" in (REPO / "README.md").read_text()


def test_time_left_in_minutes_and_large_files_in_gb() -> None:
    assert line("reading", 412_000_000, 1_024_000_000, 75.0) == (
        "  reading [########............]  40%  412/1024 MB  5.5 MB/s  1 min 52 s left"
    )
    assert "0.4/12.0 GB" in line("reading", 412_000_000, 12_000_000_000, 75.0)
    assert "2 h 30 min left" in line("validating", 1_000_000, 10_000_000, 1000.0)


def test_no_rate_nor_time_left_before_there_is_anything_to_measure() -> None:
    assert line("reading", 0, 290_000_000, 1.0) == "  reading [....................]   0%  0/290 MB"
    assert line("reading", 5_000_000, 290_000_000, 0.1) == "  reading [....................]   1%  5/290 MB"
    assert line("reading", 290_000_000, 290_000_000, 3.0) == (
        "  reading [####################] 100%  290/290 MB  97 MB/s"
    )


def test_an_unknown_amount_shows_the_step_and_its_time() -> None:
    assert line("recomputing KPIs", 0, UNKNOWN, 2.7) == "  recomputing KPIs…  2 s"
    assert line("recomputing KPIs", 0, UNKNOWN, 65.0) == "  recomputing KPIs…  1 min 05 s"
    # Bytes read from a pipe: how much so far and how fast, but no bar and no time left.
    assert line("validating", 120_000_000, UNKNOWN, 3.0) == "  validating 120 MB  40 MB/s  3 s"


def test_the_line_fits_the_terminal() -> None:
    wide = line("reading", 412_000_000, 1_024_000_000, 75.0)
    narrow = line("reading", 412_000_000, 1_024_000_000, 75.0, width=60)
    assert len(narrow) <= 59 and "[" not in narrow and narrow.startswith("  reading  40%  412/1024 MB")
    assert len(line("reading", 412_000_000, 1_024_000_000, 75.0, width=20)) == 19
    assert len(wide) < 80


def test_the_fast_path_is_as_far_as_its_slower_reader(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes((b"x" * 99 + b"\n") * 10_000)  # 100 bytes a line
    reports: list[tuple[str, int, int]] = []
    reading = Reading(path, 1_000_000, lambda *report: reports.append(report))
    reading.on_bytes(500_000)
    assert reports[-1] == ("reading", 0, 1_000_000)  # hashed half, screened nothing yet
    reading.on_rows(2_000)
    assert reports[-1] == ("reading", 200_000, 1_000_000)
    reading.on_rows(20_000)  # an estimate past the end: short of it until the screen is through
    reading.on_bytes(500_000)
    assert reports[-1] == ("reading", 990_000, 1_000_000)
    reading.screen_done()
    assert reports[-1] == ("reading", 1_000_000, 1_000_000)


def test_counted_reads_the_same_lines_and_tells_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    data = b"".join(b"line %d\n" % n for n in range(200_000))
    path.write_bytes(data)
    told: list[int] = []
    with counted(path, told.append) as stream:
        assert list(stream) == data.splitlines(keepends=True)
    assert told[-1] == len(data) and told == sorted(told) and len(told) < 10


def test_a_small_file_or_no_terminal_draws_nothing() -> None:
    screen = io.StringIO()
    with Bar(screen) as bar:  # MIN_BYTES: 4 MB
        with bar.file() as progress:
            progress("reading", 1_000_000, 3_999_999)
            progress("recomputing KPIs", 0, UNKNOWN)
            time.sleep(3 * Bar.INTERVAL)
        with bar.file() as progress:
            progress("reading", 0, 4_000_000)
            time.sleep(3 * Bar.INTERVAL)
            assert screen.getvalue().startswith("\r  reading [")
        assert screen.getvalue().endswith("\r\x1b[K")  # erased when the file is done
    with Bar(None) as bar, bar.file() as progress:
        progress("reading", 0, 4_000_000)  # nothing to draw on: nothing happens
