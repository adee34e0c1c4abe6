"""Uploads from devices: signed, encrypted envelopes (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.schemas import Accepted
from api.upload import check_upload, receive_upload
from core.batches.ingest import ingest
from core.errors import DomainError
from core.protocol.envelope import CONTENT_TYPE

router = APIRouter(prefix="/v1/batches", tags=["batches"])

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Envelope v1 (docs/protocol.md section 5), optionally gzip or zstd as a whole.",
        "content": {CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    },
    "parameters": [
        {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
        for h in ("Tacit-Device", "Tacit-Timestamp", "Tacit-Nonce", "Tacit-Signature")
    ],
}


@router.post(
    "",
    status_code=202,
    response_model=Accepted,
    openapi_extra=_BODY,
    responses={
        s: {"description": d}
        for s, d in (
            (400, "malformed envelope or encoding"),
            (401, "signature missing, invalid, stale or replayed"),
            (403, "device revoked or envelope of another device"),
            (404, "unknown device"),
            (409, "enrol batch outside an open enrolment window (enrolment_closed)"),
            (413, "body too large"),
            (415, "unsupported media type or encoding"),
            (422, "bad envelope field or server key"),
            (429, "rate limited"),
            (503, "backlog full"),
        )
    },
)
async def upload_batch(request: Request) -> Response:
    """Accept one sensor batch; the same (device, batch id) again returns the same job."""
    state = request.app.state
    limits = state.settings.limits
    signed = await receive_upload(request, limits)
    upload = await check_upload(signed, state.db, state.signing_keys, state.upload_gate, limits)
    try:
        accepted = await ingest(
            state.db,
            state.store,
            state.publisher,
            state.settings,
            device=upload.device,
            batch=upload.batch,
            check_backlog=state.backlog,
        )
    except DomainError as e:
        if e.code in ("device_revoked", "device_not_found"):
            # revoked (or erased) since this process cached its key: neither the device nor
            # its tenant is charged, and the next upload is refused before the signature check
            device = upload.device
            await state.upload_gate.refund(
                tenant_id=device.tenant_id, device_id=device.id, window=upload.window
            )
            state.signing_keys.refuse(device.id, e)
        raise
    status_url = f"/v1/jobs/{accepted.job_id}"
    # Built by hand: this is the hottest response, and its shape is `Accepted`.
    body = {
        "job_id": str(accepted.job_id),
        "status_url": status_url,
        "duplicate": not accepted.created,
    }
    return JSONResponse(body, status_code=202, headers={"Location": status_url})
