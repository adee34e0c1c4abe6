"""Uploads from devices: signed, encrypted envelopes (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.deps import UploadsDep
from api.schemas import Accepted
from api.upload import receive_upload
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
async def upload_batch(request: Request, uploads: UploadsDep) -> Response:
    """Accept one sensor batch; the same (device, batch id) again returns the same job."""
    accepted = await uploads.accept(await receive_upload(request, uploads.limits))
    status_url = f"/v1/jobs/{accepted.job_id}"
    # Built by hand: this is the hottest response, and its shape is `Accepted`.
    body = {
        "job_id": str(accepted.job_id),
        "status_url": status_url,
        "duplicate": not accepted.created,
    }
    return JSONResponse(body, status_code=202, headers={"Location": status_url})
