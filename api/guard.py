"""What every request passes before any route sees it: text, size and time limits.

One pure ASGI middleware, so a refusal costs no routing, no dependency and no thread:

- the path and query hold no NUL byte (Postgres text cannot hold one): 422 ``invalid_text``;
- ``/ops`` and ``/metrics`` answer only on the internal port, when one is configured;
- the body is read here, under the route's cap (the upload cap for ``POST /v1/batches``,
  a tiny one for ``/ops/login``, a small one for every JSON route), refused from
  ``Content-Length`` before a byte is read and by counting streamed bytes otherwise:
  413 ``body_too_large``; the whole body must arrive within ``body_timeout_s``: 408
  ``body_timeout``;
- a JSON body nests no deeper than ``max_json_depth`` (422 ``invalid_request``) and none of
  its strings or keys holds a NUL or a lone surrogate (422 ``invalid_text``).

The route then reads the same bytes from memory.
"""

from __future__ import annotations

import asyncio
import json
import re
from urllib.parse import unquote_to_bytes

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.proxy import client_address
from core.ratelimit import AddressLimits
from core.settings import Settings

UPLOAD_PATH = "/v1/batches"
LOGIN_PATH = "/ops/login"
INTERNAL_PREFIXES = ("/ops", "/metrics")
# What Postgres text (and UTF-8) cannot carry.
BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


# Routes anyone may call, limited per client address (settings.http, settings.ops).
ADDRESS_LIMITED = {
    ("POST", "/v1/devices/redeem"): "redeem",
    ("GET", "/v1/keys"): "keys",
    ("GET", "/readyz"): "readyz",
    ("POST", LOGIN_PATH): "ops_login",
}


class Refused(Exception):
    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after


def body_cap(settings: Settings, method: str, path: str) -> int:
    """The most bytes this route reads."""
    if method == "POST" and path == UPLOAD_PATH:
        return settings.limits.max_body_bytes
    if path == LOGIN_PATH:
        return settings.http.login_body_bytes
    return settings.http.json_body_bytes


def check_url_text(scope: Scope) -> None:
    path: str = scope.get("path", "")
    query: bytes = scope.get("query_string", b"")
    if "\x00" in path or b"\x00" in unquote_to_bytes(query):
        raise Refused(422, "invalid_text", "the path or query holds a NUL byte")


def check_json(body: bytes, max_depth: int) -> None:
    """Depth and text of a JSON body; a body that is not JSON is left to the route to refuse."""
    try:
        doc = json.loads(body)
    except RecursionError:
        raise Refused(422, "invalid_request", f"JSON nested deeper than {max_depth}") from None
    except ValueError:  # UnicodeDecodeError included
        return
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if BAD_TEXT.search(value):
                raise Refused(
                    422, "invalid_text", "a JSON string holds a NUL byte or a lone surrogate"
                )
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > max_depth:
            raise Refused(422, "invalid_request", f"JSON nested deeper than {max_depth}")
        if isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        else:
            stack.extend((v, depth + 1) for v in value)


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            if not value.isdigit():
                raise Refused(400, "invalid_content_length", "bad Content-Length")
            return int(value)
    return None


class RequestGuard:
    """Pure ASGI middleware applying the limits above (docs/operations.md, "Hostile clients")."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self.check_listener(scope)
            check_url_text(scope)
            await self.check_address_rate(scope)
            cap = body_cap(self.settings, scope["method"], scope["path"])
            declared = declared_length(scope)
            if declared is not None and declared > cap:
                raise Refused(413, "body_too_large", f"body of {declared} bytes exceeds {cap}")
            messages = await self.read_body(receive, cap)
            if messages is None:
                return  # the client went away
            body = b"".join(m.get("body", b"") for m in messages)
            if body and scope["path"] not in (UPLOAD_PATH, LOGIN_PATH):
                check_json(body, self.settings.http.max_json_depth)
        except Refused as r:
            response = JSONResponse(error_body(r.code, r.message), status_code=r.status)
            # the rest of the body is not read: the connection cannot be reused
            response.headers["Connection"] = "close"
            if r.retry_after is not None:
                response.headers["Retry-After"] = str(r.retry_after)
            await response(scope, receive, send)
            return
        await self.app(
            scope,
            replay([{"type": "http.request", "body": body, "more_body": False}], receive),
            send,
        )

    def check_listener(self, scope: Scope) -> None:
        internal = self.settings.ops.internal_port
        if internal is None:
            return
        server = scope.get("server") or (None, None)
        on_internal = server[1] == internal
        path: str = scope.get("path", "")
        for_operators = any(path == p or path.startswith(p + "/") for p in INTERNAL_PREFIXES)
        if for_operators != on_internal and not (on_internal and path in ("/healthz", "/readyz")):
            raise Refused(404, "not_found", "Not Found")

    async def check_address_rate(self, scope: Scope) -> None:
        route = ADDRESS_LIMITED.get((scope["method"], scope["path"]))
        limits: AddressLimits | None = getattr(scope["app"].state, "address_limits", None)
        if route is None or limits is None:
            return
        address = client_address(HTTPConnection(scope), self.settings)
        wait = await limits.admit(route, address)
        if wait:
            raise Refused(
                429, "rate_limited", "too many requests from this address", retry_after=wait
            )

    async def read_body(self, receive: Receive, cap: int) -> list[Message] | None:
        """The body's messages, at most ``cap`` bytes, all within the body deadline."""
        messages: list[Message] = []
        size = 0
        try:
            async with asyncio.timeout(self.settings.http.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    size += len(message.get("body", b""))
                    if size > cap:
                        raise Refused(413, "body_too_large", f"body exceeds {cap} bytes")
                    messages.append(message)
                    if not message.get("more_body", False):
                        return messages
        except TimeoutError:
            raise Refused(
                408,
                "body_timeout",
                f"the body did not arrive within {self.settings.http.body_timeout_s:g} s",
            ) from None


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out the buffered body first, then waits on the real one (disconnects)."""
    pending = list(messages)

    async def _receive() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return _receive
