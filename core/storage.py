"""The object store: S3 (or any S3-speaking server) in production, a directory when embedded.

Both honour the same small interface, and a ``put`` returns only once the object
is durable, so a batch row is never committed before its blob exists.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Protocol
from uuid import UUID

from core.errors import NotFound, Unavailable
from core.settings import StorageSettings


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def list(self, prefix: str) -> list[str]: ...

    def ping(self) -> None: ...


def raw_batch_key(tenant_id: UUID, device_id: UUID, received: datetime, batch_id: UUID) -> str:
    """Where a batch's ciphertext lives: raw/<tenant>/<device>/<yyyy>/<mm>/<dd>/<batch_id>."""
    return f"raw/{tenant_id}/{device_id}/{received:%Y/%m/%d}/{batch_id}"


class LocalStore:
    """Objects as files under one directory; writes are atomic (temp file, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError as e:
            raise Unavailable(
                f"object store directory unusable: {e.strerror}", code="storage_unavailable"
            ) from e
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise Unavailable(
                f"object store write failed: {e.strerror}", code="storage_unavailable"
            ) from e
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            if not self.root.is_dir():
                raise Unavailable(
                    "object store directory missing", code="storage_unavailable"
                ) from None
            raise NotFound(f"object {key} not found", code="object_not_found") from None
        except OSError as e:
            raise Unavailable(
                f"object store read failed: {e.strerror}", code="storage_unavailable"
            ) from e

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        return len(keys)

    def ping(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK):
            raise Unavailable("object store directory is not writable", code="storage_unavailable")


class S3Store:
    """An S3 bucket through boto3, with short timeouts so a dead endpoint answers 503 quickly."""

    def __init__(self, settings: StorageSettings) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = settings.bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            config=Config(
                connect_timeout=3,
                read_timeout=10,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def _call(self, fn, /, **kwargs):  # type: ignore[no-untyped-def]
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(
                    f"object {kwargs.get('Key')} not found", code="object_not_found"
                ) from e
            raise Unavailable(f"object store error {code}", code="storage_unavailable") from e
        except BotoCoreError as e:
            raise Unavailable(
                f"object store unreachable: {e.__class__.__name__}", code="storage_unavailable"
            ) from e

    def put(self, key: str, data: bytes) -> None:
        self._call(self.client.put_object, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        body: bytes = self._call(self.client.get_object, Key=key)["Body"].read()
        return body

    def delete(self, key: str) -> None:
        self._call(self.client.delete_object, Key=key)

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(self.client.list_objects_v2, Prefix=prefix, **token)
            keys += [o["Key"] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return keys
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            self._call(self.client.delete_objects, Delete={"Objects": [{"Key": k} for k in chunk]})
        return len(keys)

    def ping(self) -> None:
        self._call(self.client.head_bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket if missing (embedded and test set-ups; production creates it out of band)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)


def make_store(settings: StorageSettings) -> ObjectStore:
    if settings.backend == "s3":
        return S3Store(settings)
    return LocalStore(settings.local_dir)
