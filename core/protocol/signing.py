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

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from core.protocol.envelope import DEVICE_ID_RE
from core.protocol.errors import ProtocolError
from core.protocol.keyring import b64url, b64url_decode

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
    nonce: str  # the text as sent (it is what was signed)
    signature: bytes
    nonce_bytes: bytes = b""  # what replay protection is keyed on


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
    try:
        # Canonical only: two texts of the same bytes (stray low bits in the last
        # character) would otherwise be two nonces.
        nonce_bytes = b64url_decode(nonce) if NONCE_RE.fullmatch(nonce) else b""
    except ValueError:
        nonce_bytes = b""
    if not 16 <= len(nonce_bytes) <= 64:
        raise ProtocolError(
            "signature_bad_header", f"{H_NONCE} must be 16-64 bytes of canonical base64url"
        )
    try:
        signature = b64url_decode(sig)
    except ValueError:
        signature = b""
    if len(signature) != 64:
        raise ProtocolError("signature_bad_header", f"{H_SIGNATURE} must be 64 bytes of base64url")
    return SignatureHeaders(device_id, int(ts), nonce, signature, nonce_bytes)


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


def nonce_key(device_id: str, nonce: bytes) -> str:
    """The Redis key of a nonce: its bytes, not its text."""
    return f"tacit:nonce:{device_id}:{nonce.hex()}"


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
        pub = b64url_decode(pub_text)
    except ValueError:
        pub = b""
    try:
        check_device_public_key(pub)
    except ValueError as e:
        raise ProtocolError("redemption_bad_request", f"public_key: {e}") from None
    try:
        proof = b64url_decode(proof_text)
    except ValueError:
        proof = b""
    if len(proof) != 64:  # malformed, not a failed proof
        raise ProtocolError("redemption_bad_request", "proof must be 64 bytes of base64url")
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(pub).verify(
            proof, redemption_message(token, pub)
        )
    except InvalidSignature:
        raise ProtocolError("redemption_proof_invalid", "proof does not match the key") from None
    return pub


# Ed25519 public keys (RFC 8032 section 5.1.3), checked in full before one is registered:
# the library verifies against whatever 32 bytes it is given, and a small-order key (the
# identity point, say) verifies a trivial signature of every message.
_P = 2**255 - 19
_D = (-121665 * pow(121666, -1, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _decode_point(raw: bytes) -> tuple[int, int]:
    y = int.from_bytes(raw, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P:
        raise ValueError("not a canonical encoding (y >= p)")
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = (u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P)) % _P
    if (v * x * x - u) % _P != 0:
        x = (x * _SQRT_M1) % _P
        if (v * x * x - u) % _P != 0:
            raise ValueError("not a point on the curve")
    if x == 0 and sign:
        raise ValueError("not a canonical encoding (negative zero)")
    if (x & 1) != sign:
        x = _P - x
    return x, y


def _double(x: int, y: int) -> tuple[int, int]:
    # twisted Edwards (a = -1) addition of a point to itself; complete on this curve
    xx, yy, xy = x * x % _P, y * y % _P, x * y % _P
    t = _D * xy * xy % _P
    return 2 * xy * pow(1 + t, -1, _P) % _P, (yy + xx) * pow(1 - t, -1, _P) % _P


def check_device_public_key(raw: bytes) -> None:
    """A device's Ed25519 key must be 32 bytes, canonically encoded, on the curve and not of
    small order (8 * P is not the identity); raises ValueError saying which."""
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise ValueError("must be 32 bytes of unpadded base64url (Ed25519)")
    x, y = _decode_point(raw)
    for _ in range(3):
        x, y = _double(x, y)
    if (x, y) == (0, 1):
        raise ValueError("is a small-order point, which signs nothing")
