"""A tenant's user: their fused trust, and erasure."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Path, Request, Response
from starlette.background import BackgroundTask

from api.deps import ConnDep, SettingsDep, StoreDep, TenantDep
from api.schemas_webhooks import TrustOut
from core.trust.service import user_trust
from core.users.erasure import erase_user, forget_devices
from core.users.service import get_user_id

router = APIRouter(tags=["users"])
UserPath = Path(min_length=1, max_length=200)


@router.get("/v1/users/{user}/trust", response_model=TrustOut)
def get_trust(
    tenant: TenantDep, conn: ConnDep, settings: SettingsDep, user: str = UserPath
) -> TrustOut:
    """The user's trust now, fused from their recent factor scores (docs/trust.md)."""
    user_id = get_user_id(conn, tenant_id=tenant.id, external_id=user)
    t = user_trust(
        conn, user_id=user_id, threshold=tenant.decision_threshold, settings=settings.trust
    )
    return TrustOut(user=user, **asdict(t))


@router.delete("/v1/users/{user}", status_code=204, response_class=Response)
def delete_user(
    request: Request, tenant: TenantDep, conn: ConnDep, store: StoreDep, user: str = UserPath
) -> Response:
    """Erase the user: devices, batches and their raw objects, jobs, scores, templates, tokens,
    and their devices' nonces and rate counters in Redis."""
    erased = erase_user(conn, store, tenant_id=tenant.id, external_id=user)
    # after the commit (the response's background task): a failed erasure keeps its nonces
    return Response(
        status_code=204,
        background=BackgroundTask(_forget, request.app.state.redis, erased.device_ids),
    )


def _forget(client, device_ids) -> None:  # type: ignore[no-untyped-def]
    import redis

    try:
        forget_devices(client, device_ids)
    except redis.RedisError:
        pass  # they expire within minutes anyway
