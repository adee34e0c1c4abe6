"""A phone written from docs/protocol.md alone: pyhpke for HPKE, cryptography for Ed25519, raw httpx.

Imports nothing of Tacit's protocol code or SDK, so a test that passes with it shows the
document is enough to build a client.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
import uuid
from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
FACTOR = {"keystroke": 1, "gait": 2, "face": 3}
PURPOSE = {"enrol": 1, "verify": 2}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _lp(text: str) -> bytes:
    raw = text.encode("ascii")
    return bytes([len(raw)]) + raw


@dataclass
class IndependentPhone:
    http: httpx.Client
    device_id: str
    tenant_id: str
    key: ed25519.Ed25519PrivateKey
    key_id: str
    server_public: bytes

    @classmethod
    def enrol(cls, http: httpx.Client, token: str) -> IndependentPhone:
        """Section 2 (redeem) and section 3 (keys)."""
        key = ed25519.Ed25519PrivateKey.generate()
        pub = b64u(
            key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )
        proof = key.sign(b"TACIT-REDEEM-V1\n" + token.encode() + b"\n" + pub.encode())
        r = http.post(
            "/v1/devices/redeem", json={"token": token, "public_key": pub, "proof": b64u(proof)}
        )
        assert r.status_code == 201, r.text
        current = next(k for k in http.get("/v1/keys").json()["keys"] if k["status"] == "current")
        return cls(
            http,
            r.json()["device_id"],
            r.json()["tenant_id"],
            key,
            current["key_id"],
            unb64u(current["public_key"]),
        )

    def envelope(self, frame: bytes, factor: str, purpose: str) -> tuple[uuid.UUID, bytes]:
        """Sections 5 and 6: the header, `info`, single-shot seal with empty aad."""
        batch_id = uuid.uuid4()
        end = int(time.time() * 1000)
        start = end - 8000
        info = (
            b"tacit/envelope/v1"
            + _lp(self.tenant_id)
            + _lp(self.device_id)
            + batch_id.bytes
            + bytes([FACTOR[factor], PURPOSE[purpose]])
            + struct.pack("<QQ", start, end)
            + _lp(self.key_id)
        )
        # Single-shot Seal is SetupBaseS then one Seal (RFC 9180 section 6.1), with empty aad.
        enc, sender = SUITE.create_sender_context(
            SUITE.kem.deserialize_public_key(self.server_public), info=info
        )
        ct = sender.seal(frame, aad=b"")
        body = (
            b"TENV"
            + bytes([1, FACTOR[factor], PURPOSE[purpose]])
            + batch_id.bytes
            + struct.pack("<QQ", start, end)
            + _lp(self.device_id)
            + _lp(self.key_id)
            + struct.pack("<H", len(enc))
            + enc
            + struct.pack("<I", len(ct))
            + ct
        )
        return batch_id, body

    def upload(self, body: bytes) -> httpx.Response:
        """Sections 4 and 7: the signed request."""
        ts, nonce = str(int(time.time())), b64u(os.urandom(16))
        canonical = "\n".join(
            [
                "TACIT-SIG-V1",
                "POST",
                "/v1/batches",
                self.device_id,
                ts,
                nonce,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        headers = {
            "Content-Type": "application/vnd.tacit.envelope+v1",
            "Tacit-Device": self.device_id,
            "Tacit-Timestamp": ts,
            "Tacit-Nonce": nonce,
            "Tacit-Signature": b64u(self.key.sign(canonical.encode())),
        }
        return self.http.post("/v1/batches", content=body, headers=headers)
