"""The object store: S3 (or any S3-speaking server) in production, a directory when embedded.

Both honour the same small interface, and a ``put`` returns only once the object
is durable, so a batch row is never committed before its blob exists.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import ctypes
import os
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Protocol
from uuid import UUID, uuid4

from core.errors import NotFound, Unavailable
from core.settings import StorageSettings


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    async def put_async(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def list(self, prefix: str) -> list[str]: ...

    def list_older(self, prefix: str, older_than_s: float) -> builtins.list[str]:
        """Keys under `prefix` last written more than `older_than_s` seconds ago."""
        ...

    def ping(self) -> None: ...


def raw_batch_key(tenant_id: UUID, device_id: UUID, received: datetime, batch_id: UUID) -> str:
    """Where a batch's ciphertext lives: raw/<tenant>/<device>/<yyyy>/<mm>/<dd>/<batch_id>.

    `batch_id` is the server's id of the batch row (``batches.id``), not the device's:
    each upload attempt writes its own object, so a retry can never overwrite the blob
    of the attempt that was accepted.
    """
    return f"raw/{tenant_id}/{device_id}/{received:%Y/%m/%d}/{batch_id}"


class LocalStore:
    """Objects as files under one directory; each write is atomic (temp file, rename) and durable.

    Writes go through one writer thread that makes a whole group durable with a single
    filesystem sync: uploads that arrive together share one journal commit instead of
    paying for one fsync each (about 2-4 ms on a virtual disk).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._writer = _GroupWriter(str(self.root))

    def _path(self, key: str) -> Path:
        path = os.path.normpath(os.path.join(self.root, key))
        if not path.startswith(str(self.root) + os.sep):
            raise ValueError(f"object key escapes the store: {key!r}")
        return Path(path)

    def put(self, key: str, data: bytes) -> None:
        self._writer.submit(str(self._path(key)), data).result()

    async def put_async(self, key: str, data: bytes) -> None:
        await self._writer.submit_async(str(self._path(key)), data)

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

    def list_older(self, prefix: str, older_than_s: float) -> builtins.list[str]:
        import time

        before, old = time.time() - older_than_s, []
        for key in self.list(prefix):
            with contextlib.suppress(FileNotFoundError):
                if self._path(key).stat().st_mtime < before:
                    old.append(key)
        return old

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        self._remove_empty_dirs(prefix)
        return len(keys)

    def _remove_empty_dirs(self, prefix: str) -> None:
        """Folders left empty under `prefix` (and it), deepest first: an erased device leaves none."""
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else None
        if base is None or not base.is_dir():
            return
        for d in sorted(
            (p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ) + [base]:
            try:
                d.rmdir()
            except OSError:
                pass  # not empty (or in use): it stays

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

    async def put_async(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self.put, key, data)

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

    def list_older(self, prefix: str, older_than_s: float) -> builtins.list[str]:
        from datetime import UTC, timedelta

        before = datetime.now(UTC) - timedelta(seconds=older_than_s)
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(self.client.list_objects_v2, Prefix=prefix, **token)
            keys += [o["Key"] for o in page.get("Contents", []) if o["LastModified"] < before]
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


class _GroupWriter:
    """One thread that writes the objects handed to it, many per filesystem sync.

    A group is whatever arrived while the previous group was syncing. Each object is
    written to a temp file and renamed into place; then one ``syncfs`` makes the data
    and the renames of the whole group durable (where ``syncfs`` is missing, an fsync
    of every file and directory does). Each caller's future fails alone when its own
    write fails.
    """

    MAX_GROUP = 256

    def __init__(self, root: str) -> None:
        self.root = root
        # items are lists of writes: an event loop hands over all of one iteration's at once
        self._queue: queue.SimpleQueue[list[tuple[str, bytes, _Done]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._dirs: set[str] = set()
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[str, bytes, _Done]]] = {}

    def submit(self, path: str, data: bytes) -> Future[None]:
        done: Future[None] = Future()
        self._put([(path, data, done)])
        return done

    def submit_async(self, path: str, data: bytes) -> asyncio.Future[None]:
        """Like `submit`, for a coroutine: the writes of one loop iteration wake the writer
        once, and the loop is woken once per group written (not once per object)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append((path, data, (loop, done)))
        return done

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._put(self._pending.pop(loop, []))

    def _put(self, items: list[tuple[str, bytes, _Done]]) -> None:
        if not items:
            return
        self._queue.put(items)
        if self._thread is None or not self._thread.is_alive():  # not started, or lost in a fork
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, daemon=True, name="object-writer"
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            group = list(self._queue.get())
            while len(group) < self.MAX_GROUP:
                try:
                    group.extend(self._queue.get_nowait())
                except queue.Empty:
                    break
            outcomes: list[tuple[_Done, BaseException | None]] = []
            try:
                self._write(group, outcomes)
            finally:
                _settle(outcomes)

    def _write(
        self,
        group: list[tuple[str, bytes, _Done]],
        outcomes: list[tuple[_Done, BaseException | None]],
    ) -> None:
        written: list[tuple[int, str, _Done]] = []
        for path, data, done in group:
            try:
                written.append((self._write_one(path, data), path, done))
            except OSError as e:
                outcomes.append(
                    (
                        done,
                        Unavailable(
                            f"object store write failed: {e.strerror}", code="storage_unavailable"
                        ),
                    )
                )
        try:
            _sync([fd for fd, _, _ in written], {os.path.dirname(p) for _, p, _ in written})
        except OSError as e:
            for _, path, done in written:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # not durable: as if never written
                outcomes.append(
                    (
                        done,
                        Unavailable(
                            f"object store sync failed: {e.strerror}", code="storage_unavailable"
                        ),
                    )
                )
        else:
            outcomes.extend((done, None) for _, _, done in written)
        finally:
            for fd, _, _ in written:
                os.close(fd)

    def _write_one(self, path: str, data: bytes) -> int:
        """Write `data` under a temp name, rename it to `path`; returns the open descriptor."""
        parent = os.path.dirname(path)
        tmp = os.path.join(parent, f".tmp-{uuid4().hex}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            if parent not in self._dirs:
                raise FileNotFoundError
            fd = os.open(tmp, flags, 0o644)
        except FileNotFoundError:  # a new directory, or one removed since
            self._dirs.discard(parent)
            os.makedirs(parent, exist_ok=True)
            fd = os.open(tmp, flags, 0o644)
            self._dirs.add(parent)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.replace(tmp, path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return fd


# A write's completion: a concurrent Future (`submit`) or an asyncio one and its loop.
_Done = Future[None] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _settle(outcomes: list[tuple[_Done, BaseException | None]]) -> None:
    """Complete every future of a group; one wake-up per event loop."""
    by_loop: dict[
        asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]
    ] = {}
    for done, exc in outcomes:
        if isinstance(done, tuple):
            by_loop.setdefault(done[0], []).append((done[1], exc))
        elif exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(_settle_in_loop, futures)


def _settle_in_loop(futures: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for fut, exc in futures:
        if fut.done():
            continue  # cancelled meanwhile
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(exc)


def _sync(fds: list[int], dirs: set[str]) -> None:
    """Make the files behind `fds`, and entries renamed into `dirs`, durable."""
    if not fds:
        return
    if _SYNCFS is not None:
        if _SYNCFS(fds[0]) != 0:  # one journal commit covers every file and rename
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return
    for fd in fds:
        os.fsync(fd)
    for d in dirs:
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs() if sys.platform.startswith("linux") else None


def make_store(settings: StorageSettings) -> ObjectStore:
    if settings.backend == "s3":
        return S3Store(settings)
    return LocalStore(settings.local_dir)
