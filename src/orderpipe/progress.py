"""How far one file has got, and the one-line bar that shows it on a terminal.

Whoever does the work (`ingest.py`, the workflow, `validate`) only calls a `Progress` with
(step, done, total): the numbers are stored, nothing is drawn, so a hot loop pays for a function
call per chunk of work and no more. A thread of the bar draws the line at most every
`Bar.INTERVAL` seconds from what was stored last: the step, its amount done of the total with
its rate and the time left, or, when the amount is unknown, its name and how long it has taken.

Hand-written, not `rich.progress` or `tqdm`: this is one line of text, and what it needs beyond
drawing (a file under `MIN_BYTES` shows nothing; a step of unknown amount still shows its time;
the outcome line and log lines are printed over it; several files of `watch` share one line)
would be code of ours around either library anyway. No dependency to pin or to keep out of the
Lambda bundle.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from orderpipe.logs import CLEAR_LINE

__all__ = [
    "MIN_BYTES",
    "UNKNOWN",
    "Bar",
    "Progress",
    "Reading",
    "counted",
    "line",
    "no_progress",
]

#: Called with (step, done, total) as a file moves through the work; `total` UNKNOWN when
#: the amount of the step is not known (then `done` is 0, or an amount read so far).
Progress = Callable[[str, int, int], None]
UNKNOWN = 0

#: A file smaller than this shows no bar: it is done before a person could read one (4 MB is
#: read in well under a second on the fast path).
MIN_BYTES = 4_000_000
#: Steps whose amount is the file's bytes: they decide whether a file is big enough for a bar.
BYTE_STEPS = frozenset({"reading", "validating"})
#: What the other steps count.
UNITS = {"staging facts": "files", "recomputing": "dates"}
#: The bar's width, when the terminal has room for it (it narrows, then goes, on a narrow one).
BAR_CELLS = 20
#: The exact validator reads in blocks this large: a report per block, none per row.
READ_BLOCK = 256 << 10


def no_progress(step: str, done: int, total: int) -> None:
    """A `Progress` that shows nothing (in a pipe, with -q, on AWS)."""


# -- what the line says -----------------------------------------------------------------------
def _seconds(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole // 60 % 60:02d} min"


def _amounts(done: int, total: int, unit: str) -> str:
    """`102/290 MB` (bytes in MB, or GB from 10 GB), `3/5 files`; `done` alone without a total."""
    if unit != "bytes":
        return f"{done}/{total} {unit}".strip() if total else f"{done} {unit}".strip()
    scale, name = (10**9, "GB") if max(done, total) >= 10 * 10**9 else (10**6, "MB")
    digits = 1 if scale == 10**9 or max(done, total) < 10**7 else 0
    shown = f"{done / scale:.{digits}f}" + (f"/{total / scale:.{digits}f}" if total else "")
    return f"{shown} {name}"


def _rate(per_second: float, unit: str) -> str:
    if unit == "bytes":
        mb = per_second / 10**6
        return f"{mb:.1f} MB/s" if mb < 10 else f"{mb:.0f} MB/s"
    return f"{per_second:.1f} {unit}/s" if per_second < 10 else f"{per_second:.0f} {unit}/s"


def line(step: str, done: int, total: int, elapsed: float, width: int = 80) -> str:
    """The bar's text for a step `elapsed` seconds in, at most `width - 1` characters.

    With a total: the bar, the percentage, done/total, the rate (the step's average so far)
    and the time left; without one: what is done so far if anything, and the time taken."""
    unit = "bytes" if step in BYTE_STEPS else UNITS.get(step, "")
    rate = done / elapsed if done > 0 and elapsed >= 0.2 else None
    parts = []
    if total > UNKNOWN or done > 0:
        parts.append(_amounts(min(done, total) if total else done, total, unit))
    if rate is not None:
        parts.append(_rate(rate, unit))
    if total > UNKNOWN and rate is not None and done < total:
        parts.append(f"{_seconds(math.ceil((total - done) / rate))} left")
    elif total <= UNKNOWN:
        parts.append(_seconds(elapsed))
    head = f"  {step} " if total > UNKNOWN or done > 0 else f"  {step}…  "
    tail = "  ".join(parts)
    if total > UNKNOWN:
        fraction = min(done / total, 1.0)
        tail = f"{int(fraction * 100):3d}%  {tail}"
        cells = min(BAR_CELLS, width - 1 - len(head) - len(tail) - 3)
        if cells >= 8:
            filled = int(cells * fraction)
            tail = f"[{'#' * filled}{'.' * (cells - filled)}] {tail}"
    return (head + tail)[: width - 1]


# -- what the work reports --------------------------------------------------------------------
class Reading:
    """The fast path's progress: two readers go through the file at once (the hash, by bytes;
    the screen, by batches of rows), and the file is read when both are through. Its amount is
    the slower one's; the screen's bytes are its rows times the bytes of a row (measured on the
    file's first MiB)."""

    SAMPLE = 1 << 20

    def __init__(self, path: Path, size: int, progress: Progress) -> None:
        self.size = size
        self.progress = progress
        self.hashed = 0
        self.screened = 0
        with path.open("rb") as stream:
            sample = stream.read(self.SAMPLE)
        self.row_bytes = len(sample) / max(1, sample.count(b"\n"))
        progress("reading", 0, size)

    def on_bytes(self, count: int) -> None:
        """The hash read `count` more bytes."""
        self.hashed += count
        self._report()

    def on_rows(self, rows: int) -> None:
        """The screen has read `rows` rows (0 again when it starts over); an estimate, so it
        stops short of the end until the screen says it is through."""
        self.screened = min(self.size * 99 // 100, int(rows * self.row_bytes))
        self._report()

    def screen_done(self) -> None:
        """The screen stopped (through, or leaving the file to the exact validator)."""
        self.screened = self.size
        self._report()

    def _report(self) -> None:
        self.progress("reading", min(self.hashed, self.screened), self.size)


class _CountedFile(io.FileIO):
    """A file that tells how many bytes were read from it, once per block read."""

    def __init__(self, file: Path | int, on_bytes: Callable[[int], None], closefd: bool = True) -> None:
        super().__init__(file, "rb", closefd=closefd)
        self._on_bytes = on_bytes
        self._done = 0

    def readinto(self, buffer: bytearray | memoryview) -> int | None:  # type: ignore[override]
        count = super().readinto(buffer)
        if count:
            self._done += count
            self._on_bytes(self._done)
        return count


def counted(file: Path | int, on_bytes: Callable[[int], None], closefd: bool = True) -> io.BufferedReader:
    """`file` opened for reading in blocks of READ_BLOCK, `on_bytes` told the bytes read so far
    after each block (lines are still cut by the C reader: nothing is added per row)."""
    return io.BufferedReader(_CountedFile(file, on_bytes, closefd), buffer_size=READ_BLOCK)


# -- the line on a terminal ---------------------------------------------------------------------
class _Meter:
    """One file's last report, and since when its step has run; shown once the file has proved
    big enough (`armed`)."""

    def __init__(self, clock: Callable[[], float], min_bytes: int) -> None:
        self.clock = clock
        self.min_bytes = min_bytes
        self.armed = min_bytes <= 0
        self.state = ("", 0, UNKNOWN)
        self.since = clock()

    def report(self, step: str, done: int, total: int) -> None:
        if step != self.state[0]:
            self.since = self.clock()
        self.state = (step, done, total)
        if not self.armed and step in BYTE_STEPS and max(total, done) >= self.min_bytes:
            self.armed = True

    def text(self, width: int) -> str:
        step, done, total = self.state
        return line(step, done, total, self.clock() - self.since, width)


class Bar:
    """The bar on a terminal, on `stream`; `Bar(None)` shows nothing. A context manager: its
    thread draws while it is open. `file()` gives each file its `Progress`; when several files
    are in flight (`watch --workers`), the line shows the first of them that is big enough."""

    INTERVAL = 0.1

    def __init__(
        self, stream: TextIO | None, min_bytes: int = MIN_BYTES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream
        self.min_bytes = min_bytes
        self.clock = clock
        self._lock = threading.Lock()
        self._meters: list[_Meter] = []
        self._drawn = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.stream is not None

    def __enter__(self) -> Bar:
        if self.stream is not None:
            self._thread = threading.Thread(target=self._draw_until_stopped, name="orderpipe-bar", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        with self._lock:
            self._erase()

    @contextmanager
    def file(self, min_bytes: int | None = None) -> Iterator[Progress]:
        """The `Progress` of one file, erased from the line when the block ends (so the file's
        outcome stands alone). `min_bytes=0`: shown whatever the size."""
        if self.stream is None:
            yield no_progress
            return
        meter = _Meter(self.clock, self.min_bytes if min_bytes is None else min_bytes)
        with self._lock:
            self._meters.append(meter)
        try:
            yield meter.report
        finally:
            with self._lock:
                self._meters.remove(meter)
                self._erase()

    @contextmanager
    def above(self) -> Iterator[None]:
        """For printing a line: the bar is erased first and drawn again after it, below."""
        with self._lock:
            self._erase()
            yield

    def _erase(self) -> None:
        if self._drawn and self.stream is not None:
            self._write(CLEAR_LINE)
            self._drawn = False

    def _write(self, text: str) -> None:
        assert self.stream is not None
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal is gone: nothing to show it on
            pass

    def _draw_until_stopped(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            with self._lock:
                shown = next((m for m in self._meters if m.armed and m.state[0]), None)
                if shown is not None:
                    self._write("\r" + shown.text(_width(self.stream)) + "\033[K")
                    self._drawn = True


def _width(stream: TextIO | None) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream is not None else 80
    except (OSError, ValueError, AttributeError):
        return shutil.get_terminal_size().columns
