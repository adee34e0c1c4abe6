"""Accepting a batch: blob first, then batch + job + outbox rows in one statement.

The caller publishes the job only after the rows commit (``core.publisher``); the
outbox row lets the relay publish it if that fails. The API runs the async forms
(`lookup`, `record_batch_async`); commands and tests use the sync ones.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from core import factors as registry
from core.db import AsyncDictConnection, DictConnection
from core.devices.service import Device, check_uploading
from core.errors import InvalidInput, NotFound, Unavailable
from core.keys.service import check_usable
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
    enrolment_id: uuid.UUID | None = None  # the window an enrol batch arrives in (core.enrolment)


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
    device_status: str | None  # None when the device no longer exists


_EXISTING = (
    " LEFT JOIN batches b ON b.device_id = %(d)s AND b.client_batch_id = %(cb)s"
    " LEFT JOIN jobs j ON j.batch_id = b.id"
    " LEFT JOIN LATERAL (SELECT queue FROM outbox WHERE job_id = j.id ORDER BY id LIMIT 1) o ON true"
)
_STATUSES = (
    "(SELECT status FROM server_keys WHERE key_id = %(kid)s) AS key_status,"
    " (SELECT status FROM devices WHERE id = %(d)s) AS device_status,"
)
_LOOKUP = (
    "SELECT "
    + _STATUSES
    + " j.id AS job_id, b.id AS batch_id, b.factor, o.queue FROM (SELECT) one"
    + _EXISTING
)

# One statement, so one round trip and atomic: the rows are inserted only while the
# device is active and its server key usable; the outer query reports those statuses,
# the job inserted, or the job of an earlier upload of the same batch. (It sees the
# tables as they were before the statement: the rows it inserts show only in `o`.)
_ACCEPT = (
    "WITH ok AS (SELECT 1 WHERE (SELECT status FROM devices WHERE id = %(d)s) = 'active'"
    " AND (%(kid)s::text IS NULL OR (SELECT status FROM server_keys WHERE key_id = %(kid)s) <> 'retired')"
    " AND (%(dl)s::timestamptz IS NULL OR clock_timestamp() < %(dl)s)),"
    " nb AS (INSERT INTO batches (id, tenant_id, user_id, device_id, client_batch_id, factor, purpose,"
    " object_key, size_bytes, key_id, captured_from, captured_to, received_at, enrolment_id)"
    " SELECT %(b)s, %(t)s, %(u)s, %(d)s, %(cb)s, %(f)s, %(p)s, %(k)s, %(n)s, %(kid)s, %(cf)s, %(ct)s, %(r)s, %(e)s"
    " FROM ok"
    " ON CONFLICT (device_id, client_batch_id) DO NOTHING RETURNING id),"
    " nj AS (INSERT INTO jobs (id, batch_id, tenant_id, user_id, factor, purpose, created_at)"
    " SELECT %(j)s, id, %(t)s, %(u)s, %(f)s, %(p)s, %(r)s FROM nb RETURNING id),"
    " no AS (INSERT INTO outbox (job_id, queue) SELECT id, %(q)s FROM nj RETURNING job_id)"
    " SELECT " + _STATUSES + " (SELECT job_id FROM no) AS inserted,"
    " j.id AS job_id, b.id AS batch_id, b.factor, o.queue FROM (SELECT) one" + _EXISTING
)


def _lookup_result(row: Any) -> Lookup:
    assert row is not None  # one row whatever matches
    existing = None
    if row["job_id"] is not None:
        existing = AcceptedBatch(
            row["job_id"], row["batch_id"], row["factor"], row["queue"] or "", created=False
        )
    return Lookup(existing, row["key_status"], row["device_status"])


def find_existing(
    conn: DictConnection, *, device_id: uuid.UUID, client_batch_id: uuid.UUID
) -> AcceptedBatch | None:
    row = conn.execute(_LOOKUP, {"d": device_id, "cb": client_batch_id, "kid": None}).fetchone()
    return _lookup_result(row).existing


async def lookup(
    conn: AsyncDictConnection,
    *,
    device_id: uuid.UUID,
    client_batch_id: uuid.UUID,
    key_id: str | None,
) -> Lookup:
    """The job of an earlier upload of this batch, and the statuses of the device and server key."""
    cur = await conn.execute(_LOOKUP, {"d": device_id, "cb": client_batch_id, "kid": key_id})
    return _lookup_result(await cur.fetchone())


def store_blob(
    store: ObjectStore, *, device: Device, batch: NewBatch, received: datetime, batch_id: uuid.UUID
) -> str:
    """Write the ciphertext durably under the batch row's id; returns its key. Before the rows are inserted."""
    key = raw_batch_key(device.tenant_id, device.id, received, batch_id)
    store.put(key, batch.body)
    return key


def _accept_params(
    device: Device,
    batch: NewBatch,
    object_key: str,
    queue: str,
    received: datetime,
    batch_id: uuid.UUID | None,
    deadline: datetime | None = None,
) -> tuple[dict[str, object], AcceptedBatch]:
    """Parameters of `_ACCEPT`, and the result when it inserts."""
    if batch.factor not in registry.names():
        raise InvalidInput(f"unknown factor {batch.factor!r}", code="unknown_factor")
    if batch.purpose not in PURPOSES:
        raise InvalidInput(f"unknown purpose {batch.purpose!r}", code="invalid_purpose")
    batch_id, job_id = batch_id or uuid.uuid4(), uuid.uuid4()
    params: dict[str, object] = {
        "b": batch_id,
        "t": device.tenant_id,
        "u": device.user_id,
        "d": device.id,
        "cb": batch.client_batch_id,
        "f": batch.factor,
        "p": batch.purpose,
        "k": object_key,
        "n": len(batch.body),
        "kid": batch.key_id,
        "cf": batch.captured_from,
        "ct": batch.captured_to,
        "r": received,
        "j": job_id,
        "q": queue,
        "e": batch.enrolment_id,
        "dl": deadline,
    }
    return params, AcceptedBatch(job_id, batch_id, batch.factor, queue, created=True)


def _accept_result(row: Any, batch: NewBatch, inserted: AcceptedBatch) -> AcceptedBatch | None:
    """What `_ACCEPT` did: refusals raise; None means a concurrent upload of the same batch won."""
    found = _lookup_result(row)
    check_uploading(found.device_status)
    if batch.key_id is not None:
        check_usable(batch.key_id, found.key_status)
    if row["inserted"] is not None:
        return inserted
    return found.existing


@contextlib.contextmanager
def _device_deleted_is_not_found() -> Iterator[None]:
    try:
        yield
    except psycopg.errors.ForeignKeyViolation:  # the device (its user) was deleted meanwhile
        raise NotFound("device not found", code="device_not_found") from None


def record_batch(
    conn: DictConnection,
    *,
    device: Device,
    batch: NewBatch,
    object_key: str,
    queue: str,
    received: datetime,
    batch_id: uuid.UUID | None = None,
) -> AcceptedBatch:
    """Insert batch, job and outbox rows in one statement, or return the job of an earlier upload.

    Refuses (and inserts nothing) when the device is gone or revoked, or the batch names
    a server key that is unpublished or retired. `batch_id` (the row's id) is the one
    `object_key` was made with, when it was (`store_blob`).
    """
    params, inserted = _accept_params(device, batch, object_key, queue, received, batch_id)
    with _device_deleted_is_not_found():
        row = conn.execute(_ACCEPT, params).fetchone()
    accepted = _accept_result(row, batch, inserted)
    if accepted is None:
        accepted = find_existing(conn, device_id=device.id, client_batch_id=batch.client_batch_id)
    assert accepted is not None
    return accepted


async def record_batch_async(
    conn: AsyncDictConnection,
    *,
    device: Device,
    batch: NewBatch,
    object_key: str,
    queue: str,
    received: datetime,
    batch_id: uuid.UUID | None = None,
    deadline: datetime | None = None,
) -> AcceptedBatch:
    """`record_batch` on an async autocommit connection: the one statement commits by itself.

    With a `deadline`, the statement inserts nothing once the database's clock has passed
    it (the orphan sweep may then be collecting the blob) and this raises `upload_timeout`.
    """
    params, inserted = _accept_params(
        device, batch, object_key, queue, received, batch_id, deadline
    )
    with _device_deleted_is_not_found():
        row = await (await conn.execute(_ACCEPT, params)).fetchone()
    accepted = _accept_result(row, batch, inserted)
    if accepted is None:
        found = await lookup(
            conn, device_id=device.id, client_batch_id=batch.client_batch_id, key_id=None
        )
        accepted = found.existing
    if accepted is None:  # neither inserted nor found: the deadline had passed
        raise Unavailable("the upload took too long; send it again", code="upload_timeout")
    return accepted


def utcnow() -> datetime:
    return datetime.now(UTC)
