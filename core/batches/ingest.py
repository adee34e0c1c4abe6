"""The upload use case, in the order that makes 202 a promise.

1. the device is known, active and authenticated (by the caller), 2. a retry of an accepted batch returns its job,
3. the factor's backlog is within bounds, 4. the blob is durable, 5. batch + job +
outbox rows commit together, 6. the job is published after commit (the relay
republishes it if this step fails). A failure before 5 removes the blob.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg_pool import ConnectionPool

from core.batches.service import (
    AcceptedBatch,
    NewBatch,
    find_existing,
    record_batch,
    store_blob,
    utcnow,
)
from core.db import DictConnection, transaction
from core.devices.service import Device
from core.errors import Unavailable
from core.publisher import JobPublisher
from core.settings import Settings
from core.storage import ObjectStore

BacklogCheck = Callable[[str], None]


def ingest(
    pool: ConnectionPool,
    store: ObjectStore,
    publisher: JobPublisher,
    settings: Settings,
    *,
    device: Device,
    batch: NewBatch,
    check_backlog: BacklogCheck | None = None,
    check_batch: Callable[[DictConnection], None] | None = None,
) -> AcceptedBatch:
    """Accept a batch from an authenticated, active `device` (see the module's order of steps).

    `check_batch` runs in the first transaction, before the idempotency lookup (the API
    checks there that the envelope's server key is published and not retired).
    """
    with transaction(pool) as conn:
        if check_batch is not None:
            check_batch(conn)
        existing = find_existing(conn, device_id=device.id, client_batch_id=batch.client_batch_id)
    if existing is not None:
        return existing
    queue = settings.queues.score_queue(batch.factor)
    if check_backlog is not None:
        check_backlog(queue)
    received = utcnow()
    key = store_blob(store, device=device, batch=batch, received=received)
    try:
        with transaction(pool) as conn:
            accepted = record_batch(conn, device=device, batch=batch, object_key=key, queue=queue, received=received)
    except BaseException:
        _remove_quietly(store, key)
        raise
    if accepted.created:
        publisher.publish(accepted.job_id, accepted.queue)  # on failure the relay publishes it
    return accepted


def _remove_quietly(store: ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except Unavailable:
        pass  # the orphan sweep finds blobs without a batch row
