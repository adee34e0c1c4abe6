"""The upload use case (docs/protocol.md section 7), in the order that makes 202 a promise.

Checking a signed request, cheapest and unauthenticated checks first: signature headers
and freshness -> the device and its key -> the Ed25519 signature -> the nonce and the
rate limits (only authentic requests use nonces and rate up) -> Content-Encoding under a
cap -> the envelope (its factor and purpose are an installed factor's and enrol or
verify; nothing checks them again) -> it names the signing device. The API has already
checked the media type, the encoding's name and the body's size (`api/upload.py`). The
API never decrypts: what is stored is the envelope as received, after Content-Encoding.

Then ingesting it: 1. the device is authenticated (above), 2. the factor's backlog is
within bounds (a retry of an accepted batch gets its job even when it is not), and an
enrol batch arrives inside an enrolment window the tenant opened (409 otherwise), 3. the
blob is durable, 4. one statement checks that the device is active and the server key
usable and commits batch + job + outbox rows together (this is what 202 promises), or
finds the job of an earlier upload of the batch, 5. the job is published after commit,
in the background (the relay publishes it if this step never happens).

A blob whose rows were certainly not inserted (the statement refused them, never reached
the database, or found an earlier upload) is removed at once. When the outcome is unknown
(the connection broke while the statement ran, the request was cancelled) it is left to
the relay's orphan sweep, which removes it once it is older than the upload timeout and
no batch row references it: the statement inserts nothing past half that timeout, so the
sweep never takes a blob whose rows may still commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from core.batches.service import (
    AcceptedBatch,
    NewBatch,
    accept_statement,
    lookup,
    record_batch,
    utcnow,
)
from core.db import async_connection
from core.devices.service import Device, SigningKeys
from core.enrolment.windows import enrolment_closed, find_open_window
from core.errors import DomainError, Unavailable
from core.protocol import body as wire
from core.protocol import envelope as env
from core.protocol import signing
from core.protocol.errors import ProtocolError
from core.publisher import JobPublisher
from core.ratelimit import UploadGate
from core.settings import Settings
from core.storage import ObjectStore, raw_batch_key

BacklogCheck = Callable[[str], Awaitable[None]]

# The latest capture time a datetime (and so the batches table) can hold: 9999-12-31.
MAX_CAPTURE_MS = 253_402_300_799_999


@dataclass(frozen=True)
class SignedRequest:
    """What the signature covers, read off the HTTP request by the API."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class _Upload:
    device: Device
    batch: NewBatch
    window: int  # the rate window it was admitted in (refunded if the device turns out revoked)


class Uploads:
    """Signed uploads in, accepted batches out; built once at start-up (see the module's order)."""

    def __init__(
        self,
        db: AsyncConnectionPool,
        store: ObjectStore,
        publisher: JobPublisher,
        settings: Settings,
        *,
        keys: SigningKeys,
        gate: UploadGate,
        check_backlog: BacklogCheck | None = None,
    ) -> None:
        self.db, self.store, self.publisher, self.settings = db, store, publisher, settings
        self.limits = settings.limits
        self.keys, self.gate, self.check_backlog = keys, gate, check_backlog

    async def accept(self, request: SignedRequest) -> AcceptedBatch:
        """Accept one signed upload; the same (device, batch id) again returns the same job."""
        upload = await self._authenticate(request)
        try:
            return await self.ingest(upload.device, upload.batch)
        except DomainError as e:
            if e.code in ("device_revoked", "device_not_found"):
                # revoked (or erased) since this process cached its key: neither the device nor
                # its tenant is charged, and the next upload is refused before the signature check
                device = upload.device
                await self.gate.refund(
                    tenant_id=device.tenant_id, device_id=device.id, window=upload.window
                )
                self.keys.refuse(device.id, e)
            raise

    async def _authenticate(self, request: SignedRequest) -> _Upload:
        """Every check of a signed upload short of storing it (ingest reads the device's status fresh)."""
        headers = signing.parse_signature_headers(request.headers)
        signing.check_freshness(headers.timestamp)
        device = await self.keys.device(self.db, headers.device_id)
        assert device.public_key is not None  # SigningKeys refuses keyless devices
        signing.verify(
            device.public_key,
            method=request.method,
            target=request.target,
            body=request.body,
            headers=headers,
        )
        window = await self.gate.admit(
            tenant_id=device.tenant_id, device_id=device.id, nonce=headers.nonce_bytes
        )
        decoded = await self._decoded(request)
        envelope = env.parse_envelope(decoded, max_ciphertext=self.limits.max_decoded_bytes)
        env.check_envelope_device(envelope, headers.device_id)
        h = envelope.header
        batch = NewBatch(
            client_batch_id=h.batch_id,
            factor=str(h.factor),
            purpose=str(h.purpose),
            body=decoded,
            key_id=h.key_id,
            captured_from=_captured(h.capture_start_ms),
            captured_to=_captured(h.capture_end_ms),
        )
        return _Upload(device=device, batch=batch, window=window)

    async def _decoded(self, request: SignedRequest) -> bytes:
        """The body after its Content-Encoding, under the decoded cap."""
        encoding = request.headers.get("content-encoding")
        decode = functools.partial(
            wire.decode_body, request.body, encoding, max_decoded=self.limits.max_decoded_bytes
        )
        if (encoding or "identity").strip().lower() == "identity":
            return decode()
        return await asyncio.to_thread(decode)  # inflating can take milliseconds: not on the loop

    async def ingest(self, device: Device, batch: NewBatch) -> AcceptedBatch:
        """Accept a batch from an authenticated `device` (steps 2-5 of the module's order).

        Postgres sees one statement, one round trip: it checks that the device is still active
        and the batch's server key usable, and inserts batch, job and outbox rows, or finds the
        job of an earlier upload of the same batch. The blob is written first, so a retry
        writes one that is then removed: retries are rare, round trips are not.
        """
        queue = self.settings.queues.score_queue(batch.factor)
        admitted = await self._admit(device, batch, queue)
        if isinstance(admitted, AcceptedBatch):
            return admitted  # a retry of an accepted batch
        batch = admitted
        received, batch_id = utcnow(), uuid.uuid4()
        key = raw_batch_key(device.tenant_id, device.id, received, batch_id)  # this attempt's own
        deadline = received + timedelta(seconds=self.settings.reliability.upload_timeout_s / 2)
        try:
            await self.store.put_async(key, batch.body)  # durable before the rows that point at it
        except BaseException:
            await _remove(self.store, key)  # a write interrupted may still have landed
            raise
        statement = accept_statement(
            device=device,
            batch=batch,
            object_key=key,
            queue=queue,
            received=received,
            batch_id=batch_id,
            deadline=deadline,
        )
        sent = False
        try:
            async with async_connection(self.db) as conn:
                sent = True
                accepted = await record_batch(conn, statement)
        except BaseException as e:
            # A refusal in the statement's answer, or an error before it was sent, inserted
            # nothing; a broken connection or a cancellation may have committed: the sweep decides.
            if not (sent and _outcome_unknown(e)):
                await _remove(self.store, key)
            raise
        if accepted.created:  # the outbox row is the durable enqueue; this is the fast one
            self.publisher.publish_soon(accepted.job_id, accepted.queue)
        else:
            await _remove(self.store, key)  # the earlier upload's blob is the one
        return accepted

    async def _admit(self, device: Device, batch: NewBatch, queue: str) -> NewBatch | AcceptedBatch:
        """Room in the queue and, for enrol, the open window; refused before anything is stored.

        Returns the batch (with its window) to store, or the job of an earlier upload of it:
        a retry of an accepted batch needs neither room in the queue nor an open window.
        """
        if self.check_backlog is not None:
            try:
                await self.check_backlog(queue)
            except Unavailable:
                existing = await self._earlier(device, batch)
                if existing is None:
                    raise
                return existing
        if batch.purpose != "enrol" or batch.enrolment_id is not None:
            return batch
        async with async_connection(self.db) as conn:
            window = await find_open_window(
                conn, user_id=device.user_id, device_id=device.id, factor=batch.factor
            )
        if window is not None:
            return dataclasses.replace(batch, enrolment_id=window)
        existing = await self._earlier(device, batch)
        if existing is None:
            raise enrolment_closed()
        return existing

    async def _earlier(self, device: Device, batch: NewBatch) -> AcceptedBatch | None:
        async with async_connection(self.db) as conn:
            found = await lookup(
                conn, device_id=device.id, client_batch_id=batch.client_batch_id, key_id=None
            )
        return found.existing


def _captured(ms: int) -> datetime:
    if ms > MAX_CAPTURE_MS:
        raise ProtocolError("envelope_bad_capture_window", "capture time is out of range")
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _outcome_unknown(e: BaseException) -> bool:
    """The statement was sent and may have committed: the connection broke, or we stopped waiting."""
    return (isinstance(e, Unavailable) and e.code == "database_unavailable") or not isinstance(
        e, Exception
    )


async def _remove(store: ObjectStore, key: str) -> None:
    """Delete `key` in a worker thread; a cancelled request stops waiting, not deleting."""
    await asyncio.shield(
        asyncio.get_running_loop().run_in_executor(None, _remove_quietly, store, key)
    )


def _remove_quietly(store: ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except (Unavailable, OSError):
        pass  # the orphan sweep finds blobs without a batch row
