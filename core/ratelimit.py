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

# KEYS: nonce, device window, tenant window. ARGV: nonce TTL, window TTL, device limit, tenant limit.
# Returns {0, 0} for a nonce seen before, else {device count, tenant count}. The device's
# limit is checked first: a device over its own limit is refused without charging its
# tenant (tenant count 0), so one device cannot spend its tenant's budget; an upload the
# tenant's limit refuses is given back to the device.
_ADMIT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return {0, 0} end
local d = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
if d > tonumber(ARGV[3]) then return {d, 0} end
local t = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[2])
if t > tonumber(ARGV[4]) then redis.call('DECR', KEYS[2]) end
return {d, t}
"""

# KEYS: device window, tenant window. Gives an admitted upload back to both.
_REFUND = """
if redis.call('GET', KEYS[1]) then redis.call('DECR', KEYS[1]) end
if redis.call('GET', KEYS[2]) then redis.call('DECR', KEYS[2]) end
return 1
"""


class UploadGate:
    """Call `admit` once per upload whose signature checked out; it raises what refuses it."""

    def __init__(
        self, client: redis.asyncio.Redis, *, device_per_min: int, tenant_per_min: int
    ) -> None:
        self.device_per_min, self.tenant_per_min = device_per_min, tenant_per_min
        self._admit = client.register_script(_ADMIT)
        self._refund = client.register_script(_REFUND)

    @staticmethod
    def _keys(tenant_id: uuid.UUID, device_id: uuid.UUID, window: int) -> list[str]:
        return [
            f"tacit:rate:device:{device_id}:{window}",
            f"tacit:rate:tenant:{tenant_id}:{window}",
        ]

    async def admit(
        self, *, tenant_id: uuid.UUID, device_id: uuid.UUID, nonce: bytes, now: float | None = None
    ) -> int:
        """`signature_replayed` for a nonce seen before; RateLimited over a limit. Returns the window."""
        t = time.time() if now is None else now
        window = int(t // WINDOW_S)
        keys = [nonce_key(str(device_id), nonce), *self._keys(tenant_id, device_id, window)]
        args = [NONCE_TTL_S, WINDOW_S + 5, self.device_per_min, self.tenant_per_min]
        try:
            device_count, tenant_count = await self._admit(keys=keys, args=args)
        except redis.RedisError as e:
            raise Unavailable("nonce and rate store unavailable", code="broker_unavailable") from e
        if device_count == 0:
            raise ProtocolError("signature_replayed", "this nonce was already used")
        retry_after = max(1, int((window + 1) * WINDOW_S - t + 0.999))
        if device_count > self.device_per_min:
            raise RateLimited(
                f"more than {self.device_per_min} uploads a minute from this device",
                retry_after=retry_after,
            )
        if tenant_count > self.tenant_per_min:
            raise RateLimited(
                f"more than {self.tenant_per_min} uploads a minute for this tenant",
                retry_after=retry_after,
            )
        return window

    async def refund(self, *, tenant_id: uuid.UUID, device_id: uuid.UUID, window: int) -> None:
        """Give back an admitted upload that turned out to come from a revoked or removed device."""
        try:
            await self._refund(keys=self._keys(tenant_id, device_id, window))
        except redis.RedisError:
            pass  # the window ends within a minute anyway


# KEYS: window counter. ARGV: window TTL. Returns the count in this window.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class AddressLimits:
    """Per-client-address fixed windows for the routes anyone may call (no credential to rate).

    `admit` answers the seconds to wait (0 when admitted). A Redis outage admits: these
    limits protect the database from floods, and the routes behind them fail on their own
    when Redis is what is down.
    """

    def __init__(self, client: redis.asyncio.Redis, per_min: dict[str, int]) -> None:
        self.per_min = per_min
        self._count = client.register_script(_COUNT)

    async def admit(self, route: str, address: str, *, now: float | None = None) -> int:
        limit = self.per_min.get(route)
        if limit is None:
            return 0
        t = time.time() if now is None else now
        window = int(t // WINDOW_S)
        try:
            count = await self._count(
                keys=[f"tacit:rate:addr:{route}:{address}:{window}"], args=[WINDOW_S + 5]
            )
        except redis.RedisError:
            return 0
        if int(count) <= limit:
            return 0
        return max(1, int((window + 1) * WINDOW_S - t + 0.999))
