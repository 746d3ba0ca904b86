"""Local scratch space and per-batch locks, made safe against kill -9 by `flock`.

The kernel releases a process's locks when it dies, however it dies. So a scratch folder whose
lock nobody holds belongs to a dead process and can be removed at once, and a batch lock held
by a dead process is simply free again.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
import weakref
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["BatchLocks", "Workspace", "sweep"]

_OWNER = ".owner"
#: Entries that are not a workspace (from older versions, or foreign) are removed only when
#: this old: someone may still be writing them.
STRAY_MAX_AGE = 6 * 3600


class Workspace:
    """A private folder under a shared `root`, locked for the life of this object's process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._path: Path | None = None
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """Created on first use, so that merely opening a store writes nothing."""
        if self._path is None:
            path = self.root / f"p{os.getpid()}-{uuid.uuid4().hex[:8]}"
            path.mkdir(parents=True)
            # Locked under another name, then renamed: a sweep never sees an unlocked owner file.
            claim = path / f"{_OWNER}.{uuid.uuid4().hex[:8]}"
            fd = os.open(claim, os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(claim, path / _OWNER)
            self._path, self._fd = path, fd
            # Removed when this object goes or the interpreter exits; a kill -9 leaves it to sweep().
            weakref.finalize(self, _remove, path, fd)
        return self._path


def _remove(path: Path, fd: int) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with suppress(OSError):
        os.close(fd)


def _owner_alive(folder: Path) -> bool | None:
    """True/False for a workspace; None for anything else."""
    try:
        fd = os.open(folder / _OWNER, os.O_RDWR)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return True  # not ours to judge (e.g. another user's): leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock we may have taken
    return False


def sweep(root: Path, stray_max_age: float = STRAY_MAX_AGE, keep: tuple[str, ...] = ()) -> int:
    """Remove the workspaces of dead processes under `root`, and stray entries older than
    `stray_max_age` seconds (except those named in `keep`); returns how many entries went."""
    if not root.is_dir():
        return 0
    cutoff = time.time() - stray_max_age
    removed = 0
    for entry in root.iterdir():
        if entry.name in keep:
            continue
        alive = _owner_alive(entry) if entry.is_dir() else None
        if alive is None:
            with suppress(FileNotFoundError):
                if entry.lstat().st_mtime >= cutoff:
                    continue
        elif alive:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


class BatchLocks:
    """An exclusive lock per batch id, across the processes and threads of one machine.

    Batch ids share a fixed set of lock files (so they never pile up); two batches that share
    one only wait for each other briefly.
    """

    STRIPES = 64

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextmanager
    def hold(self, batch_id: str, wait: bool = True) -> Iterator[bool]:
        """Yields True once the lock is held; with `wait=False`, yields False at once if
        another holder has it."""
        self.root.mkdir(parents=True, exist_ok=True)
        stripe = zlib.crc32(batch_id.encode()) % self.STRIPES
        fd = os.open(self.root / f"batch-{stripe:02d}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)
