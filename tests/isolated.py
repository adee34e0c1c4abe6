"""Services of a test module's own: a database, a Redis db and an S3 bucket nobody else writes.

For tests that read what is queued across a whole deployment (the autoscaler, `tacit
scale`), or that a running stack's relay would race (the retention sweep): in the
session's shared database other tests leave jobs queued on purpose, and the session's
stack sweeps it. Import the fixtures into the module:
``from tests.isolated import api, db, services, settings``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import (
    TestServices,
    api_client,
    connection,
    services_in_environ,
    settings_with_bucket,
)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestServices]:
    with services_in_environ(tmp_path_factory.mktemp("isolated")) as svc:
        yield svc


@pytest.fixture(scope="module")
def settings(services: TestServices):  # type: ignore[no-untyped-def]
    return settings_with_bucket()


@pytest.fixture()
def db(settings):  # type: ignore[no-untyped-def]
    with connection(settings) as conn:
        yield conn


@pytest.fixture(scope="module")
def api(settings):  # type: ignore[no-untyped-def]
    """The FastAPI app in-process, over this module's own services."""
    with api_client(settings) as client:
        yield client
