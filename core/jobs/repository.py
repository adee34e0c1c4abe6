"""Jobs: what tenants read, and the state transitions workers and the relay make.

Every transition is a guarded UPDATE, so a message delivered twice cannot move a
finished job or write a second result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.db import DictConnection
from core.errors import NotFound


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    device_id: uuid.UUID
    factor: str
    purpose: str
    attempts: int
    object_key: str
    key_id: str | None
    client_batch_id: uuid.UUID
    created_at: datetime
    captured_to: datetime | None
    decision_threshold: float
    queue_wait_s: float  # from the latest publish to this claim
    device_status: str = "active"  # read at the claim: a revoked device's job is not scored
    enrolment_id: uuid.UUID | None = None  # the window an enrol batch arrived in
    replace: bool = False  # that window starts the profile afresh
    batch_id: uuid.UUID | None = None


_JOB_VIEW = (
    "SELECT j.id, j.status, j.factor, j.purpose, j.attempts, j.error_code, j.error_message,"
    " j.created_at, j.enqueued_at, j.started_at, j.finished_at, u.external_id AS user,"
    " b.device_id, b.client_batch_id,"
    " s.score, s.distance, s.llr, s.decision, s.samples, s.model_version, es.status AS enrolment"
    " FROM jobs j JOIN users u ON u.id = j.user_id JOIN batches b ON b.id = j.batch_id"
    " LEFT JOIN scores s ON s.job_id = j.id LEFT JOIN enrolment_samples es ON es.job_id = j.id"
)


def get_job_view(
    conn: DictConnection, *, tenant_id: uuid.UUID, job_id: uuid.UUID
) -> dict[str, Any]:
    """A job as its tenant sees it; another tenant's job is NotFound."""
    row = conn.execute(
        _JOB_VIEW + " WHERE j.id = %s AND j.tenant_id = %s", (job_id, tenant_id)
    ).fetchone()
    if row is None:
        raise NotFound("job not found", code="job_not_found")
    return dict(row)


def list_job_views(
    conn: DictConnection,
    *,
    tenant_id: uuid.UUID,
    user: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest first, keyset-paginated on (created_at, id)."""
    sql, params = _JOB_VIEW + " WHERE j.tenant_id = %s", list[Any]([tenant_id])
    if user is not None:
        sql += " AND u.external_id = %s"
        params.append(user)
    if status is not None:
        sql += " AND j.status = %s"
        params.append(status)
    if since is not None:
        sql += " AND j.created_at >= %s"
        params.append(since)
    if after is not None:
        sql += " AND (j.created_at, j.id) < (%s, %s)"
        params += [after[0], after[1]]
    sql += " ORDER BY j.created_at DESC, j.id DESC LIMIT %s"
    params.append(limit)
    return [dict(r) for r in conn.execute(sql, params).fetchall()]


def claim(conn: DictConnection, job_id: uuid.UUID) -> ClaimedJob | None:
    """Mark an open job running and count the attempt; None if it is finished or unknown."""
    row = conn.execute(
        "UPDATE jobs j SET status = 'running', attempts = j.attempts + 1,"
        " started_at = now(), updated_at = now()"
        " FROM batches b, tenants t, devices d"
        " WHERE j.id = %s AND j.status IN ('queued', 'running') AND b.id = j.batch_id AND t.id = j.tenant_id"
        " AND d.id = b.device_id"
        " RETURNING j.id, j.tenant_id, j.user_id, b.device_id, j.factor, j.purpose, j.attempts,"
        " b.object_key, b.key_id, b.client_batch_id, j.created_at, b.captured_to, t.decision_threshold,"
        " extract(epoch FROM now() - coalesce(j.enqueued_at, j.created_at))::float8 AS queue_wait_s,"
        " d.status AS device_status, b.enrolment_id, b.id AS batch_id,"
        " coalesce((SELECT w.replace FROM enrolment_windows w WHERE w.id = b.enrolment_id), false) AS replace",
        (job_id,),
    ).fetchone()
    if row is None:
        return None
    return ClaimedJob(
        row["id"],
        row["tenant_id"],
        row["user_id"],
        row["device_id"],
        row["factor"],
        row["purpose"],
        row["attempts"],
        row["object_key"],
        row["key_id"],
        row["client_batch_id"],
        row["created_at"],
        row["captured_to"],
        float(row["decision_threshold"]),
        max(0.0, float(row["queue_wait_s"])),
        row["device_status"],
        row["enrolment_id"],
        bool(row["replace"]),
        row["batch_id"],
    )


def finish(conn: DictConnection, job_id: uuid.UUID) -> bool:
    cur = conn.execute(
        "UPDATE jobs SET status = 'done', finished_at = now(), updated_at = now(),"
        " error_code = NULL, error_message = NULL WHERE id = %s AND status = 'running'",
        (job_id,),
    )
    return cur.rowcount == 1


def fail(
    conn: DictConnection, job_id: uuid.UUID, *, code: str, message: str, dead: bool = False
) -> bool:
    """End a job as failed (permanent error) or dead (attempts exhausted), with its reason."""
    cur = conn.execute(
        "UPDATE jobs SET status = %s, error_code = %s, error_message = %s, finished_at = now(),"
        " updated_at = now() WHERE id = %s AND status IN ('queued', 'running')",
        ("dead" if dead else "failed", code, message[:500], job_id),
    )
    return cur.rowcount == 1


def note_retry(conn: DictConnection, job_id: uuid.UUID, *, code: str, message: str) -> None:
    """Back to queued after a transient error; the reason stays visible until it succeeds."""
    conn.execute(
        "UPDATE jobs SET status = 'queued', error_code = %s, error_message = %s, updated_at = now()"
        " WHERE id = %s AND status = 'running'",
        (code, message[:500], job_id),
    )
