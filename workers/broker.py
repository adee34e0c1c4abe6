"""The scoring pools' Redis transport: kombu's own, reusing one Redis client per channel.

kombu's Redis channel builds a new ``redis.Redis`` client object for each message it
takes (to record it as unacked) and for each ack: about 60 us of pure Python apiece,
run on the worker's one consumer thread, the same thread that reads the queue. A Redis
client is safe to share between threads (each command borrows a connection from the
channel's pool), so this transport builds one per connection pool and reuses it. The
message format, the unacked bookkeeping that lets kombu redeliver a lost message, and
everything else are kombu's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from kombu.transport import redis as kombu_redis

TRANSPORT = "workers.broker:Transport"


class Channel(kombu_redis.Channel):
    _shared: tuple[Any, Any] | None = None  # (the pool it was built on, the client)

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


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """This transport for a plain Redis broker URL; None (kombu's choice) for any other."""
    return TRANSPORT if urlparse(broker_url).scheme in ("redis", "rediss") else None
