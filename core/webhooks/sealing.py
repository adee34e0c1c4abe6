"""Webhook signing secrets at rest: AES-256-GCM under a key from settings, never the database.

Stored form: ``0x01 | nonce (12) | ciphertext + tag``, with the endpoint's id as associated
data, so a sealed secret copied onto another endpoint does not open. A row written before
a key was configured holds the raw 32 bytes; it still reads, and the next rotation seals.
The key is ``TACIT_WEBHOOKS__SECRET_KEY``: 32 bytes, base64url, held by the API (which
seals) and the webhook pool (which opens); without it secrets are stored raw, which only
development should do.
"""

from __future__ import annotations

import os
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import Unavailable
from core.protocol.keyring import b64url_decode

VERSION = b"\x01"
NONCE = 12
RAW_LENGTH = 32  # core.webhooks.signing.SECRET_BYTES


def parse_key(text: str) -> bytes | None:
    """The configured key's bytes, or None when none is set; ValueError if malformed."""
    if not text:
        return None
    key = b64url_decode(text)
    if len(key) != 32:
        raise ValueError("TACIT_WEBHOOKS__SECRET_KEY must be 32 bytes of base64url")
    return key


def seal(key: bytes | None, endpoint_id: uuid.UUID, secret: bytes) -> bytes:
    """What to store for `secret` (raw when no key is configured)."""
    if key is None:
        return secret
    nonce = os.urandom(NONCE)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, secret, endpoint_id.bytes)


def unseal(key: bytes | None, endpoint_id: uuid.UUID, stored: bytes) -> bytes:
    """The secret a stored value holds; Unavailable when it cannot be opened here."""
    if len(stored) == RAW_LENGTH:
        return stored
    if key is None or stored[:1] != VERSION:
        raise Unavailable(
            "a webhook secret is sealed but this process has no (or another) secret key",
            code="webhook_secret_key_missing",
        )
    try:
        return AESGCM(key).decrypt(stored[1 : 1 + NONCE], stored[1 + NONCE :], endpoint_id.bytes)
    except Exception:  # noqa: BLE001 - InvalidTag: wrong key or moved row
        raise Unavailable(
            "a webhook secret does not open with this key", code="webhook_secret_key_mismatch"
        ) from None
