"""S3 as the bucket. Every PUT is atomic per object, so readers never see half a file."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from orderpipe.adapters.workspace import Workspace
from orderpipe.errors import InfrastructureError
from orderpipe.ports import ObjectStat

__all__ = ["S3Store"]

SINGLE_PUT_LIMIT = 5 * 1024**3


class S3Store:
    def __init__(self, bucket: str, scratch: Path, client: Any = None) -> None:
        self.bucket = bucket
        self._workspace = Workspace(scratch)  # swept at the next start if this process is killed
        self._client = client
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """Made once, under a lock: facts are uploaded from several threads, and creating
        clients from boto3's default session at once is not thread-safe."""
        with self._client_lock:
            if self._client is None:
                import boto3

                self._client = boto3.client("s3")
            return self._client

    def _call(self, what: str, key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (BotoCoreError, ClientError, Boto3Error) as exc:  # boto3's transfers raise their own
            raise InfrastructureError(f"S3 {what} s3://{self.bucket}/{key} failed: {exc}") from exc

    @contextmanager
    def local_copy(self, key: str, version: str | None = None) -> Iterator[Path]:
        """Downloads (that version of) the object to a private folder. The local name is fixed:
        an S3 key's last segment may be longer than a local file name can be."""
        folder = Path(tempfile.mkdtemp(dir=self._workspace.path))
        path = folder / "object"
        try:
            extra = {"VersionId": version} if version else None
            self._call("download of", key, self.client.download_file, self.bucket, key, str(path), ExtraArgs=extra)
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def snapshot(self, key: str, version: str | None = None) -> AbstractContextManager[Path]:
        """A download is already a private copy."""
        return self.local_copy(key, version)

    def put_file(self, path: Path, key: str) -> None:
        self._call("upload to", key, self.client.upload_file, str(path), self.bucket, key)

    def put_new(self, path: Path, key: str) -> bool:
        """Upload unless `key` exists (then False): a conditional PUT, atomic on S3's side.

        A single PUT holds at most 5 GB; a larger file is checked, then uploaded in parts (a
        race with another upload of the same name is possible only there)."""
        if path.stat().st_size > SINGLE_PUT_LIMIT:
            if self.stat(key) is not None:
                return False
            self.put_file(path, key)
            return True
        try:
            with path.open("rb") as body:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise InfrastructureError(f"S3 upload to s3://{self.bucket}/{key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise InfrastructureError(f"S3 upload to s3://{self.bucket}/{key} failed: {exc}") from exc
        return True

    def put_bytes(self, key: str, data: bytes, like: Path | None = None) -> None:
        """`like` (a local file's permissions) has no meaning in a bucket: the bucket's policy rules."""
        self._call("put of", key, self.client.put_object, Bucket=self.bucket, Key=key, Body=data)

    def get_bytes(self, key: str) -> bytes:
        response = self._call("get of", key, self.client.get_object, Bucket=self.bucket, Key=key)
        return bytes(response["Body"].read())

    def stat(self, key: str) -> ObjectStat | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise InfrastructureError(f"S3 head of s3://{self.bucket}/{key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise InfrastructureError(f"S3 head of s3://{self.bucket}/{key} failed: {exc}") from exc
        return ObjectStat(int(head["ContentLength"]), head["LastModified"].timestamp(), str(head.get("ETag", "")))

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def move(self, src: str, dst: str) -> None:
        """Copy then delete (S3 has no rename); idempotent when a retry finds `src` gone."""
        if self.stat(src) is None:
            if self.stat(dst) is None:
                raise InfrastructureError(f"cannot move s3://{self.bucket}/{src} to {dst}: neither exists")
            return
        source = {"Bucket": self.bucket, "Key": src}
        self._call("copy to", dst, self.client.copy, source, self.bucket, dst)
        self.delete(src)

    def delete(self, key: str) -> None:
        self._call("delete of", key, self.client.delete_object, Bucket=self.bucket, Key=key)

    def list(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except (BotoCoreError, ClientError) as exc:
            raise InfrastructureError(f"S3 list of s3://{self.bucket}/{prefix} failed: {exc}") from exc
