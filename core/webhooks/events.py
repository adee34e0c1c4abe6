"""Emitting events: message and delivery rows written in the transaction of the event itself.

Nothing is sent here. The relay publishes due deliveries once the transaction has
committed (the outbox pattern), so an event is announced if and only if it happened.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import DictRow

from core.settings import TrustSettings
from core.trust.service import user_trust
from core.webhooks.endpoints import EVENT_TYPES
from core.webhooks.signing import new_message_id

MAX_PAYLOAD_BYTES = 20_000  # thin payloads: ids and a summary, the tenant fetches the rest


def emit(
    conn: psycopg.Connection[DictRow],
    *,
    tenant_id: uuid.UUID,
    event_type: str,
    data: dict[str, Any],
    user_id: uuid.UUID | None = None,
) -> str | None:
    """Queue an event for every enabled endpoint of the tenant subscribed to it; its message id or None."""
    endpoints = conn.execute(
        "SELECT id FROM webhook_endpoints WHERE tenant_id = %s AND status = 'enabled'"
        " AND (cardinality(event_types) = 0 OR %s = ANY(event_types))",
        (tenant_id, event_type),
    ).fetchall()
    if not endpoints:
        return None
    msg_id = new_message_id()
    body = {
        "type": event_type,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    payload = json.dumps(body, separators=(",", ":"), default=str)
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"{event_type} payload over {MAX_PAYLOAD_BYTES} bytes")
    conn.execute(
        "INSERT INTO webhook_messages (id, tenant_id, user_id, event_type, payload) VALUES (%s, %s, %s, %s, %s)",
        (msg_id, tenant_id, user_id, event_type, payload),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO webhook_deliveries (id, message_id, endpoint_id) VALUES (%s, %s, %s)",
            [(uuid.uuid4(), msg_id, e["id"]) for e in endpoints],
        )
    return msg_id


_JOB = (
    "SELECT j.id, j.tenant_id, j.user_id, j.factor, j.purpose, j.status, j.error_code, j.finished_at,"
    " u.external_id AS user, b.device_id, b.client_batch_id, s.score, s.decision, t.decision_threshold,"
    " es.status AS enrolment"
    " FROM jobs j JOIN users u ON u.id = j.user_id JOIN batches b ON b.id = j.batch_id"
    " JOIN tenants t ON t.id = j.tenant_id LEFT JOIN scores s ON s.job_id = j.id"
    " LEFT JOIN enrolment_samples es ON es.job_id = j.id WHERE j.id = %s"
)


def _job_data(r: dict[str, Any]) -> dict[str, Any]:
    data = {
        "job_id": str(r["id"]),
        "user": r["user"],
        "device_id": str(r["device_id"]),
        "batch_id": str(r["client_batch_id"]),
        "factor": r["factor"],
        "purpose": r["purpose"],
        "status": r["status"],
        "finished_at": r["finished_at"].astimezone(UTC).isoformat().replace("+00:00", "Z")
        if r["finished_at"]
        else None,
    }
    if r["score"] is not None:
        data["score"] = {
            "score": r["score"],
            "decision": "genuine" if r["decision"] else "impostor",
        }
    if r["error_code"]:
        data["error_code"] = r["error_code"]
    if r.get("enrolment"):
        data["enrolment"] = "held" if r["enrolment"] == "held" else "merged"
    return data


def _emit_job(conn: psycopg.Connection[DictRow], event_type: str, r: dict[str, Any]) -> None:
    """A job event: its tenant's, about its user, the job's summary as data."""
    emit(
        conn,
        tenant_id=r["tenant_id"],
        event_type=event_type,
        data=_job_data(r),
        user_id=r["user_id"],
    )


ALL_EVENTS = frozenset(EVENT_TYPES)


def subscribed(conn: psycopg.Connection[DictRow], *, job_id: uuid.UUID) -> frozenset[str]:
    """The event types that some enabled endpoint of the job's tenant listens to."""
    rows = conn.execute(
        "SELECT e.event_types FROM webhook_endpoints e JOIN jobs j ON j.tenant_id = e.tenant_id"
        " WHERE j.id = %s AND e.status = 'enabled'",
        (job_id,),
    ).fetchall()
    out: set[str] = set()
    for r in rows:
        out |= set(r["event_types"]) if r["event_types"] else ALL_EVENTS
    return frozenset(out)


def job_completed(
    conn: psycopg.Connection[DictRow], *, job_id: uuid.UUID, trust: TrustSettings
) -> None:
    """After a job is done: job.completed, and trust.changed if the user's trust moved.

    Nothing is computed for a tenant with no endpoint subscribed to either event: the
    scoring path then pays one indexed lookup.
    """
    wanted = subscribed(conn, job_id=job_id)
    if not wanted & {"job.completed", "trust.changed"}:
        return
    r = conn.execute(_JOB, (job_id,)).fetchone()
    if r is None:
        return
    _emit_job(conn, "job.completed", r)
    if r["purpose"] == "verify" and "trust.changed" in wanted:
        trust_moved(
            conn,
            tenant_id=r["tenant_id"],
            user_id=r["user_id"],
            user=r["user"],
            threshold=float(r["decision_threshold"]),
            settings=trust,
        )


def job_failed(conn: psycopg.Connection[DictRow], *, job_id: uuid.UUID) -> None:
    """After a job failed or went dead: job.failed with its status and error code."""
    r = conn.execute(_JOB, (job_id,)).fetchone()
    if r is not None:
        _emit_job(conn, "job.failed", r)


def trust_moved(
    conn: psycopg.Connection[DictRow],
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    user: str,
    threshold: float,
    settings: TrustSettings,
) -> str | None:
    """trust.changed when the decision flips or the probability moves by notify_delta since last told."""
    # one user's jobs of different factors finish concurrently: compare and record one at a time
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"trust:{user_id}",))
    trust = user_trust(conn, user_id=user_id, threshold=threshold, settings=settings)
    prev = conn.execute(
        "SELECT probability, decision FROM user_trust_state WHERE user_id = %s", (user_id,)
    ).fetchone()
    if (
        prev is not None
        and prev["decision"] == trust.decision
        and (abs(float(prev["probability"]) - trust.probability) < settings.notify_delta)
    ):
        return None
    conn.execute(
        "INSERT INTO user_trust_state (user_id, tenant_id, probability, decision) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (user_id) DO UPDATE SET probability = EXCLUDED.probability,"
        " decision = EXCLUDED.decision, updated_at = now()",
        (user_id, tenant_id, trust.probability, trust.decision),
    )
    previous = (
        None if prev is None else {"probability": prev["probability"], "decision": prev["decision"]}
    )
    data = {
        "user": user,
        "probability": round(trust.probability, 6),
        "decision": trust.decision,
        "threshold": threshold,
        "previous": previous,
        "factors": [f.factor for f in trust.factors],
    }
    return emit(conn, tenant_id=tenant_id, event_type="trust.changed", data=data, user_id=user_id)


def template_changed(
    conn: psycopg.Connection[DictRow],
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    factor: str,
    version: int,
    model_version: str,
    samples: int,
    devices: list[uuid.UUID],
    reason: str,
) -> str | None:
    """template.changed after every rebuild (`samples` 0: too few were left, the template is empty)."""
    row = conn.execute("SELECT external_id FROM users WHERE id = %s", (user_id,)).fetchone()
    if row is None:
        return None
    data = {
        "user": row["external_id"],
        "factor": factor,
        "version": version,
        "model_version": model_version,
        "samples": samples,
        "devices": sorted(str(d) for d in devices),
        "reason": reason,
    }
    return emit(
        conn, tenant_id=tenant_id, event_type="template.changed", data=data, user_id=user_id
    )
