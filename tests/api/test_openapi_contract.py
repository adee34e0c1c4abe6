"""The OpenAPI document tells the truth (issue 14.12): schemathesis against the live server.

Every generated request must get a status its operation declares, never a 5xx, and
an error body of the documented schema ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections import Counter

import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.api.live import live_api, read_response
from tests.api.schema_cases import each_case, tenant_bearer

EXAMPLES_PER_OPERATION = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


@pytest.fixture(scope="module")
def live(settings):  # type: ignore[no-untyped-def]
    with live_api(settings) as (host, port):
        yield f"http://{host}:{port}"


@pytest.fixture(scope="module")
def bearer(settings):  # type: ignore[no-untyped-def]
    return tenant_bearer(settings, "contract")


def test_every_answer_is_declared_and_matches_its_schema(live, bearer):  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_url(live + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:

        @each_case(operation, EXAMPLES_PER_OPERATION)
        def conforms(case):  # type: ignore[no-untyped-def]
            response = case.call(base_url=live, headers=bearer)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:  # collected, reported together below
                for e in group.exceptions:
                    title = str(e).splitlines()[0]
                    failures.append(
                        f"{case.operation.label} -> {response.status_code}: {title} {response.text[:160]}"
                    )

        conforms()
    assert not failures, "\n".join(sorted(set(failures))[:60])
    print("statuses answered:", dict(sorted(statuses.items())), "requests:", sum(statuses.values()))
    assert statuses and not any(s >= 500 for s in statuses)
    assert any(200 <= s < 300 for s in statuses) and statuses[422] > 0


def _declared_huge(
    live: str, method: str, target: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    """Declare a 64 MiB body and send none of it, on a raw socket; the status and body answered."""
    host, port = live.removeprefix("http://").split(":")
    lines = [
        f"{method} {target} HTTP/1.1",
        f"Host: {host}",
        "Content-Length: 67108864",
        "Connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reply = read_response(sock, timeout=5)
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _concrete(path: str) -> str:
    """A path of the template with made-up parameter values."""
    import re

    return re.sub(
        r"\{[^}]+\}", lambda m: "u-1" if m.group(0) == "{user}" else str(uuid.uuid4()), path
    )


def test_documented_errors_against_live_calls(live, bearer):  # type: ignore[no-untyped-def]
    import httpx
    import jsonschema

    document = httpx.get(live + "/openapi.json").json()
    error_schema = document["components"]["schemas"]["Error"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "the tenant's API key",
    }
    calls = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            # every refusal it declares has the one error schema
            for status, response in responses.items():
                if int(status) >= 400 and path != "/readyz":
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"
                    }, (method, path, status)
            url = live + _concrete(path)
            # a body over every cap, declared: 413, documented
            status, body = _declared_huge(live, method.upper(), _concrete(path), bearer)
            assert status == 413 and "413" in responses, (method, path, status)
            jsonschema.validate(json.loads(body), error_schema)
            calls += 1
            # without the tenant's key: 401, documented, for every operation that takes one
            if operation["security"]:
                r = httpx.request(method, url)
                assert r.status_code == 401 and "401" in responses, (method, path, r.status_code)
                jsonschema.validate(r.json(), error_schema)
                calls += 1
            # a NUL in the query: 422 invalid_text, documented
            r = httpx.request(method, url + "?x=%00", headers=bearer)
            assert r.status_code == 422 and "422" in responses, (method, path, r.status_code)
            assert r.json()["error"]["code"] == "invalid_text"
    assert calls >= 40
