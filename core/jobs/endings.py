"""Every job state transition and the outbox marking that goes with it.

A job is claimed (``queued`` -> ``running``, one attempt counted), then ends ``done``, goes
back to ``queued`` for a retry, or ends ``failed`` (the payload is at fault) or ``dead``
(its attempts are exhausted). The relay requeues jobs that were lost and buries jobs
interrupted on every attempt; an operator requeues a dead job. Every transition is a
guarded UPDATE, so a message delivered twice cannot move a finished job or write a
second result. Functions take the caller's connection and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import psycopg

from core.db import DictConnection
from core.errors import Conflict, NotFound
from core.jobs.repository import ClaimedJob
from core.settings import TrustSettings
from core.webhooks import events as webhook_events

MAX_MESSAGE = 500  # a stored reason is shown to the tenant: keep it short


@dataclass(frozen=True)
class Retry:
    """A transient error: the job goes back to its queue and is tried again."""

    code: str
    message: str
    outcome: ClassVar[Literal["retry"]] = "retry"


@dataclass(frozen=True)
class Fail:
    """The payload is at fault: the job ends ``failed`` at once."""

    code: str
    message: str
    outcome: ClassVar[Literal["fail"]] = "fail"


@dataclass(frozen=True)
class Dead:
    """A transient error on the last attempt: the job ends ``dead``."""

    code: str
    message: str
    outcome: ClassVar[Literal["dead"]] = "dead"


Ending = Retry | Fail | Dead


_CLAIM = (
    "UPDATE jobs j SET status = 'running', attempts = j.attempts + 1,"
    " started_at = now(), updated_at = now()"
    " FROM batches b, tenants t, devices d"
    " WHERE j.id = %s AND j.status IN ('queued', 'running') AND b.id = j.batch_id AND t.id = j.tenant_id"
    " AND d.id = b.device_id"
    " RETURNING j.id, j.tenant_id, j.user_id, b.device_id, j.factor, j.purpose, j.attempts,"
    " b.object_key, b.key_id, b.client_batch_id, j.created_at, b.captured_to, t.decision_threshold,"
    " extract(epoch FROM now() - coalesce(j.enqueued_at, j.created_at))::float8 AS queue_wait_s,"
    " d.status AS device_status, b.enrolment_id, b.id AS batch_id,"
    " coalesce((SELECT w.replace FROM enrolment_windows w WHERE w.id = b.enrolment_id), false) AS replace"
)


def claim(conn: DictConnection, job_id: uuid.UUID) -> ClaimedJob | None:
    """Mark an open job running and count the attempt; None if it is finished or unknown."""
    row = conn.execute(_CLAIM, (job_id,)).fetchone()
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


def done(conn: DictConnection, job_id: uuid.UUID, *, trust: TrustSettings) -> bool:
    """A running job's result is saved: the job is done and job.completed is emitted."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'done', finished_at = now(), updated_at = now(),"
        " error_code = NULL, error_message = NULL WHERE id = %s AND status = 'running'",
        (job_id,),
    )
    if cur.rowcount != 1:
        return False
    webhook_events.job_completed(conn, job_id=job_id, trust=trust)
    return True


def record_retry(conn: DictConnection, job_id: uuid.UUID, retry: Retry) -> None:
    """Back to queued after a transient error; the reason stays visible until it succeeds."""
    conn.execute(
        "UPDATE jobs SET status = 'queued', error_code = %s, error_message = %s, updated_at = now()"
        " WHERE id = %s AND status = 'running'",
        (retry.code, retry.message[:MAX_MESSAGE], job_id),
    )


def fail(conn: DictConnection, job_id: uuid.UUID, ending: Fail | Dead) -> bool:
    """End an open job ``failed`` or ``dead`` with its reason, and emit job.failed."""
    cur = conn.execute(
        "UPDATE jobs SET status = %s, error_code = %s, error_message = %s, finished_at = now(),"
        " updated_at = now() WHERE id = %s AND status IN ('queued', 'running')",
        (
            "dead" if isinstance(ending, Dead) else "failed",
            ending.code,
            ending.message[:MAX_MESSAGE],
            job_id,
        ),
    )
    if cur.rowcount != 1:
        return False
    webhook_events.job_failed(conn, job_id=job_id)
    return True


def record(conn: DictConnection, job_id: uuid.UUID, ending: Ending) -> None:
    """Record an ending that is not a success: a retry, a failure or a death."""
    if isinstance(ending, Retry):
        record_retry(conn, job_id, ending)
    else:
        fail(conn, job_id, ending)


def bury_interrupted(
    conn: DictConnection, *, running_deadline_s: float, max_attempts: int
) -> list[uuid.UUID]:
    """Jobs still running past the deadline on their last attempt end ``dead``; their ids."""
    rows = conn.execute(
        "UPDATE jobs SET status = 'dead', error_code = 'attempts_exhausted',"
        " error_message = 'the job was interrupted on every attempt', finished_at = now(), updated_at = now()"
        " WHERE status = 'running' AND started_at < now() - make_interval(secs => %s) AND attempts >= %s"
        " RETURNING id",
        (running_deadline_s, max_attempts),
    ).fetchall()
    for r in rows:
        webhook_events.job_failed(conn, job_id=r["id"])
    return [r["id"] for r in rows]


def requeue_lost(
    conn: DictConnection,
    *,
    running_deadline_s: float,
    queued_deadline_s: float,
    queues: Mapping[str, str],
) -> int:
    """Jobs running past the deadline (a worker died) or queued too long (a message was
    lost) go back to queued with an outbox row due now; returns how many."""
    rows = conn.execute(
        "WITH s AS (SELECT id FROM jobs WHERE (status = 'running' AND started_at < now() - make_interval(secs => %s))"
        " OR (status = 'queued' AND coalesce(enqueued_at, created_at) < now() - make_interval(secs => %s))"
        " FOR UPDATE SKIP LOCKED)"
        " UPDATE jobs j SET status = 'queued', enqueued_at = now(), updated_at = now() FROM s WHERE j.id = s.id"
        " RETURNING j.id",
        (running_deadline_s, queued_deadline_s),
    ).fetchall()
    enqueue_again(conn, [r["id"] for r in rows], queues=queues)
    return len(rows)


def enqueue_again(
    conn: DictConnection, job_ids: list[uuid.UUID], *, queues: Mapping[str, str]
) -> None:
    """An outbox row due now for each job, on its factor's queue in ``queues``; a factor
    no longer installed keeps its default queue, where its jobs wait for its pool."""
    if not job_ids:
        return
    conn.execute(
        "INSERT INTO outbox (job_id, queue, not_before) SELECT j.id,"
        " COALESCE((SELECT m.q FROM unnest(%s::text[], %s::text[]) AS m(f, q) WHERE m.f = j.factor),"
        " 'score.' || j.factor), now() FROM jobs j WHERE j.id = ANY(%s)",
        (list(queues), list(queues.values()), job_ids),
    )


def requeue_dead(
    conn: DictConnection, job_id: uuid.UUID, *, queue_for: Callable[[str], str]
) -> dict[str, Any]:
    """Give a dead job a fresh set of attempts: back to queued, plus an outbox row due now.

    The relay publishes the outbox row (``not_before = now()``), so the requeue commits
    with the caller's transaction and survives a broker that is down at that moment.
    ``enqueued_at`` is set now so the sweeper does not see an overdue queued job.
    """
    row = conn.execute(
        "UPDATE jobs SET status = 'queued', attempts = 0, error_code = NULL, error_message = NULL,"
        " started_at = NULL, finished_at = NULL, enqueued_at = now(), updated_at = now()"
        " WHERE id = %s AND status = 'dead' RETURNING id, factor",
        (job_id,),
    ).fetchone()
    if row is None:
        found = conn.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone()
        if found is None:
            raise NotFound("job not found", code="job_not_found")
        raise Conflict(f"job is {found['status']}, not dead", code="job_not_dead")
    queue = queue_for(row["factor"])
    conn.execute(
        "INSERT INTO outbox (job_id, queue, not_before) VALUES (%s, %s, now())", (job_id, queue)
    )
    return {"id": row["id"], "factor": row["factor"], "queue": queue, "status": "queued"}


def mark_published(conn: psycopg.Connection[Any], job_ids: list[uuid.UUID]) -> None:
    """The jobs' messages were sent: their outbox rows are published, their queue wait starts.

    Rows another transaction holds are skipped, never waited for: marking then takes part
    in no lock cycle (a user's erasure deletes these rows in its own order). A skipped
    outbox row stays unpublished and the relay sends that job again.
    """
    conn.execute(
        "UPDATE outbox SET published_at = now() WHERE id IN (SELECT id FROM outbox"
        " WHERE job_id = ANY(%s) AND published_at IS NULL FOR UPDATE SKIP LOCKED)",
        (job_ids,),
    )
    conn.execute(
        "UPDATE jobs SET enqueued_at = now() WHERE id IN (SELECT id FROM jobs"
        " WHERE id = ANY(%s) FOR UPDATE SKIP LOCKED)",
        (job_ids,),
    )
