"""The score task: an adapter from a Celery message to ``workers.scoring``."""

from __future__ import annotations

import uuid

from core.db import transaction
from core.errors import Unavailable
from core.jobs import repository as jobs
from core.queues import TASK_SCORE
from core.webhooks import events as webhook_events
from workers import runtime
from workers.app import app
from workers.errors import backoff_s
from workers.scoring import score_job


@app.task(name=TASK_SCORE, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def score(self, job_id: str) -> None:  # type: ignore[no-untyped-def]
    rt = runtime.get()
    try:
        job, verdict = score_job(rt, uuid.UUID(job_id))
    except Unavailable:
        # The database was unreachable before the job was claimed: no attempt was counted.
        raise self.retry(countdown=2) from None
    if job is None or verdict is None:
        return
    max_attempts = rt.settings.reliability.max_attempts
    if verdict.outcome == "retry" and job.attempts < max_attempts:
        try:
            with transaction(rt.pool) as conn:
                jobs.note_retry(conn, job.id, code=verdict.code, message=verdict.message)
        except Unavailable:
            pass  # the sweeper requeues it if this message is lost too
        raise self.retry(countdown=backoff_s(job.attempts))
    try:
        with transaction(rt.pool) as conn:
            failed = jobs.fail(
                conn,
                job.id,
                code=verdict.code,
                message=verdict.message,
                dead=verdict.outcome == "retry",
            )
            if failed:
                webhook_events.job_failed(conn, job_id=job.id)
    except Unavailable:
        raise self.retry(countdown=2) from None


from workers.tasks import templates as _templates  # noqa: E402, F401 - registers the rebuild task on the same pools
