"""Tenants and their API keys. Keys are shown once and stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from core.db import DictConnection
from core.errors import NotFound, Unauthorized

KEY_PREFIX = "tk"


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    name: str
    decision_threshold: float


@dataclass(frozen=True)
class IssuedKey:
    id: uuid.UUID
    token: str  # shown once


def _hash(secret: str) -> bytes:
    # API keys carry 256 bits of entropy, so a fast hash is as strong as a slow one here.
    return hashlib.sha256(secret.encode()).digest()


def create_tenant(conn: DictConnection, *, name: str) -> tuple[Tenant, IssuedKey]:
    """Create a tenant with its first API key."""
    tenant_id = uuid.uuid4()
    conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant_id, name))
    return Tenant(tenant_id, name, 0.5), create_api_key(conn, tenant_id=tenant_id, label="initial")


def create_api_key(conn: DictConnection, *, tenant_id: uuid.UUID, label: str = "") -> IssuedKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO api_keys (id, tenant_id, prefix, secret_hash, label) VALUES (%s, %s, %s, %s, %s)",
        (key_id, tenant_id, prefix, _hash(secret), label),
    )
    return IssuedKey(key_id, f"{KEY_PREFIX}_{prefix}_{secret}")


def revoke_api_key(conn: DictConnection, *, tenant_id: uuid.UUID, key_id: uuid.UUID) -> None:
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND tenant_id = %s AND revoked_at IS NULL",
        (key_id, tenant_id),
    )
    if cur.rowcount == 0:
        raise NotFound("no such active API key", code="api_key_not_found")


def authenticate(conn: DictConnection, token: str) -> Tenant:
    """The tenant owning `token`, or Unauthorized (unknown, malformed or revoked key)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise Unauthorized("malformed API key", code="api_key_invalid")
    row = conn.execute(
        "SELECT k.secret_hash, k.revoked_at, t.id, t.name, t.decision_threshold"
        " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = %s",
        (parts[1],),
    ).fetchone()
    if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), _hash(parts[2])):
        raise Unauthorized("unknown API key", code="api_key_invalid")
    if row["revoked_at"] is not None:
        raise Unauthorized("API key revoked", code="api_key_revoked")
    return Tenant(row["id"], row["name"], float(row["decision_threshold"]))


def list_tenants(conn: DictConnection) -> list[Tenant]:
    rows = conn.execute(
        "SELECT id, name, decision_threshold FROM tenants ORDER BY created_at"
    ).fetchall()
    return [Tenant(r["id"], r["name"], float(r["decision_threshold"])) for r in rows]
