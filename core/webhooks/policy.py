"""What an attempt's result means for its delivery: pure functions, no I/O."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from core.protocol.retry_after import parse_retry_after as parse_retry_after

THROTTLED = frozenset({429, 502, 503, 504})  # the receiver is loaded: honour its Retry-After


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None  # None: no HTTP answer (refused, timeout, reset, SSRF guard)
    error: str | None
    latency_ms: float
    retry_after_s: float | None = None


@dataclass(frozen=True)
class DeliveryOutcome:
    kind: Literal["succeeded", "gone", "retry", "dead"]
    delay_s: float = 0.0
    reason: str = ""


def describe(result: AttemptResult) -> str:
    if result.status_code is not None:
        return f"HTTP {result.status_code}"
    return result.error or "no response"


def decide(
    result: AttemptResult,
    *,
    attempt: int,
    schedule: Sequence[float],
    jitter: float = 0.0,
    max_retry_after_s: float = 86_400.0,
    rng: random.Random | None = None,
) -> DeliveryOutcome:
    """Only 2xx succeeds; 410 disables; else retry on `schedule` (attempt n+1 waits schedule[n])."""
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return DeliveryOutcome("succeeded")
    if code == 410:
        return DeliveryOutcome("gone", reason="the endpoint answered 410 Gone")
    if attempt >= len(schedule):
        return DeliveryOutcome(
            "dead", reason=f"no success after {attempt} attempts; last: {describe(result)}"
        )
    delay = float(schedule[attempt])
    delay *= 1.0 + (rng or random).uniform(-jitter, jitter)  # spread a burst of retries out
    if code in THROTTLED and result.retry_after_s is not None:
        delay = max(delay, min(result.retry_after_s, max_retry_after_s))
    return DeliveryOutcome("retry", delay_s=max(0.0, delay), reason=describe(result))
