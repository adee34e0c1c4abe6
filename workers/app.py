"""The Celery application shared by every worker pool."""

from __future__ import annotations

from celery import Celery

from core.publisher import celery_config
from core.settings import get_settings

app = Celery("tacit")
app.conf.update(celery_config(get_settings()))
app.conf.update(worker_send_task_events=False, task_send_sent_event=False, worker_enable_remote_control=True)
app.autodiscover_tasks(["workers.tasks"], related_name="score", force=True)
