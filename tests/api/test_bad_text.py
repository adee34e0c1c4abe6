"""Text Postgres cannot hold, and JSON nested too deeply, are refused with a code (issue 14.8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.ops.conftest import make_job

NUL_URLS = [
    "/v1/users/a%00b/devices",
    "/v1/users/a%00b/trust",
    "/v1/devices?user=a%00b",
    "/v1/jobs?user=a%00b",
    "/v1/users/a%00b/enrolment-tokens",
]


def _post_endpoint(api, tenant, body: str):  # type: ignore[no-untyped-def]
    """POST a webhook endpoint as raw JSON text (escapes reach the server as written)."""
    return api.post(
        "/v1/webhooks/endpoints",
        content=body,
        headers={**tenant["headers"], "Content-Type": "application/json"},
    )


@pytest.mark.parametrize("url", NUL_URLS)
def test_nul_in_path_or_query_is_422_invalid_text(api, tenant, url):  # type: ignore[no-untyped-def]
    method = "POST" if url.endswith("enrolment-tokens") else "GET"
    r = api.request(method, url, headers=tenant["headers"])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_text"


@pytest.mark.parametrize("text", ["a\u0000b", "\ud800", "x\udfffy"])
def test_nul_or_lone_surrogate_in_json_strings_is_422_invalid_text(api, tenant, text):  # type: ignore[no-untyped-def]
    body = json.dumps({"url": "http://127.0.0.1:9/hook", "description": text})  # ascii escapes
    r = _post_endpoint(api, tenant, body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_text"
    keyed = json.dumps({"url": "http://127.0.0.1:9/hook", text: 1})
    r = _post_endpoint(api, tenant, keyed)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_text"


@pytest.mark.parametrize("depth", [40, 20_000])
def test_deeply_nested_json_is_422_invalid_request(api, tenant, depth):  # type: ignore[no-untyped-def]
    body = '{"url": "http://127.0.0.1:9/hook", "description": ' + "[" * depth + "]" * depth + "}"
    r = _post_endpoint(api, tenant, body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"


def test_ordinary_text_still_works(api, tenant):  # type: ignore[no-untyped-def]
    r = api.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hook", "description": "caf\u00e9 \U0001f600 [[1]]"},
        headers=tenant["headers"],
    )
    assert r.status_code == 201, r.text


def test_internal_job_errors_reach_the_tenant_as_a_code_and_our_message(api, db, tenant):  # type: ignore[no-untyped-def]
    # given jobs whose stored messages quote library exceptions
    leaky = (
        'OperationalError: connection to server at "10.0.0.5", port 5432 failed: password for user'
    )
    failed = make_job(
        db,
        tenant,
        status="failed",
        error_code="internal_error",
        error_message=leaky,
        finished_at=datetime.now(UTC),
    )
    retried = make_job(
        db, tenant, status="queued", error_code="transient_operationalerror", error_message=leaky
    )
    for job_id, code in ((failed, "internal_error"), (retried, "transient_operationalerror")):
        r = api.get(f"/v1/jobs/{job_id}", headers=tenant["headers"])
        assert r.status_code == 200, r.text
        error = r.json()["error"]
        # then the tenant sees the code and a message of ours, nothing of the exception
        assert error["code"] == code
        assert "10.0.0.5" not in r.text and "OperationalError" not in r.text
    listed = api.get("/v1/jobs", headers=tenant["headers"]).text
    assert "10.0.0.5" not in listed
