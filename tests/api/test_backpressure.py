"""Backpressure: a factor whose queue is past its bound refuses uploads with 503 + Retry-After,
leaves nothing behind, and the SDK's retry with the same batch id gets through once it drains."""

from __future__ import annotations

import uuid

import pytest
import redis

from tests.api.conftest import enrol_phone, post_envelope


@pytest.fixture()
def bounded(settings):  # type: ignore[no-untyped-def]
    """An API whose keystroke queue is private to this test and holds at most 3 jobs."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    queue = f"score.keystroke.test-{uuid.uuid4().hex[:8]}"
    s = settings.model_copy(
        update={
            "queues": settings.queues.model_copy(update={"keystroke": queue}),
            "limits": settings.limits.model_copy(update={"backlog_limit": 3}),
        }
    )
    client = redis.Redis.from_url(settings.redis_url)
    with TestClient(create_app(s), raise_server_exceptions=False) as api:
        api.app.state.uploads.check_backlog.ttl_s = 0  # read the depth on every upload in this test
        yield api, client, queue
    client.delete(queue)


def test_full_queue_refuses_with_retry_after_and_writes_nothing(bounded, tenant, db):  # type: ignore[no-untyped-def]
    api, client, queue = bounded
    phone = enrol_phone(api, tenant)
    # given the keystroke queue at its bound
    client.lpush(queue, *[b"waiting"] * 3)
    batches_before = db.execute(
        "SELECT count(*) AS n FROM batches WHERE tenant_id = %s", (tenant["id"],)
    ).fetchone()["n"]
    # when a phone uploads a keystroke batch
    _, env = phone.envelope(factor="keystroke")
    r = post_envelope(api, phone, env)
    # then 503 backlog_full with Retry-After, and no row was written
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "backlog_full"
    assert int(r.headers["Retry-After"]) >= 1
    after = db.execute(
        "SELECT count(*) AS n FROM batches WHERE tenant_id = %s", (tenant["id"],)
    ).fetchone()["n"]
    assert after == batches_before
    # and another factor is unaffected
    _, gait = phone.envelope(factor="gait")
    assert post_envelope(api, phone, gait).status_code == 202


def test_sdk_waits_and_retries_with_the_same_batch_id(bounded, tenant, db):  # type: ignore[no-untyped-def]
    api, client, queue = bounded
    phone = enrol_phone(api, tenant)
    client.lpush(queue, *[b"waiting"] * 3)
    waits: list[float] = []

    def drain_while_waiting(seconds: float) -> None:
        waits.append(seconds)
        client.delete(queue)  # the pool caught up while the phone waited

    phone.device.max_attempts, phone.device._sleep = 3, drain_while_waiting
    batch_id, env = phone.envelope(factor="keystroke")
    receipt = phone.device.send(batch_id, env)
    assert receipt.attempts == 2
    assert waits and waits[0] >= 1  # honoured Retry-After
    n = db.execute(
        "SELECT count(*) AS n FROM batches WHERE client_batch_id = %s", (batch_id,)
    ).fetchone()["n"]
    assert n == 1
