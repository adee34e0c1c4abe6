"""Publishing score jobs to their factor's Celery queue, from the API or the outbox relay.

Score jobs are written straight onto the queue's Redis list as Celery task messages
(protocol 2, in kombu's Redis envelope), many per round trip: kombu's producer costs
about as much CPU per message as the rest of an upload. Only the producer side is
here, so the API never imports the workers' code; `tests/core/test_publisher.py`
checks the messages against the ones Celery itself builds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from typing import Any

import redis
from psycopg_pool import ConnectionPool

from core.jobs import endings
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
        # every task is sent to a named queue; this only names the one a bare worker takes
        "task_default_queue": settings.queues.webhooks,
        "task_create_missing_queues": True,
        "worker_hijack_root_logger": False,
    }


_HOST = socket.gethostname()

# The body every score task carries after its args: no kwargs, no canvas.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def score_message(job_id: uuid.UUID, queue_name: str, *, origin: str) -> bytes:
    """The Celery task message that runs TASK_SCORE(job_id), as kombu's Redis transport stores it."""
    task_id = str(uuid.uuid4())
    args = [str(job_id)]
    body = json.dumps([args, {}, _EMBED]).encode()
    message = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": TASK_SCORE,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": repr(args),
            "kwargsrepr": "{}",
            "origin": origin,
            "ignore_result": None,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id,
            "delivery_mode": 2,  # persistent
            "delivery_info": {"exchange": "", "routing_key": queue_name},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),  # kombu's key for the message while unacked
        },
    }
    return json.dumps(message).encode()


class JobPublisher:
    """Sends score tasks and records in the outbox that they were sent.

    The API hands committed jobs to `publish_soon`: a background thread sends them, and
    another marks their outbox rows, many per statement. The committed outbox row is what
    makes the enqueue durable, so the 202 does not wait for either: if the process dies
    first, the relay publishes the job once its row is due (``outbox.not_before``). A mark
    lost in a crash only means the relay publishes that job again, which is harmless.
    """

    def __init__(self, settings: Settings, pool: ConnectionPool | None = None) -> None:
        self.settings = settings
        self.pool = pool
        # items are lists: an event loop hands over all of one iteration's jobs at once
        self._unsent: queue.SimpleQueue[list[tuple[uuid.UUID, str]]] = queue.SimpleQueue()
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[uuid.UUID, str]]] = {}
        self._sent: queue.SimpleQueue[uuid.UUID] = queue.SimpleQueue()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._busy = 0  # jobs taken off `_unsent` and not yet sent

    @cached_property
    def app(self):  # type: ignore[no-untyped-def]
        from celery import Celery

        app = Celery("tacit-producer")
        app.conf.update(celery_config(self.settings))
        return app

    @property
    def _origin(self) -> str:
        """The sender, as Celery names it in a message (a property: the pid changes in a fork)."""
        return f"{os.getpid()}@{_HOST}"

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=5, socket_connect_timeout=3
        )

    def send(self, job_id: uuid.UUID, queue: str) -> None:
        """Publish one job now; raises on broker failure (the outbox keeps it for the relay)."""
        self.send_many([(job_id, queue)])

    def send_many(self, jobs: list[tuple[uuid.UUID, str]]) -> None:
        """Publish jobs in one round trip, in order; raises on broker failure (none may have been sent)."""
        by_queue: dict[str, list[bytes]] = {}
        for job_id, queue_name in jobs:
            by_queue.setdefault(queue_name, []).append(
                score_message(job_id, queue_name, origin=self._origin)
            )
        pipe = self.redis.pipeline(transaction=False)
        for queue_name, messages in by_queue.items():
            pipe.lpush(
                queue_name, *messages
            )  # workers take from the other end: first in, first out
        pipe.execute()

    def publish_soon(self, job_id: uuid.UUID, queue_name: str) -> None:
        """Publish a committed job from the background; never blocks, never raises.

        Called on an event loop, the jobs of one loop iteration wake the sender once.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._hand_over([(job_id, queue_name)])
            return
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(lambda: self._hand_over(self._pending.pop(loop, [])))
        pending.append((job_id, queue_name))

    def _hand_over(self, jobs: list[tuple[uuid.UUID, str]]) -> None:
        if jobs:
            self._unsent.put(jobs)
            self._ensure("outbox-sender", self._send_loop)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every job handed over has been sent (or failed to send); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._pending or not self._unsent.empty() or self._busy:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _ensure(self, name: str, target: Callable[[], None]) -> None:
        thread = self._threads.get(name)
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            thread = self._threads.get(name)
            if thread is None or not thread.is_alive():
                self._threads[name] = threading.Thread(target=target, daemon=True, name=name)
                self._threads[name].start()

    def _send_loop(self) -> None:
        while True:
            jobs = list(self._unsent.get())
            while len(jobs) < 500:
                try:
                    jobs.extend(self._unsent.get_nowait())
                except queue.Empty:
                    break
            self._busy = len(jobs)
            try:
                self.send_many(jobs)
            except Exception:  # noqa: BLE001 - any broker failure: the relay republishes
                jobs = []
            finally:
                self._busy = 0
            if self.pool is not None and jobs:
                for job_id, _ in jobs:
                    self._sent.put(job_id)
                self._ensure("outbox-marker", self._mark_loop)

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
                    endings.mark_published(conn, ids)
            except Exception:  # noqa: BLE001 - unmarked rows are republished by the relay
                pass
