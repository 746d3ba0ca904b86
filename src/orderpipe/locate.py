"""An invalid file's located report, with the exact rules reading only the rows that matter.

The screen (`shaped.screen_file`) names the suspect rows of a file it cannot accept: every row it
fails or that may be short, and every row of the same order (line grain: all of the order's
lines; a catalog: the same product) as one of those or as a repeated id. Every other row is clean
and no rule relates it to any row read, so it adds nothing to the report but its count.

Row k (0-based) is physical line k + 2 when the bytes are plain for it: Polars and Python's `csv`
read them alike (`quoting.ByteScan`, the caller's to check) and the file has exactly one line
more than the screen read rows (no line break inside quotes: Polars joins such lines into one
row, and keeps a blank line as a row). The header's line and the suspect rows' lines, found by
the byte offsets of their LFs, then go through the exact validator's own reading
(`exact.read_lines`), in file order, so its report is the one the full read gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from orderpipe.core.exact import RowRules, read_lines
from orderpipe.core.report import ValidationReport
from orderpipe.shaped import CHUNK, Suspects

__all__ = ["locate"]


def locate(path: Path, name: str, rules: RowRules, suspects: Suspects) -> ValidationReport | None:
    """The exact validator's report on `path`, read through `rules` (fresh), when the file is
    invalid and its bytes are plain for locating (the caller has checked that both readers agree
    on them); None leaves the decision to a full reading: the lines are not one row each, a
    suspect line cannot be read alone, or no rule is broken (the suspects were only padded)."""
    numbers = [1, *(row + 2 for row in suspects.read.to_list())]  # line 1: the header
    lines = _Lines(path, numbers)
    report = read_lines(lines, suspects.rows + 1 - len(numbers), name, rules)
    if report is None or report.valid or lines.count != suspects.rows + 1:
        return None
    return report


class _Lines:
    """Physical lines `numbers` (1-based, ascending) of a file, with their number, as its bytes
    stream past; once every line is read, `count` holds the file's lines. A chunk without a
    wanted line is only counted; one with some is split into its lines."""

    def __init__(self, path: Path, numbers: list[int]) -> None:
        self.path = path
        self.numbers = numbers
        self.count = -1  # until the whole file was read

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        numbers, at = self.numbers, 0
        done, carry = 0, b""  # the lines read whole; the start of the next one
        with self.path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                ends = chunk.count(b"\n")
                if at < len(numbers) and numbers[at] <= done + ends:
                    parts = (carry + chunk).split(b"\n")  # parts[k] is line done + 1 + k
                    while at < len(numbers) and numbers[at] <= done + ends:
                        yield numbers[at], parts[numbers[at] - done - 1] + b"\n"
                        at += 1
                    carry = parts[-1]
                else:
                    cut = chunk.rfind(b"\n")
                    carry = carry + chunk if cut < 0 else chunk[cut + 1 :]
                done += ends
        if carry:  # the last line, without its LF
            done += 1
            if at < len(numbers) and numbers[at] == done:
                yield done, carry
                at += 1
        self.count = done if at == len(numbers) else -1
