"""The pools' Redis transport: kombu's semantics, one Redis client per connection pool."""

from __future__ import annotations

import uuid

import redis
from kombu import Connection

from workers.broker import TRANSPORT, Transport, transport_for


def test_only_plain_redis_urls_get_this_transport():
    assert transport_for("redis://127.0.0.1:6379/0") == TRANSPORT
    assert transport_for("rediss://cache.example:6380/0") == TRANSPORT
    assert transport_for("sentinel://127.0.0.1:26379") is None


def test_a_channel_reuses_one_client_until_its_pool_changes(settings):  # type: ignore[no-untyped-def]
    with Connection(settings.redis_url, transport=Transport) as conn:
        channel = conn.default_channel
        with channel.conn_or_acquire() as a, channel.conn_or_acquire() as b:
            assert a is b
        channel._disconnect_pools()  # what kombu does after a fork or a failed ping
        with channel.conn_or_acquire() as c:
            assert c is not a
            assert c.ping()


def test_a_message_taken_stays_unacked_until_acked_then_leaves_no_trace(settings):  # type: ignore[no-untyped-def]
    # given a message in a queue, consumed through this transport
    name = f"broker-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.redis_url)
    with Connection(settings.redis_url, transport=Transport) as conn:
        q = conn.SimpleQueue(name)
        q.put({"job_id": "j1"})
        assert client.llen(name) == 1
        # when it is taken: out of the list, into kombu's unacked hash (what redelivery reads)
        message = q.get(timeout=5)
        assert message.payload == {"job_id": "j1"}
        assert client.llen(name) == 0
        assert client.hexists("unacked", message.delivery_tag)
        # then an ack removes it from the unacked bookkeeping
        message.ack()
        assert not client.hexists("unacked", message.delivery_tag)
        assert client.zscore("unacked_index", message.delivery_tag) is None
        q.close()
    client.delete(name)


def test_the_scoring_app_uses_it(settings):  # type: ignore[no-untyped-def]
    from workers.app import app

    assert app.conf.broker_transport == TRANSPORT
