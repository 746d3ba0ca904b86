"""A folder as the bucket: keys are relative paths; every write is a rename, so it is atomic."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orderpipe.errors import InfrastructureError
from orderpipe.ports import ObjectStat

__all__ = ["FolderStore"]


class FolderStore:
    """Temporary files live in `root/.tmp` (same disk, so renames stay atomic), never beside a
    key: a watcher of input/ must not see half-written files, even after a crash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scratch = root / ".tmp"

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
        """A hard link to the object: free, and stable, since writers replace keys by rename."""
        path = self.path(key)
        self.scratch.mkdir(parents=True, exist_ok=True)
        snapshot = Path(tempfile.mkdtemp(dir=self.scratch)) / path.name
        try:
            try:
                os.link(path, snapshot)
            except FileNotFoundError:
                raise InfrastructureError(f"{key}: no such object in {self.root}") from None
            except OSError:
                shutil.copyfile(path, snapshot)  # a file system without hard links
            yield snapshot
        finally:
            shutil.rmtree(snapshot.parent, ignore_errors=True)

    def _temp_beside(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        self.scratch.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=self.scratch)
        os.close(fd)
        return Path(name)

    def put_file(self, path: Path, key: str) -> None:
        """Moves `path` in with one rename when it is on the same disk (the usual case), else
        copies it to a temporary file first; either way readers see all of it or nothing."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
            return
        except OSError:
            pass
        temp = self._temp_beside(target)
        try:
            shutil.copyfile(path, temp)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self.path(key)
        temp = self._temp_beside(target)
        try:
            temp.write_bytes(data)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def get_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def stat(self, key: str) -> ObjectStat | None:
        try:
            info = self.path(key).stat()
        except FileNotFoundError:
            return None
        return ObjectStat(info.st_size, info.st_mtime, f"{info.st_ino}:{info.st_mtime_ns}")

    def move(self, src: str, dst: str) -> None:
        source, target = self.path(src), self.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except FileNotFoundError:
            if not target.exists():
                raise InfrastructureError(f"cannot move {src} to {dst}: neither exists") from None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[str]:
        base = self.path(prefix) if prefix else self.root
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_relative_to(self.scratch):
                yield path.relative_to(self.root).as_posix()
