"""The Celery application of the webhook pool, apart from the scoring app so no model code loads."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_ready

from core.publisher import celery_config
from core.settings import get_settings

app = Celery("tacit-webhooks", include=["workers.tasks.webhooks"])
app.conf.update(celery_config(get_settings()))
app.conf.update(
    task_default_queue=get_settings().queues.webhooks,
    worker_send_task_events=False,
    task_send_sent_event=False,
)


@worker_ready.connect
def _announce_ready(**_: object) -> None:
    """Tell a supervising `tacit up` that the pool takes deliveries now."""
    path = os.environ.get("TACIT_READY_FILE")
    if path:
        Path(path).touch()
