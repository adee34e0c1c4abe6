"""Accepted batches for tests: core's accept statement run inside the test's own transaction."""

from __future__ import annotations

from typing import Any

from core.batches.service import AcceptedBatch, accept_statement, device_deleted_is_not_found
from core.db import DictConnection


def record_batch_sync(conn: DictConnection, **fields: Any) -> AcceptedBatch:
    """Batch, job and outbox rows on `conn` (committed with its transaction), or the earlier job.

    `fields` are `accept_statement`'s: device, batch, object_key, queue, received.
    """
    statement = accept_statement(**fields)
    with device_deleted_is_not_found():
        row = conn.execute(statement.sql, statement.params).fetchone()
    accepted = statement.outcome(row)
    assert accepted is not None, "a concurrent upload of the same batch"
    return accepted
