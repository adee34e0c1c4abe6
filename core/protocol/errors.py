"""Domain errors of the device protocol.

Every defect in what a phone sends ends as a `ProtocolError` with a stable,
machine-readable `code`. No HTTP status lives here: the API maps codes to
responses in one place (suggested table in docs/protocol.md), and workers map
them to fail/retry.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """A protocol rule was broken; `code` is machine-readable, `message` is for humans."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# Suggested HTTP status per code, for the API's single error mapping. Kept here as data
# (not behaviour) so the table in docs/protocol.md and a test can stay in step with it.
SUGGESTED_HTTP_STATUS: dict[str, int] = {
    # envelope structure
    "envelope_truncated": 400,
    "envelope_bad_magic": 400,
    "envelope_bad_length": 400,
    "envelope_trailing_bytes": 400,
    "envelope_unsupported_version": 415,
    "envelope_too_large": 413,
    # envelope field values
    "envelope_bad_batch_id": 422,
    "envelope_unknown_factor": 422,
    "envelope_bad_purpose": 422,
    "envelope_bad_capture_window": 422,
    "envelope_bad_device_id": 422,
    "envelope_bad_key_id": 422,
    "envelope_bad_enc": 422,
    "envelope_device_mismatch": 403,
    # request body
    "body_too_large": 413,
    "body_bad_encoding": 400,
    "unsupported_media_type": 415,
    "unsupported_content_encoding": 415,
    # request signature
    "signature_missing_header": 401,
    "signature_bad_header": 401,
    "signature_invalid": 401,
    "signature_stale": 401,
    "signature_future": 401,
    "signature_replayed": 401,
    # enrolment
    "redemption_bad_request": 422,
    "redemption_proof_invalid": 401,
    # keys (decrypt_failed happens in workers only: a failed job, not a response)
    "unknown_key": 422,
    "retired_key": 422,
    "bad_public_key": 422,
}
