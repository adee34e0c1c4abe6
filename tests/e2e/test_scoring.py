"""The whole path on real parts: HTTP upload -> S3 -> Postgres -> Celery worker process -> score."""

from __future__ import annotations

import os
import signal

import pytest

from tests.e2e import flow

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("factor", ["keystroke", "gait", "face"])
def test_genuine_batches_score_above_impostors(stack, settings, factor):  # type: ignore[no-untyped-def]
    # given two enrolled phones
    t = flow.tenancy(stack, settings, phones=2, factors=(factor,))
    flow.enrol(t, factor)
    # when each uploads its own data and the other's
    import numpy as np

    from cli import simulate

    rng = np.random.default_rng(5)
    genuine, impostor = [], []
    with t.client() as c:
        for i, p in enumerate(t.phones):
            other = t.phones[1 - i]
            for _ in range(2):
                genuine.append(
                    simulate.upload(
                        c, p, factor, "verify", simulate.capture(factor, p.persons[factor], rng, 4)
                    )
                )
                impostor.append(
                    simulate.upload(
                        c,
                        p,
                        factor,
                        "verify",
                        simulate.capture(factor, other.persons[factor], rng, 4),
                    )
                )
    jobs = flow.wait_all(t, genuine + impostor)
    # then every job is done with a score in [0, 1], and genuine scores are higher
    assert all(j["status"] == "done" for j in jobs.values()), [j["error"] for j in jobs.values()]
    g = [jobs[j]["score"]["score"] for j in genuine]
    i = [jobs[j]["score"]["score"] for j in impostor]
    assert all(0.0 <= s <= 1.0 for s in g + i)
    assert sum(g) / len(g) > sum(i) / len(i)


def test_verify_without_enrolment_fails_with_reason(stack, settings):  # type: ignore[no-untyped-def]
    t = flow.tenancy(stack, settings, phones=2)
    [jid] = flow.verify_uploads(t, "keystroke", 1)
    job = flow.wait_all(t, [jid])[jid]
    assert job["status"] == "failed"
    assert job["error"]["code"] == "not_enrolled"


def test_undecodable_payload_fails_at_once(stack, settings):  # type: ignore[no-untyped-def]
    # given a batch that is sealed and signed correctly but whose plaintext is no frame
    t = flow.tenancy(stack, settings, phones=2)
    device = t.phones[0].device
    batch_id, envelope = device.build_envelope(
        b"not a plaintext frame",
        factor="keystroke",
        purpose="enrol",
        capture_start_ms=1,
        capture_end_ms=2,
    )
    job_id = device.send(batch_id, envelope).job_id
    # then its job fails on the first attempt with the codec's reason
    job = flow.wait_all(t, [job_id])[job_id]
    assert job["status"] == "failed" and job["attempts"] == 1
    assert job["error"]["code"].startswith(("plaintext_", "sample"))


def test_flipped_ciphertext_bit_is_accepted_then_fails_decrypt(stack, settings):  # type: ignore[no-untyped-def]
    # given a sealed batch with one ciphertext bit flipped after encryption
    import numpy as np

    from cli import simulate

    t = flow.tenancy(stack, settings, phones=2)
    p = t.phones[0]
    frame = simulate.capture("keystroke", p.persons["keystroke"], np.random.default_rng(0), 8)
    batch_id, envelope = p.device.build_envelope(
        frame, factor="keystroke", purpose="enrol", capture_start_ms=1, capture_end_ms=2
    )
    tampered = envelope[:-1] + bytes([envelope[-1] ^ 1])
    # when it is uploaded: the API never decrypts, so it accepts it
    job_id = p.device.send(batch_id, tampered).job_id
    # then the worker fails the job at once with decrypt_failed
    job = flow.wait_all(t, [job_id])[job_id]
    assert (job["status"], job["error"]["code"], job["attempts"]) == ("failed", "decrypt_failed", 1)


def test_kill_9_worker_with_jobs_queued_loses_nothing(stack, settings, db):  # type: ignore[no-untyped-def]
    # given an enrolled tenant and 60 verification jobs queued
    t = flow.tenancy(stack, settings, phones=2)
    flow.enrol(t, "keystroke")
    ids = flow.verify_uploads(t, "keystroke", 60)
    # when the keystroke worker is killed with SIGKILL mid-run and then restarted
    role = stack.roles["worker-keystroke"]
    os.killpg(role.proc.pid, signal.SIGKILL)
    role.proc.wait()
    stack.supervise_once()
    stack.wait_ready(120)
    # then every job ends done, with exactly one score row each
    jobs = flow.wait_all(t, ids, timeout=240)
    assert all(j["status"] == "done" for j in jobs.values()), {j["status"] for j in jobs.values()}
    rows = db.execute(
        "SELECT job_id, count(*) AS n FROM scores WHERE job_id = ANY(%s::uuid[]) GROUP BY job_id",
        (ids,),
    ).fetchall()
    assert len(rows) == len(ids) and all(r["n"] == 1 for r in rows)
