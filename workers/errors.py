"""The one place where worker-side errors become retry, fail or dead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.errors import DomainError, NotFound, PermanentJobError, TransientJobError, Unavailable

Outcome = Literal["retry", "fail"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    code: str
    message: str


def classify(exc: BaseException) -> Verdict:
    """Transient infrastructure errors are retried; anything about the payload fails at once."""
    code = getattr(exc, "code", None)
    if isinstance(exc, (Unavailable, TransientJobError)):
        return Verdict("retry", code or "transient", str(exc))
    if isinstance(exc, NotFound):
        return Verdict("fail", code or "object_missing", str(exc))
    if isinstance(exc, (PermanentJobError, DomainError)):
        return Verdict("fail", code or "job_failed", str(exc))
    if code:  # codec, pipeline and protocol errors all carry a code and are about the payload
        return Verdict("fail", str(code), str(exc))
    import psycopg
    import redis

    # Neither kind is about the payload: what is stored (and shown to the tenant) is a fixed
    # message; the exception's class is in the worker's `job_error` log line, with the job id.
    if isinstance(
        exc, (psycopg.OperationalError, redis.RedisError, ConnectionError, TimeoutError, OSError)
    ):
        return Verdict(
            "retry",
            "transient_" + exc.__class__.__name__.lower(),
            "a dependency was unreachable; retried",
        )
    return Verdict("fail", "internal_error", "the job failed on an internal error")


def backoff_s(attempt: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """Capped exponential backoff before the next attempt (attempt counts from 1)."""
    return min(cap, base * 2 ** max(0, attempt - 1))
