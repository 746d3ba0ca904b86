"""Every file written for a person (the settings `init` writes, a quarantined file's report, a
generated sample) is whole or absent: a write that fails midway leaves the old file (or none),
never a cut or empty one under the real name, and no temporary file behind."""

from __future__ import annotations

import errno
import os
import re
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orderpipe import atomic
from orderpipe.adapters.folder import FolderStore
from orderpipe.atomic import write_atomic
from orderpipe.config import load_settings
from orderpipe.presets import PRESETS
from tests.conftest import REPO

ORDERPIPE = str(Path(sys.executable).with_name("orderpipe"))
LIMIT = 512  # bytes: less than either preset, so the write fails midway


def _limited(max_bytes: int) -> None:
    """In the child: a file-size limit, as a full disk would stop a write (EFBIG; Python ignores
    SIGXFSZ, so the write fails instead of killing the process)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


def _orderpipe(home: Path, *args: str, max_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")} | {"PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [ORDERPIPE, "--home", str(home), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=None if max_bytes is None else lambda: _limited(max_bytes),
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part"))


def test_init_on_a_full_disk_leaves_no_settings_file_and_can_be_run_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    failed = _orderpipe(home, "init", "--preset", "shopify", max_bytes=LIMIT)
    assert failed.returncode == 3, failed.stderr
    assert "File too large" in failed.stderr
    assert not (home / "orderpipe.toml").exists()  # not an empty or cut file read as the seed format
    assert _leftovers(home) == []
    again = _orderpipe(home, "init", "--preset", "shopify")
    assert again.returncode == 0, again.stderr  # not refused with "already exists"
    assert (home / "orderpipe.toml").read_text("utf-8") == PRESETS["shopify"]
    assert load_settings(home, environ={}).shape.grain == "line"


def test_init_force_that_fails_midway_keeps_the_old_settings(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _orderpipe(home, "init", "--preset", "seed").returncode == 0
    os.chmod(home / "orderpipe.toml", 0o600)
    failed = _orderpipe(home, "init", "--preset", "shopify", "--force", max_bytes=LIMIT)
    assert failed.returncode == 3, failed.stderr
    assert (home / "orderpipe.toml").read_text("utf-8") == PRESETS["seed"]
    assert _leftovers(home) == []
    assert _orderpipe(home, "init", "--preset", "shopify", "--force").returncode == 0
    assert (home / "orderpipe.toml").read_text("utf-8") == PRESETS["shopify"]
    assert (home / "orderpipe.toml").stat().st_mode & 0o777 == 0o600  # a replaced file keeps its mode


class _FailingMidway:
    """A file whose writes stop with ENOSPC once `room` bytes are written, as on a full disk."""

    def __init__(self, real: Any, room: int) -> None:
        self.real, self.room = real, room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.real.write(data[: self.room])
            self.real.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return int(self.real.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __enter__(self) -> _FailingMidway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()


def _full_disk(monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: _FailingMidway(fdopen(fd, mode), room))


def test_a_report_that_fails_midway_keeps_the_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FolderStore(tmp_path / "home")
    store.put_bytes("rejected/x.csv.report.json", b'{"old": true}')
    _full_disk(monkeypatch, room=10)
    with pytest.raises(OSError, match="No space left"):
        store.put_bytes("rejected/x.csv.report.json", b'{"file": "x.csv", "errors": ["..."]}' * 100)
    assert store.get_bytes("rejected/x.csv.report.json") == b'{"old": true}'
    assert _leftovers(tmp_path / "home") == []
    with pytest.raises(OSError, match="No space left"):
        store.put_bytes("rejected/new.csv.report.json", b"[" + b"1," * 100 + b"1]")
    assert not store.exists("rejected/new.csv.report.json")


def test_write_atomic_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "settings.toml"
    write_atomic(target, "a = 1\n")
    _full_disk(monkeypatch, room=3)
    with pytest.raises(OSError):
        write_atomic(target, "a = 2\nb = 3\n")
    assert target.read_text() == "a = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.toml"]


def test_a_generated_sample_that_fails_midway_leaves_no_file(tmp_path: Path) -> None:
    """`make demo` writes its week of orders with benchmarks/generate.py."""
    target = tmp_path / "week.csv"
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/generate.py"), str(target), "--rows", "20000", "--days", "7"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: _limited(64 * 1024),
    )
    assert result.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


#: Modules that may open files for writing: the helper itself, and the lock files of the
#: scratch space (never read as data).
ALLOWED_MODULES = {"atomic.py", "adapters/workspace.py"}
#: The other writes in src/: each into a temporary or private file, or an exclusive claim of a
#: name where the file system has no hard links to publish a whole file with.
ALLOWED_DIRECT_WRITES = {
    ("adapters/folder.py", "fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _mode_like(temp))"),
    ("adapters/folder.py", 'with os.fdopen(fd, "wb") as out, temp.open("rb") as source:'),
    ("adapters/folder.py", 'with source.open("rb") as src, target.open("wb") as dst:'),  # _copy: into scratch
}
_WRITE = re.compile(r"\.write_text\(|\.write_bytes\(|open\([^)]*['\"][wax]b?['\"]|O_WRONLY|O_RDWR")


def test_no_other_code_writes_a_file_in_place() -> None:
    """A new write of a user's file must go through `write_atomic` / `atomic_output`."""
    src = REPO / "src" / "orderpipe"
    found = {
        (path.relative_to(src).as_posix(), line.strip())
        for path in src.rglob("*.py")
        if path.relative_to(src).as_posix() not in ALLOWED_MODULES
        for line in path.read_text("utf-8").splitlines()
        if _WRITE.search(line)
    }
    assert found <= ALLOWED_DIRECT_WRITES, sorted(found - ALLOWED_DIRECT_WRITES)
