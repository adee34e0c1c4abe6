"""The operator token: ``Authorization: Bearer`` for scripts, an HttpOnly cookie for browsers.

The cookie holds an HMAC of the token, not the token, and changes when the token does,
so rotating ``TACIT_OPS_TOKEN`` signs every browser out. A state-changing request made
with the cookie must also carry ``X-Tacit-Ops: 1``: browsers only send custom headers
from same-origin scripts, so another site cannot make an operator's browser requeue jobs.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Literal

from fastapi import Depends, Request

from core.errors import Forbidden, Unauthorized

COOKIE = "tacit_ops"
CSRF_HEADER = "x-tacit-ops"
Via = Literal["bearer", "cookie"]


def session_value(token: str) -> str:
    """The cookie value that proves the browser once presented ``token``."""
    return hmac.new(token.encode(), b"tacit-ops-session-v1", hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def authenticated(request: Request) -> Via | None:
    """How the request proves it is the operator's, or None."""
    token: str = request.app.state.settings.ops_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given and token_matches(given.strip(), token):
        return "bearer"
    cookie = request.cookies.get(COOKIE)
    if cookie and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
        return "cookie"
    return None


def require_operator(request: Request) -> Via:
    """Dependency of every /ops/api route: 401 unless the operator token was shown."""
    via = authenticated(request)
    if via is None:
        raise Unauthorized("operator token required", code="ops_unauthorized")
    if (
        via == "cookie"
        and request.method not in ("GET", "HEAD")
        and request.headers.get(CSRF_HEADER) != "1"
    ):
        raise Forbidden("missing X-Tacit-Ops header", code="ops_csrf")
    return via


OperatorDep = Annotated[Via, Depends(require_operator)]
