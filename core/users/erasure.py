"""Erasing a user: their raw objects first, then every row in one transaction.

Objects go first so a failure leaves the rows (and so the object keys) in place for a
retry, never rows gone and blobs orphaned. Rows go by the cascade from ``users``:
devices, enrolment tokens, batches, jobs, outbox, scores, enrolment samples,
templates, webhook messages about the user, and their trust state.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
from psycopg.rows import DictRow

from core.errors import NotFound
from core.storage import ObjectStore


@dataclass(frozen=True)
class Erasure:
    user_id: uuid.UUID
    objects_deleted: int
    devices: int
    batches: int
    device_ids: tuple[uuid.UUID, ...] = ()


def erase_user(
    conn: psycopg.Connection[DictRow], store: ObjectStore, *, tenant_id: uuid.UUID, external_id: str
) -> Erasure:
    """Remove the tenant's user and everything about them; NotFound for unknown or another tenant's user.

    Runs inside the caller's transaction, which must commit for the rows to go.
    """
    # Lock the user row: a concurrent upload's batch insert (FK check) waits, then fails.
    row = conn.execute(
        "SELECT id FROM users WHERE tenant_id = %s AND external_id = %s FOR UPDATE",
        (tenant_id, external_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"user {external_id!r} not found", code="user_not_found")
    user_id = row["id"]
    keys = [
        r["object_key"]
        for r in conn.execute(
            "SELECT object_key FROM batches WHERE user_id = %s", (user_id,)
        ).fetchall()
    ]
    devices = [
        r["id"]
        for r in conn.execute("SELECT id FROM devices WHERE user_id = %s", (user_id,)).fetchall()
    ]
    deleted = 0
    for key in keys:
        store.delete(key)
        deleted += 1
    for device_id in devices:
        # also blobs whose batch row never committed (an upload that failed half-way)
        deleted += store.delete_prefix(f"raw/{tenant_id}/{device_id}/")
    conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
    return Erasure(user_id, deleted, len(devices), len(keys), tuple(devices))


# What Redis holds about a device: the nonces it used and its rate counters (both expire
# by themselves within minutes; erasure removes them at once).
DEVICE_KEY_PATTERNS = ("tacit:nonce:{device}:*", "tacit:rate:device:{device}:*")


def forget_devices(client, device_ids: tuple[uuid.UUID, ...]) -> int:  # type: ignore[no-untyped-def]
    """Delete the erased user's keys from Redis; how many. After the rows' commit, best effort."""
    removed = 0
    for device_id in device_ids:
        for pattern in DEVICE_KEY_PATTERNS:
            keys = list(client.scan_iter(match=pattern.format(device=device_id), count=1000))
            if keys:
                removed += int(client.delete(*keys))
    return removed
