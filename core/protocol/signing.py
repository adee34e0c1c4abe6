"""Device request signatures: Ed25519 over a canonical request string.

Headers (values are ASCII; byte strings are base64url without padding):

    Tacit-Device     device id
    Tacit-Timestamp  unix seconds, decimal
    Tacit-Nonce      16..64 random bytes
    Tacit-Signature  64-byte Ed25519 signature of `canonical_request(...)`

The canonical string (ASCII, lines joined by "\\n", no trailing newline)::

    TACIT-SIG-V1
    <METHOD>
    <request target: path and query exactly as sent>
    <device id>
    <timestamp>
    <nonce>
    <lowercase hex SHA-256 of the body bytes as sent (before any decompression)>

A request is fresh within `WINDOW_S` seconds either side of the server clock;
each nonce is accepted once per device (Redis SET NX for 2 x WINDOW_S).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from core.protocol.envelope import DEVICE_ID_RE
from core.protocol.errors import ProtocolError
from core.protocol.keyring import b64url, b64url_decode

if TYPE_CHECKING:
    import redis

SCHEME = b"TACIT-SIG-V1"
REDEEM_SCHEME = b"TACIT-REDEEM-V1"
WINDOW_S = 300
NONCE_TTL_S = 2 * WINDOW_S  # a timestamp WINDOW_S ahead stays acceptable for 2 x WINDOW_S
H_DEVICE, H_TIMESTAMP, H_NONCE, H_SIGNATURE = (
    "Tacit-Device",
    "Tacit-Timestamp",
    "Tacit-Nonce",
    "Tacit-Signature",
)
SIGNATURE_HEADERS = (H_DEVICE, H_TIMESTAMP, H_NONCE, H_SIGNATURE)
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{22,86}")  # 16..64 bytes, base64url unpadded
TIMESTAMP_RE = re.compile(r"0|[1-9][0-9]{0,11}")
METHOD_RE = re.compile(r"[A-Z]{1,16}")
TARGET_RE = re.compile(r"/[\x21-\x7e]*")
TOKEN_RE = re.compile(r"[\x21-\x7e]{1,512}")


@dataclass(frozen=True)
class SignatureHeaders:
    device_id: str
    timestamp: int
    nonce: str
    signature: bytes


def ed25519_public_bytes(key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) -> bytes:
    """Raw 32-byte Ed25519 public key."""
    pub = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def canonical_request(
    method: str, target: str, body_sha256: bytes, device_id: str, timestamp: int, nonce: str
) -> bytes:
    """The exact bytes a device signs; `body_sha256` is the raw 32-byte digest of the body."""
    if not METHOD_RE.fullmatch(method):
        raise ProtocolError("signature_bad_header", "method must be upper-case letters")
    if not TARGET_RE.fullmatch(target):
        raise ProtocolError("signature_bad_header", "target must be an ASCII path starting with /")
    if len(body_sha256) != 32:
        raise ProtocolError("signature_bad_header", "body digest must be 32 bytes")
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise ProtocolError("signature_bad_header", "bad device id")
    if not NONCE_RE.fullmatch(nonce):
        raise ProtocolError("signature_bad_header", "nonce must be 16-64 bytes of base64url")
    if not 0 <= timestamp < 10**12:
        raise ProtocolError("signature_bad_header", "timestamp out of range")
    lines = (method, target, device_id, str(timestamp), nonce, body_sha256.hex())
    return SCHEME + b"\n" + "\n".join(lines).encode("ascii")


def new_nonce() -> str:
    """16 random bytes, base64url."""
    return b64url(secrets.token_bytes(16))


def sign(
    private_key: ed25519.Ed25519PrivateKey,
    *,
    method: str,
    target: str,
    body: bytes,
    device_id: str,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Sign a request; returns the four Tacit-* headers to send with it."""
    ts = int(time.time()) if timestamp is None else timestamp
    n = new_nonce() if nonce is None else nonce
    msg = canonical_request(method, target, hashlib.sha256(body).digest(), device_id, ts, n)
    return {
        H_DEVICE: device_id,
        H_TIMESTAMP: str(ts),
        H_NONCE: n,
        H_SIGNATURE: b64url(private_key.sign(msg)),
    }


def parse_signature_headers(headers: Mapping[str, str]) -> SignatureHeaders:
    """Read the Tacit-* headers (names case-insensitive); missing or malformed ones raise."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in {h.lower() for h in SIGNATURE_HEADERS}:
            if key in found:
                raise ProtocolError("signature_bad_header", f"{name} appears twice")
            found[key] = value
    missing = [h for h in SIGNATURE_HEADERS if h.lower() not in found]
    if missing:
        raise ProtocolError("signature_missing_header", f"missing {', '.join(missing)}")
    device_id = found[H_DEVICE.lower()]
    ts, nonce, sig = (found[h.lower()] for h in (H_TIMESTAMP, H_NONCE, H_SIGNATURE))
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise ProtocolError("signature_bad_header", f"{H_DEVICE} is not a device id")
    if not TIMESTAMP_RE.fullmatch(ts):
        raise ProtocolError("signature_bad_header", f"{H_TIMESTAMP} must be decimal unix seconds")
    if not NONCE_RE.fullmatch(nonce):
        raise ProtocolError("signature_bad_header", f"{H_NONCE} must be 16-64 bytes of base64url")
    try:
        signature = b64url_decode(sig)
    except ValueError:
        signature = b""
    if len(signature) != 64:
        raise ProtocolError("signature_bad_header", f"{H_SIGNATURE} must be 64 bytes of base64url")
    return SignatureHeaders(device_id, int(ts), nonce, signature)


def check_freshness(timestamp: int, *, now: float | None = None, window_s: int = WINDOW_S) -> None:
    """Reject timestamps more than `window_s` away from the server clock `now`."""
    current = time.time() if now is None else now
    if timestamp < current - window_s:
        raise ProtocolError("signature_stale", "request timestamp is too old")
    if timestamp > current + window_s:
        raise ProtocolError("signature_future", "request timestamp is in the future")


def verify(
    public_key: bytes | ed25519.Ed25519PublicKey,
    *,
    method: str,
    target: str,
    body: bytes,
    headers: SignatureHeaders | Mapping[str, str],
    now: float | None = None,
    window_s: int = WINDOW_S,
) -> SignatureHeaders:
    """Check freshness and the Ed25519 signature; returns the parsed headers.

    The nonce is not checked here: claim it after this succeeds (the API does so with its
    rate counters in one Redis script, `core.ratelimit.UploadGate.admit`), so only
    authentic requests can use up nonces.
    """
    h = headers if isinstance(headers, SignatureHeaders) else parse_signature_headers(headers)
    check_freshness(h.timestamp, now=now, window_s=window_s)
    try:
        pk = (
            public_key
            if isinstance(public_key, ed25519.Ed25519PublicKey)
            else ed25519.Ed25519PublicKey.from_public_bytes(bytes(public_key))
        )
    except ValueError:
        raise ProtocolError("signature_invalid", "device public key is unusable") from None
    msg = canonical_request(
        method, target, hashlib.sha256(body).digest(), h.device_id, h.timestamp, h.nonce
    )
    try:
        pk.verify(h.signature, msg)
    except InvalidSignature:
        raise ProtocolError("signature_invalid", "signature does not match the request") from None
    return h


def nonce_key(device_id: str, nonce: str) -> str:
    return f"tacit:nonce:{device_id}:{nonce}"


def remember_nonce(client: redis.Redis, device_id: str, nonce: str, ttl: int = NONCE_TTL_S) -> bool:
    """Record a nonce; True the first time it is seen for this device within `ttl` seconds."""
    return bool(client.set(nonce_key(device_id, nonce), b"1", nx=True, ex=ttl))


def claim_nonce(client: redis.Redis, device_id: str, nonce: str, ttl: int = NONCE_TTL_S) -> None:
    """Like `remember_nonce`, but a nonce seen before raises `signature_replayed`."""
    if not remember_nonce(client, device_id, nonce, ttl):
        raise ProtocolError("signature_replayed", "this nonce was already used")


def redemption_message(token: str, public_key: bytes) -> bytes:
    """What the phone signs to prove it holds the key it registers with an enrolment token."""
    if not TOKEN_RE.fullmatch(token):
        raise ProtocolError("redemption_bad_request", "token must be printable ASCII")
    if len(public_key) != 32:
        raise ProtocolError("redemption_bad_request", "public key must be 32 bytes")
    return REDEEM_SCHEME + b"\n" + token.encode("ascii") + b"\n" + b64url(public_key).encode()


def sign_redemption(private_key: ed25519.Ed25519PrivateKey, token: str) -> dict[str, str]:
    """The JSON body of ``POST /v1/devices/redeem``: token, public key and proof."""
    pub = ed25519_public_bytes(private_key)
    proof = private_key.sign(redemption_message(token, pub))
    return {"token": token, "public_key": b64url(pub), "proof": b64url(proof)}


def verify_redemption(body: Mapping[str, object]) -> bytes:
    """Check a redeem body's proof of possession; returns the raw device public key."""
    token, pub_text, proof_text = body.get("token"), body.get("public_key"), body.get("proof")
    if not (isinstance(token, str) and isinstance(pub_text, str) and isinstance(proof_text, str)):
        raise ProtocolError("redemption_bad_request", "token, public_key and proof are strings")
    try:
        pub, proof = b64url_decode(pub_text), b64url_decode(proof_text)
        pk = ed25519.Ed25519PublicKey.from_public_bytes(pub)
    except ValueError:
        raise ProtocolError(
            "redemption_bad_request", "public_key must be 32 bytes of base64url"
        ) from None
    try:
        pk.verify(proof, redemption_message(token, pub))
    except InvalidSignature:
        raise ProtocolError("redemption_proof_invalid", "proof does not match the key") from None
    return pub
