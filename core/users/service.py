"""A tenant's users, known by the tenant's own identifier (``external_id``)."""

from __future__ import annotations

import uuid

from core.db import DictConnection
from core.errors import InvalidInput, NotFound

MAX_EXTERNAL_ID = 200


def _check(external_id: str) -> None:
    if not external_id or len(external_id) > MAX_EXTERNAL_ID or not external_id.isprintable():
        raise InvalidInput("user id must be 1-200 printable characters", code="invalid_user_id")


def get_or_create_user(
    conn: DictConnection, *, tenant_id: uuid.UUID, external_id: str
) -> uuid.UUID:
    _check(external_id)
    row = conn.execute(
        "INSERT INTO users (id, tenant_id, external_id) VALUES (%s, %s, %s)"
        " ON CONFLICT (tenant_id, external_id) DO UPDATE SET external_id = EXCLUDED.external_id"
        " RETURNING id",
        (uuid.uuid4(), tenant_id, external_id),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


def get_user_id(conn: DictConnection, *, tenant_id: uuid.UUID, external_id: str) -> uuid.UUID:
    """The internal id of the tenant's user, or NotFound (also for another tenant's user)."""
    _check(external_id)
    row = conn.execute(
        "SELECT id FROM users WHERE tenant_id = %s AND external_id = %s", (tenant_id, external_id)
    ).fetchone()
    if row is None:
        raise NotFound(f"user {external_id!r} not found", code="user_not_found")
    return uuid.UUID(str(row["id"]))
