"""Operations tests: jobs in given states, an app with its own queue names, the operator token."""

from __future__ import annotations

import uuid

import pytest

OPS_TOKEN = "9f2c6e1ab7d04c58e3f1a92b6d7c0e4f5a8b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"  # 32 bytes, hex


@pytest.fixture(scope="session")
def ops_settings(settings):  # type: ignore[no-untyped-def]
    """The session's settings with an operator token and queue names no worker consumes."""
    from core.settings import QueueSettings

    tag = uuid.uuid4().hex[:6]
    queues = QueueSettings(
        keystroke=f"score.keystroke.{tag}",
        gait=f"score.gait.{tag}",
        face=f"score.face.{tag}",
        webhooks=f"webhooks.{tag}",
    )
    return settings.model_copy(update={"ops_token": OPS_TOKEN, "queues": queues})


@pytest.fixture(scope="session")
def ops_api(ops_settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(ops_settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture()
def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPS_TOKEN}"}


def make_job(
    db, tenant, *, factor: str = "keystroke", status: str = "queued", **columns
) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """A job (with its batch and outbox row) put straight into ``status``."""
    from core.batches.service import NewBatch, utcnow
    from core.devices.service import create_device
    from tests.batches import record_batch_sync

    device = create_device(db, tenant_id=tenant["id"], user_external_id=f"u-{uuid.uuid4().hex[:6]}")
    accepted = record_batch_sync(
        db,
        device=device,
        batch=NewBatch(uuid.uuid4(), factor, "verify", b"x"),
        object_key=f"raw/test/{uuid.uuid4()}",
        queue=f"score.{factor}",
        received=utcnow(),
    )
    sets = {"status": status, **columns}
    assignments = ", ".join(f"{k} = %({k})s" for k in sets)
    db.execute(f"UPDATE jobs SET {assignments} WHERE id = %(id)s", {**sets, "id": accepted.job_id})
    db.execute("UPDATE outbox SET published_at = now() WHERE job_id = %s", (accepted.job_id,))
    return accepted.job_id


def loadable_factors() -> tuple[str, ...]:
    """The factors whose pipeline and committed weights load here (the others have no worker yet)."""
    from core.factors import load_pipeline

    found = []
    for factor in ("keystroke", "gait", "face"):
        try:
            load_pipeline(factor, device="cpu")
        except Exception:  # noqa: BLE001 - no package, no weights or a half-committed factor
            continue
        found.append(factor)
    return tuple(found)


@pytest.fixture(scope="session")
def ops_stack(request, settings, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A running stack as separate processes: the session's ``stack`` when every factor loads,
    otherwise the API, the relay, the webhook pool and a pool per factor that loads."""
    import os
    from pathlib import Path

    factors = loadable_factors()
    if len(factors) == 3:
        st = request.getfixturevalue("stack")
        return st, st.env.get("TACIT_OPS_TOKEN", settings.ops_token)
    from cli.stack import KEYRING_ENV, Stack, free_port

    services = request.getfixturevalue("services")
    env = dict(os.environ, TACIT_OPS_TOKEN=OPS_TOKEN, **{KEYRING_ENV: str(services.keyring_file)})
    st = Stack(Path(tmp_path_factory.mktemp("ops-stack")), env, free_port(), factors=factors)
    st.start(timeout=240)
    request.addfinalizer(st.stop)
    return st, OPS_TOKEN
