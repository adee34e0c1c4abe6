"""Publishing score jobs to their factor's Celery queue, from the API or the outbox relay.

Only the producer side of Celery is used here (``send_task`` by name), so the API
never imports the workers' code.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterable
from functools import cached_property
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from core.queues import TASK_SCORE
from core.settings import Settings


def celery_config(settings: Settings) -> dict[str, Any]:
    """Broker settings shared by producers and workers."""
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # Above the longest task: an unacked message is redelivered only after this.
            "visibility_timeout": settings.reliability.visibility_timeout_s,
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
        },
        "broker_pool_limit": 32,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Take a message only when a thread is free: the Redis list keeps showing the backlog.
        "worker_disable_prefetch": True,
        "task_default_queue": settings.queues.keystroke,
        "task_create_missing_queues": True,
        "worker_hijack_root_logger": False,
    }


class JobPublisher:
    """Sends score tasks and records in the outbox that they were sent.

    Outbox rows are marked in the background, many per statement: an upload pays for
    its publish, not for a second transaction. A mark lost in a crash only means the
    relay publishes that job again, which is harmless.
    """

    def __init__(self, settings: Settings, pool: ConnectionPool | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self._sent: queue.SimpleQueue[uuid.UUID] = queue.SimpleQueue()
        self._marker: threading.Thread | None = None
        self._lock = threading.Lock()

    @cached_property
    def app(self):  # type: ignore[no-untyped-def]
        from celery import Celery

        app = Celery("tacit-producer")
        app.conf.update(celery_config(self.settings))
        return app

    def send(self, job_id: uuid.UUID, queue: str) -> None:
        """Publish one job; raises on broker failure (the outbox keeps it for the relay)."""
        self.app.send_task(TASK_SCORE, args=[str(job_id)], queue=queue, retry=False)

    def publish(self, job_id: uuid.UUID, queue_name: str) -> bool:
        """Publish a committed job; its outbox row is marked soon after. False if the broker failed."""
        try:
            self.send(job_id, queue_name)
        except Exception:  # noqa: BLE001 - any broker failure: the relay republishes
            return False
        if self.pool is None:
            return True
        self._sent.put(job_id)
        with self._lock:
            if self._marker is None or not self._marker.is_alive():
                self._marker = threading.Thread(target=self._mark_loop, daemon=True, name="outbox-marker")
                self._marker.start()
        return True

    def _mark_loop(self) -> None:
        while True:
            ids = [self._sent.get()]
            time.sleep(0.02)  # let a burst gather into one statement
            while len(ids) < 1000:
                try:
                    ids.append(self._sent.get_nowait())
                except queue.Empty:
                    break
            try:
                assert self.pool is not None
                with self.pool.connection() as conn, conn.transaction():
                    _mark(conn, ids)
            except Exception:  # noqa: BLE001 - unmarked rows are republished by the relay
                pass

    def publish_after_commit(self, conn: psycopg.Connection, jobs: Iterable[tuple[uuid.UUID, str]]) -> int:
        """Publish committed jobs and mark their outbox rows; failures are left for the relay."""
        sent: list[uuid.UUID] = []
        for job_id, queue_name in jobs:
            try:
                self.send(job_id, queue_name)
            except Exception:  # noqa: BLE001 - any broker failure: the relay republishes
                continue
            sent.append(job_id)
        if sent:
            with conn.transaction():
                _mark(conn, sent)
        return len(sent)


def _mark(conn: psycopg.Connection, job_ids: list[uuid.UUID]) -> None:
    conn.execute("UPDATE outbox SET published_at = now() WHERE job_id = ANY(%s) AND published_at IS NULL", (job_ids,))
    conn.execute("UPDATE jobs SET enqueued_at = now() WHERE id = ANY(%s) AND enqueued_at IS NULL", (job_ids,))
