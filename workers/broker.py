"""The scoring pools' Redis transport: kombu's, taking many messages and acknowledging many per round trip.

kombu's Redis channel takes one message per ``BRPOP``, records it as unacked in a second
round trip, and sends each acknowledgement in a pipeline of its own, all on the worker's
consumer thread (Celery runs acks there too), each round trip waiting for the GIL again
when it returns. This transport changes that and keeps the rest of kombu (the message
format, the unacked hash and index that kombu's restore reads after the visibility
timeout, priorities, fanout):

- When the worker has free threads, one Lua script pops up to that many messages and
  records each in ``unacked`` and ``unacked_index`` in the same step, so a kill -9
  between the pop and the record cannot lose one. It never takes more than the free
  threads' worth, so the Redis list keeps showing the backlog. When the queue is empty
  the channel waits on kombu's ``BRPOP`` as before (that one message is recorded after
  its pop, as kombu does).
- Acknowledgements made on the consumer's loop are kept until the loop's next poll
  start and go out with that take, or in one pipeline when there is no take. An ack
  lost to a kill -9 only means the message comes back after the visibility timeout (a
  redelivered score job is a no-op); the channel sends what is left when it closes.
- An ack from another thread wakes the loop when no ``BRPOP`` is waiting, so a freed
  thread is filled at once rather than at the loop's next timer.

Each channel also reuses one Redis client per connection pool instead of building one
per message and per ack (about 60 us of pure Python apiece).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import time
from typing import Any
from urllib.parse import urlparse

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from vine import promise

TRANSPORT = "workers.broker:Transport"

log = logging.getLogger(__name__)

# KEYS: the unacked hash, its index, then the queues' lists in priority order.
# ARGV: the most messages to take, the time to index them at (as kombu's QoS.append),
# then the delivery tags acknowledged since the last round trip.
# Returns (list, message, recorded) triples; a message without a delivery tag is
# returned unrecorded, for kombu's own path.
TAKE = """
for i = 3, #ARGV do
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[1], ARGV[i])
end
local taken, left = {}, tonumber(ARGV[1])
for i = 3, #KEYS do
  while left > 0 do
    local raw = redis.call('RPOP', KEYS[i])
    if not raw then break end
    local ok, m = pcall(cjson.decode, raw)
    local props = ok and type(m) == 'table' and m.properties
    local tag = type(props) == 'table' and props.delivery_tag
    local recorded = 0
    if type(tag) == 'string' then
      local info = props.delivery_info
      if type(info) ~= 'table' then info = {} end
      local ex, rk = info.exchange, info.routing_key
      if type(ex) ~= 'string' then ex = '' end
      if type(rk) ~= 'string' then rk = '' end
      redis.call('ZADD', KEYS[2], ARGV[2], tag)
      redis.call('HSET', KEYS[1], tag,
        '[' .. raw .. ',' .. cjson.encode(ex) .. ',' .. cjson.encode(rk) .. ']')
      recorded = 1
    end
    taken[#taken + 1] = KEYS[i]
    taken[#taken + 1] = raw
    taken[#taken + 1] = recorded
    left = left - 1
  end
end
return taken
"""

_NOTHING = promise(lambda: None)  # one object: the hub's ready set holds it once


class QoS(kombu_redis.QoS):
    """kombu's ack emulation, with acknowledgements sent many per round trip.

    Celery runs acknowledgements on the consumer's event loop; there they are kept until
    the loop's next poll start, which sends them with its take (or in one pipeline). An
    ack from any other thread, or on a closed channel, is sent at once with any kept.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded = False  # set while the channel delivers a message its take recorded
        self._acks: list[str] = []
        self._acks_lock = threading.Lock()

    def append(self, message: Any, delivery_tag: str) -> None:
        if self.recorded:
            virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        with self._acks_lock:
            self._acks.append(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)
        if self.channel.closed or not self.channel.on_loop_thread():
            self.flush_acks()
            self.channel.wake()

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        super().reject(delivery_tag, requeue=requeue)
        self.channel.wake()

    def pop_acks(self) -> list[str]:
        """The delivery tags acknowledged and not yet sent; the caller sends or returns them."""
        with self._acks_lock:
            tags, self._acks = self._acks, []
        return tags

    def return_acks(self, tags: list[str]) -> None:
        """Keep tags that could not be sent, for the next round trip."""
        with self._acks_lock:
            self._acks[:0] = tags

    def flush_acks(self) -> None:
        """Send every acknowledgement kept, in one pipeline."""
        tags = self.pop_acks()
        if not tags:
            return
        try:
            with self.channel.conn_or_acquire() as client:
                pipe = client.pipeline()
                pipe.zrem(self.unacked_index_key, *tags).hdel(self.unacked_key, *tags).execute()
        except BaseException:
            self.return_acks(tags)
            raise


class Channel(kombu_redis.Channel):
    QoS = QoS
    _shared: tuple[Any, Any] | None = None  # (the pool it was built on, the client)
    _take: Any = None  # the registered TAKE script

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool  # a new pool after a reconnect or a fork gets a new client
        shared = self._shared
        if shared is None or shared[0] is not pool:
            shared = self._shared = (pool, self._create_client())
        yield shared[1]

    def _brpop_start(self, timeout: Any = None) -> None:
        if not self._take_free():  # the queue ran dry before every free thread had one
            super()._brpop_start(timeout)

    def _take_free(self) -> bool:
        """Take and deliver up to the free threads' worth of messages; True if that many came."""
        free = self.qos.can_consume_max_estimate()  # None without a prefetch limit
        if not free or self.global_keyprefix or not self.ack_emulation:
            return False
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return False
        keys = [self._q_for_pri(q, pri) for pri in self.priority_steps for q in queues]
        acks = self.qos.pop_acks()
        try:
            with self.conn_or_acquire() as client:
                if self._take is None:
                    self._take = client.register_script(TAKE)
                taken = self._take(
                    keys=[self.unacked_key, self.unacked_index_key, *keys],
                    args=[free, repr(time()), *acks],
                    client=client,
                )
        except BaseException:
            self.qos.return_acks(acks)
            raise
        self._deliver_taken(taken)
        return len(taken) // 3 >= free

    def _deliver_taken(self, taken: list[Any]) -> None:
        # A message after one whose delivery raised stays recorded, so kombu restores it.
        dest = None
        for key, raw, recorded in zip(taken[::3], taken[1::3], taken[2::3], strict=True):
            dest = bytes_to_str(key).rsplit(self.sep, 1)[0]
            self.qos.recorded = bool(recorded)
            try:
                self.connection._deliver(loads(bytes_to_str(raw)), dest)
            finally:
                self.qos.recorded = False
        if dest is not None:
            self._queue_cycle.rotate(dest)

    def on_loop_thread(self) -> bool:
        return self.connection.loop_thread == threading.get_ident()

    def wake(self) -> None:
        """Have the consumer's event loop look for messages again (a thread was freed)."""
        hub = self.connection.hub
        if hub is not None and not self._in_poll:
            hub.call_soon(_NOTHING)

    def send_acks(self) -> None:
        """Send the acknowledgements kept; on a Redis error they wait for the next try."""
        if self._qos is None:
            return
        try:
            self._qos.flush_acks()
        except Exception:  # noqa: BLE001 - unsent, those messages come back after the visibility timeout
            log.warning("acknowledgements not sent", exc_info=True)

    def close(self) -> None:
        self.send_acks()
        super().close()


class Poller(kombu_redis.MultiChannelPoller):
    """kombu's poller; after each poll start (and its takes), the acknowledgements left go out."""

    def on_poll_start(self) -> None:
        super().on_poll_start()
        for channel in list(self._channels):
            channel.send_acks()


class Transport(kombu_redis.Transport):
    Channel = Channel
    hub: Any = None  # the worker's event loop, once the consumer runs on one
    loop_thread: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cycle = Poller()  # type: ignore[assignment]

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        self.hub, self.loop_thread = loop, threading.get_ident()
        super().register_with_event_loop(connection, loop)


def transport_for(broker_url: str) -> str | None:
    """This transport for a plain Redis broker URL; None (kombu's choice) for any other."""
    return TRANSPORT if urlparse(broker_url).scheme in ("redis", "rediss") else None
