"""The pools' Redis transport: kombu's semantics, bulk takes, acknowledgements many per round trip."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu import Connection, Consumer, Queue

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


def _messages(queue: str, n: int) -> list[bytes]:
    from core.publisher import score_message

    return [score_message(uuid.uuid4(), queue, origin="broker-test") for _ in range(n)]


def _tag(raw: bytes) -> str:
    return json.loads(raw)["properties"]["delivery_tag"]


@contextmanager
def _consumer(url: str, queue: str, prefetch: int, **options: Any) -> Iterator[tuple[Any, list]]:
    """A channel consuming `queue` with `prefetch` slots; yields (connection, messages delivered)."""
    got: list = []
    with Connection(url, transport=Transport, transport_options=options) as conn:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=prefetch)
        consumer = Consumer(channel, queues=[Queue(queue)], accept=["json"])
        consumer.register_callback(lambda _body, message: got.append(message))
        consumer.consume()
        yield conn, got
        channel.close()


def _poll_start(conn: Any) -> None:
    """One turn of the poller's start, as the worker's event loop runs it before each poll."""
    conn.transport.cycle.on_poll_start()


def test_a_bulk_take_records_each_message_as_unacked_and_takes_only_the_free_slots(settings):  # type: ignore[no-untyped-def]
    # given 10 messages in a queue and a consumer with 4 free slots
    name = f"broker-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.redis_url)
    raws = _messages(name, 10)
    client.lpush(name, *raws)  # as the publisher does: the first one pushed is taken first
    with _consumer(settings.redis_url, name, prefetch=4) as (conn, got):
        # when the poller starts a turn
        _poll_start(conn)
        # then 4 messages were delivered, oldest first, and 6 still show in the list
        assert [m.delivery_tag for m in got] == [_tag(r) for r in raws[:4]]
        assert client.llen(name) == 6
        # and each is in kombu's unacked hash as kombu's own restore reads it, and indexed
        for raw, m in zip(raws, got, strict=False):
            payload, exchange, routing_key = json.loads(client.hget("unacked", m.delivery_tag))
            assert (payload, exchange, routing_key) == (json.loads(raw), "", name)
            assert abs(client.zscore("unacked_index", m.delivery_tag) - time.time()) < 60
        # when no slot is free, a turn takes nothing; when one is acked, a turn takes one more
        _poll_start(conn)
        assert len(got) == 4 and client.llen(name) == 6
        got[0].ack()  # on a thread that is not the event loop's: sent at once
        assert not client.hexists("unacked", got[0].delivery_tag)
        _poll_start(conn)
        assert len(got) == 5 and client.llen(name) == 5
        for m in got[1:]:
            m.ack()
    client.delete(name)


def test_acks_on_the_event_loop_go_out_with_its_next_turn_or_at_close(settings):  # type: ignore[no-untyped-def]
    # given a consumer whose event loop runs on this thread, holding 3 messages
    name = f"broker-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.redis_url)
    client.lpush(name, *_messages(name, 3))
    with _consumer(settings.redis_url, name, prefetch=3) as (conn, got):
        conn.transport.loop_thread = threading.get_ident()
        _poll_start(conn)
        first, second, third = got
        # when two are acked there: they are kept, then sent by the loop's next turn
        first.ack()
        second.ack()
        assert client.hexists("unacked", first.delivery_tag)
        _poll_start(conn)
        for m in (first, second):
            assert not client.hexists("unacked", m.delivery_tag)
            assert client.zscore("unacked_index", m.delivery_tag) is None
        # and one acked just before the channel closes is sent by the close
        third.ack()
        assert client.hexists("unacked", third.delivery_tag)
    assert not client.hexists("unacked", third.delivery_tag)
    assert client.zscore("unacked_index", third.delivery_tag) is None
    client.delete(name)


_TAKE_THEN_HANG = """
import json, sys, time
from kombu import Connection, Consumer, Queue
from workers.broker import Transport

url, name, keys = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
conn = Connection(url, transport=Transport, transport_options=keys)
channel = conn.channel()
channel.basic_qos(prefetch_count=3)
got = []
consumer = Consumer(channel, queues=[Queue(name)], accept=["json"])
consumer.register_callback(lambda _body, message: got.append(message))
consumer.consume()
conn.transport.cycle.on_poll_start()
print(len(got), flush=True)
time.sleep(600)
"""


def test_messages_taken_in_bulk_by_a_killed_process_come_back_after_the_visibility_timeout(
    settings,
):  # type: ignore[no-untyped-def]
    # given a process that took 3 of 5 messages in one bulk take and holds them unacked
    # (in an unacked hash of this test's own: the restore below must not touch other tests')
    name = f"broker-test-{uuid.uuid4().hex[:8]}"
    keys = {f"unacked{k}": f"{name}.unacked{k}" for k in ("_key", "_index_key", "_mutex_key")}
    unacked = keys["unacked_key"]
    client = redis.Redis.from_url(settings.redis_url)
    raws = _messages(name, 5)
    client.lpush(name, *raws)
    proc = subprocess.Popen(
        [sys.executable, "-c", _TAKE_THEN_HANG, settings.redis_url, name, json.dumps(keys)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "3"
        # when it is killed with SIGKILL
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    taken = [_tag(r) for r in raws[:3]]
    assert all(client.hexists(unacked, t) for t in taken) and client.llen(name) == 2
    # then, once the visibility timeout has passed, kombu's restore puts every one back
    with Connection(
        settings.redis_url, transport=Transport, transport_options={"visibility_timeout": 1, **keys}
    ) as conn:
        time.sleep(1.5)
        conn.default_channel.qos.restore_visible(num=1000, interval=1)
    assert client.llen(name) == 5
    assert not any(client.hexists(unacked, t) for t in taken)
    back = [json.loads(r) for r in client.lrange(name, 0, -1)]
    assert {m["properties"]["delivery_tag"] for m in back} == {_tag(r) for r in raws}
    assert sum(bool(m["headers"].get("redelivered")) for m in back) == 3
    client.delete(name, *keys.values())
