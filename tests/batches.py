"""Accepted batches for tests: core's accept statement run inside the test's own transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from core.batches.service import (
    AcceptedBatch,
    NewBatch,
    accept_statement,
    device_deleted_is_not_found,
)
from core.db import DictConnection
from core.devices.service import Device


def record_batch_sync(
    conn: DictConnection,
    *,
    device: Device,
    batch: NewBatch,
    object_key: str,
    queue: str,
    received: datetime,
    batch_id: uuid.UUID | None = None,
) -> AcceptedBatch:
    """Batch, job and outbox rows on `conn` (committed with its transaction), or the earlier job."""
    statement = accept_statement(
        device=device,
        batch=batch,
        object_key=object_key,
        queue=queue,
        received=received,
        batch_id=batch_id,
    )
    with device_deleted_is_not_found():
        row = conn.execute(statement.sql, statement.params).fetchone()
    accepted = statement.outcome(row)
    assert accepted is not None, "a concurrent upload of the same batch"
    return accepted
