"""Devices: a phone of one user, holding an Ed25519 signing key."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from core.db import DictConnection, async_connection
from core.errors import DomainError, Forbidden, NotFound
from core.users.service import get_or_create_user


@dataclass(frozen=True)
class Device:
    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    user_external_id: str
    public_key: bytes | None
    status: str
    created_at: datetime


_SELECT = (
    "SELECT d.id, d.tenant_id, d.user_id, u.external_id, d.public_key, d.status, d.created_at"
    " FROM devices d JOIN users u ON u.id = d.user_id"
)


def _device(row: Any) -> Device:  # a dict_row row
    pk = row["public_key"]
    return Device(
        row["id"],
        row["tenant_id"],
        row["user_id"],
        row["external_id"],
        bytes(pk) if pk is not None else None,
        row["status"],
        row["created_at"],
    )


def create_device(
    conn: DictConnection,
    *,
    tenant_id: uuid.UUID,
    user_external_id: str,
    public_key: bytes | None = None,
) -> Device:
    user_id = get_or_create_user(conn, tenant_id=tenant_id, external_id=user_external_id)
    device_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO devices (id, tenant_id, user_id, public_key) VALUES (%s, %s, %s, %s)",
        (device_id, tenant_id, user_id, public_key),
    )
    return get_device(conn, device_id=device_id, tenant_id=tenant_id)


def get_device(
    conn: DictConnection, *, device_id: uuid.UUID, tenant_id: uuid.UUID | None = None
) -> Device:
    """A device by id; scoped to `tenant_id` when given (another tenant's device is NotFound)."""
    sql = _SELECT + " WHERE d.id = %s"
    params: list[object] = [device_id]
    if tenant_id is not None:
        sql += " AND d.tenant_id = %s"
        params.append(tenant_id)
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise NotFound("device not found", code="device_not_found")
    return _device(row)


def list_devices(
    conn: DictConnection, *, tenant_id: uuid.UUID, user_external_id: str | None = None
) -> list[Device]:
    sql = _SELECT + " WHERE d.tenant_id = %s"
    params: list[object] = [tenant_id]
    if user_external_id is not None:
        sql += " AND u.external_id = %s"
        params.append(user_external_id)
    return [_device(r) for r in conn.execute(sql + " ORDER BY d.created_at", params).fetchall()]


def revoke_device(conn: DictConnection, *, tenant_id: uuid.UUID, device_id: uuid.UUID) -> Device:
    cur = conn.execute(
        "UPDATE devices SET status = 'revoked', revoked_at = now() WHERE id = %s AND tenant_id = %s",
        (device_id, tenant_id),
    )
    if cur.rowcount == 0:
        raise NotFound("device not found", code="device_not_found")
    return get_device(conn, device_id=device_id, tenant_id=tenant_id)


def parse_device_id(device_id: str) -> uuid.UUID:
    """The id in a signed request's header; anything that is not one of our ids is simply unknown."""
    try:
        parsed = uuid.UUID(device_id)
    except ValueError:
        raise NotFound("device not found", code="device_not_found") from None
    if str(parsed) != device_id:  # ids are bound into signatures exactly as issued
        raise NotFound("device not found", code="device_not_found")
    return parsed


def check_uploading(status: str | None) -> None:
    """A device may upload while it exists (`status` not None) and is active."""
    if status is None:
        raise NotFound("device not found", code="device_not_found")
    if status != "active":
        raise Forbidden("device revoked", code="device_revoked")


class SigningKeys:
    """The devices that signed uploads to this process, so their keys need no query next time.

    What is kept never changes: a device's ids and public key are written once. Whether
    the device is still active is not kept: the statement every upload runs anyway
    (`core.batches.service.lookup`) reads it fresh, so a revocation holds at once.

    Ids that named no usable device (unknown, revoked, keyless) are remembered too, for
    ``refused_ttl_s`` and at most ``refused_max`` of them, so a flood of uploads naming
    one costs one query, not one each. ``queries`` counts the lookups that reached Postgres.
    """

    def __init__(
        self, max_size: int = 100_000, *, refused_ttl_s: float = 30.0, refused_max: int = 10_000
    ) -> None:
        self.max_size = max_size
        self.refused_ttl_s, self.refused_max = refused_ttl_s, refused_max
        self._devices: dict[uuid.UUID, Device] = {}
        self._refused: dict[uuid.UUID, tuple[float, DomainError]] = {}
        self.queries = 0

    async def device(self, db: AsyncConnectionPool, device_id: str) -> Device:
        """The device named by a signed upload, with its key; refuses unknown, revoked and keyless ones."""
        parsed = parse_device_id(device_id)
        device = self._devices.get(parsed)
        if device is not None:
            return device
        self._check_refused(parsed)
        self.queries += 1
        async with async_connection(db) as conn:
            row = await (await conn.execute(_SELECT + " WHERE d.id = %s", (parsed,))).fetchone()
        try:
            check_uploading(row["status"] if row else None)
            device = _device(row)
            if device.public_key is None:
                raise Forbidden("device has no signing key registered", code="device_key_missing")
        except DomainError as e:
            self.refuse(parsed, e)
            raise
        if len(self._devices) >= self.max_size:
            self._devices.pop(next(iter(self._devices)))  # the oldest entry
        self._devices[parsed] = device
        return device

    def _check_refused(self, device_id: uuid.UUID) -> None:
        entry = self._refused.get(device_id)
        if entry is None:
            return
        until, error = entry
        if time.monotonic() < until:
            raise type(error)(error.message, code=error.code)
        del self._refused[device_id]

    def refuse(self, device_id: uuid.UUID, error: DomainError) -> None:
        """Forget the device and refuse it without a query for a while (it was found unusable)."""
        self._devices.pop(device_id, None)
        if self.refused_ttl_s <= 0 or self.refused_max <= 0:
            return
        if len(self._refused) >= self.refused_max:
            self._refused.pop(next(iter(self._refused)))  # the oldest entry
        self._refused[device_id] = (time.monotonic() + self.refused_ttl_s, error)
