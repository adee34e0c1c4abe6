"""The delivery task: an adapter from a Celery message to ``workers.webhooks.delivery``."""

from __future__ import annotations

import json
import logging
import uuid

from core.errors import Unavailable
from core.queues import TASK_DELIVER_WEBHOOK
from workers.webhooks import delivery
from workers.webhooks.app import app

log = logging.getLogger("tacit.webhooks")


@app.task(name=TASK_DELIVER_WEBHOOK, acks_late=True, reject_on_worker_lost=True)
def deliver_webhook(delivery_id: str) -> None:
    try:
        delivery.deliver(delivery.get(), uuid.UUID(delivery_id))
    except Unavailable as e:
        # the lease runs out and the relay publishes the delivery again
        log.warning(
            json.dumps({"event": "webhook_deferred", "delivery_id": delivery_id, "reason": e.code})
        )
