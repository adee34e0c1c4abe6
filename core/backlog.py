"""Backpressure: a factor whose queue is too deep refuses uploads with 503 + Retry-After."""

from __future__ import annotations

import time

import redis
import redis.asyncio

from core.errors import Unavailable


class BacklogGuard:
    """Reads each queue's Redis list length at most every `ttl_s`, so uploads cost no extra round trip."""

    def __init__(self, client: redis.asyncio.Redis, *, limit: int, ttl_s: float = 0.5) -> None:
        self.client, self.limit, self.ttl_s = client, limit, ttl_s
        self._seen: dict[str, tuple[float, int]] = {}

    async def depth(self, queue: str) -> int:
        now = time.monotonic()
        cached = self._seen.get(queue)
        if cached and now - cached[0] < self.ttl_s:
            return cached[1]
        try:
            depth = int(await self.client.llen(queue))
        except redis.RedisError as e:
            raise Unavailable("queue broker unavailable", code="broker_unavailable") from e
        self._seen[queue] = (now, depth)
        return depth

    async def __call__(self, queue: str) -> None:
        depth = await self.depth(queue)
        if depth >= self.limit:
            raise Unavailable(
                f"queue {queue} holds {depth} jobs; retry later", code="backlog_full", retry_after=5
            )
