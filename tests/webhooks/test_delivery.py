"""One attempt at a time, in this process, against a real receiver and real Postgres.

Each event is marked published as it is written, as the relay would, so the stack's
relay (if a session stack runs) leaves it to the test.
"""

from __future__ import annotations

import threading
import time
import uuid

from core.webhooks.events import emit
from tests.webhooks.conftest import register


def emit_here(db, tenant_id) -> tuple[str, uuid.UUID]:  # type: ignore[no-untyped-def]
    with db.transaction():
        msg = emit(
            db, tenant_id=tenant_id, event_type="job.completed", data={"job_id": str(uuid.uuid4())}
        )
        assert msg is not None
        row = db.execute(
            "UPDATE webhook_deliveries SET published_at = now() WHERE message_id = %s RETURNING id",
            (msg,),
        ).fetchone()
    return msg, row["id"]


def delivery(db, delivery_id) -> dict:  # type: ignore[no-untyped-def]
    return db.execute(
        "SELECT *, next_attempt_at - now() AS wait FROM webhook_deliveries WHERE id = %s",
        (delivery_id,),
    ).fetchone()


def test_a_delivery_is_signed_verified_and_logged(api, tenant, db, receiver, webhook_rt) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client import REGISTRY

    from workers.webhooks.delivery import deliver

    def delivered() -> float:
        return (
            REGISTRY.get_sample_value("tacit_webhook_deliveries_total", {"outcome": "delivered"})
            or 0.0
        )

    ep = register(api, tenant, receiver.url, receiver=receiver)
    msg, did = emit_here(db, tenant["id"])
    before = delivered()
    assert deliver(webhook_rt, did) == "succeeded"
    assert delivered() == before + 1  # counted where Prometheus scrapes the webhook pool
    (req,) = receiver.requests
    assert req.webhook_id == msg and req.verified_by == [0]
    assert receiver.processed[msg]["type"] == "job.completed" and len(req.body) < 20_000
    assert delivery(db, did)["status"] == "succeeded"
    log = api.get(f"/v1/webhooks/endpoints/{ep['id']}/attempts", headers=tenant["headers"]).json()
    (a,) = log["items"]
    assert (a["message_id"], a["status_code"], a["outcome"], a["attempt"]) == (
        msg,
        200,
        "succeeded",
        1,
    )
    assert a["latency_ms"] > 0
    # a second message of the same delivery never goes out twice
    assert deliver(webhook_rt, did) is None and len(receiver.requests) == 1


def test_410_disables_the_endpoint_and_says_why(api, tenant, db, receiver, webhook_rt) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import deliver

    ep = register(api, tenant, receiver.url, receiver=receiver)
    receiver.answer = lambda _id, _n: (410, {})
    _, did = emit_here(db, tenant["id"])
    assert deliver(webhook_rt, did) == "gone"
    got = api.get(f"/v1/webhooks/endpoints/{ep['id']}", headers=tenant["headers"]).json()
    assert got["status"] == "disabled" and "410" in got["disabled_reason"]
    assert delivery(db, did)["status"] == "dead"
    # and new events are no longer queued for it
    with db.transaction():
        assert emit(db, tenant_id=tenant["id"], event_type="job.completed", data={}) is None


def test_during_rotation_both_secrets_sign(api, tenant, db, receiver, webhook_rt) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import deliver

    ep = register(api, tenant, receiver.url, receiver=receiver)
    r = api.post(f"/v1/webhooks/endpoints/{ep['id']}/rotate-secret", headers=tenant["headers"])
    receiver.secrets.append(r.json()["secret"])
    _, did = emit_here(db, tenant["id"])
    assert deliver(webhook_rt, did) == "succeeded"
    assert receiver.requests[0].verified_by == [0, 1]
    assert len(receiver.requests[0].headers["webhook-signature"].split(" ")) == 2


def test_retry_after_is_honoured_and_redirects_are_not_followed(
    api, tenant, db, receiver, webhook_rt
) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import deliver

    register(api, tenant, receiver.url, receiver=receiver)
    receiver.answer = lambda _id, _n: (503, {"Retry-After": "30"})
    _, did = emit_here(db, tenant["id"])
    assert deliver(webhook_rt, did) == "retry"
    d = delivery(db, did)
    assert d["status"] == "pending" and 25 < d["wait"].total_seconds() <= 30
    receiver.answer = lambda _id, _n: (302, {"Location": receiver.url + "/elsewhere"})
    _, did = emit_here(db, tenant["id"])
    assert deliver(webhook_rt, did) == "retry"
    assert [r.webhook_id for r in receiver.requests].count(receiver.requests[-1].webhook_id) == 1


def test_a_receiver_that_hangs_times_out(api, tenant, db, receiver, webhook_rt) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import WebhookRuntime, deliver

    register(api, tenant, receiver.url, receiver=receiver)
    receiver.hang = threading.Event()
    quick = webhook_rt.settings.model_copy(
        update={"webhooks": webhook_rt.settings.webhooks.model_copy(update={"timeout_s": 1.0})}
    )
    _, did = emit_here(db, tenant["id"])
    t0 = time.monotonic()
    assert deliver(WebhookRuntime(quick, webhook_rt.pool), did) == "retry"
    assert time.monotonic() - t0 < 3
    err = db.execute(
        "SELECT error FROM webhook_attempts WHERE delivery_id = %s", (did,)
    ).fetchone()["error"]
    assert err.startswith("no_response")


def test_an_endpoint_failing_for_days_is_disabled(api, tenant, db, receiver, webhook_rt) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import deliver

    ep = register(api, tenant, receiver.url, receiver=receiver)
    receiver.answer = lambda _id, _n: (500, {})
    # given an endpoint that has failed without a success for six days
    db.execute(
        "UPDATE webhook_endpoints SET failing_since = now() - interval '6 days' WHERE id = %s",
        (ep["id"],),
    )
    _, did = emit_here(db, tenant["id"])
    # when one more attempt fails
    assert deliver(webhook_rt, did) == "dead"
    # then it is disabled, and the tenant can read why
    got = api.get(f"/v1/webhooks/endpoints/{ep['id']}", headers=tenant["headers"]).json()
    assert got["status"] == "disabled" and "failing continuously since" in got["disabled_reason"]
    assert "HTTP 500" in got["disabled_reason"]
    # and a success in between resets the clock
    api.post(f"/v1/webhooks/endpoints/{ep['id']}/enable", headers=tenant["headers"])
    receiver.answer = lambda _id, _n: (200, {})
    _, did = emit_here(db, tenant["id"])
    assert deliver(webhook_rt, did) == "succeeded"
    assert (
        db.execute(
            "SELECT failing_since FROM webhook_endpoints WHERE id = %s", (ep["id"],)
        ).fetchone()["failing_since"]
        is None
    )


def test_after_the_last_attempt_a_message_is_dead_and_replay_sends_it_again(
    api, tenant, db, receiver, webhook_rt
) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import deliver

    register(api, tenant, receiver.url, receiver=receiver)
    receiver.answer = lambda _id, _n: (500, {})
    msg, did = emit_here(db, tenant["id"])
    last = len(webhook_rt.settings.webhooks.retry_schedule_s)
    db.execute("UPDATE webhook_deliveries SET attempts = %s WHERE id = %s", (last - 1, did))
    assert deliver(webhook_rt, did) == "dead"
    m = api.get(f"/v1/webhooks/messages/{msg}", headers=tenant["headers"]).json()
    (d,) = m["deliveries"]
    assert (
        d["status"] == "dead"
        and f"after {last} attempts" in d["dead_reason"]
        and "HTTP 500" in d["dead_reason"]
    )
    # when the tenant replays it (the receiver fixed)
    receiver.answer = lambda _id, _n: (200, {})
    r = api.post(f"/v1/webhooks/messages/{msg}/replay", headers=tenant["headers"])
    assert r.status_code == 202 and r.json()["deliveries"] == 1
    deliver(webhook_rt, did)  # here, or by a running stack's webhook pool: either way once
    deadline = time.monotonic() + 20
    while delivery(db, did)["status"] != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.2)
    # then it arrives, with the same webhook-id as every earlier attempt
    assert delivery(db, did)["status"] == "succeeded"
    assert {r.webhook_id for r in receiver.requests} == {msg} and len(receiver.processed) == 1
    assert (
        api.post("/v1/webhooks/messages/msg_nope/replay", headers=tenant["headers"]).status_code
        == 404
    )


def test_the_guard_runs_again_at_delivery(api, tenant, db, receiver, webhook_rt) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import WebhookRuntime, deliver

    # given an endpoint registered while loopback was allowlisted, and the allowlist since emptied
    register(api, tenant, receiver.url, receiver=receiver)
    strict = webhook_rt.settings.model_copy(
        update={"webhooks": webhook_rt.settings.webhooks.model_copy(update={"allowlist": []})}
    )
    _, did = emit_here(db, tenant["id"])
    assert deliver(WebhookRuntime(strict, webhook_rt.pool), did) == "retry"
    assert receiver.requests == []
    err = db.execute(
        "SELECT error FROM webhook_attempts WHERE delivery_id = %s", (did,)
    ).fetchone()["error"]
    assert err.startswith("refused")
