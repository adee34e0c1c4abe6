from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

from core.protocol import hpke
from core.protocol.envelope import EnvelopeHeader, Purpose, parse_envelope
from core.protocol.errors import ProtocolError

TENANT = "ten_acme"
PLAINTEXT = b"TPL1 pretend frame " * 20
SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)


def _raw(sk: x25519.X25519PrivateKey) -> bytes:
    return sk.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


@pytest.fixture
def server_key() -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.generate()


def test_seal_then_open_returns_the_plaintext(server_key, header: EnvelopeHeader) -> None:
    # given a batch sealed to the server's public key
    data = hpke.seal_envelope(server_key.public_key(), TENANT, header, PLAINTEXT)
    # when the worker parses and opens it for the same tenant
    env = parse_envelope(data)
    # then it gets the plaintext back
    assert hpke.open_envelope(server_key, TENANT, env) == PLAINTEXT


def test_ours_opens_with_pyhpke(server_key, header: EnvelopeHeader) -> None:
    # given a ciphertext sealed by our module (cryptography's HPKE)
    info = hpke.info_bytes(TENANT, header)
    enc, ct = hpke.seal(server_key.public_key(), info, PLAINTEXT)
    # when an independent implementation opens it
    skr = SUITE.kem.deserialize_private_key(_raw(server_key))
    # then it reads the same plaintext
    assert SUITE.create_recipient_context(enc, skr, info=info).open(ct) == PLAINTEXT


def test_pyhpke_opens_with_ours(server_key, header: EnvelopeHeader) -> None:
    # given a ciphertext sealed by pyhpke with our info
    info = hpke.info_bytes(TENANT, header)
    pkr = SUITE.kem.deserialize_public_key(
        server_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    )
    enc, ctx = SUITE.create_sender_context(pkr, info=info)
    ct = ctx.seal(PLAINTEXT)
    # when our module opens it, then the plaintext is back
    assert hpke.open(server_key, enc, info, ct) == PLAINTEXT
    assert hpke.open(_raw(server_key), enc, info, ct) == PLAINTEXT


@pytest.mark.parametrize(
    "tenant, change",
    [
        ("ten_other", {}),
        (TENANT, {"device_id": "dev_other"}),
        (TENANT, {"batch_id": uuid.UUID("0192f3a4-5b6c-7d8e-9f01-23456789abce")}),
        (TENANT, {"factor": "face"}),
        (TENANT, {"purpose": Purpose.ENROL}),
        (TENANT, {"capture_start_ms": 1_764_240_000_001}),
        (TENANT, {"capture_end_ms": 1_764_240_030_001}),
        (TENANT, {"key_id": "k-2026-11-27-ab13"}),
    ],
)
def test_moving_a_ciphertext_to_another_context_fails(
    server_key, header: EnvelopeHeader, tenant: str, change: dict
) -> None:
    # given a batch sealed for one tenant/device/batch/factor/purpose/window/key
    env = parse_envelope(hpke.seal_envelope(server_key.public_key(), TENANT, header, PLAINTEXT))
    # when its enc and ciphertext are put under a header that differs in one field
    moved = replace(env, header=replace(env.header, **change))
    # then it does not open
    with pytest.raises(ProtocolError) as e:
        hpke.open_envelope(server_key, tenant, moved)
    assert e.value.code == "decrypt_failed"


def test_one_flipped_bit_anywhere_fails(server_key, header: EnvelopeHeader) -> None:
    info = hpke.info_bytes(TENANT, header)
    enc, ct = hpke.seal(server_key.public_key(), info, b"short plaintext")
    for which in ("enc", "ct"):
        buf = enc if which == "enc" else ct
        for i in range(len(buf)):
            flipped = buf[:i] + bytes([buf[i] ^ 0x01]) + buf[i + 1 :]
            e_, c_ = (flipped, ct) if which == "enc" else (enc, flipped)
            with pytest.raises(ProtocolError) as e:
                hpke.open(server_key, e_, info, c_)
            assert e.value.code == "decrypt_failed"


def test_wrong_server_key_fails(header: EnvelopeHeader) -> None:
    info = hpke.info_bytes(TENANT, header)
    enc, ct = hpke.seal(x25519.X25519PrivateKey.generate().public_key(), info, PLAINTEXT)
    with pytest.raises(ProtocolError) as e:
        hpke.open(x25519.X25519PrivateKey.generate(), enc, info, ct)
    assert e.value.code == "decrypt_failed"


def test_bad_inputs_have_codes(server_key, header: EnvelopeHeader) -> None:
    with pytest.raises(ProtocolError) as e:
        hpke.seal(b"\x00" * 31, b"", b"")
    assert e.value.code == "bad_public_key"
    with pytest.raises(ProtocolError) as e:
        hpke.seal(bytes(32), b"", b"")  # low-order point
    assert e.value.code == "bad_public_key"
    with pytest.raises(ProtocolError) as e:
        hpke.open(server_key, b"\x01" * 31, b"", bytes(16))
    assert e.value.code == "decrypt_failed"
    with pytest.raises(ProtocolError) as e:
        hpke.info_bytes("bad tenant", header)
    assert e.value.code == "bad_tenant_id"


def test_info_layout(header: EnvelopeHeader) -> None:
    info = hpke.info_bytes("ten_acme", header)
    assert info.startswith(b"tacit/envelope/v1\x08ten_acme\x0adev_8f3a2c")
    assert info.endswith(b"\x11k-2026-11-27-ab12")
    assert len(info) == 17 + 9 + 11 + 16 + 2 + 16 + 18


def test_longest_info_works_with_both_libraries(server_key, header: EnvelopeHeader) -> None:
    h = replace(header, device_id="d" * 64, key_id="k" * 64)
    info = hpke.info_bytes("t" * 64, h)
    enc, ct = hpke.seal(server_key.public_key(), info, PLAINTEXT)
    skr = SUITE.kem.deserialize_private_key(_raw(server_key))
    assert SUITE.create_recipient_context(enc, skr, info=info).open(ct) == PLAINTEXT
