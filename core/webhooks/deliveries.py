"""Deliveries: one message to one endpoint. Claimed under a lease, attempted, recorded, rescheduled.

State lives in Postgres, not in the broker: a retry hours away is a row with a
``next_attempt_at`` that the relay publishes when due, so no message waits in Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from core.db import transaction
from core.errors import NotFound
from core.settings import WebhookSettings
from core.webhooks import endpoints as endpoint_repo
from core.webhooks import sealing
from core.webhooks.policy import AttemptResult, DeliveryOutcome, decide, describe


@dataclass(frozen=True)
class ClaimedDelivery:
    id: uuid.UUID
    message_id: str
    endpoint_id: uuid.UUID
    attempt: int  # this attempt's number, from 1
    url: str
    payload: bytes
    secrets: tuple[bytes, ...]  # newest first
    endpoint_enabled: bool


def claim(
    conn: psycopg.Connection[DictRow],
    delivery_id: uuid.UUID,
    *,
    lease_s: float,
    sealing_key: bytes | None = None,
) -> ClaimedDelivery | None:
    """Take a due delivery for one attempt; None if it is not due, done, or held by another worker."""
    r = conn.execute(
        "UPDATE webhook_deliveries d SET attempts = d.attempts + 1,"
        " lease_until = now() + make_interval(secs => %s), updated_at = now()"
        " FROM webhook_messages m, webhook_endpoints e"
        " WHERE d.id = %s AND d.status = 'pending' AND d.next_attempt_at <= now()"
        " AND (d.lease_until IS NULL OR d.lease_until < now()) AND m.id = d.message_id AND e.id = d.endpoint_id"
        " RETURNING d.id, d.message_id, d.endpoint_id, d.attempts, e.url, m.payload, e.status, e.secret,"
        " CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret",
        (lease_s, delivery_id),
    ).fetchone()
    if r is None:
        return None
    secrets = tuple(
        sealing.unseal(sealing_key, r["endpoint_id"], bytes(s))
        for s in (r["secret"], r["previous_secret"])
        if s is not None
    )
    return ClaimedDelivery(
        r["id"],
        r["message_id"],
        r["endpoint_id"],
        r["attempts"],
        r["url"],
        r["payload"].encode(),
        secrets,
        r["status"] == "enabled",
    )


def endpoint_busy(
    conn: psycopg.Connection[DictRow], delivery_id: uuid.UUID, *, cap: int, delay_s: float
) -> bool:
    """True (and the delivery put back for `delay_s`) if its endpoint already has `cap`
    deliveries in flight; call in the transaction that then claims it.

    A per-endpoint advisory lock, held to commit, makes count-then-claim one step across
    every webhook worker; the postponed delivery loses its published mark, so the relay
    hands it out again when it is due (nothing is dropped).
    """
    row = conn.execute(
        "SELECT endpoint_id FROM webhook_deliveries WHERE id = %s AND status = 'pending'",
        (delivery_id,),
    ).fetchone()
    if row is None:
        return False  # claim() will say it is not ours
    endpoint_id = row["endpoint_id"]
    conn.execute(
        "SELECT pg_advisory_xact_lock(%s)",
        (int.from_bytes(endpoint_id.bytes[:8], "big", signed=True),),
    )
    row = conn.execute(
        "SELECT count(*) AS n FROM webhook_deliveries WHERE endpoint_id = %s"
        " AND status = 'pending' AND lease_until > now() AND id <> %s",
        (endpoint_id, delivery_id),
    ).fetchone()
    if row is None or row["n"] < cap:
        return False
    conn.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = greatest(next_attempt_at,"
        " now() + make_interval(secs => %s)), published_at = NULL, updated_at = now()"
        " WHERE id = %s AND (lease_until IS NULL OR lease_until < now())",
        (delay_s, delivery_id),
    )
    return True


def abandon(conn: psycopg.Connection[DictRow], d: ClaimedDelivery, *, reason: str) -> None:
    conn.execute(
        "UPDATE webhook_deliveries SET status = 'dead', dead_reason = %s, lease_until = NULL, updated_at = now()"
        " WHERE id = %s",
        (reason[:500], d.id),
    )


def record(
    conn: psycopg.Connection[DictRow],
    d: ClaimedDelivery,
    result: AttemptResult,
    settings: WebhookSettings,
) -> DeliveryOutcome:
    """Log the attempt and move the delivery (and its endpoint) on according to the policy."""
    outcome = decide(
        result,
        attempt=d.attempt,
        schedule=settings.retry_schedule_s,
        jitter=settings.jitter,
        max_retry_after_s=settings.max_retry_after_s,
    )
    conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, endpoint_id, message_id, attempt, status_code, outcome,"
        " error, latency_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            d.id,
            d.endpoint_id,
            d.message_id,
            d.attempt,
            result.status_code,
            outcome.kind,
            (result.error or "")[:500] or None,
            result.latency_ms,
        ),
    )
    if outcome.kind == "succeeded":
        conn.execute(
            "UPDATE webhook_deliveries SET status = 'succeeded', lease_until = NULL, updated_at = now()"
            " WHERE id = %s",
            (d.id,),
        )
        conn.execute(
            "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = %s AND failing_since IS NOT NULL",
            (d.endpoint_id,),
        )
        return outcome
    if outcome.kind == "gone":
        endpoint_repo.disable(conn, endpoint_id=d.endpoint_id, reason=outcome.reason)
        return outcome
    row = conn.execute(
        "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()) WHERE id = %s"
        " RETURNING failing_since, now() - failing_since >= make_interval(secs => %s) AS too_long",
        (d.endpoint_id, settings.disable_after_s),
    ).fetchone()
    if row is not None and row["too_long"]:
        reason = f"failing continuously since {row['failing_since']:%Y-%m-%d %H:%M:%SZ}; last: {describe(result)}"
        endpoint_repo.disable(conn, endpoint_id=d.endpoint_id, reason=reason)
        return DeliveryOutcome("dead", reason=reason)
    if outcome.kind == "dead":
        abandon(conn, d, reason=outcome.reason)
        return outcome
    conn.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => %s), published_at = NULL,"
        " lease_until = NULL, updated_at = now() WHERE id = %s",
        (outcome.delay_s, d.id),
    )
    return outcome


def publish_due(
    pool: ConnectionPool,
    send: Callable[[uuid.UUID], None],
    *,
    republish_after_s: float,
    limit: int = 500,
) -> int:
    """The outbox side: hand due deliveries to the webhook queue; returns how many were sent."""
    with transaction(pool) as raw:
        conn = cast("psycopg.Connection[DictRow]", raw)  # the pools hand out dict-row connections
        rows = conn.execute(
            "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()"
            " AND (published_at IS NULL OR published_at < now() - make_interval(secs => %s))"
            " AND (lease_until IS NULL OR lease_until < now())"
            " ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (republish_after_s, limit),
        ).fetchall()
        sent = []
        for r in rows:
            try:
                send(r["id"])
            except Exception:  # noqa: BLE001 - broker down: the rest wait for the next round
                break
            sent.append(r["id"])
        if sent:
            conn.execute(
                "UPDATE webhook_deliveries SET published_at = now() WHERE id = ANY(%s)", (sent,)
            )
    return len(sent)


def _message(
    conn: psycopg.Connection[DictRow], columns: str, *, tenant_id: uuid.UUID, message_id: str
) -> DictRow:
    """The tenant's message (the given columns); another tenant's is NotFound."""
    msg = conn.execute(
        f"SELECT {columns} FROM webhook_messages WHERE id = %s AND tenant_id = %s",
        (message_id, tenant_id),
    ).fetchone()
    if msg is None:
        raise NotFound("webhook message not found", code="webhook_message_not_found")
    return msg


def replay(conn: psycopg.Connection[DictRow], *, tenant_id: uuid.UUID, message_id: str) -> int:
    """Send a message again, from a fresh schedule, to each enabled endpoint subscribed to it."""
    msg = _message(conn, "id, event_type", tenant_id=tenant_id, message_id=message_id)
    reset = conn.execute(
        "UPDATE webhook_deliveries d SET status = 'pending', attempts = 0, next_attempt_at = now(),"
        " published_at = NULL, lease_until = NULL, dead_reason = NULL, updated_at = now()"
        " FROM webhook_endpoints e WHERE d.message_id = %s AND e.id = d.endpoint_id AND e.status = 'enabled'"
        " AND d.status <> 'pending'",
        (message_id,),
    ).rowcount
    added = conn.execute(
        "INSERT INTO webhook_deliveries (id, message_id, endpoint_id)"
        " SELECT gen_random_uuid(), %s, e.id FROM webhook_endpoints e WHERE e.tenant_id = %s"
        " AND e.status = 'enabled' AND (cardinality(e.event_types) = 0 OR %s = ANY(e.event_types))"
        " ON CONFLICT (message_id, endpoint_id) DO NOTHING",
        (message_id, tenant_id, msg["event_type"]),
    ).rowcount
    return reset + added


def get_message(
    conn: psycopg.Connection[DictRow], *, tenant_id: uuid.UUID, message_id: str
) -> dict[str, Any]:
    """A message with its deliveries' state (dead ones carry their reason)."""
    msg = _message(
        conn, "id, event_type, payload, created_at", tenant_id=tenant_id, message_id=message_id
    )
    deliveries = conn.execute(
        "SELECT endpoint_id, status, attempts, next_attempt_at, dead_reason, updated_at FROM webhook_deliveries"
        " WHERE message_id = %s ORDER BY created_at, id",
        (message_id,),
    ).fetchall()
    return {**dict(msg), "deliveries": [dict(d) for d in deliveries]}


def list_attempts(
    conn: psycopg.Connection[DictRow],
    *,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    limit: int = 100,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """An endpoint's delivery log, newest first, paged by attempt id."""
    endpoint_repo.get_endpoint(conn, tenant_id=tenant_id, endpoint_id=endpoint_id)
    sql = (
        "SELECT a.id, a.message_id, m.event_type, a.attempt, a.status_code, a.outcome, a.error, a.latency_ms,"
        " a.created_at FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id"
        " WHERE a.endpoint_id = %s"
    )
    params: list[Any] = [endpoint_id]
    if before is not None:
        sql += " AND a.id < %s"
        params.append(before)
    params.append(limit)
    return [dict(r) for r in conn.execute(sql + " ORDER BY a.id DESC LIMIT %s", params).fetchall()]
