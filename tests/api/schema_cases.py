"""Shared set-up of the schemathesis tests: envelopes as binary bodies, a tenant's key, and
the same generated cases on every run."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import hypothesis
import schemathesis

from core.protocol.envelope import CONTENT_TYPE
from core.settings import Settings

# Envelopes are opaque bytes to the schema: send generated ones as a binary body.
schemathesis.serializer.alias(CONTENT_TYPE, "application/octet-stream")


def tenant_bearer(settings: Settings, name: str) -> dict[str, str]:
    """A new tenant's key as an Authorization header, so requests reach past authentication."""
    from core.db import connect
    from core.tenants.service import create_tenant

    with connect(settings.database_url) as conn:
        _, key = create_tenant(conn, name=f"{name}-{uuid.uuid4().hex[:6]}")
    return {"Authorization": f"Bearer {key.token}"}


def each_case(operation: Any, examples: int) -> Callable[[Callable[..., None]], Any]:
    """Run the decorated function on ``examples`` cases of the operation (derandomized)."""

    def wrap(test: Callable[..., None]) -> Any:
        return hypothesis.given(case=operation.as_strategy())(
            hypothesis.settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(hypothesis.HealthCheck),
            )(test)
        )

    return wrap
