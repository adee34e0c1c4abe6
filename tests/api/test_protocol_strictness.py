"""Protocol strictness through the real routes: canonical nonces keyed on their bytes,
Ed25519 keys that can sign nothing refused at redeem and at device creation, a malformed
proof answered as a bad request. The inputs are sdk/vectors/v1.json's negative vectors."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric import ed25519

from core.protocol import signing
from core.protocol.keyring import b64url, b64url_decode
from sdk.vectors import PATH
from tests.api.conftest import enrol_phone, post_envelope

NEGATIVE = {v["name"]: v for v in json.loads(PATH.read_text())["negative"]}


def _non_canonical(nonce: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return nonce[:-1] + alphabet[alphabet.index(nonce[-1]) | 0b11]


def _token(api, tenant, user: str = "mallory") -> str:  # type: ignore[no-untyped-def]
    r = api.post(f"/v1/users/{user}/enrolment-tokens", headers=tenant["headers"])
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_a_non_canonical_nonce_is_refused_and_its_bytes_stay_usable_once(api, tenant):  # type: ignore[no-untyped-def]
    phone = enrol_phone(api, tenant)
    nonce = b64url(bytes(range(16)))  # 22 characters: the last one has 2 spare bits
    assert b64url_decode(nonce) == bytes(range(16))
    # given the same 16 bytes written non-canonically, correctly signed
    body = phone.envelope()[1]
    r = post_envelope(api, phone, body, nonce=_non_canonical(nonce))
    # then it is refused before it can claim anything
    assert r.status_code == 401 and r.json()["error"]["code"] == "signature_bad_header", r.text
    # and the canonical text is accepted once, then replayed
    assert post_envelope(api, phone, body, nonce=nonce).status_code == 202
    r = post_envelope(api, phone, phone.envelope()[1], nonce=nonce)
    assert r.status_code == 401 and r.json()["error"]["code"] == "signature_replayed"


def test_redeeming_with_the_identity_key_and_a_trivial_proof_is_refused(api, tenant, db):  # type: ignore[no-untyped-def]
    # given a fresh token and the identity point, whose trivial signature verifies everything
    token = _token(api, tenant)
    body = {**NEGATIVE["redeem-identity-key"]["redeem_body"], "token": token}
    r = api.post("/v1/devices/redeem", json=body)
    # then it is a bad request and the token is not used up: a real key redeems it after
    assert r.status_code == 422 and r.json()["error"]["code"] == "redemption_bad_request", r.text
    good = signing.sign_redemption(ed25519.Ed25519PrivateKey.generate(), token)
    assert api.post("/v1/devices/redeem", json=good).status_code == 201
    assert (
        db.execute(
            "SELECT count(*) AS n FROM devices WHERE tenant_id = %s AND public_key = %s",
            (tenant["id"], b64url_decode(body["public_key"])),
        ).fetchone()["n"]
        == 0
    )


def test_small_order_and_non_canonical_keys_and_short_proofs_are_bad_requests(api, tenant):  # type: ignore[no-untyped-def]
    for name in ("redeem-order-8-key", "redeem-non-canonical-key", "redeem-short-proof"):
        body = {**NEGATIVE[name]["redeem_body"], "token": _token(api, tenant)}
        r = api.post("/v1/devices/redeem", json=body)
        assert r.status_code == 422, (name, r.text)
        assert r.json()["error"]["code"] == "redemption_bad_request", name


def test_a_tenant_cannot_register_a_small_order_key(api, tenant):  # type: ignore[no-untyped-def]
    for key in (
        NEGATIVE["device-small-order-key"]["device_public_key"],
        b64url((1).to_bytes(32, "little")),
    ):
        r = api.post("/v1/users/alice/devices", json={"public_key": key}, headers=tenant["headers"])
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_public_key", r.text
