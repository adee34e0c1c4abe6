"""Enrolment an attacker cannot poison, on real parts: HTTP -> S3 -> Postgres -> worker processes.

The attack: a second device redeemed for the victim uploads enrol batches of the attacker's
own behaviour, so that the attacker scores as the victim from then on.
"""

from __future__ import annotations

import importlib
import json
import uuid

import numpy as np
import pytest

from cli import simulate
from sdk import client as sdk
from tests.e2e import flow

pytestmark = pytest.mark.integration
FACTOR = "keystroke"


def _phone(t: simulate.Tenancy, user: str, person: object) -> simulate.Phone:
    """A device redeemed for `user` (no enrolment window opened with it)."""
    with t.client() as c:
        r = c.post(f"/v1/users/{user}/enrolment-tokens")
        assert r.status_code == 201, r.text
    creds = sdk.redeem_enrolment(t.api_url, r.json()["token"])
    device = sdk.DeviceClient(
        t.api_url,
        creds.device_id,
        creds.signing_key,
        sdk.fetch_server_keys(t.api_url),
        creds.tenant_id,
        max_attempts=1,
    )
    return simulate.Phone(user, creds.device_id, {FACTOR: person}, device)


def _window(t: simulate.Tenancy, user: str, **body: object) -> dict:
    with t.client() as c:
        r = c.post(f"/v1/users/{user}/enrolments", json={"factors": [FACTOR], "ttl_s": 900, **body})
    assert r.status_code == 201, r.text
    return r.json()


def _capture(person: object, rng: np.random.Generator, n: int) -> bytes:
    return simulate.capture(FACTOR, person, rng, n)


def _refused(phone: simulate.Phone, body: bytes) -> str:
    """The error code of an enrol upload the API must refuse."""
    with pytest.raises(RuntimeError) as e:
        simulate.upload(None, phone, FACTOR, "enrol", body)  # type: ignore[arg-type]
    return str(e.value)


def _template(t: simulate.Tenancy, user: str) -> dict | None:
    r = flow.get(t, f"/v1/users/{user}/templates")
    assert r.status_code == 200, r.text
    return next((x for x in r.json() if x["factor"] == FACTOR), None)


def _probe(t: simulate.Tenancy, phone: simulate.Phone, body: bytes) -> float:
    jid = simulate.upload(None, phone, FACTOR, "verify", body)  # type: ignore[arg-type]
    job = flow.wait_all(t, [jid])[jid]
    assert job["status"] == "done", job["error"]
    return float(job["score"]["score"])


def test_poisoning_is_refused_held_and_undone_by_revocation(stack, settings, db):  # type: ignore[no-untyped-def]
    synth = importlib.import_module(f"pipelines.{FACTOR}.synthetic")
    rng = np.random.default_rng(13)
    t = simulate.Tenancy(
        stack.api_url,
        simulate.create_tenant(settings.database_url, f"poison-{uuid.uuid4().hex[:6]}"),
    )
    with t.client() as c:  # the tenant listens for template changes
        assert (
            c.post(
                "/v1/webhooks/endpoints",
                json={"url": "http://127.0.0.1:9/hooks", "event_types": ["template.changed"]},
            ).status_code
            == 201
        )
    victim_person, attacker_person = synth.make_person(7101), synth.make_person(7202)
    victim = _phone(t, "victim", victim_person)
    attacker = _phone(t, "victim", attacker_person)  # a second device redeemed for the victim

    # without an open window the attacker's enrol batch is refused
    assert "409 enrolment_closed" in _refused(attacker, _capture(attacker_person, rng, 8))

    # with a window for the victim's phone only, the victim enrols and the attacker is still refused
    _window(t, "victim", device_id=victim.device_id)
    ids = [
        simulate.upload(None, victim, FACTOR, "enrol", _capture(victim_person, rng, 8))
        for _ in range(3)
    ]  # type: ignore[arg-type]
    assert "409 enrolment_closed" in _refused(attacker, _capture(attacker_person, rng, 8))
    enrolled = flow.wait_all(t, ids)
    assert all(j["status"] == "done" and j["enrolment"] == "merged" for j in enrolled.values()), (
        enrolled
    )
    first = _template(t, "victim")
    assert first is not None and first["devices"] == [victim.device_id] and first["held"] == 0

    # with a window open for any device, the attacker's batch contradicts the template: held, not merged
    _window(t, "victim")
    jid = simulate.upload(None, attacker, FACTOR, "enrol", _capture(attacker_person, rng, 8))  # type: ignore[arg-type]
    job = flow.wait_all(t, [jid])[jid]
    assert (job["status"], job["enrolment"]) == ("done", "held"), job["error"]
    held = _template(t, "victim")
    assert held is not None and (held["version"], held["devices"], held["held"]) == (
        first["version"],
        first["devices"],
        1,
    )
    threshold = 0.5  # the tenant's operating point (the default)
    assert _probe(t, victim, _capture(attacker_person, rng, 4)) < threshold

    # the tenant accepts the held batch by mistake: the attacker's device is now in the template
    with t.client() as c:
        r = c.post(f"/v1/users/victim/templates/{FACTOR}/accept-held")
    assert r.status_code == 200 and r.json() == {"accepted": 1}, r.text
    poisoned = flow.eventually(
        lambda: (x := _template(t, "victim")) and x["version"] > first["version"] and x
    )
    assert poisoned and sorted(poisoned["devices"]) == sorted(
        [victim.device_id, attacker.device_id]
    ), poisoned

    # when the attacker's device is revoked
    with t.client() as c:
        assert c.delete(f"/v1/devices/{attacker.device_id}").status_code == 200
    # then its samples are gone, the template is rebuilt from the victim's alone (its version moved)
    rebuilt = flow.eventually(
        lambda: (x := _template(t, "victim")) and x["version"] > poisoned["version"] and x
    )
    assert (
        rebuilt
        and rebuilt["devices"] == [victim.device_id]
        and rebuilt["samples"] == first["samples"]
    ), rebuilt
    left = db.execute(
        "SELECT count(*) AS n FROM enrolment_samples WHERE device_id = %s", (attacker.device_id,)
    )
    assert left.fetchone()["n"] == 0
    # and the attacker's probe scores below the operating point again, below the victim's own
    attacker_score = _probe(t, victim, _capture(attacker_person, rng, 4))
    assert attacker_score < threshold
    assert _probe(t, victim, _capture(victim_person, rng, 4)) > attacker_score
    # and every rebuild was announced as template.changed, with its version
    events = [
        json.loads(r["payload"])["data"]
        for r in db.execute(
            "SELECT m.payload FROM webhook_messages m JOIN users u ON u.id = m.user_id"
            " WHERE u.external_id = 'victim' AND m.event_type = 'template.changed' AND m.tenant_id ="
            " (SELECT tenant_id FROM devices WHERE id = %s) ORDER BY m.created_at",
            (victim.device_id,),
        ).fetchall()
    ]
    assert [e["version"] for e in events][-2:] == [poisoned["version"], rebuilt["version"]]
    assert events[-1]["reason"] == "device_revoked" and events[-1]["devices"] == [victim.device_id]


def test_revoked_devices_jobs_end_device_revoked_and_none_is_fused(stack, settings):  # type: ignore[no-untyped-def]
    # given an enrolled user with a second phone
    t = flow.tenancy(stack, settings, phones=1, factors=(FACTOR,))
    flow.enrol(t, FACTOR)
    phone = t.phones[0]
    other = _phone(t, phone.user, phone.persons[FACTOR])
    rng = np.random.default_rng(17)
    # when the second phone uploads verify batches and is revoked while they wait in the queue
    # (the pool paused with Celery's remote control, as an operator would)
    import os

    from cli.bench_ingest import PoolSwitch

    pool = PoolSwitch(dict(os.environ), FACTOR)
    pool.pause()
    try:
        ids = [
            simulate.upload(None, other, FACTOR, "verify", _capture(phone.persons[FACTOR], rng, 4))  # type: ignore[arg-type]
            for _ in range(10)
        ]
        with t.client() as c:
            assert c.delete(f"/v1/devices/{other.device_id}").status_code == 200
    finally:
        pool.resume()
    jobs = flow.wait_all(t, ids)
    # then every one ends failed device_revoked, unscored, and none counts in the user's trust
    assert all(
        (j["status"], j["error"]["code"], j["score"]) == ("failed", "device_revoked", None)
        for j in jobs.values()
    ), jobs
    trust = flow.get(t, f"/v1/users/{phone.user}/trust").json()
    assert trust["decision"] == "unknown" and trust["factors"] == [], trust
    # and its uploads are refused at once
    assert "403 device_revoked" in _refused(other, _capture(phone.persons[FACTOR], rng, 4))


def test_a_replace_window_starts_the_profile_afresh(stack, settings):  # type: ignore[no-untyped-def]
    synth = importlib.import_module(f"pipelines.{FACTOR}.synthetic")
    rng = np.random.default_rng(19)
    t = simulate.Tenancy(
        stack.api_url, simulate.create_tenant(settings.database_url, f"lost-{uuid.uuid4().hex[:6]}")
    )
    # given a user enrolled on a phone that is then lost
    old_person, new_person = synth.make_person(7301), synth.make_person(7302)
    lost = _phone(t, "carol", old_person)
    _window(t, "carol", device_id=lost.device_id)
    flow.wait_all(
        t,
        [
            simulate.upload(None, lost, FACTOR, "enrol", _capture(old_person, rng, 8))
            for _ in range(3)
        ],
    )  # type: ignore[arg-type]
    before = _template(t, "carol")
    assert before is not None and before["devices"] == [lost.device_id]
    # when the tenant revokes it and opens a replace window for the new phone, whose batches differ
    with t.client() as c:
        assert c.delete(f"/v1/devices/{lost.device_id}").status_code == 200
    new = _phone(t, "carol", new_person)
    _window(t, "carol", device_id=new.device_id, replace=True)
    ids = [
        simulate.upload(None, new, FACTOR, "enrol", _capture(new_person, rng, 8)) for _ in range(3)
    ]  # type: ignore[arg-type]
    jobs = flow.wait_all(t, ids)
    # then nothing is held: the template is the new phone's alone
    assert all((j["status"], j["enrolment"]) == ("done", "merged") for j in jobs.values()), jobs
    after = flow.eventually(
        lambda: (x := _template(t, "carol")) and x["devices"] == [new.device_id] and x
    )
    assert (
        after and after["version"] > before["version"] and after["samples"] == before["samples"]
    ), after
    assert _probe(t, new, _capture(new_person, rng, 4)) > _probe(
        t, new, _capture(old_person, rng, 4)
    )
