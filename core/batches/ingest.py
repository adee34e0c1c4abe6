"""The upload use case, in the order that makes 202 a promise.

1. the device is known, active and authenticated (by the caller), 2. a retry of an accepted batch returns its job,
3. the factor's backlog is within bounds, 4. the blob is durable, 5. batch + job +
outbox rows commit together (this is what 202 promises), 6. the job is published
after commit, in the background (the relay publishes it if this step never happens).
A failure before 5 removes the blob.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from psycopg_pool import AsyncConnectionPool

from core.batches.service import AcceptedBatch, NewBatch, lookup, record_batch_async, utcnow
from core.db import async_connection
from core.devices.service import Device
from core.errors import Unavailable
from core.keys.service import check_usable
from core.publisher import JobPublisher
from core.settings import Settings
from core.storage import ObjectStore, raw_batch_key

BacklogCheck = Callable[[str], Awaitable[None]]


async def ingest(
    db: AsyncConnectionPool,
    store: ObjectStore,
    publisher: JobPublisher,
    settings: Settings,
    *,
    device: Device,
    batch: NewBatch,
    check_backlog: BacklogCheck | None = None,
) -> AcceptedBatch:
    """Accept a batch from an authenticated, active `device` (see the module's order of steps).

    A batch that names a server key (every device upload does) is refused unless the key
    is published and not retired. Postgres sees two statements, each one round trip: the
    lookup, and the insert that commits batch, job and outbox rows together. Only the
    blob write leaves the event loop.
    """
    async with async_connection(db) as conn:
        found = await lookup(conn, device_id=device.id, client_batch_id=batch.client_batch_id, key_id=batch.key_id)
    if batch.key_id is not None:
        check_usable(batch.key_id, found.key_status)
    if found.existing is not None:
        return found.existing
    queue = settings.queues.score_queue(batch.factor)
    if check_backlog is not None:
        await check_backlog(queue)
    received = utcnow()
    key = raw_batch_key(device.tenant_id, device.id, received, batch.client_batch_id)
    await store.put_async(key, batch.body)  # durable before the rows that point at it
    try:
        async with async_connection(db) as conn:
            accepted = await record_batch_async(
                conn, device=device, batch=batch, object_key=key, queue=queue, received=received
            )
    except BaseException:
        await asyncio.to_thread(_remove_quietly, store, key)
        raise
    if accepted.created:
        publisher.publish_soon(accepted.job_id, accepted.queue)  # the outbox row is the durable enqueue
    return accepted


def _remove_quietly(store: ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except Unavailable:
        pass  # the orphan sweep finds blobs without a batch row
