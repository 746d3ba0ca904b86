"""Files written for a person (settings, reports, generated samples): all of the new bytes or
the old file, never a cut or empty one.

A write can fail midway: a full disk, a file-size limit, a kill. Written in place, it leaves a
truncated file under the real name, which the next command then reads as if it were whole (an
empty `orderpipe.toml` is valid TOML: the default format). So the bytes go to a temporary file
on the same file system (the rename is then atomic), are flushed to the disk (fsync) and only
then take the name with `os.replace`; the folder is synced so that the new name survives a
power cut too. On any failure the temporary file is removed and the target is as it was.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_output", "default_mode", "write_atomic"]

# The mode a plain open() would give a new file (temporary files are created 0600). Read once,
# at import, while no other thread can be changing it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def default_mode() -> int:
    return 0o666 & ~_UMASK


def _mode_for(target: Path) -> int:
    """A replaced file keeps its mode (a private settings file stays private); a new one gets
    the mode a plain open() would give it."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return default_mode()


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is still atomic
    finally:
        os.close(fd)


@contextmanager
def atomic_output(target: Path, *, scratch: Path | None = None, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file to write `target`'s new bytes into; they replace `target` only when the
    block ends without an error. `scratch`: where the temporary file goes instead of beside the
    target (a folder on the same file system that no reader lists); `mode`: the new file's
    permissions (default: as `_mode_for` says)."""
    folder = target.parent if scratch is None else scratch
    fd, name = tempfile.mkstemp(prefix=".orderpipe-", suffix=".part", dir=folder)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, _mode_for(target) if mode is None else mode)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)


def write_atomic(target: Path, data: bytes | str, *, scratch: Path | None = None, mode: int | None = None) -> None:
    """`target` holds `data` (text as UTF-8), or, if the write fails, what it held before."""
    with atomic_output(target, scratch=scratch, mode=mode) as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
