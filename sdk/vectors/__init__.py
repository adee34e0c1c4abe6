"""Test vectors for protocol v1: fixed keys and randomness in, exact bytes out.

`build_vectors()` computes every vector from fixed inputs; `python -m sdk.vectors`
writes them to sdk/vectors/v1.json (and `--check` compares instead). HPKE needs a
fixed ephemeral key here, which `cryptography` does not take, so the seal uses
pyhpke with RFC 9180 DeriveKeyPair(ikmE); the result opens with our
cryptography-based `core.protocol.hpke` (tests/sdk/test_vectors.py checks it).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from core.protocol import hpke, signing
from core.protocol.body import DEFAULT_MAX_BODY, DEFAULT_MAX_DECODED
from core.protocol.envelope import CONTENT_TYPE, EnvelopeHeader, encode_envelope
from core.protocol.keyring import b64url, b64url_decode
from pipelines.codec import encode

PATH = Path(__file__).with_name("v1.json")
TENANT_ID = "3b8f0e4c-9d2a-4f6b-8c1e-5a7d9e0f1b2c"
DEVICE_ID = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
KEY_ID = "k-2026-11-27-ab12"
TIMESTAMP = 1_764_240_000


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"tacit/vectors/v1/" + label.encode()).digest()


def _cases() -> list[dict[str, Any]]:
    # Fixed arithmetic arrays (no RNG: numpy does not promise stable random streams).
    return [
        {
            "name": "keystroke-verify",
            "factor": "keystroke",
            "purpose": "verify",
            "batch_id": "0192f3a4-5b6c-7d8e-9f01-23456789abcd",
            "capture": (1_764_239_990_000, 1_764_239_999_500),
            "arrays": {
                "key_code": np.array([72, 69, 76, 76, 79], dtype="<u2"),
                "down_ms": np.array([0, 112, 230, 351, 470], dtype="<i8"),
                "up_ms": np.array([85, 190, 301, 430, 560], dtype="<i8"),
            },
        },
        {
            "name": "gait-enrol",
            "factor": "gait",
            "purpose": "enrol",
            "batch_id": "5f0c6e1a-2b3d-4c5e-9f60-718293a4b5c6",
            "capture": (1_764_239_900_000, 1_764_239_902_000),
            "arrays": {"acc": (np.arange(24, dtype="<f4").reshape(8, 3) - 12.0) / 8.0},
        },
        {
            "name": "face-verify",
            "factor": "face",
            "purpose": "verify",
            "batch_id": "0192f3a4-5b6c-7d8e-9f01-23456789abce",
            "capture": (1_764_239_999_000, 1_764_239_999_000),
            "arrays": {"frames": (np.arange(48).reshape(1, 4, 4, 3) * 5 % 256).astype("|u1")},
        },
    ]


def _sealed(
    server_pub: bytes, info: bytes, plaintext: bytes, ikm_e: bytes
) -> tuple[bytes, bytes, bytes]:
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId

    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
    eph = suite.kem.derive_key_pair(ikm_e)
    enc, ctx = suite.create_sender_context(
        suite.kem.deserialize_public_key(server_pub), info=info, eks=eph
    )
    return eph.private_key.to_private_bytes(), enc, ctx.seal(plaintext)


def _signed_upload(
    device_sk: ed25519.Ed25519PrivateKey, body: bytes, *, timestamp: int, nonce: str
) -> dict[str, str]:
    """The vectors' device's signature headers for an upload of ``body``."""
    return signing.sign(
        device_sk,
        method="POST",
        target="/v1/batches",
        body=body,
        device_id=DEVICE_ID,
        timestamp=timestamp,
        nonce=nonce,
    )


def build_vectors() -> dict[str, Any]:
    """Every v1 vector, from fixed inputs (deterministic: same output on every run)."""
    server_sk = x25519.X25519PrivateKey.from_private_bytes(_seed("server-key"))
    server_priv, server_pub = (
        server_sk.private_bytes_raw(),
        server_sk.public_key().public_bytes_raw(),
    )
    device_sk = ed25519.Ed25519PrivateKey.from_private_bytes(_seed("device-key"))
    device_pub = device_sk.public_key().public_bytes_raw()
    vectors = []
    for i, case in enumerate(_cases()):
        header = EnvelopeHeader(
            device_id=DEVICE_ID,
            batch_id=uuid.UUID(case["batch_id"]),
            factor=case["factor"],
            purpose=case["purpose"],
            capture_start_ms=case["capture"][0],
            capture_end_ms=case["capture"][1],
            key_id=KEY_ID,
        )
        plaintext = encode(case["factor"], case["arrays"])
        info = hpke.info_bytes(TENANT_ID, header)
        ikm_e = _seed(f"ephemeral/{case['name']}")
        eph_priv, enc, ct = _sealed(server_pub, info, plaintext, ikm_e)
        envelope = encode_envelope(header, enc, ct)
        nonce = b64url(_seed(f"nonce/{case['name']}")[:16])
        ts = TIMESTAMP + i
        canonical = signing.canonical_request(
            "POST", "/v1/batches", hashlib.sha256(envelope).digest(), DEVICE_ID, ts, nonce
        )
        headers = _signed_upload(device_sk, envelope, timestamp=ts, nonce=nonce)
        vectors.append(
            {
                "name": case["name"],
                "input": {
                    "factor": case["factor"],
                    "purpose": case["purpose"],
                    "batch_id": case["batch_id"],
                    "capture_start_ms": case["capture"][0],
                    "capture_end_ms": case["capture"][1],
                    "plaintext_hex": plaintext.hex(),
                    "ephemeral_ikm_hex": ikm_e.hex(),
                    "ephemeral_private_key_hex": eph_priv.hex(),
                },
                "hpke": {
                    "info_hex": info.hex(),
                    "aad_hex": "",
                    "enc_hex": enc.hex(),
                    "ciphertext_hex": ct.hex(),
                },
                "envelope_hex": envelope.hex(),
                "request": {
                    "method": "POST",
                    "target": "/v1/batches",
                    "timestamp": ts,
                    "nonce": nonce,
                    "body_sha256_hex": hashlib.sha256(envelope).hexdigest(),
                    "canonical": canonical.decode("ascii"),
                    "signature_b64url": headers[signing.H_SIGNATURE],
                    "headers": {"Content-Type": CONTENT_TYPE, **headers},
                },
            }
        )
    token = "enr_9bd1c0a7f3e24d58"
    redeem = signing.sign_redemption(device_sk, token)
    negative = _negative_vectors(device_sk, vectors[0], token)
    return {
        "protocol": "tacit/v1",
        "suite": {
            "name": hpke.SUITE_NAME,
            "mode": "base",
            "kem_id": hpke.KEM_ID,
            "kdf_id": hpke.KDF_ID,
            "aead_id": hpke.AEAD_ID,
        },
        "limits": {"max_body_bytes": DEFAULT_MAX_BODY, "max_decoded_bytes": DEFAULT_MAX_DECODED},
        "tenant_id": TENANT_ID,
        "device_id": DEVICE_ID,
        "server_key": {
            "key_id": KEY_ID,
            "private_key_hex": server_priv.hex(),
            "public_key_hex": server_pub.hex(),
            "public_key_b64url": b64url(server_pub),
        },
        "device_key": {
            "private_key_seed_hex": _seed("device-key").hex(),
            "public_key_hex": device_pub.hex(),
            "public_key_b64url": b64url(device_pub),
        },
        "vectors": vectors,
        "redeem": {
            "token": token,
            "message": signing.redemption_message(token, device_pub).decode("ascii"),
            "body": redeem,
        },
        "negative": negative,
    }


def _non_canonical(text: str) -> str:
    """The same bytes in other base64url text: the last character's unused low bits set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare = {2: 4, 3: 2}[len(text) % 4]  # characters carrying 8 or 16 bits have 4 or 2 spare
    return text[:-1] + alphabet[alphabet.index(text[-1]) | ((1 << spare) - 1)]


def _negative_vectors(
    device_sk: ed25519.Ed25519PrivateKey, first: dict[str, Any], token: str
) -> list[dict[str, Any]]:
    """Inputs every server must refuse, each with the code Tacit answers."""
    p = 2**255 - 19
    identity = (1).to_bytes(32, "little")
    order_8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
    y3_non_canonical = (p + 3).to_bytes(32, "little")  # the point y = 3, written as y + p
    pub = b64url(device_sk.public_key().public_bytes_raw())
    valid = signing.sign_redemption(device_sk, token)
    req = first["request"]
    nonce = _non_canonical(req["nonce"])
    body = bytes.fromhex(first["envelope_hex"])
    headers = _signed_upload(device_sk, body, timestamp=req["timestamp"], nonce=nonce)
    return [
        {
            "name": "redeem-identity-key",
            "why": "the identity point with R = identity, S = 0 verifies every message",
            "redeem_body": {
                "token": token,
                "public_key": b64url(identity),
                "proof": b64url(identity + bytes(32)),
            },
            "code": "redemption_bad_request",
        },
        {
            "name": "redeem-order-8-key",
            "why": "a small-order key",
            "redeem_body": {"token": token, "public_key": b64url(order_8), "proof": valid["proof"]},
            "code": "redemption_bad_request",
        },
        {
            "name": "redeem-non-canonical-key",
            "why": "y >= p: one point, two encodings",
            "redeem_body": {
                "token": token,
                "public_key": b64url(y3_non_canonical),
                "proof": valid["proof"],
            },
            "code": "redemption_bad_request",
        },
        {
            "name": "redeem-non-canonical-base64url-key",
            "why": "the valid key's bytes in other base64url text",
            "redeem_body": {
                "token": token,
                "public_key": _non_canonical(pub),
                "proof": valid["proof"],
            },
            "code": "redemption_bad_request",
        },
        {
            "name": "redeem-short-proof",
            "why": "a 63-byte proof is a malformed request, not a failed proof",
            "redeem_body": {**valid, "proof": b64url(b64url_decode(valid["proof"])[:63])},
            "code": "redemption_bad_request",
        },
        {
            "name": "request-non-canonical-nonce",
            "why": "the first vector's nonce bytes in other text, correctly signed",
            "request": {
                "method": "POST",
                "target": "/v1/batches",
                "timestamp": req["timestamp"],
                "envelope_hex": first["envelope_hex"],
                "headers": {"Content-Type": CONTENT_TYPE, **headers},
            },
            "code": "signature_bad_header",
        },
        {
            "name": "device-small-order-key",
            "why": "POST /v1/users/{user}/devices with the order-8 point",
            "device_public_key": b64url(order_8),
            "code": "invalid_public_key",
        },
    ]


def dumps(doc: dict[str, Any]) -> str:
    """The file's exact text (stable key order and indentation, newline at the end)."""
    return json.dumps(doc, indent=2) + "\n"
