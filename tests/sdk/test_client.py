"""The SDK against a reference server built from core.protocol (over httpx's in-process transport)."""

from __future__ import annotations

import email.utils
import json
import subprocess
import sys
import uuid

import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from core.protocol import body as body_rules
from core.protocol import hpke, signing
from core.protocol.envelope import check_envelope_device, parse_envelope
from core.protocol.errors import ProtocolError
from core.protocol.keyring import PrivateKeyring, b64url, generate_key
from pipelines.codec import decode
from sdk import DeviceClient, UploadError, fetch_server_keys, parse_server_keys, redeem_enrolment

TENANT = "3b8f0e4c-9d2a-4f6b-8c1e-5a7d9e0f1b2c"
DEVICE = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
BASE = "https://tacit.test"
ARRAYS = {"acc": np.arange(12, dtype="<f4").reshape(4, 3), "t_ms": np.arange(4, dtype="<i8")}


class ReferenceServer:
    """What the API and a worker do with an upload, minus storage: enough to prove the SDK right."""

    def __init__(self, device_key: ed25519.Ed25519PrivateKey) -> None:
        self.ring = PrivateKeyring()
        key_id, priv, _ = generate_key()
        self.ring.add(key_id, priv)
        self.device_pub = signing.ed25519_public_bytes(device_key)
        self.script: list[
            object
        ] = []  # per attempt: a status, (status, headers, code) or an exception
        self.seen: list[httpx.Request] = []
        self.opened: list[bytes] = []
        self.now: float | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/keys":
            return httpx.Response(200, json=self.ring.public_document())
        self.seen.append(request)
        step = self.script.pop(0) if self.script else 202
        if isinstance(step, Exception):
            raise step
        if isinstance(step, tuple):
            status, headers, code = step
            return httpx.Response(
                status, headers=headers, json={"error": {"code": code, "message": "x"}}
            )
        if step != 202:
            return httpx.Response(step, json={"error": {"code": f"e{step}", "message": "x"}})
        try:
            body_rules.check_content_type(request.headers.get("content-type"))
            raw = request.content
            h = signing.verify(
                self.device_pub,
                method=request.method,
                target=request.url.raw_path.decode(),
                body=raw,
                headers=request.headers,
                now=self.now,
            )
            env = parse_envelope(
                body_rules.decode_body(raw, request.headers.get("content-encoding"))
            )
            check_envelope_device(env, h.device_id)
            key = self.ring.private_key(env.key_id)
            self.opened.append(hpke.open_envelope(key, TENANT, env))
        except ProtocolError as e:
            return httpx.Response(400, json={"error": {"code": e.code, "message": e.message}})
        job = uuid.uuid5(uuid.NAMESPACE_URL, f"{h.device_id}/{env.batch_id}")
        return httpx.Response(202, json={"job_id": str(job), "status_url": f"/v1/jobs/{job}"})


@pytest.fixture
def device_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def server(device_key) -> ReferenceServer:
    return ReferenceServer(device_key)


@pytest.fixture
def http(server) -> httpx.Client:
    return httpx.Client(base_url=BASE, transport=httpx.MockTransport(server.handle))


def _client(server, http, device_key, sleeps: list[float] | None = None, **kw) -> DeviceClient:
    keys = fetch_server_keys(BASE, http=http)
    return DeviceClient(
        BASE, DEVICE, device_key, keys, TENANT, http=http,
        sleep=(sleeps.append if sleeps is not None else lambda s: None), rng=lambda: 0.5, **kw,
    )  # fmt: skip


def _upload(client: DeviceClient, batch_id: uuid.UUID | None = None):
    return client.upload(
        ARRAYS, factor="gait", purpose="verify",
        capture_start_ms=1_764_240_000_000, capture_end_ms=1_764_240_004_000, batch_id=batch_id,
    )  # fmt: skip


@pytest.mark.parametrize("encoding", [None, "gzip", "zstd"])
def test_upload_is_opened_by_the_server(server, http, device_key, encoding) -> None:
    # given a client holding the server's current key
    client = _client(server, http, device_key, content_encoding=encoding)
    # when it uploads a gait batch
    receipt = _upload(client)
    # then the server verified, decrypted and decoded the very arrays
    assert receipt.attempts == 1 and receipt.status_url == f"/v1/jobs/{receipt.job_id}"
    frame = decode(server.opened[0])
    assert frame.factor == "gait"
    np.testing.assert_array_equal(frame.arrays["acc"], ARRAYS["acc"])
    assert server.seen[0].headers["content-type"] == "application/vnd.tacit.envelope+v1"
    assert server.seen[0].headers.get("content-encoding") == encoding


def test_retries_send_the_same_batch_signed_afresh(server, http, device_key) -> None:
    # given a server that is overloaded, then unreachable, then accepts
    server.script = [(503, {"Retry-After": "2"}, "overloaded"), httpx.ConnectError("down"), 202]
    sleeps: list[float] = []
    client = _client(server, http, device_key, sleeps)
    # when the client uploads
    receipt = _upload(client)
    # then it waited as told (plus jitter), backed off after the network error, and succeeded
    assert receipt.attempts == 3
    assert sleeps == [2.25, 0.5]
    # and every attempt carried the same envelope bytes but its own nonce
    assert len({r.content for r in server.seen}) == 1
    assert len({r.headers["tacit-nonce"] for r in server.seen}) == 3
    assert parse_envelope(server.seen[0].content).batch_id == receipt.batch_id


def test_rate_limited_then_accepted(server, http, device_key) -> None:
    server.script = [(429, {"Retry-After": "1"}, "rate_limited"), 202]
    sleeps: list[float] = []
    assert _upload(_client(server, http, device_key, sleeps)).attempts == 2
    assert sleeps == [1.25]


def test_retries_are_bounded(server, http, device_key) -> None:
    server.script = [503] * 10
    sleeps: list[float] = []
    with pytest.raises(UploadError) as e:
        _upload(_client(server, http, device_key, sleeps, max_attempts=3))
    assert e.value.code == "e503" and len(server.seen) == 3 and len(sleeps) == 2


def test_long_retry_after_is_handed_to_the_app(server, http, device_key) -> None:
    server.script = [(429, {"Retry-After": "3600"}, "rate_limited")]
    with pytest.raises(UploadError) as e:
        _upload(_client(server, http, device_key))
    assert e.value.code == "rate_limited" and e.value.retry_after == 3600 and len(server.seen) == 1


def test_client_errors_are_not_retried(server, http, device_key) -> None:
    server.script = [422]
    with pytest.raises(UploadError) as e:
        _upload(_client(server, http, device_key))
    assert e.value.status == 422 and len(server.seen) == 1


def test_a_skewed_phone_clock_is_corrected_once(server, http, device_key) -> None:
    # given a phone clock 20 minutes slow and a server that says so with its Date header
    server.now = 1_764_240_000
    date = email.utils.formatdate(server.now, usegmt=True)
    server.script = [(401, {"Date": date}, "signature_stale"), 202]
    client = _client(server, http, device_key, clock=lambda: 1_764_240_000 - 1200.0)
    # when it uploads, then the second attempt is signed on the server's clock and accepted
    assert _upload(client).attempts == 2
    assert server.seen[1].headers["tacit-timestamp"] == "1764240000"


def test_redeem_sends_a_proof_of_the_key(device_key) -> None:
    # given a server that checks the proof and answers with the new device's ids
    def handle(request: httpx.Request) -> httpx.Response:
        pub = signing.verify_redemption(json.loads(request.content))
        assert pub == signing.ed25519_public_bytes(device_key)
        return httpx.Response(201, json={"device_id": DEVICE, "tenant_id": TENANT})

    http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(handle))
    # when the phone redeems its token
    creds = redeem_enrolment(BASE, "enr_0123456789", signing_key=device_key, http=http)
    # then it holds its ids and its key
    assert (creds.device_id, creds.tenant_id) == (DEVICE, TENANT)
    assert creds.signing_key_bytes() == device_key.private_bytes_raw()


def test_refused_redeem_raises_the_server_code() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"error": {"code": "enrolment_token_invalid", "message": "x"}}
        )

    http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(handle))
    with pytest.raises(UploadError) as e:
        redeem_enrolment(BASE, "enr_x", http=http)
    assert e.value.code == "enrolment_token_invalid" and e.value.status == 404


def test_keys_document_without_current_key_is_refused(device_key) -> None:
    keys = parse_server_keys(
        {"keys": [{"key_id": "k-1", "public_key": b64url(bytes(32)), "status": "active"}]}
    )
    with pytest.raises(UploadError) as e:
        DeviceClient(BASE, DEVICE, device_key, keys, TENANT)
    assert e.value.code == "no_current_key"


def test_sdk_imports_without_torch_or_server_code() -> None:
    code = (
        "import sys, sdk, sdk.client, pipelines.codec;"
        "bad = [m for m in ('torch', 'core.settings', 'core.db', 'psycopg', 'redis', 'fastapi') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
