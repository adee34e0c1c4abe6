"""The score task: an adapter from a Celery message to ``workers.scoring``."""

from __future__ import annotations

import uuid

from core.db import transaction
from core.errors import Unavailable
from core.jobs import endings
from core.queues import TASK_SCORE
from workers import runtime
from workers.app import app
from workers.scoring import score_job


@app.task(
    name=TASK_SCORE,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Unavailable,),  # transient only; the job's attempts cap its retries
    retry_backoff=True,  # 1 s, 2 s, 4 s, ... capped at 60 s
    retry_backoff_max=60,
    retry_jitter=False,
    max_retries=None,
)
def score(job_id: str) -> None:
    """Run the job; record how it ended unless it succeeded; a retry goes back to Celery."""
    rt = runtime.get()
    job, ending = score_job(rt, uuid.UUID(job_id))
    if job is None or ending is None:
        return  # scored, or finished before (a redelivery)
    with transaction(rt.pool) as conn:
        endings.record(conn, job.id, ending)
    if isinstance(ending, endings.Retry):
        raise Unavailable(ending.message, code=ending.code)


from workers.tasks import templates as _templates  # noqa: E402, F401 - registers the rebuild task on the same pools
