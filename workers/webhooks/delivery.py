"""One delivery attempt: claim, check the target again, sign, POST, record the outcome."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass

import httpx
from psycopg_pool import ConnectionPool

from core.db import make_pool, transaction
from core.errors import InvalidInput
from core.settings import Settings
from core.webhooks import deliveries, signing, ssrf
from core.webhooks.policy import AttemptResult, parse_retry_after

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


def post(
    target: ssrf.Target, body: bytes, headers: dict[str, str], *, timeout_s: float
) -> AttemptResult:
    """POST to the address that was checked (not a fresh lookup); never follows redirects."""
    url = httpx.URL(target.url).copy_with(host=target.addresses[0])
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    sent = {**headers, "host": _host_header(target), "user-agent": USER_AGENT}
    t0 = time.monotonic()
    try:
        with (
            httpx.Client(
                timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False
            ) as client,
            client.stream("POST", url, content=body, headers=sent, extensions=extensions) as r,
        ):
            read = 0
            for chunk in r.iter_bytes():
                read += len(chunk)
                if read > MAX_RESPONSE_BYTES or time.monotonic() - t0 > timeout_s:
                    break
        ms = (time.monotonic() - t0) * 1e3
        error = None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}"
        return AttemptResult(
            r.status_code, error, ms, parse_retry_after(r.headers.get("retry-after"))
        )
    except httpx.TimeoutException:
        return AttemptResult(None, f"timeout after {timeout_s:g}s", (time.monotonic() - t0) * 1e3)
    except httpx.HTTPError as e:
        return AttemptResult(
            None, f"{e.__class__.__name__}: {e}"[:300], (time.monotonic() - t0) * 1e3
        )


def deliver(rt: WebhookRuntime, delivery_id: uuid.UUID) -> str | None:
    """Make one attempt of a due delivery; returns the verdict, or None if it was not ours to make."""
    ws = rt.settings.webhooks
    with transaction(rt.pool) as conn:
        d = deliveries.claim(conn, delivery_id, lease_s=2 * ws.timeout_s + 30)
    if d is None:
        return None  # a duplicate message, not yet due, or finished
    if not d.endpoint_enabled:
        with transaction(rt.pool) as conn:
            deliveries.abandon(conn, d, reason="endpoint disabled")
        return "dead"
    try:
        target = ssrf.check_url(
            d.url, allowlist=ws.allowlist
        )  # DNS may have changed since registration
    except InvalidInput as e:
        result = AttemptResult(None, f"refused: {e.message}", 0.0)
    else:
        ts = int(time.time())
        result = post(
            target,
            d.payload,
            signing.headers(d.secrets, d.message_id, ts, d.payload),
            timeout_s=ws.timeout_s,
        )
    with transaction(rt.pool) as conn:
        verdict = deliveries.record(conn, d, result, ws)
    log.info(
        json.dumps(
            {
                "event": "webhook_attempt",
                "delivery_id": str(d.id),
                "message_id": d.message_id,
                "endpoint_id": str(d.endpoint_id),
                "attempt": d.attempt,
                "status_code": result.status_code,
                "outcome": verdict.kind,
                "latency_ms": round(result.latency_ms, 1),
                "next_in_s": round(verdict.delay_s, 1),
            }
        )
    )
    return verdict.kind
