"""The reader of chosen lines (`locate._Lines`): the lines asked for, whole, however the chunks
cut them, and the file's line count once every one was found."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import orderpipe.locate as locate
from tests.conftest import MUTATION


def physical_lines(data: bytes) -> list[bytes]:
    """The file's lines as the reader must give them: each with its LF, the last without one
    when the file does not end with it."""
    lines = data.split(b"\n")
    ended = [line + b"\n" for line in lines[:-1]]
    return ended + ([lines[-1]] if lines[-1] else [])


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 64])
def test_every_chosen_line_comes_whole_whatever_the_chunk(
    chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locate, "CHUNK", chunk)
    rng = random.Random(chunk)
    for n in range(60 if MUTATION else 200):
        sizes = [rng.choice([0, 0, 1, 2, 7, 13]) for _ in range(rng.randint(0, 9))]
        pieces = [bytes(rng.choice(b'ab,"') for _ in range(size)) for size in sizes]
        data = b"\n".join(pieces) + rng.choice([b"", b"\n"])
        path = tmp_path / f"f{n}.csv"
        path.write_bytes(data)
        lines = physical_lines(data)
        wanted = sorted(rng.sample(range(1, len(lines) + 1), rng.randint(0, len(lines))))
        reader = locate._Lines(path, wanted)
        assert list(reader) == [(k, lines[k - 1]) for k in wanted], (chunk, data, wanted)
        assert reader.count == len(lines), (chunk, data, wanted)


def test_a_line_past_the_end_leaves_the_count_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked for a line the file does not have (the screen counted rows differently): the
    lines there are given, and the count stays -1, so the caller reads the whole file."""
    monkeypatch.setattr(locate, "CHUNK", 4)
    for data in (b"h\nx\ny\n", b"h\nx\ny", b"h\n\n\n"):
        path = tmp_path / "f.csv"
        path.write_bytes(data)
        reader = locate._Lines(path, [2, 4])
        assert list(reader) == [(2, physical_lines(data)[1])]
        assert reader.count == -1
    reader = locate._Lines(path, [])
    assert list(reader) == [] and reader.count == 3
