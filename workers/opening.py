"""Opening a stored envelope in a worker: parse, match it to its job, decrypt with the server key.

The worker runtime builds one ``KeyFile`` from ``settings.crypto.private_keys_file`` when
it starts and hands it to ``open_blob``. The private keyring is read from the file on
first use and read again only when the file changes (``tacit keys rotate`` / ``retire``),
so a running worker opens batches sealed to a key added after it started, and forgets a
retired one. Every defect of the stored batch is a ``ProtocolError`` with a code, which
``workers.errors.classify`` fails at once (no retry); the blob stays for audit.
"""

from __future__ import annotations

import threading
from pathlib import Path

from core.errors import TransientJobError
from core.jobs.repository import ClaimedJob
from core.protocol import hpke
from core.protocol.envelope import Envelope, parse_envelope
from core.protocol.errors import ProtocolError
from core.protocol.keyring import PrivateKeyring


class KeyFile:
    """The worker's private key file: loaded on first use, reloaded when its stat changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._ring: PrivateKeyring | None = None

    def keyring(self) -> PrivateKeyring:
        """The private keyring as of the key file's last change."""
        path = self.path
        if path is None:
            # An operator error, not the batch's fault: retry (and end dead) rather than fail.
            raise TransientJobError(
                "this worker has no key file (TACIT_CRYPTO__PRIVATE_KEYS_FILE)",
                code="keyring_missing",
            )
        try:
            st = path.stat()
        except OSError as e:
            raise TransientJobError(
                f"key file unreadable: {e.strerror}", code="keyring_unreadable"
            ) from None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            if self._ring is None or stamp != self._stamp:
                try:
                    ring = PrivateKeyring.load(path)
                except ProtocolError as e:
                    raise TransientJobError(e.message, code=e.code) from None
                self._stamp, self._ring = stamp, ring
            return self._ring


def check_matches_job(envelope: Envelope, job: ClaimedJob) -> None:
    """The stored envelope must be the batch the API accepted for this job."""
    h = envelope.header
    if (
        h.device_id != str(job.device_id)
        or h.batch_id != job.client_batch_id
        or str(h.factor) != job.factor
        or str(h.purpose) != job.purpose
        or (job.key_id is not None and h.key_id != job.key_id)
    ):
        raise ProtocolError("envelope_job_mismatch", "stored envelope does not match its job")


def open_blob(job: ClaimedJob, blob: bytes, keys: KeyFile) -> bytes:
    """The plaintext frame of a job's stored envelope (bound to the device's tenant)."""
    envelope = parse_envelope(blob)
    check_matches_job(envelope, job)
    private_key = keys.keyring().private_key(envelope.key_id)
    return hpke.open_envelope(private_key, str(job.tenant_id), envelope)
