"""Score messages written straight to Redis are the ones Celery would send, and workers run them."""

from __future__ import annotations

import base64
import json
import uuid

import redis

from core.publisher import JobPublisher, score_message

# Fields that differ by message (ids, the sender) or that a task without results does not need.
_PER_MESSAGE = {"id", "root_id", "origin", "argsrepr", "correlation_id", "delivery_tag", "reply_to"}


def _shape(value):  # type: ignore[no-untyped-def]
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k not in _PER_MESSAGE}
    return value


def test_score_message_matches_celerys_own(settings):  # type: ignore[no-untyped-def]
    # given the message Celery's producer puts on a queue for the same task
    queue = f"score.test-{uuid.uuid4().hex[:6]}"
    job_id = uuid.uuid4()
    publisher = JobPublisher(settings)
    publisher.app.send_task("tacit.score_job", args=[str(job_id)], queue=queue, retry=False)
    broker = redis.Redis.from_url(settings.redis_url)
    celerys = json.loads(broker.rpop(queue))
    # when ours is built for the same job
    ours = json.loads(score_message(job_id, queue, origin="test"))
    # then the envelope, headers and properties agree, and so do the decoded bodies
    assert _shape(ours) == {**_shape(celerys), "body": ours["body"]}
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(
        base64.b64decode(celerys["body"])
    )
    assert ours["headers"]["argsrepr"] == celerys["headers"]["argsrepr"]
    assert ours["properties"]["delivery_tag"] != celerys["properties"]["delivery_tag"]


def test_send_many_keeps_order_and_queues(settings):  # type: ignore[no-untyped-def]
    # given jobs for two queues, handed over in one call
    a, b = (f"score.test-{uuid.uuid4().hex[:6]}" for _ in range(2))
    jobs = [(uuid.uuid4(), q) for q in (a, b, a, a)]
    JobPublisher(settings).send_many(jobs)
    broker = redis.Redis.from_url(settings.redis_url)

    def taken(queue: str) -> list[str]:  # workers pop from the right
        out = []
        while (raw := broker.rpop(queue)) is not None:
            out.append(json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0])
        return out

    # then each queue holds its own jobs, first in first out
    assert taken(a) == [str(j) for j, q in jobs if q == a]
    assert taken(b) == [str(j) for j, q in jobs if q == b]
