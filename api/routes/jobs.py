"""Polling: one job, or a tenant's jobs page by page."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from fastapi import APIRouter, Query

from api.deps import ConnDep, TenantDep
from api.schemas import JobOut, JobPage, JobStatus
from core.errors import InvalidInput
from core.jobs.repository import get_job_view, list_job_views

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    return (
        base64.urlsafe_b64encode(f"{created_at.isoformat()}|{job_id}".encode()).decode().rstrip("=")
    )


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, _, jid = raw.partition("|")
        return datetime.fromisoformat(ts), uuid.UUID(jid)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API issued", code="invalid_cursor") from None


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID, tenant: TenantDep, conn: ConnDep) -> JobOut:
    """A job's status, timings, score or error."""
    return JobOut.from_row(get_job_view(conn, tenant_id=tenant.id, job_id=job_id))


@router.get("", response_model=JobPage)
def list_jobs(
    tenant: TenantDep,
    conn: ConnDep,
    user: str | None = Query(default=None, max_length=200),
    status: JobStatus | None = None,
    since: datetime | None = None,
    cursor: str | None = Query(default=None, max_length=200),
    limit: int = Query(default=50, ge=1, le=500),
) -> JobPage:
    """The tenant's jobs, newest first; pass `next_cursor` back as `cursor` for the next page."""
    after = _parse_cursor(cursor) if cursor else None
    rows = list_job_views(
        conn,
        tenant_id=tenant.id,
        user=user,
        status=status,
        since=since,
        after=after,
        limit=limit + 1,
    )
    items = [JobOut.from_row(r) for r in rows[:limit]]
    nxt = (
        _cursor(rows[limit - 1]["created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
    )
    return JobPage(items=items, next_cursor=nxt)
