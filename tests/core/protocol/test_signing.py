from __future__ import annotations

import hashlib
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from core.protocol import signing
from core.protocol.errors import ProtocolError
from core.protocol.keyring import b64url, b64url_decode

NOW = 1_764_240_000
DEVICE = "dev_8f3a2c"
BODY = b"TENV\x01 envelope bytes"
TARGET = "/v1/batches"


@pytest.fixture
def device_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _signed(key: ed25519.Ed25519PrivateKey, **over: object) -> dict[str, str]:
    args: dict = {
        "method": "POST",
        "target": TARGET,
        "body": BODY,
        "device_id": DEVICE,
        "timestamp": NOW,
    }
    args.update(over)
    return signing.sign(key, **args)


def _verify(key: ed25519.Ed25519PrivateKey, headers, *, now: float = NOW, **over: object):
    args: dict = {"method": "POST", "target": TARGET, "body": BODY}
    args.update(over)
    return signing.verify(signing.ed25519_public_bytes(key), headers=headers, now=now, **args)


def test_signed_request_verifies(device_key) -> None:
    # given a request signed by the device
    headers = _signed(device_key)
    # when the server verifies it at the same time
    h = _verify(device_key, headers)
    # then it learns the device and nonce
    assert h.device_id == DEVICE and h.timestamp == NOW and len(h.signature) == 64


def test_header_names_are_case_insensitive(device_key) -> None:
    headers = {k.lower(): v for k, v in _signed(device_key).items()}
    assert _verify(device_key, headers).device_id == DEVICE


def test_canonical_string_is_as_documented() -> None:
    msg = signing.canonical_request(
        "POST", "/v1/batches?x=1", hashlib.sha256(b"").digest(), DEVICE, NOW, "A" * 22
    )
    assert msg == (
        b"TACIT-SIG-V1\nPOST\n/v1/batches?x=1\ndev_8f3a2c\n1764240000\n" + b"A" * 22 + b"\n"
        b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"target": "/v1/batches?dry=1"},
        {"body": BODY + b"x"},
    ],
)
def test_any_change_to_the_request_is_signature_invalid(device_key, change) -> None:
    headers = _signed(device_key)
    with pytest.raises(ProtocolError) as e:
        _verify(device_key, headers, **change)
    assert e.value.code == "signature_invalid"


def test_changed_header_or_other_key_is_signature_invalid(device_key) -> None:
    headers = _signed(device_key)
    for k, v in [
        (signing.H_NONCE, signing.new_nonce()),
        (signing.H_TIMESTAMP, str(NOW + 1)),
        (signing.H_DEVICE, "dev_other"),
    ]:
        with pytest.raises(ProtocolError) as e:
            _verify(device_key, {**headers, k: v})
        assert e.value.code == "signature_invalid"
    with pytest.raises(ProtocolError) as e:
        _verify(ed25519.Ed25519PrivateKey.generate(), headers)
    assert e.value.code == "signature_invalid"


@pytest.mark.parametrize(
    "now, code",
    [
        (NOW + 301, "signature_stale"),
        (NOW - 301, "signature_future"),
    ],
)
def test_outside_the_window_is_stale_or_future(device_key, now: int, code: str) -> None:
    headers = _signed(device_key)
    with pytest.raises(ProtocolError) as e:
        _verify(device_key, headers, now=now)
    assert e.value.code == code


def test_edges_of_the_window_are_accepted(device_key) -> None:
    headers = _signed(device_key)
    _verify(device_key, headers, now=NOW + 300)
    _verify(device_key, headers, now=NOW - 300)


def test_missing_header_is_named(device_key) -> None:
    headers = _signed(device_key)
    for name in signing.SIGNATURE_HEADERS:
        partial = {k: v for k, v in headers.items() if k != name}
        with pytest.raises(ProtocolError) as e:
            signing.parse_signature_headers(partial)
        assert e.value.code == "signature_missing_header" and name in e.value.message


@pytest.mark.parametrize(
    "name, value",
    [
        (signing.H_TIMESTAMP, "-5"),
        (signing.H_TIMESTAMP, "017"),
        (signing.H_TIMESTAMP, "1.5"),
        (signing.H_NONCE, "short"),
        (signing.H_NONCE, "A" * 21 + "="),
        (signing.H_SIGNATURE, "AAAA"),
        (signing.H_SIGNATURE, "!" * 86),
        (signing.H_DEVICE, "dev 1"),
    ],
)
def test_malformed_header_is_signature_bad_header(device_key, name: str, value: str) -> None:
    with pytest.raises(ProtocolError) as e:
        signing.parse_signature_headers({**_signed(device_key), name: value})
    assert e.value.code == "signature_bad_header"


def test_duplicate_header_is_refused(device_key) -> None:
    headers = list(_signed(device_key).items()) + [("tacit-nonce", signing.new_nonce())]

    class Multi:
        def items(self):
            return headers

    with pytest.raises(ProtocolError) as e:
        signing.parse_signature_headers(Multi())  # type: ignore[arg-type]
    assert e.value.code == "signature_bad_header"


def test_nonce_is_accepted_once_per_device(settings) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    import redis.asyncio

    from core.ratelimit import UploadGate

    # given a fresh nonce (its bytes: replay protection is keyed on them) and the upload gate
    nonce = b64url_decode(signing.new_nonce())
    tenant, device, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    async def scenario() -> str:
        client = redis.asyncio.Redis.from_url(settings.redis_url)
        gate = UploadGate(client, device_per_min=100, tenant_per_min=100)
        try:
            # when the same nonce is admitted twice for one device, then only the first passes
            await gate.admit(tenant_id=tenant, device_id=device, nonce=nonce)
            with pytest.raises(ProtocolError) as e:
                await gate.admit(tenant_id=tenant, device_id=device, nonce=nonce)
            # and another device may use the same nonce
            await gate.admit(tenant_id=tenant, device_id=other, nonce=nonce)
            # and the record expires
            assert (
                0 < await client.ttl(signing.nonce_key(str(device), nonce)) <= signing.NONCE_TTL_S
            )
            return e.value.code
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == "signature_replayed"


def test_redemption_proof_round_trip(device_key) -> None:
    body = signing.sign_redemption(device_key, "enr_tok.123")
    assert signing.verify_redemption(body) == signing.ed25519_public_bytes(device_key)


def test_redemption_with_someone_elses_key_fails(device_key) -> None:
    body = signing.sign_redemption(device_key, "enr_tok.123")
    other = b64url(signing.ed25519_public_bytes(ed25519.Ed25519PrivateKey.generate()))
    for tampered, code in [
        ({**body, "public_key": other}, "redemption_proof_invalid"),
        ({**body, "token": "enr_tok.124"}, "redemption_proof_invalid"),
        ({**body, "public_key": "AAAA"}, "redemption_bad_request"),
        ({"token": "enr_tok.123"}, "redemption_bad_request"),
    ]:
        with pytest.raises(ProtocolError) as e:
            signing.verify_redemption(tampered)
        assert e.value.code == code
