"""The Celery application shared by every worker pool."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_ready

from core.publisher import celery_config
from core.settings import get_settings
from workers.broker import transport_for

app = Celery("tacit")
app.conf.update(celery_config(get_settings()))
app.conf.broker_transport = transport_for(app.conf.broker_url)
app.conf.update(
    worker_send_task_events=False, task_send_sent_event=False, worker_enable_remote_control=True
)
app.autodiscover_tasks(["workers.tasks"], related_name="score", force=True)


@worker_ready.connect
def _announce_ready(**_: object) -> None:
    """Tell a supervising `tacit up` that this pool takes jobs now (model loaded and warm)."""
    path = os.environ.get("TACIT_READY_FILE")
    if path:
        Path(path).touch()
