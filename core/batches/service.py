"""Accepting a batch: blob first, then batch + job + outbox rows in one statement.

The caller publishes the job only after the rows commit (``core.publisher``); the
outbox row lets the relay publish it if that fails. The API runs the async forms
(`lookup`, `record_batch_async`); commands and tests use the sync ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.db import AsyncDictConnection, DictConnection
from core.devices.service import Device
from core.errors import InvalidInput
from core.queues import FACTORS
from core.storage import ObjectStore, raw_batch_key

PURPOSES = ("enrol", "verify")


@dataclass(frozen=True)
class NewBatch:
    client_batch_id: uuid.UUID
    factor: str
    purpose: str
    body: bytes  # stored as received (ciphertext)
    key_id: str | None = None
    captured_from: datetime | None = None
    captured_to: datetime | None = None


@dataclass(frozen=True)
class AcceptedBatch:
    job_id: uuid.UUID
    batch_id: uuid.UUID
    factor: str
    queue: str
    created: bool  # False when this (device, batch id) was accepted before


@dataclass(frozen=True)
class Lookup:
    existing: AcceptedBatch | None  # set when this (device, batch id) was accepted before
    key_status: str | None  # of the envelope's server key; None when unpublished


_LOOKUP = (
    "SELECT (SELECT status FROM server_keys WHERE key_id = %(kid)s) AS key_status,"
    " j.id AS job_id, b.id AS batch_id, b.factor, o.queue FROM (SELECT) one"
    " LEFT JOIN batches b ON b.device_id = %(d)s AND b.client_batch_id = %(cb)s"
    " LEFT JOIN jobs j ON j.batch_id = b.id"
    " LEFT JOIN LATERAL (SELECT queue FROM outbox WHERE job_id = j.id ORDER BY id LIMIT 1) o ON true"
)

# One round trip: the job and outbox rows exist only if the batch row was inserted.
_INSERT = (
    "WITH b AS (INSERT INTO batches (id, tenant_id, user_id, device_id, client_batch_id, factor, purpose,"
    " object_key, size_bytes, key_id, captured_from, captured_to, received_at)"
    " VALUES (%(b)s, %(t)s, %(u)s, %(d)s, %(cb)s, %(f)s, %(p)s, %(k)s, %(n)s, %(kid)s, %(cf)s, %(ct)s, %(r)s)"
    " ON CONFLICT (device_id, client_batch_id) DO NOTHING RETURNING id),"
    " j AS (INSERT INTO jobs (id, batch_id, tenant_id, user_id, factor, purpose, created_at)"
    " SELECT %(j)s, id, %(t)s, %(u)s, %(f)s, %(p)s, %(r)s FROM b RETURNING id)"
    " INSERT INTO outbox (job_id, queue) SELECT id, %(q)s FROM j RETURNING job_id"
)


def _lookup_params(device_id: uuid.UUID, client_batch_id: uuid.UUID, key_id: str | None) -> dict[str, object]:
    return {"d": device_id, "cb": client_batch_id, "kid": key_id}


def _lookup_result(row: Any) -> Lookup:
    assert row is not None  # one row whatever matches
    existing = None
    if row["job_id"] is not None:
        existing = AcceptedBatch(row["job_id"], row["batch_id"], row["factor"], row["queue"] or "", created=False)
    return Lookup(existing, row["key_status"])


def find_existing(conn: DictConnection, *, device_id: uuid.UUID, client_batch_id: uuid.UUID) -> AcceptedBatch | None:
    row = conn.execute(_LOOKUP, _lookup_params(device_id, client_batch_id, None)).fetchone()
    return _lookup_result(row).existing


async def lookup(
    conn: AsyncDictConnection, *, device_id: uuid.UUID, client_batch_id: uuid.UUID, key_id: str | None
) -> Lookup:
    """The idempotency lookup and the status of the batch's server key, in one statement."""
    cur = await conn.execute(_LOOKUP, _lookup_params(device_id, client_batch_id, key_id))
    return _lookup_result(await cur.fetchone())


def store_blob(store: ObjectStore, *, device: Device, batch: NewBatch, received: datetime) -> str:
    """Write the ciphertext durably; returns its key. Called before the rows are inserted."""
    key = raw_batch_key(device.tenant_id, device.id, received, batch.client_batch_id)
    store.put(key, batch.body)
    return key


def _insert(
    device: Device, batch: NewBatch, object_key: str, queue: str, received: datetime
) -> tuple[dict[str, object], AcceptedBatch]:
    """Parameters of `_INSERT`, and the result when it inserts."""
    if batch.factor not in FACTORS:
        raise InvalidInput(f"unknown factor {batch.factor!r}", code="unknown_factor")
    if batch.purpose not in PURPOSES:
        raise InvalidInput(f"unknown purpose {batch.purpose!r}", code="invalid_purpose")
    batch_id, job_id = uuid.uuid4(), uuid.uuid4()
    params: dict[str, object] = {
        "b": batch_id, "t": device.tenant_id, "u": device.user_id, "d": device.id,
        "cb": batch.client_batch_id, "f": batch.factor, "p": batch.purpose, "k": object_key,
        "n": len(batch.body), "kid": batch.key_id, "cf": batch.captured_from, "ct": batch.captured_to,
        "r": received, "j": job_id, "q": queue,
    }
    return params, AcceptedBatch(job_id, batch_id, batch.factor, queue, created=True)


def record_batch(
    conn: DictConnection, *, device: Device, batch: NewBatch, object_key: str, queue: str, received: datetime
) -> AcceptedBatch:
    """Insert batch, job and outbox rows in one statement; a concurrent duplicate returns the first job."""
    params, accepted = _insert(device, batch, object_key, queue, received)
    if conn.execute(_INSERT, params).fetchone() is not None:
        return accepted
    existing = find_existing(conn, device_id=device.id, client_batch_id=batch.client_batch_id)
    assert existing is not None
    return existing


async def record_batch_async(
    conn: AsyncDictConnection, *, device: Device, batch: NewBatch, object_key: str, queue: str, received: datetime
) -> AcceptedBatch:
    """`record_batch` on an async (autocommit) connection: the one statement commits by itself."""
    params, accepted = _insert(device, batch, object_key, queue, received)
    if await (await conn.execute(_INSERT, params)).fetchone() is not None:
        return accepted
    found = await lookup(conn, device_id=device.id, client_batch_id=batch.client_batch_id, key_id=None)
    assert found.existing is not None
    return found.existing


def utcnow() -> datetime:
    return datetime.now(UTC)
