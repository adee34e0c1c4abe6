"""Accepting a batch: blob first, then batch + job + outbox rows in the caller's transaction.

The caller owns the transaction and publishes the job only after it commits
(``core.publisher``); the outbox row lets the relay publish it if that fails.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from core.db import DictConnection
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


def find_existing(conn: DictConnection, *, device_id: uuid.UUID, client_batch_id: uuid.UUID) -> AcceptedBatch | None:
    row = conn.execute(
        "SELECT j.id AS job_id, b.id AS batch_id, b.factor, o.queue FROM batches b"
        " JOIN jobs j ON j.batch_id = b.id"
        " LEFT JOIN LATERAL (SELECT queue FROM outbox WHERE job_id = j.id ORDER BY id LIMIT 1) o ON true"
        " WHERE b.device_id = %s AND b.client_batch_id = %s",
        (device_id, client_batch_id),
    ).fetchone()
    if row is None:
        return None
    return AcceptedBatch(row["job_id"], row["batch_id"], row["factor"], row["queue"] or "", created=False)


def store_blob(store: ObjectStore, *, device: Device, batch: NewBatch, received: datetime) -> str:
    """Write the ciphertext durably; returns its key. Called before the transaction commits."""
    key = raw_batch_key(device.tenant_id, device.id, received, batch.client_batch_id)
    store.put(key, batch.body)
    return key


def record_batch(
    conn: DictConnection, *, device: Device, batch: NewBatch, object_key: str, queue: str, received: datetime
) -> AcceptedBatch:
    """Insert batch, job and outbox rows; a concurrent duplicate returns the first job."""
    if batch.factor not in FACTORS:
        raise InvalidInput(f"unknown factor {batch.factor!r}", code="unknown_factor")
    if batch.purpose not in PURPOSES:
        raise InvalidInput(f"unknown purpose {batch.purpose!r}", code="invalid_purpose")
    batch_id, job_id = uuid.uuid4(), uuid.uuid4()
    # One round trip: the job and outbox rows exist only if the batch row was inserted.
    inserted = conn.execute(
        "WITH b AS (INSERT INTO batches (id, tenant_id, user_id, device_id, client_batch_id, factor, purpose,"
        " object_key, size_bytes, key_id, captured_from, captured_to, received_at)"
        " VALUES (%(b)s, %(t)s, %(u)s, %(d)s, %(cb)s, %(f)s, %(p)s, %(k)s, %(n)s, %(kid)s, %(cf)s, %(ct)s, %(r)s)"
        " ON CONFLICT (device_id, client_batch_id) DO NOTHING RETURNING id),"
        " j AS (INSERT INTO jobs (id, batch_id, tenant_id, user_id, factor, purpose, created_at)"
        " SELECT %(j)s, id, %(t)s, %(u)s, %(f)s, %(p)s, %(r)s FROM b RETURNING id)"
        " INSERT INTO outbox (job_id, queue) SELECT id, %(q)s FROM j RETURNING job_id",
        {
            "b": batch_id, "t": device.tenant_id, "u": device.user_id, "d": device.id,
            "cb": batch.client_batch_id, "f": batch.factor, "p": batch.purpose, "k": object_key,
            "n": len(batch.body), "kid": batch.key_id, "cf": batch.captured_from, "ct": batch.captured_to,
            "r": received, "j": job_id, "q": queue,
        },
    ).fetchone()
    if inserted is None:
        existing = find_existing(conn, device_id=device.id, client_batch_id=batch.client_batch_id)
        assert existing is not None
        return existing
    return AcceptedBatch(job_id, batch_id, batch.factor, queue, created=True)


def utcnow() -> datetime:
    return datetime.now(UTC)
