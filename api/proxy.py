"""Who is calling, and over what, when the API sits behind a reverse proxy.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from the networks in
``TACIT_HTTP__TRUSTED_PROXIES``; from anyone else they are ignored, so a client cannot
pick its own address for the per-address limits or pretend to be on TLS.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import HTTPConnection

from core.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _trusted(address: str | None, settings: Settings) -> bool:
    if not address or not settings.http.trusted_proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.http.trusted_proxies)))


def client_address(conn: HTTPConnection, settings: Settings) -> str:
    """The caller's address: the peer, or the nearest untrusted hop of X-Forwarded-For."""
    peer = conn.client.host if conn.client else ""
    if not _trusted(peer, settings):
        return peer
    hops = [h.strip() for h in conn.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, settings):
            return hop
    return hops[0] if hops else peer


def scheme(conn: HTTPConnection, settings: Settings) -> str:
    """``https`` when the connection, or a trusted proxy in front of it, used TLS."""
    if _trusted(conn.client.host if conn.client else None, settings):
        forwarded = conn.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return conn.url.scheme
