"""The OpenAPI document, as the API really answers (docs/protocol.md has the codes).

FastAPI documents a 422 of its own shape (``{"detail": [...]}``) and nothing else. Here
every operation also declares the refusals that can reach it, each with the one error
schema ``{"error": {"code", "message"}}``:

- every operation: 408 ``body_timeout``, 413 ``body_too_large``, 422 (``invalid_request``,
  ``invalid_text``) from the request guard and validation;
- operations behind a tenant's key: 401, and the ``bearer`` security scheme;
- operations with a path parameter: 404;
- operations limited per client address: 429 (with ``Retry-After``);
- the statuses listed in ``EXTRA`` and those a route declares itself.

A test runs schemathesis against the live server with this document:
tests/api/test_openapi_contract.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import _get_api_route_for_openapi, get_openapi

from api.deps import get_tenant
from api.guard import ADDRESS_LIMITED

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "description": "Every refusal: a machine-readable code (docs/protocol.md) and a message for people.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
DESCRIPTIONS = {
    400: "malformed request",
    401: "credentials missing or not valid",
    403: "forbidden",
    404: "not found (another tenant's resources are not found either)",
    408: "the body did not arrive in time (body_timeout)",
    409: "conflicts with the resource's state",
    413: "body too large (body_too_large)",
    415: "unsupported media type or encoding",
    422: "invalid input (invalid_request, invalid_text and the codes of docs/protocol.md)",
    429: "rate limited; Retry-After says when to try again",
    503: "temporarily unavailable; Retry-After says when to try again",
}
ALWAYS = (408, 413, 422)
# Statuses beyond the rules above, by operation.
EXTRA: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/v1/devices/redeem"): (401, 404),
    ("POST", "/v1/users/{user}/devices"): (),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"): (),
    ("POST", "/v1/webhooks/messages/{message_id}/replay"): (409,),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/enable"): (),
}
RETRY_AFTER = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
READINESS = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _api_routes(app: FastAPI) -> list[Any]:
    """The routes the document lists (FastAPI nests included routers; its own helper flattens them)."""
    found = []
    for context in routing.iter_route_contexts(app.routes):
        route = _get_api_route_for_openapi(context)
        if route is not None and route.include_in_schema:
            found.append(route)
    return found


def _uses(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _uses(d, call) for d in dependant.dependencies)


def _statuses(route: Any, method: str) -> set[int]:
    statuses = set(ALWAYS) | set(EXTRA.get((method, route.path_format), ()))
    if _uses(route.dependant, get_tenant):
        statuses.add(401)
    if "{" in route.path_format:
        statuses.add(404)
    if (method, route.path_format) in ADDRESS_LIMITED:
        statuses.add(429)
    return statuses


def _error_response(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    described = (existing or {}).get("description")
    if described == "Validation Error":  # FastAPI's, for its own body shape
        described = None
    response: dict[str, Any] = {
        "description": described or DESCRIPTIONS.get(status, "refused"),
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    return response


def build(app: FastAPI) -> dict[str, Any]:
    """The document FastAPI generates, completed as the module's docstring says."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "the tenant's API key"}
    }
    for route in _api_routes(app):
        for method in route.methods:
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            declared = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            for status in sorted(_statuses(route, method) | declared):
                responses[str(status)] = _error_response(status, responses.get(str(status)))
            operation["responses"] = dict(sorted(responses.items()))
            tenant = _uses(route.dependant, get_tenant)
            operation["security"] = [{"bearer": []}] if tenant else []
    ready = schema["paths"].get("/readyz", {}).get("get")
    if ready is not None:
        ready["responses"]["200"]["content"]["application/json"]["schema"] = READINESS
        ready["responses"]["503"] = {
            "description": "a dependency does not answer",
            "content": {"application/json": {"schema": READINESS}},
        }
    return schema


def install(app: FastAPI) -> None:
    """Serve `build`'s document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
