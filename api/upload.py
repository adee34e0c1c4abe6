"""Reading a device upload (docs/protocol.md section 7), cheapest and unauthenticated checks first.

content type, encoding name and size -> signature headers and freshness -> the device
and its key -> the Ed25519 signature -> the nonce and the rate limits (only authentic
requests use nonces and rate up) -> Content-Encoding under a cap -> the envelope -> it
names the signing device -> (ingest then checks that its key id is published and not
retired, in the same statement as the idempotency lookup). The API never decrypts: what is stored is
the envelope as received, after Content-Encoding.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from psycopg_pool import AsyncConnectionPool

from core.batches.service import NewBatch
from core.devices.service import Device, SigningKeys
from core.errors import InvalidInput
from core.protocol import body as wire
from core.protocol import envelope as env
from core.protocol import signing
from core.protocol.errors import ProtocolError
from core.ratelimit import UploadGate
from core.settings import LimitSettings

# The latest capture time a datetime (and so the batches table) can hold: 9999-12-31.
MAX_CAPTURE_MS = 253_402_300_799_999


@dataclass(frozen=True)
class Upload:
    device: Device
    envelope: env.Envelope
    batch: NewBatch
    window: int  # the rate window it was admitted in (refunded if the device turns out revoked)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput("bad Content-Length", code="invalid_content_length")
        wire.check_body_size(int(declared), max_body=limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        wire.check_body_size(size, max_body=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def request_target(request: Request) -> str:
    """Path and query exactly as sent, as the device signed them."""
    path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    target = path.decode("latin-1")
    return target + "?" + query.decode("latin-1") if query else target


def _captured(ms: int) -> datetime:
    if ms > MAX_CAPTURE_MS:
        raise ProtocolError("envelope_bad_capture_window", "capture time is out of range")
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _check_encoding_name(value: str | None) -> None:
    if (value or "identity").strip().lower() not in wire.CONTENT_ENCODINGS:
        raise ProtocolError("unsupported_content_encoding", f"Content-Encoding {value!r}")


@dataclass(frozen=True)
class SignedRequest:
    """What the signature covers, read off the request in the event loop."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes


async def receive_upload(request: Request, limits: LimitSettings) -> SignedRequest:
    """Media type, encoding name and the body under its cap: the checks that need the event loop."""
    wire.check_content_type(request.headers.get("content-type"))
    _check_encoding_name(request.headers.get("content-encoding"))
    body = await read_body(request, limits.max_body_bytes)
    return SignedRequest(request.method, request_target(request), request.headers, body)


async def check_upload(
    request: SignedRequest,
    db: AsyncConnectionPool,
    keys: SigningKeys,
    gate: UploadGate,
    limits: LimitSettings,
) -> Upload:
    """Every check of a signed upload short of storing it (ingest reads the device's status fresh)."""
    headers = signing.parse_signature_headers(request.headers)
    signing.check_freshness(headers.timestamp)
    device = await keys.device(db, headers.device_id)
    assert device.public_key is not None  # SigningKeys refuses keyless devices
    signing.verify(
        device.public_key,
        method=request.method,
        target=request.target,
        body=request.body,
        headers=headers,
    )
    window = await gate.admit(
        tenant_id=device.tenant_id, device_id=device.id, nonce=headers.nonce_bytes
    )

    encoding = request.headers.get("content-encoding")
    decode = functools.partial(
        wire.decode_body, request.body, encoding, max_decoded=limits.max_decoded_bytes
    )
    # inflating can take milliseconds: not on the event loop
    decoded = (
        decode()
        if (encoding or "identity").strip().lower() == "identity"
        else await asyncio.to_thread(decode)
    )
    envelope = env.parse_envelope(decoded, max_ciphertext=limits.max_decoded_bytes)
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
    return Upload(device=device, envelope=envelope, batch=batch, window=window)
