"""Where a webhook may be sent: public addresses over https, or what an operator allowlisted.

Checked at registration and again before every attempt (DNS can change), and the
attempt connects to the address that was checked, so a second lookup cannot swap it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

# Cloud metadata services, refused even where they would look public.
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "192.0.0.192",
        "fd00:ec2::254",
    )
)
MAX_URL = 2000


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    allowlisted: bool


def parse_allowlist(entries: Sequence[str]) -> list[IPNetwork]:
    return [ipaddress.ip_network(e, strict=False) for e in entries]


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (all must be acceptable, not just the first)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _refuse(message: str, code: str = "webhook_url_refused") -> InvalidInput:
    return InvalidInput(message, code=code)


def _address(raw: str) -> IPAddress:
    ip = ipaddress.ip_address(raw.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return ip


def check_url(url: str, *, allowlist: Sequence[str] = (), resolver: Resolver = resolve) -> Target:
    """The URL's target if it may be called, else InvalidInput with code webhook_url_refused."""
    if len(url) > MAX_URL:
        raise _refuse("url too long")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("url is not valid") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse("url must be http(s)://host/...")
    if parts.username or parts.password:
        raise _refuse("url must not carry credentials")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError):
        raise _refuse(f"host {host!r} does not resolve", code="webhook_url_unresolvable") from None
    if not addresses:
        raise _refuse(f"host {host!r} does not resolve", code="webhook_url_unresolvable")
    nets = parse_allowlist(allowlist)
    allowed_all = True
    for raw in addresses:
        ip = _address(raw)
        if any(ip in net for net in nets):
            continue
        allowed_all = False
        if ip in METADATA or not ip.is_global or ip.is_multicast:
            raise _refuse(f"{host} resolves to a private, loopback, link-local or metadata address")
    if parts.scheme != "https" and not allowed_all:
        raise _refuse("https is required")
    return Target(url, parts.scheme, host, port, tuple(addresses), allowed_all)
