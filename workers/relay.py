"""The outbox relay and sweeper: whatever was accepted reaches a queue, whatever crashes.

- publishes outbox rows the API could not (claimed with FOR UPDATE SKIP LOCKED, so
  several replicas can run);
- requeues jobs stuck running past a deadline (a worker died) and republishes
  queued jobs that waited too long (a message was lost); a job that keeps dying is dead;
- notices a Redis that restarted empty (its epoch key is gone) and republishes
  every open job from Postgres;
- removes blobs under raw/ that no batch row references once they are older than the
  upload timeout (an upload whose outcome was unknown left it; see core/batches/ingest.py).
Duplicate messages are harmless: a task is idempotent by job id.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import redis
from psycopg_pool import ConnectionPool

from core.db import make_pool, transaction
from core.errors import Unavailable
from core.jobs import endings
from core.publisher import JobPublisher
from core.settings import Settings
from core.storage import ObjectStore, make_store
from core.webhooks.endpoints import clear_expired_secrets

log = logging.getLogger("tacit.relay")
EPOCH_KEY = "tacit:broker-epoch"


def publish_pending(pool: ConnectionPool, publisher: JobPublisher, *, limit: int = 500) -> int:
    """Publish due outbox rows; returns how many were sent."""
    with transaction(pool) as conn:
        rows = conn.execute(
            "SELECT job_id, queue FROM outbox WHERE published_at IS NULL AND not_before <= now()"
            " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (limit,),
        ).fetchall()
        sent = []
        if rows:
            try:
                publisher.send_many([(r["job_id"], r["queue"]) for r in rows])
                sent = [r["job_id"] for r in rows]
            except Exception:  # noqa: BLE001 - broker down: leave them for the next round
                pass
        if sent:
            endings.mark_published(conn, sent)
    return len(sent)


def publish_due_webhooks(pool: ConnectionPool, publisher: JobPublisher, settings: Settings) -> int:
    """Hand due webhook deliveries (new, retries, replays) to the webhook pool's queue."""
    from core.queues import TASK_DELIVER_WEBHOOK
    from core.webhooks.deliveries import publish_due

    queue = settings.queues.webhooks
    return publish_due(
        pool,
        lambda delivery_id: publisher.app.send_task(
            TASK_DELIVER_WEBHOOK, args=[str(delivery_id)], queue=queue, retry=False
        ),
        republish_after_s=settings.webhooks.republish_after_s,
    )


def publish_template_rebuilds(
    pool: ConnectionPool, publisher: JobPublisher, settings: Settings, *, limit: int = 200
) -> int:
    """Hand owed template rebuilds to their factor's pool; one not done in time is sent again."""
    from core.queues import TASK_REBUILD_TEMPLATE

    with transaction(pool) as conn:
        rows = conn.execute(
            "SELECT user_id, factor FROM template_rebuilds WHERE published_at IS NULL"
            " OR published_at < now() - make_interval(secs => %s) ORDER BY requested_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (settings.enrolment.republish_rebuild_after_s, limit),
        ).fetchall()
        sent = []
        for r in rows:
            try:
                publisher.app.send_task(
                    TASK_REBUILD_TEMPLATE,
                    args=[str(r["user_id"]), r["factor"]],
                    queue=settings.queues.score_queue(r["factor"]),
                    retry=False,
                )
            except Exception:  # noqa: BLE001 - broker down: the rest waits for the next round
                break
            sent.append((r["user_id"], r["factor"]))
        for user_id, factor in sent:
            conn.execute(
                "UPDATE template_rebuilds SET published_at = now() WHERE user_id = %s AND factor = %s",
                (user_id, factor),
            )
    return len(sent)


def sweep(pool: ConnectionPool, settings: Settings) -> dict[str, int]:
    """Requeue lost jobs through the outbox; mark jobs that exhausted their attempts dead."""
    rel = settings.reliability
    with transaction(pool) as conn:
        dead = endings.bury_interrupted(
            conn, running_deadline_s=rel.running_deadline_s, max_attempts=rel.max_attempts
        )
        requeued = endings.requeue_lost(
            conn,
            running_deadline_s=rel.running_deadline_s,
            queued_deadline_s=rel.queued_deadline_s,
            queues=settings.queues.score_queues(),
        )
        forgotten = clear_expired_secrets(conn)
    return {"requeued": requeued, "dead": len(dead), "secrets_forgotten": forgotten}


def sweep_orphan_blobs(
    pool: ConnectionPool, store: ObjectStore, settings: Settings, *, prefix: str = "raw/"
) -> int:
    """Delete blobs older than the upload timeout that no batch row references; returns how many.

    A batch's key ends with its row's id, so the check is a primary-key lookup. The upload
    statement inserts nothing later than half the timeout after its blob was written, so a
    blob this old without a row will never get one.
    """
    old = store.list_older(prefix, settings.reliability.upload_timeout_s)
    removed = 0
    for i in range(0, len(old), 1000):
        by_id: dict[uuid.UUID, str] = {}
        for key in old[i : i + 1000]:
            try:
                by_id[uuid.UUID(key.rsplit("/", 1)[-1])] = key
            except ValueError:
                continue  # not a batch's key: not this sweep's to judge
        if not by_id:
            continue
        with transaction(pool) as conn:
            referenced = {
                r["object_key"]
                for r in conn.execute(
                    "SELECT object_key FROM batches WHERE id = ANY(%s)", (list(by_id),)
                ).fetchall()
            }
        for key in by_id.values():
            if key not in referenced:
                store.delete(key)
                removed += 1
    return removed


def republish_open_jobs(pool: ConnectionPool, settings: Settings) -> int:
    """After the broker lost its memory: every queued or running job goes back on its queue."""
    with transaction(pool) as conn:
        ids = [
            r["id"]
            for r in conn.execute(
                "SELECT id FROM jobs WHERE status IN ('queued', 'running')"
            ).fetchall()
        ]
        endings.enqueue_again(conn, ids, queues=settings.queues.score_queues())
    return len(ids)


def check_broker_epoch(client: redis.Redis, pool: ConnectionPool, settings: Settings) -> int:
    """If the epoch key vanished, Redis restarted empty: republish open jobs (once, across replicas)."""
    if client.exists(EPOCH_KEY):
        return 0
    if not client.set(EPOCH_KEY, str(time.time()), nx=True):
        return 0  # another relay got there first
    return republish_open_jobs(pool, settings)


def sample_queue_depths(client: redis.Redis, settings: Settings) -> dict[str, int] | None:
    """Every few seconds, push each queue's LLEN onto the operator dashboard's capped history.

    A lock key that expires after the interval makes several relay replicas take one sample
    per interval between them; returns the sample, or None when it was not this one's turn.
    """
    from core import metrics

    if not client.set(
        metrics.QUEUE_DEPTH_SAMPLE_LOCK, "1", nx=True, ex=metrics.QUEUE_DEPTH_SAMPLE_EVERY_S
    ):
        return None
    queues = settings.queues.score_queues() | {"webhooks": settings.queues.webhooks}
    pipe = client.pipeline(transaction=False)
    for queue in queues.values():
        pipe.llen(queue)
    depths = {name: int(n) for name, n in zip(queues, pipe.execute(), strict=True)}
    pipe = client.pipeline(transaction=True)
    pipe.lpush(
        metrics.QUEUE_DEPTH_HISTORY_KEY, json.dumps({"t": round(time.time(), 3), "depths": depths})
    )
    pipe.ltrim(metrics.QUEUE_DEPTH_HISTORY_KEY, 0, metrics.QUEUE_DEPTH_HISTORY_LEN - 1)
    pipe.execute()
    return depths


def run(settings: Settings, stop: threading.Event, *, sweep_every_s: float = 5.0) -> None:
    """The relay loop until `stop` is set."""
    pool = make_pool(settings.database_url, min_size=1, max_size=2, name="relay")
    pool.open(wait=False)
    publisher = JobPublisher(settings)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)
    from core import retention

    store = make_store(settings.storage)
    last_sweep = last_retention = last_orphan_sweep = 0.0
    log.info(json.dumps({"event": "relay_started"}))
    try:
        while not stop.is_set():
            busy = False
            try:
                if check_broker_epoch(client, pool, settings):
                    log.warning(
                        json.dumps({"event": "broker_restarted", "action": "republished open jobs"})
                    )
                sample_queue_depths(client, settings)
                busy = publish_pending(pool, publisher) > 0
                busy = publish_due_webhooks(pool, publisher, settings) > 0 or busy
                busy = publish_template_rebuilds(pool, publisher, settings) > 0 or busy
                if time.monotonic() - last_sweep >= sweep_every_s:
                    result = sweep(pool, settings)
                    last_sweep = time.monotonic()
                    if any(result.values()):
                        log.info(json.dumps({"event": "sweep", **result}))
                if time.monotonic() - last_retention >= settings.retention.every_s:
                    pruned = retention.sweep(pool, store, settings.retention)
                    last_retention = time.monotonic()
                    if any(pruned.values()):
                        log.info(json.dumps({"event": "retention", **pruned}))
                if (
                    time.monotonic() - last_orphan_sweep
                    >= settings.reliability.orphan_sweep_every_s
                ):
                    removed = sweep_orphan_blobs(pool, store, settings)
                    last_orphan_sweep = time.monotonic()
                    if removed:
                        log.info(json.dumps({"event": "orphan_blobs_removed", "count": removed}))
            except (Unavailable, redis.RedisError, OSError) as e:
                log.warning(json.dumps({"event": "relay_waiting", "reason": e.__class__.__name__}))
                stop.wait(1.0)
            if not busy:
                stop.wait(settings.reliability.relay_poll_s)
    finally:
        pool.close()
