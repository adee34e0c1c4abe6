"""Jobs as tenants read them, and the job a worker claimed.

The state transitions (claim, done, retry, failed, dead, requeue) are in
``core/jobs/endings.py``.
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
