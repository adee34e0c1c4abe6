"""Upload rate limits per device and per tenant: fixed one-minute windows in Redis.

One INCR per limit per request (with the window's expiry set in the same round trip).
A fixed window lets a client send up to twice the rate across a window boundary, which
is fine for protecting the queues; Retry-After says when the current window ends.
"""

from __future__ import annotations

import time
import uuid

import redis

from core.errors import RateLimited, Unavailable

WINDOW_S = 60


class UploadRateLimit:
    """Counts authentic uploads; `check` raises RateLimited once a limit is reached."""

    def __init__(self, client: redis.Redis, *, device_per_min: int, tenant_per_min: int) -> None:
        self.client = client
        self.device_per_min, self.tenant_per_min = device_per_min, tenant_per_min

    def check(
        self, *, tenant_id: uuid.UUID, device_id: uuid.UUID, now: float | None = None
    ) -> None:
        t = time.time() if now is None else now
        window = int(t // WINDOW_S)
        retry_after = max(1, int((window + 1) * WINDOW_S - t + 0.999))
        keys = (
            f"tacit:rate:device:{device_id}:{window}",
            f"tacit:rate:tenant:{tenant_id}:{window}",
        )
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, WINDOW_S + 5)
            device_count, _, tenant_count, _ = pipe.execute()
        except redis.RedisError as e:
            raise Unavailable("rate limiter unavailable", code="broker_unavailable") from e
        if int(device_count) > self.device_per_min:
            raise RateLimited(
                f"more than {self.device_per_min} uploads a minute from this device",
                retry_after=retry_after,
            )
        if int(tenant_count) > self.tenant_per_min:
            raise RateLimited(
                f"more than {self.tenant_per_min} uploads a minute for this tenant",
                retry_after=retry_after,
            )
