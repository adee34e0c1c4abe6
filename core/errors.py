"""Domain errors: a machine-readable code and a message, no HTTP status.

``api/errors.py`` maps codes to responses; ``workers/errors.py`` maps them to
retry, fail or dead.
"""

from __future__ import annotations


class DomainError(Exception):
    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class NotFound(DomainError):
    code = "not_found"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class InvalidInput(DomainError):
    code = "invalid_input"


class Conflict(DomainError):
    code = "conflict"


class RetryAfter(DomainError):
    """A refusal that says when to try again: ``retry_after`` seconds (the Retry-After header)."""

    default_retry_after = 1

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = self.default_retry_after if retry_after is None else retry_after


class Unavailable(RetryAfter):
    """A dependency (database, broker, object store) is down: the caller may retry."""

    code = "unavailable"
    default_retry_after = 5


class RateLimited(RetryAfter):
    code = "rate_limited"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class UnsupportedMedia(DomainError):
    code = "unsupported_media_type"


class PermanentJobError(DomainError):
    """Scoring this job can never succeed (bad payload, unknown key): fail at once."""

    code = "job_failed"


class TransientJobError(DomainError):
    """Scoring may succeed later (object store, database, broker): retry with backoff."""

    code = "transient"
