"""The outbox relay and sweeper against real Postgres and Redis."""

from __future__ import annotations

import uuid

import pytest
import redis

from core.batches.service import NewBatch, utcnow
from core.db import make_pool, transaction
from core.devices.service import create_device
from core.publisher import JobPublisher
from tests.batches import record_batch_sync
from workers import relay


@pytest.fixture()
def pool(settings):  # type: ignore[no-untyped-def]
    p = make_pool(settings.database_url, max_size=4, name="test-relay")
    p.open()
    yield p
    p.close()


@pytest.fixture()
def broker(settings):  # type: ignore[no-untyped-def]
    return redis.Redis.from_url(settings.redis_url)


def _job(pool, tenant, settings, queue: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    with transaction(pool) as conn:
        device = create_device(
            conn, tenant_id=tenant["id"], user_external_id=f"u-{uuid.uuid4().hex[:6]}"
        )
        acc = record_batch_sync(
            conn,
            device=device,
            batch=NewBatch(uuid.uuid4(), "keystroke", "verify", b"x"),
            object_key="raw/test",
            queue=queue,
            received=utcnow(),
        )
    return acc.job_id


def test_relay_publishes_what_the_api_did_not(pool, broker, settings, tenant, db):  # type: ignore[no-untyped-def]
    # given a committed job whose publish never happened, on a queue of its own
    queue = f"score.test-{uuid.uuid4().hex[:6]}"
    job_id = _job(pool, tenant, settings, queue)
    db.execute("UPDATE outbox SET not_before = now() WHERE job_id = %s", (job_id,))
    # when the relay runs
    sent = relay.publish_pending(pool, JobPublisher(settings))
    # then the job's message is on its queue and the outbox row is marked
    assert sent >= 1
    assert broker.llen(queue) == 1
    assert job_id.hex.replace("-", "") in broker.lpop(queue).decode().replace("-", "")
    row = db.execute("SELECT published_at FROM outbox WHERE job_id = %s", (job_id,)).fetchone()
    assert row["published_at"] is not None
    # and a second run publishes nothing more
    relay.publish_pending(pool, JobPublisher(settings))
    assert broker.llen(queue) == 0


def test_relay_leaves_fresh_rows_to_the_api(pool, broker, settings, tenant):  # type: ignore[no-untyped-def]
    queue = f"score.test-{uuid.uuid4().hex[:6]}"
    _job(pool, tenant, settings, queue)  # not_before is two seconds ahead
    relay.publish_pending(pool, JobPublisher(settings))
    assert broker.llen(queue) == 0


def test_sweeper_requeues_a_job_stuck_running_and_kills_one_out_of_attempts(
    pool, settings, tenant, db
):  # type: ignore[no-untyped-def]
    stuck = _job(pool, tenant, settings, "score.keystroke")
    hopeless = _job(pool, tenant, settings, "score.keystroke")
    db.execute(
        "UPDATE jobs SET status = 'running', attempts = 1, started_at = now() - interval '1 hour' WHERE id = %s",
        (stuck,),
    )
    db.execute(
        "UPDATE jobs SET status = 'running', attempts = %s, started_at = now() - interval '1 hour' WHERE id = %s",
        (settings.reliability.max_attempts, hopeless),
    )
    relay.sweep(pool, settings)
    s = db.execute("SELECT status FROM jobs WHERE id = %s", (stuck,)).fetchone()
    h = db.execute("SELECT status, error_code FROM jobs WHERE id = %s", (hopeless,)).fetchone()
    assert s["status"] == "queued"
    assert (
        db.execute(
            "SELECT count(*) AS n FROM outbox WHERE job_id = %s AND published_at IS NULL"
            " AND not_before <= now()",
            (stuck,),
        ).fetchone()["n"]
        == 1
    )
    assert (h["status"], h["error_code"]) == ("dead", "attempts_exhausted")


def test_empty_redis_means_every_open_job_is_republished(pool, broker, settings, tenant, db):  # type: ignore[no-untyped-def]
    job_id = _job(pool, tenant, settings, "score.keystroke")
    broker.delete(relay.EPOCH_KEY)  # as after a restart that lost everything
    n = relay.check_broker_epoch(broker, pool, settings)
    assert n >= 1
    assert (
        db.execute(
            "SELECT count(*) AS n FROM outbox WHERE job_id = %s AND not_before <= now()"
            " AND published_at IS NULL",
            (job_id,),
        ).fetchone()["n"]
        == 1
    )
    assert relay.check_broker_epoch(broker, pool, settings) == 0  # once only


def test_marking_skips_rows_another_transaction_holds(pool, settings, tenant, db):  # type: ignore[no-untyped-def]
    from core.db import connect
    from core.jobs.endings import mark_published

    # given a job whose outbox row is held by another transaction (an erasure, say)
    job_id = _job(pool, tenant, settings, f"score.test-{uuid.uuid4().hex[:6]}")
    with connect(settings.database_url) as holder:
        holder.execute("SELECT id FROM outbox WHERE job_id = %s FOR UPDATE", (job_id,))
        # when the publisher marks it, with a short lock timeout to catch any wait
        with connect(settings.database_url) as conn, conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '2s'")
            mark_published(conn, [job_id])
        holder.rollback()
    # then it did not wait: the row stays unpublished, for the relay
    row = db.execute("SELECT published_at FROM outbox WHERE job_id = %s", (job_id,)).fetchone()
    assert row["published_at"] is None
