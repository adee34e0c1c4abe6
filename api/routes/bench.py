"""`POST /v1/bench/noop`: what the server does for an upload-sized POST and nothing more.

Mounted only with ``TACIT_BENCH__NOOP_ENDPOINT=1`` (`tacit bench ingest` turns it on in
the stack it starts). It reads the body as the upload route does and answers 202 with a
small JSON body, so uploads/s over its requests/s is what the upload's own work costs.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

router = APIRouter(prefix="/v1/bench", include_in_schema=False)

NOOP_PATH = "/v1/bench/noop"


@router.post("/noop")
async def noop(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"noop": True, "bytes": len(body)}, status_code=202)
