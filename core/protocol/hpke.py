"""HPKE for batches: RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.

The suite comes from `cryptography`; nothing here re-implements HPKE. What this
module adds is the canonical `info` string that binds a ciphertext to its tenant,
device, batch, factor, purpose, capture window and key id: moving a ciphertext
to any other envelope or tenant makes it fail to open. `aad` is left empty
(everything is bound through `info`), so any single-shot RFC 9180 API works on a phone.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke as _hpke
from cryptography.hazmat.primitives.asymmetric import x25519

from core.protocol.envelope import (
    ENC_LENGTH,
    PURPOSE_CODES,
    TENANT_ID_RE,
    Envelope,
    EnvelopeHeader,
    encode_envelope,
    factor_code,
)
from core.protocol.errors import ProtocolError

INFO_LABEL = b"tacit/envelope/v1"
SUITE_NAME = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM"
# RFC 9180 identifiers, for phone libraries that take them as numbers.
KEM_ID, KDF_ID, AEAD_ID = 0x0020, 0x0001, 0x0001

_SUITE = _hpke.Suite(_hpke.KEM.X25519, _hpke.KDF.HKDF_SHA256, _hpke.AEAD.AES_128_GCM)


def info_bytes(tenant_id: str, header: EnvelopeHeader) -> bytes:
    """The canonical HPKE `info` for one batch (layout in docs/protocol.md)."""
    if not isinstance(tenant_id, str) or not TENANT_ID_RE.fullmatch(tenant_id):
        raise ProtocolError("bad_tenant_id", "tenant id must be 1-64 of [A-Za-z0-9_-]")
    t, d, k = (s.encode("ascii") for s in (tenant_id, header.device_id, header.key_id))
    return b"".join(
        (
            INFO_LABEL,
            struct.pack("<B", len(t)),
            t,
            struct.pack("<B", len(d)),
            d,
            header.batch_id.bytes,
            struct.pack("<BB", factor_code(header.factor), PURPOSE_CODES[header.purpose]),
            struct.pack("<QQ", header.capture_start_ms, header.capture_end_ms),
            struct.pack("<B", len(k)),
            k,
        )
    )


def public_key_from_bytes(public_key: bytes) -> x25519.X25519PublicKey:
    """Load a raw 32-byte X25519 public key."""
    try:
        return x25519.X25519PublicKey.from_public_bytes(bytes(public_key))
    except (ValueError, TypeError):
        raise ProtocolError("bad_public_key", "X25519 public key must be 32 bytes") from None


def private_key_from_bytes(private_key: bytes) -> x25519.X25519PrivateKey:
    """Load a raw 32-byte X25519 private key."""
    try:
        return x25519.X25519PrivateKey.from_private_bytes(bytes(private_key))
    except (ValueError, TypeError):
        raise ProtocolError("bad_private_key", "X25519 private key must be 32 bytes") from None


def seal(
    public_key: x25519.X25519PublicKey | bytes, info: bytes, plaintext: bytes
) -> tuple[bytes, bytes]:
    """Single-shot HPKE seal with a fresh ephemeral key; returns (enc, ciphertext)."""
    pk = (
        public_key
        if isinstance(public_key, x25519.X25519PublicKey)
        else public_key_from_bytes(public_key)
    )
    try:
        out = _SUITE.encrypt(plaintext, pk, info=info)
    except ValueError:
        # A low-order public key gives an all-zero shared secret, which RFC 9180 rejects.
        raise ProtocolError("bad_public_key", "public key is not usable for X25519") from None
    return out[:ENC_LENGTH], out[ENC_LENGTH:]


def open(  # noqa: A001 - mirrors RFC 9180's Open(); call it as hpke.open
    private_key: x25519.X25519PrivateKey | bytes, enc: bytes, info: bytes, ciphertext: bytes
) -> bytes:
    """Single-shot HPKE open; any failure (wrong key, info, tampering) is `decrypt_failed`."""
    sk = (
        private_key
        if isinstance(private_key, x25519.X25519PrivateKey)
        else private_key_from_bytes(private_key)
    )
    if len(enc) != ENC_LENGTH:
        raise ProtocolError("decrypt_failed", "enc has the wrong length")
    try:
        return _SUITE.decrypt(bytes(enc) + bytes(ciphertext), sk, info=info)
    except (InvalidTag, ValueError):
        raise ProtocolError(
            "decrypt_failed", "batch does not open with this key and context"
        ) from None


def seal_envelope(
    public_key: x25519.X25519PublicKey | bytes,
    tenant_id: str,
    header: EnvelopeHeader,
    plaintext: bytes,
) -> bytes:
    """Encrypt a plaintext frame for one batch and return the envelope bytes."""
    enc, ct = seal(public_key, info_bytes(tenant_id, header), plaintext)
    return encode_envelope(header, enc, ct)


def open_envelope(
    private_key: x25519.X25519PrivateKey | bytes, tenant_id: str, envelope: Envelope
) -> bytes:
    """Decrypt a parsed envelope for the tenant that owns its device; returns the plaintext frame."""
    return open(
        private_key, envelope.enc, info_bytes(tenant_id, envelope.header), envelope.ciphertext
    )
