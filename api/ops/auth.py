"""The operator token: ``Authorization: Bearer`` for scripts, an HttpOnly session cookie for browsers.

A session is a random id (32 bytes) the login form hands out; Redis keeps the SHA-256
of the id, with the session's expiry, and a fingerprint of the token it was opened
with, so nothing in the cookie can be derived from the token, a session ends
server-side when it expires or signs out, and rotating ``TACIT_OPS_TOKEN`` signs every
browser out. A state-changing request made with the cookie must also carry
``X-Tacit-Ops: 1``: browsers only send custom headers from same-origin scripts, so
another site cannot make an operator's browser requeue jobs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Literal

import redis
from fastapi import Depends, Request

from core.errors import Forbidden, Unauthorized, Unavailable

COOKIE = "tacit_ops"
CSRF_HEADER = "x-tacit-ops"
SESSION_PREFIX = "tacit:ops:session:"
Via = Literal["bearer", "cookie"]


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def _fingerprint(token: str) -> bytes:
    return hashlib.sha256(b"tacit-ops-token-v2\n" + token.encode()).digest()


def _key(session_id: str) -> str:
    return SESSION_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def open_session(client: redis.Redis, token: str, ttl_s: int) -> str:
    """A new session id (the cookie's value), valid ``ttl_s`` seconds."""
    session_id = secrets.token_urlsafe(32)
    try:
        client.set(_key(session_id), _fingerprint(token), ex=ttl_s)
    except redis.RedisError as e:
        raise Unavailable("session store unavailable", code="broker_unavailable") from e
    return session_id


def close_session(client: redis.Redis, session_id: str | None) -> None:
    if session_id:
        try:
            client.delete(_key(session_id))
        except redis.RedisError:
            pass  # it expires on its own


def _session_valid(client: redis.Redis, session_id: str, token: str) -> bool:
    try:
        stored = client.get(_key(session_id))
    except redis.RedisError:
        return False
    return isinstance(stored, bytes) and hmac.compare_digest(stored, _fingerprint(token))


def authenticated(request: Request) -> Via | None:
    """How the request proves it is the operator's, or None."""
    token: str = request.app.state.settings.ops_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given and token_matches(given.strip(), token):
        return "bearer"
    cookie = request.cookies.get(COOKIE)
    if cookie and len(cookie) <= 128 and _session_valid(request.app.state.redis, cookie, token):
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
