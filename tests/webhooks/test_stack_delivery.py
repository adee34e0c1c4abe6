"""Deliveries through the real relay and `tacit worker --webhooks` processes.

The test settings (tests/services.py) shorten the retry schedule to seconds and
allowlist 127.0.0.1 for these receivers.
"""

from __future__ import annotations

import threading
import time
import uuid

from cli.stack import free_port
from core.webhooks import events
from tests.webhooks import rows
from tests.webhooks.conftest import emit, register
from tests.webhooks.receiver import Receiver


def until(check, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_receiver_down_then_up_gets_every_event_once(webhook_stack, api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    # given an endpoint whose receiver is down, and a receiver that loses its first answer to each id
    port = free_port()
    receiver = Receiver(answer=lambda _id, seen: (500, {}) if seen == 1 else (200, {}))
    receiver.port = port
    register(api, tenant, receiver.url, receiver=receiver)
    # when events happen while it is down
    ids = [emit(db, tenant["id"], "job.completed", job_id=str(uuid.uuid4())) for _ in range(4)]
    ids.append(emit(db, tenant["id"], "job.failed", job_id=str(uuid.uuid4()), status="dead"))
    assert all(ids)
    # (each of them tried at least once while it is down)
    assert until(
        lambda: (
            db.execute(
                "SELECT count(DISTINCT message_id) AS n FROM webhook_attempts"
                " WHERE message_id = ANY(%s) AND status_code IS NULL",
                (ids,),
            ).fetchone()["n"]
            == len(ids)
        ),
        15,
    )
    # and it comes back up
    receiver.start(port)
    try:
        assert until(lambda: set(receiver.processed) == set(ids), 40), receiver.processed.keys()
        assert until(lambda: receiver.duplicates >= len(ids), 20)
    finally:
        receiver.stop()
    # then every event arrived, verified, processed once, under one webhook-id per event
    assert receiver.unverified == 0
    assert all(r.verified_by == [0] for r in receiver.requests)
    assert set(receiver.processed) == set(ids) and len(receiver.processed) == len(ids)
    states = db.execute(
        "SELECT d.status, d.attempts FROM webhook_deliveries d WHERE d.message_id = ANY(%s)", (ids,)
    ).fetchall()
    assert all(s["status"] == "succeeded" and s["attempts"] >= 3 for s in states), states
    refused = db.execute(
        "SELECT count(*) AS n FROM webhook_attempts WHERE message_id = ANY(%s)"
        " AND status_code IS NULL",
        (ids,),
    ).fetchone()["n"]
    assert refused >= len(ids)  # the attempts while it was down are in the log


def test_a_hanging_receiver_does_not_delay_another_tenant(webhook_stack, api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    # given tenant A's receiver that hangs, holding several deliveries
    slow = Receiver(hang=threading.Event()).start()
    fast = Receiver().start()
    try:
        a = register(api, tenant, slow.url, receiver=slow)
        t_b, key_b = create_tenant(db, name=f"b-{uuid.uuid4().hex[:6]}")
        tenant_b = {"id": t_b.id, "headers": {"Authorization": f"Bearer {key_b.token}"}}
        register(api, tenant_b, fast.url, receiver=fast)
        for _ in range(6):
            emit(db, tenant["id"])
        assert until(
            lambda: (
                len(slow.requests) == 0
                and db.execute(
                    "SELECT count(*) AS n FROM webhook_deliveries WHERE endpoint_id = %s AND lease_until > now()",
                    (a["id"],),
                ).fetchone()["n"]
                >= 3
            ),
            10,
        )
        # when tenant B has an event
        t0 = time.monotonic()
        msg = emit(db, tenant_b["id"])
        # then it is delivered at once, while A's receiver still hangs
        assert until(lambda: msg in fast.processed, 4.0), "tenant B waited behind tenant A"
        assert time.monotonic() - t0 < 4.0
        assert slow.requests == []
    finally:
        api.delete(f"/v1/webhooks/endpoints/{a['id']}", headers=tenant["headers"])
        slow.stop()
        fast.stop()


def test_job_events_and_trust_changes_are_announced(
    webhook_stack, api, tenant, db, receiver
) -> None:  # type: ignore[no-untyped-def]
    from core.settings import get_settings

    register(api, tenant, receiver.url, receiver=receiver)
    # the fusion this test's arithmetic is written for, whatever the defaults are
    trust = get_settings().trust.model_copy(
        update={
            "prior_probability": 0.9,
            "half_life_s": {"keystroke": 30.0, "gait": 900.0, "face": 120.0},
            "llr_clip": 3.0,
            "llr_clip_negative": None,
            "weak_llr": 1.0,
            "max_samples": 1,
        }
    )

    def finish(llr: float, factor: str = "keystroke") -> None:
        row = rows.job(db, tenant["id"], "carol", factor=factor, llr=llr)
        with (
            db.transaction()
        ):  # as workers/scoring.py does, in the transaction that finishes the job
            events.job_completed(db, job_id=row.job_id, trust=trust)

    # with that fusion (prior 0.9: log-odds 2.197; |llr| shrinks by 1, clipped at 3;
    # the newest score per factor):
    # genuine evidence: job.completed and a first trust.changed (2.197 + 2, p = 0.985)
    finish(3.0)
    # impostor gait evidence: trust falls but stays genuine (2.197 + 2 - 3, p = 0.768)
    finish(-6.0, "gait")
    # impostor face evidence too: the decision flips (2.197 + 2 - 3 - 3 = -1.80, p = 0.142)
    finish(-6.0, "face")
    # the same face evidence again: no trust.changed (only decay moves p)
    finish(-5.0, "face")
    failed = rows.job(db, tenant["id"], "carol", status="failed")
    with db.transaction():
        events.job_failed(db, job_id=failed.job_id)
    assert until(lambda: len(receiver.processed) == 8, 20), [
        p["type"] for p in receiver.processed.values()
    ]
    done = receiver.of_type("job.completed")
    assert len(done) == 4 and all(
        p["data"]["user"] == "carol" and "score" in p["data"] for p in done
    )
    changes = sorted(receiver.of_type("trust.changed"), key=lambda p: p["timestamp"])
    assert [c["data"]["decision"] for c in changes] == ["genuine", "genuine", "impostor"]
    assert (
        changes[0]["data"]["previous"] is None
        and changes[2]["data"]["previous"]["decision"] == "genuine"
    )
    # keystroke evidence halves every 30 s: a few seconds of test move p by about 0.005 each
    assert abs(changes[2]["data"]["probability"] - 0.1414) < 0.03
    (f,) = receiver.of_type("job.failed")
    assert f["data"]["job_id"] == str(failed.job_id) and f["data"]["status"] == "failed"
