"""The one place where worker-side errors become a retry, a failure or a death."""

from __future__ import annotations

from core.errors import DomainError, NotFound, PermanentJobError, TransientJobError, Unavailable
from core.jobs.endings import Dead, Fail, Retry


def classify(
    exc: BaseException, *, attempts: int = 1, max_attempts: int | None = None
) -> Retry | Fail | Dead:
    """Transient infrastructure errors are retried, and a job that has used ``max_attempts``
    is dead instead; anything about the payload fails at once."""
    ending = _kind(exc)
    if isinstance(ending, Retry) and max_attempts is not None and attempts >= max_attempts:
        return Dead(ending.code, ending.message)
    return ending


def _kind(exc: BaseException) -> Retry | Fail:
    code = getattr(exc, "code", None)
    if isinstance(exc, (Unavailable, TransientJobError)):
        return Retry(code or "transient", str(exc))
    if isinstance(exc, NotFound):
        return Fail(code or "object_missing", str(exc))
    if isinstance(exc, (PermanentJobError, DomainError)):
        return Fail(code or "job_failed", str(exc))
    if code:  # codec, pipeline and protocol errors all carry a code and are about the payload
        return Fail(str(code), str(exc))
    import psycopg
    import redis

    # Neither kind is about the payload: what is stored (and shown to the tenant) is a fixed
    # message; the exception's class is in the worker's `job_error` log line, with the job id.
    if isinstance(
        exc, (psycopg.OperationalError, redis.RedisError, ConnectionError, TimeoutError, OSError)
    ):
        return Retry(
            "transient_" + exc.__class__.__name__.lower(), "a dependency was unreachable; retried"
        )
    return Fail("internal_error", "the job failed on an internal error")
