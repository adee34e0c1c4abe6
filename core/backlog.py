"""Backlog: a factor whose queue is too deep refuses uploads with 503 + Retry-After, and the
age of each factor's oldest queued job (the waiting-time scaling signal)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
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


def oldest_queued_age(conn: psycopg.Connection[Any], factors: Sequence[str]) -> dict[str, float]:
    """Seconds since the oldest still-queued job of each factor was accepted (0 when none).

    Read from Postgres, not the broker: a job accepted but not yet published (outbox lag,
    a broker outage) is waiting too. ``created_at`` is the upload's acceptance, so this is
    the age the upload-to-score objective is about. ``jobs_queued_age`` makes it one
    index probe per factor.
    """
    rows = conn.execute(
        "SELECT f.factor, extract(epoch FROM clock_timestamp() - ("
        "  SELECT min(j.created_at) FROM jobs j WHERE j.status = 'queued' AND j.factor = f.factor"
        ")) AS age FROM unnest(%s::text[]) AS f(factor)",
        (list(factors),),
    ).fetchall()
    return {r["factor"]: max(0.0, float(r["age"] or 0.0)) for r in rows}
