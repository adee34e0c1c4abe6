"""One delivery attempt: claim, check the target again, sign, POST, record the outcome."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from psycopg_pool import ConnectionPool

from core.db import make_pool, transaction
from core.errors import InvalidInput
from core.metrics import WEBHOOK_DELIVERIES
from core.protocol.retry_after import parse_retry_after
from core.settings import Settings
from core.webhooks import deliveries, sealing, signing, ssrf
from core.webhooks.policy import AttemptResult
from workers.webhooks import http

log = logging.getLogger("tacit.webhooks")
MAX_RESPONSE_BYTES = 64 * 1024  # the body is not used; read a little so the connection ends cleanly
USER_AGENT = "Tacit-Webhooks/1"


@dataclass
class WebhookRuntime:
    settings: Settings
    pool: ConnectionPool

    def close(self) -> None:
        self.pool.close()


_runtime: WebhookRuntime | None = None


def init(settings: Settings) -> WebhookRuntime:
    global _runtime
    # threads wait on HTTP far longer than on Postgres: a small pool serves many of them
    pool = make_pool(
        settings.database_url,
        min_size=1,
        max_size=min(16, settings.webhooks.threads),
        name="webhooks",
    )
    pool.open(wait=False)
    _runtime = WebhookRuntime(settings, pool)
    return _runtime


def get() -> WebhookRuntime:
    if _runtime is None:
        raise RuntimeError("webhook runtime not initialised; start with `tacit worker --webhooks`")
    return _runtime


def _host_header(target: ssrf.Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


NO_RESPONSE = "no_response: no HTTP response within the deadline (connection failed or timed out)"


def post(
    target: ssrf.Target, body: bytes, headers: dict[str, str], *, timeout_s: float
) -> AttemptResult:
    """POST to the address that was checked (not a fresh lookup), under one deadline for the
    whole attempt; never follows redirects. Transport failures all read the same."""
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = {**headers, "user-agent": USER_AGENT}
    t0 = time.monotonic()
    try:
        r = http.post(
            target.addresses[0],
            target.port,
            tls_host=target.host if target.scheme == "https" else None,
            host_header=_host_header(target),
            target=path,
            headers=sent,
            body=body,
            deadline_s=timeout_s,
            max_body=MAX_RESPONSE_BYTES,
        )
    except http.NoResponse:
        return AttemptResult(None, NO_RESPONSE, (time.monotonic() - t0) * 1e3)
    ms = (time.monotonic() - t0) * 1e3
    error = None if 200 <= r.status < 300 else f"HTTP {r.status}"
    return AttemptResult(r.status, error, ms, parse_retry_after(r.headers.get("retry-after")))


def deliver(rt: WebhookRuntime, delivery_id: uuid.UUID) -> str | None:
    """Make one attempt of a due delivery; returns the outcome's kind, or None if it was not ours to make."""
    ws = rt.settings.webhooks
    with transaction(rt.pool) as conn:
        if deliveries.endpoint_busy(
            conn, delivery_id, cap=ws.max_in_flight_per_endpoint, delay_s=ws.busy_delay_s
        ):
            return "busy"
        d = deliveries.claim(
            conn,
            delivery_id,
            lease_s=2 * ws.timeout_s + 30,
            sealing_key=sealing.parse_key(ws.secret_key),
        )
    if d is None:
        return None  # a duplicate message, not yet due, or finished
    if not d.endpoint_enabled:
        with transaction(rt.pool) as conn:
            deliveries.abandon(conn, d, reason="endpoint disabled")
        return "dead"
    try:
        target = ssrf.check_url(
            d.url, allowlist=ws.allowlist, ports=ws.ports
        )  # DNS may have changed since registration
    except InvalidInput as e:
        # the code only: what a name resolves to inside our network is not the tenant's to learn
        result = AttemptResult(None, f"refused: {e.code}", 0.0)
    else:
        ts = int(time.time())
        result = post(
            target,
            d.payload,
            signing.headers(d.secrets, d.message_id, ts, d.payload),
            timeout_s=ws.timeout_s,
        )
    with transaction(rt.pool) as conn:
        outcome = deliveries.record(conn, d, result, ws)
    # the dashboards' and alerts' outcomes: delivered, retry, failed (dead or gone)
    WEBHOOK_DELIVERIES.labels(
        outcome={"succeeded": "delivered", "retry": "retry"}.get(outcome.kind, "failed")
    ).inc()
    log.info(
        json.dumps(
            {
                "event": "webhook_attempt",
                "delivery_id": str(d.id),
                "message_id": d.message_id,
                "endpoint_id": str(d.endpoint_id),
                "attempt": d.attempt,
                "status_code": result.status_code,
                "outcome": outcome.kind,
                "latency_ms": round(result.latency_ms, 1),
                "next_in_s": round(outcome.delay_s, 1),
            }
        )
    )
    return outcome.kind
