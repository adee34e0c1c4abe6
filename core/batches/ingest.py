"""The upload use case, in the order that makes 202 a promise.

1. the device is authenticated (by the caller), 2. the factor's backlog is within
bounds (a retry of an accepted batch gets its job even when it is not), and an enrol
batch arrives inside an enrolment window the tenant opened (409 otherwise), 3. the blob is
durable, 4. one statement checks that the device is active and the server key usable
and commits batch + job + outbox rows together (this is what 202 promises), or finds
the job of an earlier upload of the batch, 5. the job is published after commit, in
the background (the relay publishes it if this step never happens).

A blob whose rows were certainly not inserted (the statement refused them, never reached
the database, or found an earlier upload) is removed at once. When the outcome is unknown
(the connection broke while the statement ran, the request was cancelled) it is left to
the relay's orphan sweep, which removes it once it is older than the upload timeout and
no batch row references it: the statement inserts nothing past half that timeout, so the
sweep never takes a blob whose rows may still commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

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
            window = await find_open_window(
                conn, user_id=device.user_id, device_id=device.id, factor=batch.factor
            )
        if (
            window is None
        ):  # refused before anything is stored; a retry of an accepted batch gets its job
            existing = await _earlier(db, device, batch)
            if existing is None:
                raise enrolment_closed()
            return existing
        batch = dataclasses.replace(batch, enrolment_id=window)
    received, batch_id = utcnow(), uuid.uuid4()
    key = raw_batch_key(
        device.tenant_id, device.id, received, batch_id
    )  # this attempt's own object
    deadline = received + timedelta(seconds=settings.reliability.upload_timeout_s / 2)
    try:
        await store.put_async(key, batch.body)  # durable before the rows that point at it
    except BaseException:
        await _remove(store, key)  # a write interrupted may still have landed
        raise
    sent = False
    try:
        async with async_connection(db) as conn:
            sent = True
            accepted = await record_batch_async(
                conn,
                device=device,
                batch=batch,
                object_key=key,
                queue=queue,
                received=received,
                batch_id=batch_id,
                deadline=deadline,
            )
    except BaseException as e:
        # A refusal in the statement's answer, or an error before it was sent, inserted
        # nothing; a broken connection or a cancellation may have committed: the sweep decides.
        if not (sent and _outcome_unknown(e)):
            await _remove(store, key)
        raise
    if accepted.created:
        publisher.publish_soon(
            accepted.job_id, accepted.queue
        )  # the outbox row is the durable enqueue
    else:
        await _remove(store, key)  # the earlier upload's blob is the one
    return accepted


def _outcome_unknown(e: BaseException) -> bool:
    """The statement was sent and may have committed: the connection broke, or we stopped waiting."""
    return (isinstance(e, Unavailable) and e.code == "database_unavailable") or not isinstance(
        e, Exception
    )


async def _earlier(
    db: AsyncConnectionPool, device: Device, batch: NewBatch
) -> AcceptedBatch | None:
    async with async_connection(db) as conn:
        found = await lookup(
            conn, device_id=device.id, client_batch_id=batch.client_batch_id, key_id=None
        )
    return found.existing


async def _remove(store: ObjectStore, key: str) -> None:
    """Delete `key` in a worker thread; a cancelled request stops waiting, not deleting."""
    await asyncio.shield(
        asyncio.get_running_loop().run_in_executor(None, _remove_quietly, store, key)
    )


def _remove_quietly(store: ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except (Unavailable, OSError):
        pass  # the orphan sweep finds blobs without a batch row
