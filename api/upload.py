"""Reading an upload request: size limits, then the device's identity and the batch.

Interim wire format (replaced by the signed, encrypted envelope v1): headers
`Tacit-Device`, `Tacit-Batch-Id`, `Tacit-Factor`, `Tacit-Purpose`, tenant bearer key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from core.batches.service import NewBatch
from core.devices.service import Device
from core.errors import Forbidden, InvalidInput, PayloadTooLarge, Unauthorized
from core.settings import Settings


@dataclass(frozen=True)
class Upload:
    device_id: uuid.UUID
    batch: NewBatch
    authenticate: Callable[[Device], None]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"body is larger than {limit} bytes", code="body_too_large")
        except ValueError:
            raise InvalidInput("bad Content-Length", code="invalid_content_length") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes", code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _uuid_header(request: Request, name: str) -> uuid.UUID:
    value = request.headers.get(name)
    if not value:
        raise InvalidInput(f"header {name} is required", code="missing_header")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"header {name} is not a UUID", code="invalid_uuid") from None


async def read_upload(request: Request, settings: Settings) -> Upload:
    body = await read_body(request, settings.limits.max_body_bytes)
    device_id = _uuid_header(request, "tacit-device")
    batch = NewBatch(
        client_batch_id=_uuid_header(request, "tacit-batch-id"),
        factor=request.headers.get("tacit-factor", ""),
        purpose=request.headers.get("tacit-purpose", ""),
        body=body,
    )
    token = request.headers.get("authorization", "").partition(" ")[2].strip()

    def authenticate(device: Device) -> None:
        from core.db import transaction
        from core.tenants.service import authenticate as auth_key

        if not token:
            raise Unauthorized("missing bearer API key", code="api_key_missing")
        with transaction(request.app.state.pool) as conn:
            tenant = auth_key(conn, token)
        if tenant.id != device.tenant_id:
            raise Forbidden("device belongs to another tenant", code="device_not_found")

    return Upload(device_id=device_id, batch=batch, authenticate=authenticate)
