"""Session-wide real services and per-test tenants. See tests/services.py."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.services import TestServices, service_fixtures

services, settings, db, api = service_fixtures("session", "services")


@pytest.fixture()
def tenant(db):  # type: ignore[no-untyped-def]
    """A fresh tenant with an API key, so tests never see each other's data."""
    from core.tenants.service import create_tenant

    t, key = create_tenant(db, name=f"t-{uuid.uuid4().hex[:8]}")
    return {"id": t.id, "key": key.token, "headers": {"Authorization": f"Bearer {key.token}"}}


@pytest.fixture(scope="session")
def keyring_file(services: TestServices) -> Path:
    """The run's private key file (mode 0600), published in server_keys; for workers only."""
    return services.keyring_file


@pytest.fixture(scope="session")
def stack(settings, services, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Real worker processes (one per factor), the relay and the API, as separate processes."""
    from cli.stack import KEYRING_ENV, Stack, free_port

    env = dict(
        os.environ, **{KEYRING_ENV: str(services.keyring_file)}
    )  # Stack gives it to workers only
    st = Stack(Path(tmp_path_factory.mktemp("stack")), env, free_port())
    st.start(timeout=180)
    try:
        yield st
    finally:
        st.stop()
