"""The template rebuild task: an adapter from a Celery message to ``workers.enrolment``."""

from __future__ import annotations

import json
import logging
import uuid

from core.errors import Unavailable
from core.queues import TASK_REBUILD_TEMPLATE
from workers import enrolment, runtime
from workers.app import app

log = logging.getLogger("tacit.worker")


@app.task(
    name=TASK_REBUILD_TEMPLATE,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def rebuild_template(self, user_id: str, factor: str) -> None:  # type: ignore[no-untyped-def]
    """Do the rebuild owed for one user's factor (none owed: nothing to do, so redeliveries are harmless)."""
    rt = runtime.get()
    if factor != rt.factor:
        log.warning(json.dumps({"event": "rebuild_misrouted", "factor": factor, "pool": rt.factor}))
        return  # the relay sends it again after republish_rebuild_after_s, maybe to the right pool
    uid = uuid.UUID(user_id)
    try:
        done = enrolment.run_owed(rt, uid, factor)
    except Unavailable:
        raise self.retry(countdown=2) from None
    if done:
        log.info(json.dumps({"event": "template_rebuilt", "user_id": user_id, "factor": factor}))
