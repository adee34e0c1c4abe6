"""Admitting an authentic upload: its nonce is new, and its device and tenant are within their rates.

Fixed one-minute windows in Redis, one counter per limit. A fixed window lets a client
send up to twice the rate across a window boundary, which is fine for protecting the
queues; Retry-After says when the current window ends. The nonce claim and both counts
are one Lua script, so an upload pays one Redis round trip for all three, and a replayed
request (refused) counts against nobody's rate.
"""

from __future__ import annotations

import time
import uuid

import redis
import redis.asyncio

from core.errors import RateLimited, Unavailable
from core.protocol.errors import ProtocolError
from core.protocol.signing import NONCE_TTL_S, nonce_key

WINDOW_S = 60

# KEYS: nonce, device window, tenant window. ARGV: nonce TTL, window TTL.
# Returns {0, 0} for a nonce seen before, else {device count, tenant count}.
_ADMIT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return {0, 0} end
local d = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local t = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return {d, t}
"""


class UploadGate:
    """Call `admit` once per upload whose signature checked out; it raises what refuses it."""

    def __init__(self, client: redis.asyncio.Redis, *, device_per_min: int, tenant_per_min: int) -> None:
        self.device_per_min, self.tenant_per_min = device_per_min, tenant_per_min
        self._admit = client.register_script(_ADMIT)

    async def admit(self, *, tenant_id: uuid.UUID, device_id: uuid.UUID, nonce: bytes, now: float | None = None) -> None:
        """`signature_replayed` for a nonce seen before; RateLimited over a limit."""
        t = time.time() if now is None else now
        window = int(t // WINDOW_S)
        keys = [
            nonce_key(str(device_id), nonce),
            f"tacit:rate:device:{device_id}:{window}",
            f"tacit:rate:tenant:{tenant_id}:{window}",
        ]
        try:
            device_count, tenant_count = await self._admit(keys=keys, args=[NONCE_TTL_S, WINDOW_S + 5])
        except redis.RedisError as e:
            raise Unavailable("nonce and rate store unavailable", code="broker_unavailable") from e
        if device_count == 0:
            raise ProtocolError("signature_replayed", "this nonce was already used")
        retry_after = max(1, int((window + 1) * WINDOW_S - t + 0.999))
        if device_count > self.device_per_min:
            raise RateLimited(
                f"more than {self.device_per_min} uploads a minute from this device", retry_after=retry_after
            )
        if tenant_count > self.tenant_per_min:
            raise RateLimited(
                f"more than {self.tenant_per_min} uploads a minute for this tenant", retry_after=retry_after
            )
