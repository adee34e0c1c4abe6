"""Phones for API tests: enrolled through the real routes, uploading through the device SDK."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from core.protocol import signing
from core.protocol.envelope import CONTENT_TYPE
from sdk import client as sdk

FRAME = b"TPL1 stand-in: the API never opens it"


@dataclass
class TestPhone:
    """An enrolled device: its SDK client plus what a test needs to forge requests."""

    __test__ = False  # not a test class

    tenant: dict
    device: sdk.DeviceClient

    @property
    def device_id(self) -> str:
        return self.device.device_id

    @property
    def key(self) -> ed25519.Ed25519PrivateKey:
        return self.device.signing_key

    def envelope(
        self,
        *,
        factor: str = "keystroke",
        purpose: str = "enrol",
        batch_id: uuid.UUID | None = None,
        frame: bytes = FRAME,
    ) -> tuple[uuid.UUID, bytes]:
        now = int(time.time() * 1000)
        return self.device.build_envelope(
            frame,
            factor=factor,
            purpose=purpose,
            capture_start_ms=now - 5000,
            capture_end_ms=now,
            batch_id=batch_id,
        )

    def signed_headers(
        self,
        body: bytes,
        *,
        device_id: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        key: ed25519.Ed25519PrivateKey | None = None,
        target: str = "/v1/batches",
        content_type: str | None = CONTENT_TYPE,
    ) -> dict[str, str]:
        headers = signing.sign(
            key or self.key,
            method="POST",
            target=target,
            body=body,
            device_id=device_id or self.device_id,
            timestamp=timestamp,
            nonce=nonce,
        )
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers


def open_window(api, tenant: dict, user: str = "alice", **body) -> dict:  # type: ignore[no-untyped-def]
    """An enrolment window for the user: every factor, any device, a day, unless told otherwise."""
    body = {"factors": ["keystroke", "gait", "face"], "ttl_s": 86_400, **body}
    r = api.post(f"/v1/users/{user}/enrolments", json=body, headers=tenant["headers"])
    assert r.status_code == 201, r.text
    return r.json()


def enrol_phone(api, tenant: dict, user: str = "alice", *, window: bool = True) -> TestPhone:  # type: ignore[no-untyped-def]
    """Token from the tenant API, redeemed with a fresh key through the SDK; an enrolment
    window open for the user (as a tenant opens one when it issues the token) unless told not."""
    r = api.post(f"/v1/users/{user}/enrolment-tokens", headers=tenant["headers"])
    assert r.status_code == 201, r.text
    if window:
        open_window(api, tenant, user)
    creds = sdk.redeem_enrolment(str(api.base_url), r.json()["token"], http=api)
    keys = sdk.fetch_server_keys(str(api.base_url), http=api)
    device = sdk.DeviceClient(
        str(api.base_url),
        creds.device_id,
        creds.signing_key,
        keys,
        creds.tenant_id,
        http=api,
        max_attempts=1,
    )
    return TestPhone(tenant, device)


@pytest.fixture()
def phone(api, tenant) -> TestPhone:  # type: ignore[no-untyped-def]
    return enrol_phone(api, tenant)


def post_envelope(api, phone: TestPhone, body: bytes, **sign_kwargs):  # type: ignore[no-untyped-def]
    return api.post("/v1/batches", content=body, headers=phone.signed_headers(body, **sign_kwargs))
