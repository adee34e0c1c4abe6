"""The upload use case, in the order that makes 202 a promise.

1. the device is authenticated (by the caller), 2. the factor's backlog is within
bounds (a retry of an accepted batch gets its job even when it is not), and an enrol
batch arrives inside an enrolment window the tenant opened (409 otherwise), 3. the blob is
durable, 4. one statement checks that the device is active and the server key usable
and commits batch + job + outbox rows together (this is what 202 promises), or finds
the job of an earlier upload of the batch, 5. the job is published after commit, in
the background (the relay publishes it if this step never happens). A blob whose rows
were not inserted is removed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable

from psycopg_pool import AsyncConnectionPool

from core.batches.service import AcceptedBatch, NewBatch, lookup, record_batch_async, utcnow
from core.db import async_connection
from core.devices.service import Device
from core.enrolment.windows import enrolment_closed, find_open_window
from core.errors import Unavailable
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
    """Accept a batch from an authenticated `device` (see the module's order of steps).

    Postgres sees one statement, one round trip: it checks that the device is still active
    and the batch's server key usable, and inserts batch, job and outbox rows, or finds the
    job of an earlier upload of the same batch. The blob is written first, so a retry
    writes one that is then removed: retries are rare, round trips are not.
    """
    queue = settings.queues.score_queue(batch.factor)
    if check_backlog is not None:
        try:
            await check_backlog(queue)
        except Unavailable:
            existing = await _earlier(db, device, batch)
            if existing is None:
                raise
            return existing  # a retry of an accepted batch needs no room in the queue
    if batch.purpose == "enrol" and batch.enrolment_id is None:
        async with async_connection(db) as conn:
            window = await find_open_window(conn, user_id=device.user_id, device_id=device.id, factor=batch.factor)
        if window is None:  # refused before anything is stored; a retry of an accepted batch gets its job
            existing = await _earlier(db, device, batch)
            if existing is None:
                raise enrolment_closed()
            return existing
        batch = dataclasses.replace(batch, enrolment_id=window)
    received, batch_id = utcnow(), uuid.uuid4()
    key = raw_batch_key(device.tenant_id, device.id, received, batch_id)  # this attempt's own object
    await store.put_async(key, batch.body)  # durable before the rows that point at it
    try:
        async with async_connection(db) as conn:
            accepted = await record_batch_async(
                conn, device=device, batch=batch, object_key=key, queue=queue, received=received, batch_id=batch_id
            )
    except BaseException:
        await asyncio.to_thread(_remove_quietly, store, key)
        raise
    if accepted.created:
        publisher.publish_soon(accepted.job_id, accepted.queue)  # the outbox row is the durable enqueue
    else:
        await asyncio.to_thread(_remove_quietly, store, key)  # the earlier upload's blob is the one
    return accepted


async def _earlier(db: AsyncConnectionPool, device: Device, batch: NewBatch) -> AcceptedBatch | None:
    async with async_connection(db) as conn:
        found = await lookup(conn, device_id=device.id, client_batch_id=batch.client_batch_id, key_id=None)
    return found.existing


def _remove_quietly(store: ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except Unavailable:
        pass  # the orphan sweep finds blobs without a batch row
