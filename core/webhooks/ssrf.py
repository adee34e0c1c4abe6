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
        "169.254.169.253",  # AWS DNS
        "169.254.169.123",  # AWS time
        "fd00:ec2::254",
        "fd00:ec2::253",
        "fd00:ec2::123",
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


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use: any layout
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries (NAT64, 6to4, Teredo, ::a.b.c.d), which
    a gateway on the path may turn it into: each must pass the same test."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    out: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        out.append(low32)
    if ip in NAT64_LOCAL:
        # the prefix length inside /48 is the operator's choice: read both RFC 6052 layouts
        v = int(ip)
        out += [low32, ipaddress.IPv4Address(((v >> 64) & 0xFFFF) << 16 | ((v >> 40) & 0xFFFF))]
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out += list(ip.teredo)  # (server, client), the client already de-obfuscated
    return out


def _is_metadata(ip: IPAddress) -> bool:
    return ip in METADATA or any(v4 in METADATA for v4 in embedded_ipv4(ip))


def _is_public(ip: IPAddress) -> bool:
    def plain(a: IPAddress) -> bool:
        site_local = isinstance(a, ipaddress.IPv6Address) and a.is_site_local  # fec0::/10
        return a.is_global and not a.is_multicast and not site_local and a not in METADATA

    return plain(ip) and all(plain(v4) for v4 in embedded_ipv4(ip))


def check_url(
    url: str,
    *,
    allowlist: Sequence[str] = (),
    ports: Sequence[int] = (),
    resolver: Resolver = resolve,
) -> Target:
    """The URL's target if it may be called, else InvalidInput with code webhook_url_refused.

    Public targets are reached on 443 (or a port in `ports`); targets inside the operator's
    `allowlist` on any port and over http too. Metadata addresses are refused even there.
    """
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
        if _is_metadata(ip):
            raise _refuse(f"{host} resolves to a cloud metadata address")
        if any(ip in net for net in nets):
            continue
        allowed_all = False
        if not _is_public(ip):
            raise _refuse(f"{host} resolves to a private, loopback, link-local or metadata address")
    if not allowed_all and port not in (80, 443, *ports):
        raise _refuse(f"port {port} is not allowed (443, or one the operator allowlists)")
    if parts.scheme != "https" and not allowed_all:
        raise _refuse("https is required")
    return Target(url, parts.scheme, host, port, tuple(addresses), allowed_all)
