"""Accepting a batch: blob first (`core.batches.uploads`), then batch + job + outbox rows in
one statement.

The caller publishes the job only after the rows commit (``core.publisher``); the
outbox row lets the relay publish it if that fails. The API runs `record_batch` on an
autocommit connection; tests and the worker benchmark run `accept_statement` in
transactions of their own.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import psycopg

from core.db import AsyncDictConnection
from core.devices.service import Device, check_uploading
from core.errors import NotFound, Unavailable
from core.keys.service import check_usable


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
    " LEFT JOIN batches b ON b.device_id = %(device_id)s AND b.client_batch_id = %(client_batch_id)s"
    " LEFT JOIN jobs j ON j.batch_id = b.id"
    " LEFT JOIN LATERAL (SELECT queue FROM outbox WHERE job_id = j.id ORDER BY id LIMIT 1) o ON true"
)
_STATUSES = (
    "(SELECT status FROM server_keys WHERE key_id = %(key_id)s) AS key_status,"
    " (SELECT status FROM devices WHERE id = %(device_id)s) AS device_status,"
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
    "WITH ok AS (SELECT 1 WHERE (SELECT status FROM devices WHERE id = %(device_id)s) = 'active'"
    " AND (%(key_id)s::text IS NULL"
    " OR (SELECT status FROM server_keys WHERE key_id = %(key_id)s) <> 'retired')"
    " AND (%(deadline)s::timestamptz IS NULL OR clock_timestamp() < %(deadline)s)),"
    " nb AS (INSERT INTO batches (id, tenant_id, user_id, device_id, client_batch_id, factor, purpose,"
    " object_key, size_bytes, key_id, captured_from, captured_to, received_at, enrolment_id)"
    " SELECT %(batch_id)s, %(tenant_id)s, %(user_id)s, %(device_id)s, %(client_batch_id)s,"
    " %(factor)s, %(purpose)s, %(object_key)s, %(size_bytes)s, %(key_id)s,"
    " %(captured_from)s, %(captured_to)s, %(received_at)s, %(enrolment_id)s"
    " FROM ok"
    " ON CONFLICT (device_id, client_batch_id) DO NOTHING RETURNING id),"
    " nj AS (INSERT INTO jobs (id, batch_id, tenant_id, user_id, factor, purpose, created_at)"
    " SELECT %(job_id)s, id, %(tenant_id)s, %(user_id)s, %(factor)s, %(purpose)s, %(received_at)s"
    " FROM nb RETURNING id),"
    " no AS (INSERT INTO outbox (job_id, queue) SELECT id, %(queue)s FROM nj RETURNING job_id)"
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


async def lookup(
    conn: AsyncDictConnection,
    *,
    device_id: uuid.UUID,
    client_batch_id: uuid.UUID,
    key_id: str | None,
) -> Lookup:
    """The job of an earlier upload of this batch, and the statuses of the device and server key."""
    params = {"device_id": device_id, "client_batch_id": client_batch_id, "key_id": key_id}
    cur = await conn.execute(_LOOKUP, params)
    return _lookup_result(await cur.fetchone())


@dataclass(frozen=True)
class AcceptStatement:
    """The accept statement with its parameters, and how to read its one row.

    `record_batch` runs it on the API's autocommit connections; tests and the worker
    benchmark run the same statement inside transactions of their own.
    """

    device: Device
    batch: NewBatch
    params: dict[str, object]
    inserted: AcceptedBatch  # the result when it inserts
    sql: ClassVar[str] = _ACCEPT

    def outcome(self, row: Any) -> AcceptedBatch | None:
        """What it did: refusals raise; None means a concurrent upload of the same batch won
        (or, with a deadline, that the deadline had passed)."""
        found = _lookup_result(row)
        check_uploading(found.device_status)
        if self.batch.key_id is not None:
            check_usable(self.batch.key_id, found.key_status)
        if row["inserted"] is not None:
            return self.inserted
        return found.existing


def accept_statement(
    *,
    device: Device,
    batch: NewBatch,
    object_key: str,
    queue: str,
    received: datetime,
    batch_id: uuid.UUID | None = None,
    deadline: datetime | None = None,
) -> AcceptStatement:
    """The statement inserting batch, job and outbox rows for `batch`, unless refused.

    It inserts nothing when the device is gone or revoked, the batch names a server key
    that is unpublished or retired, or the database's clock has passed `deadline`.
    `batch_id` (the row's id) is the one `object_key` was made with, when it was.
    """
    batch_id, job_id = batch_id or uuid.uuid4(), uuid.uuid4()
    params: dict[str, object] = {
        "batch_id": batch_id,
        "tenant_id": device.tenant_id,
        "user_id": device.user_id,
        "device_id": device.id,
        "client_batch_id": batch.client_batch_id,
        "factor": batch.factor,
        "purpose": batch.purpose,
        "object_key": object_key,
        "size_bytes": len(batch.body),
        "key_id": batch.key_id,
        "captured_from": batch.captured_from,
        "captured_to": batch.captured_to,
        "received_at": received,
        "job_id": job_id,
        "queue": queue,
        "enrolment_id": batch.enrolment_id,
        "deadline": deadline,
    }
    inserted = AcceptedBatch(job_id, batch_id, batch.factor, queue, created=True)
    return AcceptStatement(device, batch, params, inserted)


@contextlib.contextmanager
def device_deleted_is_not_found() -> Iterator[None]:
    """The accept statement's foreign-key error when the device (its user) was deleted meanwhile."""
    try:
        yield
    except psycopg.errors.ForeignKeyViolation:
        raise NotFound("device not found", code="device_not_found") from None


async def record_batch(conn: AsyncDictConnection, statement: AcceptStatement) -> AcceptedBatch:
    """Run the accept statement: the job inserted, or the job of an earlier upload of the batch.

    On an autocommit connection the one statement commits by itself. Refuses (see
    `accept_statement`); past its deadline (the orphan sweep may then be collecting the
    blob) it inserts nothing and raises `upload_timeout`.
    """
    with device_deleted_is_not_found():
        row = await (await conn.execute(statement.sql, statement.params)).fetchone()
    accepted = statement.outcome(row)
    if accepted is None:
        found = await lookup(
            conn,
            device_id=statement.device.id,
            client_batch_id=statement.batch.client_batch_id,
            key_id=None,
        )
        accepted = found.existing
    if accepted is None:  # neither inserted nor found: the deadline had passed
        raise Unavailable("the upload took too long; send it again", code="upload_timeout")
    return accepted


def utcnow() -> datetime:
    return datetime.now(UTC)
