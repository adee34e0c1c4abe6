"""A tenant's webhook endpoints: register (URL checked), list, rotate the secret, disable, enable."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import DictRow

from core.errors import InvalidInput, NotFound
from core.webhooks import sealing, signing, ssrf

EVENT_TYPES: tuple[str, ...] = ("job.completed", "job.failed", "trust.changed", "template.changed")
MAX_ENDPOINTS_PER_TENANT = 20


@dataclass(frozen=True)
class Endpoint:
    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    description: str
    event_types: tuple[str, ...]
    status: str
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime


_COLUMNS = (
    "id, tenant_id, url, description, event_types, status, disabled_reason, disabled_at,"
    " failing_since, previous_secret_expires_at, created_at"
)


def _endpoint(r: dict[str, Any]) -> Endpoint:
    return Endpoint(
        r["id"],
        r["tenant_id"],
        r["url"],
        r["description"],
        tuple(r["event_types"]),
        r["status"],
        r["disabled_reason"],
        r["disabled_at"],
        r["failing_since"],
        r["previous_secret_expires_at"],
        r["created_at"],
    )


def _check_types(event_types: Sequence[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(
            f"unknown event types {unknown}; known: {list(EVENT_TYPES)}", code="unknown_event_type"
        )
    return sorted(set(event_types))


def create_endpoint(
    conn: psycopg.Connection[DictRow],
    *,
    tenant_id: uuid.UUID,
    url: str,
    event_types: Sequence[str] = (),
    description: str = "",
    allowlist: Sequence[str] = (),
    ports: Sequence[int] = (),
    sealing_key: bytes | None = None,
) -> tuple[Endpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown this once)."""
    ssrf.check_url(url, allowlist=allowlist, ports=ports)
    types = _check_types(event_types)
    n = conn.execute(
        "SELECT count(*) AS n FROM webhook_endpoints WHERE tenant_id = %s", (tenant_id,)
    ).fetchone()
    if n is not None and n["n"] >= MAX_ENDPOINTS_PER_TENANT:
        raise InvalidInput(
            f"at most {MAX_ENDPOINTS_PER_TENANT} endpoints per tenant", code="too_many_endpoints"
        )
    secret = signing.new_secret()
    row = conn.execute(
        f"INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, secret)"
        f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (
            endpoint_id := uuid.uuid4(),
            tenant_id,
            url,
            description,
            types,
            sealing.seal(sealing_key, endpoint_id, secret),
        ),
    ).fetchone()
    assert row is not None
    return _endpoint(row), signing.format_secret(secret)


def list_endpoints(conn: psycopg.Connection[DictRow], *, tenant_id: uuid.UUID) -> list[Endpoint]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE tenant_id = %s ORDER BY created_at, id",
        (tenant_id,),
    ).fetchall()
    return [_endpoint(r) for r in rows]


def _not_found() -> NotFound:
    return NotFound("webhook endpoint not found", code="webhook_endpoint_not_found")


def _found(conn: psycopg.Connection[DictRow], query: str, params: tuple[object, ...]) -> Endpoint:
    """The endpoint the statement returns; NotFound when it returns none (or another tenant's)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise _not_found()
    return _endpoint(row)


def get_endpoint(
    conn: psycopg.Connection[DictRow], *, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Endpoint:
    """The tenant's endpoint; another tenant's is NotFound."""
    return _found(
        conn,
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE id = %s AND tenant_id = %s",
        (endpoint_id, tenant_id),
    )


def delete_endpoint(
    conn: psycopg.Connection[DictRow], *, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> None:
    """Remove an endpoint with its pending deliveries and its attempt log."""
    cur = conn.execute(
        "DELETE FROM webhook_endpoints WHERE id = %s AND tenant_id = %s", (endpoint_id, tenant_id)
    )
    if cur.rowcount == 0:
        raise _not_found()


def rotate_secret(
    conn: psycopg.Connection[DictRow],
    *,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    grace_s: float,
    sealing_key: bytes | None = None,
) -> tuple[Endpoint, str]:
    """A new secret signs from now on; the current one keeps signing too for `grace_s`."""
    secret = signing.new_secret()
    endpoint = _found(
        conn,
        f"UPDATE webhook_endpoints SET previous_secret = secret,"
        f" previous_secret_expires_at = now() + make_interval(secs => %s), secret = %s, updated_at = now()"
        f" WHERE id = %s AND tenant_id = %s RETURNING {_COLUMNS}",
        (grace_s, sealing.seal(sealing_key, endpoint_id, secret), endpoint_id, tenant_id),
    )
    return endpoint, signing.format_secret(secret)


def disable(conn: psycopg.Connection[DictRow], *, endpoint_id: uuid.UUID, reason: str) -> None:
    """Stop sending to an endpoint; its pending deliveries die with the same reason (replayable)."""
    conn.execute(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = %s, disabled_at = now(),"
        " updated_at = now() WHERE id = %s AND status = 'enabled'",
        (reason[:500], endpoint_id),
    )
    conn.execute(
        "UPDATE webhook_deliveries SET status = 'dead', dead_reason = %s, lease_until = NULL, updated_at = now()"
        " WHERE endpoint_id = %s AND status = 'pending'",
        (f"endpoint disabled: {reason}"[:500], endpoint_id),
    )


def enable(
    conn: psycopg.Connection[DictRow], *, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Endpoint:
    """Re-enable an endpoint (after fixing it); dead messages can then be replayed."""
    return _found(
        conn,
        f"UPDATE webhook_endpoints SET status = 'enabled', disabled_reason = NULL, disabled_at = NULL,"
        f" failing_since = NULL, updated_at = now() WHERE id = %s AND tenant_id = %s RETURNING {_COLUMNS}",
        (endpoint_id, tenant_id),
    )


def clear_expired_secrets(conn: psycopg.Connection[DictRow]) -> int:
    """Forget previous secrets whose grace period is over (they sign nothing any more)."""
    cur = conn.execute(
        "UPDATE webhook_endpoints SET previous_secret = NULL, previous_secret_expires_at = NULL"
        " WHERE previous_secret_expires_at <= now()"
    )
    return cur.rowcount
