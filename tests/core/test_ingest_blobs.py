"""Nothing half-written: an upload's blob goes when its rows certainly did not commit, and
the relay's sweep collects the blobs of uploads whose outcome was unknown.

Real Postgres and S3 (moto); the database connection of an upload is terminated while its
statement runs (pg_terminate_backend), as a Postgres restart would do.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import timedelta

import pytest
import redis.asyncio

from core.batches.service import NewBatch, accept_statement, record_batch, utcnow
from core.batches.uploads import Uploads
from core.db import async_connection, connect, make_async_pool, make_pool
from core.devices.service import SigningKeys, create_device, revoke_device
from core.errors import Forbidden, Unavailable
from core.publisher import JobPublisher
from core.ratelimit import UploadGate
from core.storage import make_store
from tests.batches import record_batch_sync
from workers import relay

pytestmark = pytest.mark.integration


def _device(settings, tenant):  # type: ignore[no-untyped-def]
    with connect(settings.database_url, autocommit=True) as conn:
        return create_device(
            conn, tenant_id=tenant["id"], user_external_id=f"u-{uuid.uuid4().hex[:6]}"
        )


def _batch(client_batch_id: uuid.UUID | None = None) -> NewBatch:
    return NewBatch(client_batch_id or uuid.uuid4(), "keystroke", "verify", b"ciphertext")


def _blobs(store, device) -> list[str]:  # type: ignore[no-untyped-def]
    return store.list(f"raw/{device.tenant_id}/{device.id}/")


def _eventually_empty(store, device, timeout: float = 5.0) -> list[str]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while (left := _blobs(store, device)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


async def _ingest(settings, device, batch: NewBatch, *, on_pool=None):  # type: ignore[no-untyped-def]
    """The ingest steps of the upload use case, for a device taken as authenticated."""
    db = make_async_pool(settings.database_url, min_size=1, max_size=2, name="test-ingest")
    await db.open(wait=True)
    aredis = redis.asyncio.Redis.from_url(settings.redis_url)
    try:
        if on_pool is not None:
            on_pool(db)
        uploads = Uploads(
            db,
            make_store(settings.storage),
            JobPublisher(settings),
            settings,
            keys=SigningKeys(),
            gate=UploadGate(aredis, device_per_min=60, tenant_per_min=600),
        )
        return await uploads.ingest(device, batch)
    finally:
        await aredis.aclose()
        await db.close()


def test_a_refused_upload_removes_its_blob(settings, tenant):  # type: ignore[no-untyped-def]
    # given a device revoked after it signed (the statement sees it revoked)
    device = _device(settings, tenant)
    with connect(settings.database_url, autocommit=True) as conn:
        revoke_device(conn, tenant_id=tenant["id"], device_id=device.id)
    store = make_store(settings.storage)
    # when it uploads
    with pytest.raises(Forbidden):
        asyncio.run(_ingest(settings, device, _batch()))
    # then the blob written before the statement is gone, and there is no row
    assert _eventually_empty(store, device) == []


def test_an_upload_past_its_deadline_inserts_nothing(settings, tenant):  # type: ignore[no-untyped-def]
    device = _device(settings, tenant)

    async def late() -> None:
        db = make_async_pool(settings.database_url, min_size=1, max_size=1, name="test-late")
        await db.open(wait=True)
        try:
            async with async_connection(db) as conn:
                statement = accept_statement(
                    device=device,
                    batch=_batch(),
                    object_key="raw/x",
                    queue="score.keystroke",
                    received=utcnow(),
                    deadline=utcnow() - timedelta(seconds=1),
                )
                await record_batch(conn, statement)
        finally:
            await db.close()

    with pytest.raises(Unavailable) as e:
        asyncio.run(late())
    assert e.value.code == "upload_timeout"
    with connect(settings.database_url, autocommit=True) as conn:
        assert (
            conn.execute(
                "SELECT count(*) AS n FROM batches WHERE device_id = %s", (device.id,)
            ).fetchone()["n"]
            == 0
        )


def test_postgres_killing_an_upload_mid_statement_leaves_the_blob_to_the_sweep(settings, tenant):  # type: ignore[no-untyped-def]
    device = _device(settings, tenant)
    store = make_store(settings.storage)
    batch = _batch()
    # given another upload of the same batch holding its row uncommitted, so the
    # upload's statement waits inside Postgres
    holder = connect(settings.database_url)  # one open transaction
    record_batch_sync(
        holder,
        device=device,
        batch=batch,
        object_key="raw/held",
        queue="score.keystroke",
        received=utcnow(),
    )
    killed = threading.Event()

    def kill_waiting_statement() -> None:
        with connect(settings.database_url, autocommit=True) as admin:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                row = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE '%%INSERT INTO batches%%'"
                ).fetchone()
                if row:
                    admin.execute("SELECT pg_terminate_backend(%s)", (row["pid"],))
                    killed.set()
                    return
                time.sleep(0.05)

    killer = threading.Thread(target=kill_waiting_statement)
    killer.start()
    try:
        # when Postgres ends the upload's connection while the statement runs
        with pytest.raises(Unavailable) as e:
            asyncio.run(_ingest(settings, device, batch))
    finally:
        killer.join()
        holder.rollback()
        holder.close()
    assert killed.is_set()
    assert e.value.code == "database_unavailable"
    # then the blob stays (the rows might have committed) ...
    time.sleep(0.5)
    left = _blobs(store, device)
    assert len(left) == 1
    # ... while a blob that a batch row references is never the sweep's
    accepted = asyncio.run(_ingest(settings, device, _batch()))
    kept = [k for k in _blobs(store, device) if k not in left]
    assert accepted.created and len(kept) == 1
    # and the sweep removes the unreferenced one once it is older than the upload timeout
    pool = make_pool(settings.database_url, max_size=2, name="test-sweep")
    pool.open()
    try:
        quick = settings.model_copy(
            update={
                "reliability": settings.reliability.model_copy(update={"upload_timeout_s": 1.0})
            }
        )
        prefix = f"raw/{device.tenant_id}/{device.id}/"
        assert (
            relay.sweep_orphan_blobs(pool, store, settings, prefix=prefix) == 0
        )  # too young at 60 s
        time.sleep(2.2)  # S3 keeps whole seconds
        assert relay.sweep_orphan_blobs(pool, store, quick, prefix=prefix) == 1
    finally:
        pool.close()
    assert _blobs(store, device) == kept
