"""Enrolment tokens: issued to a tenant's user, redeemed once by a phone proving its key."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519

from core.protocol import signing
from core.protocol.keyring import b64url


def _token(api, tenant, user="alice") -> str:  # type: ignore[no-untyped-def]
    r = api.post(f"/v1/users/{user}/enrolment-tokens", headers=tenant["headers"])
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"]
    return r.json()["token"]


def _redeem(api, token, key=None):  # type: ignore[no-untyped-def]
    return api.post(
        "/v1/devices/redeem",
        json=signing.sign_redemption(key or ed25519.Ed25519PrivateKey.generate(), token),
    )


def test_redeemed_token_gives_a_device_of_the_users_tenant(api, tenant):  # type: ignore[no-untyped-def]
    # given a token for alice
    token = _token(api, tenant)
    key = ed25519.Ed25519PrivateKey.generate()
    # when a phone redeems it
    r = _redeem(api, token, key)
    # then it gets a device of the tenant, listed for alice with its key
    assert r.status_code == 201, r.text
    assert r.json()["tenant_id"] == str(tenant["id"])
    devices = api.get("/v1/users/alice/devices", headers=tenant["headers"]).json()
    assert [d["id"] for d in devices] == [r.json()["device_id"]]
    assert devices[0]["status"] == "active"


def test_token_is_single_use(api, tenant, db):  # type: ignore[no-untyped-def]
    token = _token(api, tenant)
    assert _redeem(api, token).status_code == 201
    again = _redeem(api, token)
    assert again.status_code == 404 and again.json()["error"]["code"] == "enrolment_token_invalid"
    assert (
        db.execute(
            "SELECT count(*) AS n FROM devices WHERE tenant_id = %s", (tenant["id"],)
        ).fetchone()["n"]
        == 1
    )


def test_expired_token_is_refused(api, tenant, db):  # type: ignore[no-untyped-def]
    token = _token(api, tenant)
    db.execute(
        "UPDATE enrolment_tokens SET expires_at = now() - interval '1 second' WHERE tenant_id = %s",
        (tenant["id"],),
    )
    r = _redeem(api, token)
    assert r.status_code == 404 and r.json()["error"]["code"] == "enrolment_token_invalid"


def test_unknown_token_is_refused(api):  # type: ignore[no-untyped-def]
    r = _redeem(api, "enr_" + "x" * 43)
    assert r.status_code == 404 and r.json()["error"]["code"] == "enrolment_token_invalid"


def test_bad_proof_is_refused_and_leaves_the_token_usable(api, tenant):  # type: ignore[no-untyped-def]
    token = _token(api, tenant)
    body = signing.sign_redemption(ed25519.Ed25519PrivateKey.generate(), token)
    body["public_key"] = b64url(signing.ed25519_public_bytes(ed25519.Ed25519PrivateKey.generate()))
    r = api.post("/v1/devices/redeem", json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "redemption_proof_invalid"
    assert _redeem(api, token).status_code == 201


def test_malformed_public_key_is_422(api, tenant):  # type: ignore[no-untyped-def]
    body = {"token": _token(api, tenant), "public_key": "AAAA", "proof": "A" * 86}
    r = api.post("/v1/devices/redeem", json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "redemption_bad_request"


def test_token_stores_only_a_hash(api, tenant, db):  # type: ignore[no-untyped-def]
    token = _token(api, tenant)
    row = db.execute(
        "SELECT token_hash FROM enrolment_tokens WHERE tenant_id = %s", (tenant["id"],)
    ).fetchone()
    assert token.encode() not in bytes(row["token_hash"]) and len(bytes(row["token_hash"])) == 32


def test_tokens_need_an_api_key(api):  # type: ignore[no-untyped-def]
    r = api.post("/v1/users/alice/enrolment-tokens")
    assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_missing"
