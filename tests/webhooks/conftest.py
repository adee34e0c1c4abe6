"""Receivers, an in-process delivery runtime, and a stack running the relay and the webhook pool."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture()
def webhook_rt(settings):  # type: ignore[no-untyped-def]
    """The webhook pool's runtime in this process: deliveries attempted by calling deliver()."""
    from core.db import make_pool
    from workers.webhooks.delivery import WebhookRuntime

    pool = make_pool(settings.database_url, min_size=1, max_size=4, name="test-webhooks")
    pool.open(wait=True)
    try:
        yield WebhookRuntime(settings, pool)
    finally:
        pool.close()


@pytest.fixture(scope="session")
def webhook_stack(settings, services, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The API, the relay and `tacit worker --webhooks` as real processes (no scoring pools)."""
    from cli.stack import KEYRING_ENV, Stack, free_port

    # the run's key file: a stack without one would publish a key of its own as current
    env = dict(os.environ, **{KEYRING_ENV: str(services.keyring_file)})
    st = Stack(Path(tmp_path_factory.mktemp("webhook-stack")), env, free_port(), factors=())
    st.start(timeout=120)
    try:
        yield st
    finally:
        st.stop()


def register(api, tenant, url: str, event_types=(), receiver: Receiver | None = None) -> dict:  # type: ignore[no-untyped-def]
    """Register an endpoint through the API; the receiver learns its secret."""
    r = api.post(
        "/v1/webhooks/endpoints",
        json={"url": url, "event_types": list(event_types)},
        headers=tenant["headers"],
    )
    assert r.status_code == 201, r.text
    if receiver is not None:
        receiver.secrets.append(r.json()["secret"])
    return r.json()


def emit(db, tenant_id: uuid.UUID, event_type: str = "job.completed", **data) -> str | None:  # type: ignore[no-untyped-def]
    """An event committed the way the workers commit theirs."""
    from core.webhooks.events import emit as emit_event

    with db.transaction():
        return emit_event(
            db,
            tenant_id=tenant_id,
            event_type=event_type,
            data=data or {"job_id": str(uuid.uuid4())},
        )
