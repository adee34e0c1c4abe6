"""Services of a test module's own: a database, a Redis db and an S3 bucket nobody else writes.

For tests that read what is queued across a whole deployment (the autoscaler, `tacit
scale`), or that a running stack's relay would race (the retention sweep): in the
session's shared database other tests leave jobs queued on purpose, and the session's
stack sweeps it. Import the fixtures into the module:
``from tests.isolated import api, db, services, settings``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.services import TestServices


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestServices]:
    from core.settings import get_settings

    svc = TestServices(tmp_path_factory.mktemp("isolated"))
    env = svc.start()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield svc
    finally:
        svc.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


@pytest.fixture(scope="module")
def settings(services: TestServices):  # type: ignore[no-untyped-def]
    from core.settings import Settings
    from core.storage import S3Store

    s = Settings()
    S3Store(s.storage).ensure_bucket()
    return s


@pytest.fixture()
def db(settings):  # type: ignore[no-untyped-def]
    from core.db import connect

    with connect(settings.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def api(settings):  # type: ignore[no-untyped-def]
    """The FastAPI app in-process, over this module's own services."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client
