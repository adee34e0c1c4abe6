"""Routes of the operator dashboard: the page, its login, its JSON API and static files."""

from __future__ import annotations

import json
import logging
import uuid
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from api import proxy
from api.ops import auth, data
from core import factors as registry
from core.db import transaction
from core.errors import NotFound
from core.jobs import endings

log = logging.getLogger("tacit.ops")
router = APIRouter(prefix="/ops", include_in_schema=False)

STATIC = resources.files("api.ops") / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
# The page runs only its own script and style: no inline code, nothing from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def _page(name: str, status: int = 200, **fill: str) -> HTMLResponse:
    html = (STATIC / name).read_text(encoding="utf-8")
    for key, value in fill.items():
        html = html.replace("{{" + key + "}}", value)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


@router.get("")
def dashboard(request: Request) -> Response:
    """The dashboard, or the login form with 401 when the operator token was not shown."""
    if auth.authenticated(request) is None:
        return _page("login.html", 401, message="")
    return _page("index.html")


@router.post("/login")
async def login(request: Request) -> Response:
    """Form login: a right token opens a server-side session and goes to the dashboard.

    The request guard caps the form's size and the attempts per client address a minute.
    """
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("token") or [""])[0]
    settings = request.app.state.settings
    token: str = settings.ops_token
    if not given or not auth.token_matches(given, token):
        return _page("login.html", 401, message="That token is not the operator token.")
    ttl = settings.ops.session_ttl_s
    session_id = await run_in_threadpool(auth.open_session, request.app.state.redis, token, ttl)
    response = RedirectResponse("/ops", status_code=303)
    response.set_cookie(
        auth.COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=proxy.scheme(request, settings) == "https",
        path="/ops",
        max_age=ttl,
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    auth.close_session(request.app.state.redis, request.cookies.get(auth.COOKIE))
    response = RedirectResponse("/ops", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/ops")
    return response


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The dashboard's own CSS and JavaScript (public: they hold no data)."""
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if "/" in name or suffix not in STATIC_TYPES or not (STATIC / name).is_file():
        raise NotFound("no such file", code="not_found")
    return Response(
        (STATIC / name).read_bytes(),
        media_type=STATIC_TYPES[suffix],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/api/overview")
async def overview(
    request: Request, _: auth.OperatorDep, minutes: int = Query(60, ge=1, le=data.MAX_MINUTES)
) -> dict[str, Any]:
    """Queues, throughput, latency, pools, dead jobs and evaluations for the last ``minutes``."""
    state = request.app.state
    return await run_in_threadpool(
        data.overview, state.pool, state.redis, state.settings, minutes=minutes
    )


@router.post("/api/jobs/{job_id}/requeue")
def requeue(request: Request, job_id: uuid.UUID, via: auth.OperatorDep) -> dict[str, Any]:
    """Put a dead job back in its queue with fresh attempts (the relay publishes it)."""
    settings = request.app.state.settings
    with transaction(request.app.state.pool) as conn:
        job = endings.requeue_dead(conn, job_id, queue_for=settings.queues.score_queue)
    log.info(
        json.dumps(
            {"event": "job_requeued", "job_id": str(job_id), "factor": job["factor"], "by": via}
        )
    )
    return {**job, "id": str(job["id"])}


@router.get("/api/evaluation/trust/{plot}.png")
def trust_plot(plot: str, _: auth.OperatorDep) -> Response:
    """The trust evaluation's trust-over-time plot (`trust`) or DET curve (`det`)."""
    folder = data.trust_evaluation_dir() if plot in ("trust", "det") else None
    if folder is None or not (folder / f"{plot}.png").is_file():
        raise NotFound("no such trust evaluation plot", code="evaluation_missing")
    return FileResponse(folder / f"{plot}.png", media_type="image/png")


@router.get("/api/evaluation/{factor}/det.png")
def det_curve(factor: str, _: auth.OperatorDep) -> Response:
    """The DET curve image the factor's evaluation wrote next to its report."""
    folder = data.evaluation_dir(factor) if factor in registry.names() else None
    if folder is None or not (folder / "det.png").is_file():
        raise NotFound("no DET curve for this factor", code="evaluation_missing")
    return FileResponse(folder / "det.png", media_type="image/png")
