"""Reading a device upload off the HTTP request (docs/protocol.md section 7): the checks that
need the event loop, before `core.batches.uploads` checks the signature and the envelope.

content type, encoding name and size -> the body under its cap, as the device signed it.
"""

from __future__ import annotations

from fastapi import Request

from core.batches.uploads import SignedRequest
from core.errors import InvalidInput
from core.protocol import body as wire
from core.protocol.errors import ProtocolError
from core.settings import LimitSettings


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


def _check_encoding_name(value: str | None) -> None:
    if (value or "identity").strip().lower() not in wire.CONTENT_ENCODINGS:
        raise ProtocolError("unsupported_content_encoding", f"Content-Encoding {value!r}")


async def receive_upload(request: Request, limits: LimitSettings) -> SignedRequest:
    """Media type, encoding name and the body under its cap: the checks that need the event loop."""
    wire.check_content_type(request.headers.get("content-type"))
    _check_encoding_name(request.headers.get("content-encoding"))
    body = await read_body(request, limits.max_body_bytes)
    return SignedRequest(request.method, request_target(request), request.headers, body)
