"""Uploads from devices."""

from __future__ import annotations


from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.schemas import Accepted
from api.upload import read_upload
from core.batches.ingest import ingest

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.post("", status_code=202, response_model=Accepted)
async def upload_batch(request: Request, response: Response) -> Accepted:
    """Accept one sensor batch; the same (device, batch id) again returns the same job."""
    state = request.app.state
    upload = await read_upload(request, state.settings)
    accepted = await run_in_threadpool(
        ingest, state.pool, state.store, state.publisher, state.settings,
        device_id=upload.device_id, batch=upload.batch, check_backlog=state.backlog,
        authenticate=upload.authenticate,
    )
    response.headers["Location"] = f"/v1/jobs/{accepted.job_id}"
    return Accepted(job_id=accepted.job_id, status_url=f"/v1/jobs/{accepted.job_id}", duplicate=not accepted.created)


