"""The published vectors are exactly what the code computes, and they open and verify."""

from __future__ import annotations

import json

import pytest

from core.protocol import hpke, signing
from core.protocol.envelope import parse_envelope
from core.protocol.errors import ProtocolError
from core.protocol.keyring import b64url_decode
from pipelines.codec import decode
from sdk.vectors import PATH, build_vectors, dumps

DOC = json.loads(PATH.read_text(encoding="utf-8"))


def test_file_is_reproduced_byte_for_byte() -> None:
    # given fixed keys and randomness, when every vector is recomputed, then the file is the same
    assert PATH.read_text(encoding="utf-8") == dumps(build_vectors())


@pytest.mark.parametrize("vector", DOC["vectors"], ids=lambda v: v["name"])
def test_vector_opens_with_the_server_key(vector) -> None:
    # given the envelope bytes of a vector
    env = parse_envelope(bytes.fromhex(vector["envelope_hex"]))
    # then its fields are the vector's inputs and HPKE values
    assert str(env.batch_id) == vector["input"]["batch_id"]
    assert (env.factor, env.purpose) == (vector["input"]["factor"], vector["input"]["purpose"])
    assert env.enc.hex() == vector["hpke"]["enc_hex"]
    assert env.ciphertext.hex() == vector["hpke"]["ciphertext_hex"]
    assert hpke.info_bytes(DOC["tenant_id"], env.header).hex() == vector["hpke"]["info_hex"]
    # and it opens (with cryptography's HPKE) to the plaintext frame
    server_priv = bytes.fromhex(DOC["server_key"]["private_key_hex"])
    plaintext = hpke.open_envelope(server_priv, DOC["tenant_id"], env)
    assert plaintext.hex() == vector["input"]["plaintext_hex"]
    assert decode(plaintext).factor == vector["input"]["factor"]
    # but not for another tenant
    with pytest.raises(ProtocolError):
        hpke.open_envelope(server_priv, "another-tenant", env)


@pytest.mark.parametrize("vector", DOC["vectors"], ids=lambda v: v["name"])
def test_vector_request_signature_verifies(vector) -> None:
    req = vector["request"]
    body = bytes.fromhex(vector["envelope_hex"])
    device_pub = bytes.fromhex(DOC["device_key"]["public_key_hex"])
    h = signing.verify(
        device_pub,
        method=req["method"],
        target=req["target"],
        body=body,
        headers=req["headers"],
        now=req["timestamp"],
    )
    assert h.signature == b64url_decode(req["signature_b64url"])
    assert req["canonical"].endswith(req["body_sha256_hex"])


def test_redeem_vector_verifies() -> None:
    pub = signing.verify_redemption(DOC["redeem"]["body"])
    assert pub.hex() == DOC["device_key"]["public_key_hex"]


@pytest.mark.parametrize("vector", DOC["negative"], ids=lambda v: v["name"])
def test_negative_vector_is_refused_with_its_code(vector) -> None:
    # given an input every server must refuse, when Tacit's own checks read it,
    # then it is refused with the vector's code (not accepted, not another code)
    if "redeem_body" in vector:
        with pytest.raises(ProtocolError) as e:
            signing.verify_redemption(vector["redeem_body"])
        assert e.value.code == vector["code"]
    elif "request" in vector:
        req = vector["request"]
        with pytest.raises(ProtocolError) as e:
            signing.verify(
                bytes.fromhex(DOC["device_key"]["public_key_hex"]),
                method=req["method"],
                target=req["target"],
                body=bytes.fromhex(req["envelope_hex"]),
                headers=req["headers"],
                now=req["timestamp"],
            )
        assert e.value.code == vector["code"]
    else:
        from api.routes.devices import _public_key
        from core.errors import InvalidInput

        with pytest.raises(InvalidInput) as e:
            _public_key(vector["device_public_key"])
        assert e.value.code == vector["code"]
