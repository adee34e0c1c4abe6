"""Uploads from devices: signed, encrypted envelopes (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.schemas import Accepted
from api.upload import read_upload
from core.batches.ingest import ingest
from core.batches.service import AcceptedBatch
from core.keys.service import check_usable
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
            (413, "body too large"),
            (415, "unsupported media type or encoding"),
            (422, "bad envelope field or server key"),
            (429, "rate limited"),
            (503, "backlog full"),
        )
    },
)
async def upload_batch(request: Request, response: Response) -> Accepted:
    """Accept one sensor batch; the same (device, batch id) again returns the same job."""
    state = request.app.state
    upload = await read_upload(request, state.settings)

    def accept() -> AcceptedBatch:
        # one hop to a worker thread for all the blocking steps of an upload
        state.rate_limit.check(tenant_id=upload.device.tenant_id, device_id=upload.device.id)
        return ingest(
            state.pool,
            state.store,
            state.publisher,
            state.settings,
            device=upload.device,
            batch=upload.batch,
            check_backlog=state.backlog,
            check_batch=lambda conn: check_usable(conn, upload.envelope.header.key_id),
        )

    accepted = await run_in_threadpool(accept)
    response.headers["Location"] = f"/v1/jobs/{accepted.job_id}"
    return Accepted(
        job_id=accepted.job_id,
        status_url=f"/v1/jobs/{accepted.job_id}",
        duplicate=not accepted.created,
    )
