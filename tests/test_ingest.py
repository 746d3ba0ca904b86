"""The byte-level prescan that decides whether the exact validator must run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from orderpipe import ingest


@pytest.mark.parametrize(
    ("data", "needs_exact"),
    [
        (b"ab\r\ncd\r\n", False),
        (b"abc\r\ndef\r\n", False),  # a CRLF split across two chunks
        (b"abcd\r\nef", False),
        (b"abc\rdef\n", True),  # a bare CR inside a chunk
        (b"abcd\refgh", True),  # a bare CR at the end of a chunk
        (b"abc\r", True),
        (b'a"b', True),
        (b"ab\x00c", True),
        (b"plain,text\n", False),
    ],
)
def test_fingerprint_flags_quotes_nuls_and_bare_crs_across_chunks(
    data: bytes, needs_exact: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "CHUNK", 4)
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    fingerprint = ingest.fingerprint(path)
    assert fingerprint.needs_exact is needs_exact
    assert fingerprint.sha256 == hashlib.sha256(data).hexdigest()


def test_a_thread_beside_the_screen_never_prints_its_own_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted run removes the file under the hashing thread: the user must see the
    interruption, not that thread's traceback. The caller raises the thread's failure instead."""
    import threading

    from orderpipe.errors import InfrastructureError
    from orderpipe.ingest import Beside, inspect_file

    printed: list[object] = []
    monkeypatch.setattr(threading, "excepthook", printed.append)
    gone = tmp_path / "gone.csv"
    with pytest.raises(FileNotFoundError):  # the main thread's own read fails first
        inspect_file(gone, "gone.csv", ["Books"], tmp_path)
    failing = Beside(lambda: gone.read_bytes())
    with pytest.raises(InfrastructureError, match=r"gone\.csv: could not read the file"):
        failing.result("gone.csv")
    assert printed == []
