"""The API tier holds no decryption key: it never opens the key file, and publishes public halves only."""

from __future__ import annotations

import sys

from fastapi.testclient import TestClient

from api.app import create_app
from core.protocol.keyring import PrivateKeyring, b64url
from tests.api.conftest import enrol_phone, post_envelope

_opened: list[str] = []
_watching: list[str] = []


def _audit(event: str, args: tuple) -> None:  # type: ignore[type-arg]
    if event == "open" and _watching and args and str(args[0]) in _watching:
        _opened.append(str(args[0]))


sys.addaudithook(_audit)  # hooks cannot be removed; this one is idle unless a test is watching


def test_create_app_never_reads_the_key_file(settings, keyring_file, tenant):  # type: ignore[no-untyped-def]
    # given settings that (wrongly) name the key file in the API process
    configured = settings.model_copy(
        update={"crypto": settings.crypto.model_copy(update={"private_keys_file": keyring_file})}
    )
    _opened.clear()
    _watching[:] = [str(keyring_file)]
    try:
        # when the app starts, enrols a phone, takes an upload and serves keys
        with TestClient(create_app(configured), raise_server_exceptions=False) as api:
            phone = enrol_phone(api, tenant)
            assert post_envelope(api, phone, phone.envelope()[1]).status_code == 202
            keys = api.get("/v1/keys").json()["keys"]
    finally:
        _watching.clear()
    # then the file was never opened
    assert _opened == []
    # and /v1/keys carries the public halves of the ring, never a private one
    ring = PrivateKeyring.load(keyring_file)
    privates = {b64url(r.private_bytes) for r in ring.records if r.private_bytes}
    published = {k["key_id"]: k["public_key"] for k in keys}
    for r in ring.records:
        assert published[r.key_id] == b64url(r.public_bytes)
    assert not privates & set(published.values())
    assert all(set(k) == {"key_id", "public_key", "status", "created_at"} for k in keys)


def test_the_audit_hook_sees_a_read(keyring_file):  # type: ignore[no-untyped-def]
    # the check above would pass vacuously if the hook saw nothing
    _opened.clear()
    _watching[:] = [str(keyring_file)]
    try:
        PrivateKeyring.load(keyring_file)
    finally:
        _watching.clear()
    assert _opened == [str(keyring_file)]
