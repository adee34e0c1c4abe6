"""Turning a stored blob back into the plaintext frame. Interim: blobs are stored as plaintext."""

from __future__ import annotations

from core.jobs.repository import ClaimedJob


def open_blob(job: ClaimedJob, blob: bytes) -> bytes:
    return blob
