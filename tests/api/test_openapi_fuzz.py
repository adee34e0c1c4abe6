"""Schema-driven fuzzing of the whole API: whatever schemathesis sends, no 5xx comes back.

Examples are capped so the run stays well under a minute; the app runs in process over
the real Postgres, Redis and S3 of the test session.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error

from api.app import create_app
from tests.api.schema_cases import each_case, tenant_bearer


@pytest.fixture(scope="module")
def api_schema(settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    with TestClient(app):  # runs the lifespan: pools and clients on app.state
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def bearer(settings):  # type: ignore[no-untyped-def]
    return tenant_bearer(settings, "fuzz")


EXAMPLES_PER_OPERATION = 25


def test_no_server_errors(api_schema, bearer):  # type: ignore[no-untyped-def]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10  # every route is in the schema
    statuses: list[int] = []
    for operation in operations:

        @each_case(operation, EXAMPLES_PER_OPERATION)
        def no_5xx(case):  # type: ignore[no-untyped-def]
            response = case.call_and_validate(headers=bearer, checks=[not_a_server_error])
            statuses.append(response.status_code)

        no_5xx()
    # the requests reached the routes (not only the authentication in front of them)
    assert len(statuses) >= 5 * len(operations)
    assert any(200 <= s < 300 for s in statuses) and any(s == 422 for s in statuses)
