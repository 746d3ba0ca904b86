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
