"""A folder as the bucket: keys are relative paths; every write is a rename, so it is atomic."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orderpipe.adapters.workspace import Workspace
from orderpipe.atomic import atomic_output, write_atomic
from orderpipe.errors import InfrastructureError
from orderpipe.ports import ObjectStat

__all__ = ["FolderStore"]

# Files placed in the bucket get the mode a plain `open()` would give them (temporary files are
# created 0600), never wider than the file they copy: a 0600 input stays 0600 in processed/ and
# rejected/, and so does the report that quotes it. Read once, at import, while no other thread
# can be changing it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def _mode_like(like: Path | None) -> int:
    """The mode of a published file: no wider than `like`'s (a symlink's target counts)."""
    return _FILE_MODE if like is None else _FILE_MODE & stat.S_IMODE(os.stat(like).st_mode)


def _publish_mode(path: Path, like: Path | None = None) -> None:
    os.chmod(path, _mode_like(like))


class FolderStore:
    """Temporary files live under `root/.tmp` (same disk, so renames stay atomic), never beside
    a key: a watcher of input/ must not see half-written files, even after a crash. Each store
    has its own workspace there, removed by the next start-up if its process is killed."""

    SCRATCH = ".tmp"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scratch_root = root / self.SCRATCH
        self._workspace = Workspace(self.scratch_root)

    @property
    def scratch(self) -> Path:
        return self._workspace.path

    def path(self, key: str) -> Path:
        if key.startswith("/") or ".." in Path(key).parts:
            raise InfrastructureError(f"refusing key outside the bucket: {key!r}")
        return self.root / key

    @contextmanager
    def local_copy(self, key: str, version: str | None = None) -> Iterator[Path]:
        """The object's own path (no copy). A folder keeps no versions: `version` is ignored."""
        path = self.path(key)
        if not path.exists():
            raise InfrastructureError(f"{key}: no such object in {self.root}")
        yield path

    @contextmanager
    def snapshot(self, key: str, version: str | None = None) -> Iterator[Path]:
        """A private copy of the object's bytes (a reflink where the file system has them).

        Not a hard link: a writer that appends to or truncates the file in place would change
        a hard link too. A symlink is followed: the snapshot holds the bytes, not the link.
        """
        path = self.path(key)
        snapshot = Path(tempfile.mkdtemp(dir=self.scratch)) / "object"
        try:
            try:
                _copy(path, snapshot)
                shutil.copymode(path, snapshot)  # what is archived from it is no more readable
            except FileNotFoundError:
                raise InfrastructureError(f"{key}: no such object in {self.root}") from None
            yield snapshot
        finally:
            shutil.rmtree(snapshot.parent, ignore_errors=True)

    def _temp_beside(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".put-", suffix=".part", dir=self.scratch)
        os.close(fd)
        return Path(name)

    def put_file(self, path: Path, key: str) -> None:
        """Moves `path` in with one rename when it is on the same disk (the usual case), else
        copies it to a temporary file first; either way readers see all of it or nothing."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = _mode_like(path)
        try:
            os.chmod(path, mode)
            os.replace(path, target)
            return
        except OSError:
            pass
        with path.open("rb") as source, atomic_output(target, scratch=self.scratch, mode=mode) as out:
            shutil.copyfileobj(source, out, 8 << 20)

    def put_new(self, path: Path, key: str) -> bool:
        """Store `path`'s bytes under `key` unless `key` exists (then False). Atomic: link()
        never replaces an existing name, and what it links is complete. `path` is left in
        place; on the same disk it is linked directly (no copy), so it must not be modified
        afterwards (callers pass their own temporary or archived files)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        _publish_mode(path, like=path)
        try:
            os.link(path, target)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno != errno.EXDEV and exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        temp = self._temp_beside(target)  # another disk: copy to this one first
        try:
            _copy(path, temp)
            _publish_mode(temp, like=path)
            try:
                os.link(temp, target)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                return self._put_new_without_links(temp, target)
            return True
        finally:
            temp.unlink(missing_ok=True)

    @staticmethod
    def _put_new_without_links(temp: Path, target: Path) -> bool:
        """A file system without hard links: claim the name exclusively, then fill it."""
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _mode_like(temp))
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out, temp.open("rb") as source:
            shutil.copyfileobj(source, out, 8 << 20)
        return True

    def put_bytes(self, key: str, data: bytes, like: Path | None = None) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data, scratch=self.scratch, mode=_mode_like(like))  # a report is whole or absent

    def get_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def stat(self, key: str) -> ObjectStat | None:
        try:
            info = self.path(key).stat()
        except FileNotFoundError:
            return None
        # ctime too: a write in place within one clock tick may leave the mtime unchanged.
        return ObjectStat(info.st_size, info.st_mtime, f"{info.st_ino}:{info.st_mtime_ns}:{info.st_ctime_ns}")

    def move(self, src: str, dst: str) -> None:
        source, target = self.path(src), self.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # archive the bytes, not a link that may change or dangle
            self.put_file(self._copied(source, target), dst)
            source.unlink()
            return
        try:
            if target.exists() and os.path.samefile(source, target):
                source.unlink()  # two links to one file: rename() would do nothing and keep both
                return
            os.replace(source, target)
        except FileNotFoundError:
            if not target.exists():
                raise InfrastructureError(f"cannot move {src} to {dst}: neither exists") from None

    def _copied(self, source: Path, target: Path) -> Path:
        temp = self._temp_beside(target)
        try:
            _copy(source, temp)
            shutil.copymode(source, temp)
        except FileNotFoundError:
            temp.unlink(missing_ok=True)
            raise InfrastructureError(f"{source} is a link to nothing; its bytes cannot be archived") from None
        return temp

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[str]:
        base = self.path(prefix) if prefix else self.root
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_relative_to(self.scratch_root):
                yield path.relative_to(self.root).as_posix()


_FICLONE = 0x40049409


def _copy(source: Path, target: Path) -> None:
    """Copy bytes, as a reflink (instant, copy-on-write) where the file system supports it."""
    with source.open("rb") as src, target.open("wb") as dst:
        try:
            import fcntl

            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return
        except (OSError, ImportError):
            pass
    shutil.copyfile(source, target)
