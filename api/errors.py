"""The one place where domain errors become HTTP responses: {"error": {"code", "message"}}."""

from __future__ import annotations

import email.utils
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import errors as e
from core.protocol.errors import SUGGESTED_HTTP_STATUS, ProtocolError

log = logging.getLogger("tacit.api")
# Refusals about the request's clock carry the server's time, so a phone can correct its own.
CLOCK_CODES = frozenset({"signature_stale", "signature_future"})

STATUS_BY_CLASS: list[tuple[type[e.DomainError], int]] = [
    (e.NotFound, 404),
    (e.Unauthorized, 401),
    (e.Forbidden, 403),
    (e.InvalidInput, 422),
    (e.Conflict, 409),
    (e.PayloadTooLarge, 413),
    (e.UnsupportedMedia, 415),
    (e.RateLimited, 429),
    (e.Unavailable, 503),
]

# Codes raised by the device-protocol modules, which carry no class hierarchy of ours.
STATUS_BY_CODE: dict[str, int] = dict(SUGGESTED_HTTP_STATUS)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def status_for(exc: Exception, code: str) -> int:
    if code in STATUS_BY_CODE:
        return STATUS_BY_CODE[code]
    for cls, status in STATUS_BY_CLASS:
        if isinstance(exc, cls):
            return status
    return 400


def respond(exc: Exception, code: str, message: str) -> JSONResponse:
    status = status_for(exc, code)
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(e.DomainError)
    async def _domain(_: Request, exc: e.DomainError) -> JSONResponse:
        return respond(exc, exc.code, exc.message)

    @app.exception_handler(ProtocolError)
    async def _protocol(_: Request, exc: ProtocolError) -> JSONResponse:
        response = respond(exc, exc.code, exc.message)
        if exc.code in CLOCK_CODES:
            response.headers["Date"] = email.utils.formatdate(usegmt=True)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            error_body("invalid_request", f"{where}: {first.get('msg', 'invalid')}"),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The class name only: messages of library errors can quote request data.
        log.error("unhandled %s on %s %s", exc.__class__.__name__, request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal error"), status_code=500)
