"""`tacit templates rebuild` after a model upgrade, on the running stack's worker pools."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from cli import simulate
from tests.e2e import flow

pytestmark = pytest.mark.integration
FACTOR = "keystroke"


def _scores(t: simulate.Tenancy, probes: list[tuple[simulate.Phone, bytes]]) -> list[float]:
    ids = [simulate.upload(None, p, FACTOR, "verify", body) for p, body in probes]  # type: ignore[arg-type]
    jobs = flow.wait_all(t, ids)
    assert all(jobs[j]["status"] == "done" for j in ids), [jobs[j]["error"] for j in ids]
    return [jobs[j]["score"]["score"] for j in ids]


def _rebuild(tenant_id: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "templates",
            "rebuild",
            "--factor",
            FACTOR,
            "--tenant",
            tenant_id,
            "--timeout",
            str(timeout),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=180,
    )


def _templates(db, tenant_id: str) -> dict[str, tuple[str, int]]:  # type: ignore[no-untyped-def]
    rows = db.execute(
        "SELECT u.external_id, t.model_version, t.version FROM templates t JOIN users u ON u.id = t.user_id"
        " WHERE t.tenant_id = %s AND t.factor = %s",
        (tenant_id, FACTOR),
    ).fetchall()
    return {r["external_id"]: (r["model_version"], r["version"]) for r in rows}


def test_rebuild_after_a_model_upgrade_scores_as_a_fresh_enrolment(stack, settings, db):  # type: ignore[no-untyped-def]
    # given two users enrolled, and the scores of held-out batches against their fresh templates
    t = flow.tenancy(stack, settings, phones=2, factors=(FACTOR,), seed=23)
    flow.enrol(t, FACTOR)
    rng = np.random.default_rng(29)
    probes = [
        (p, simulate.capture(FACTOR, q.persons[FACTOR], rng, 4)) for p in t.phones for q in t.phones
    ]
    fresh = _scores(t, probes)
    tenant_id = str(
        db.execute(
            "SELECT tenant_id FROM devices WHERE id = %s", (t.phones[0].device_id,)
        ).fetchone()["tenant_id"]
    )
    current = _templates(db, tenant_id)
    model = next(iter(current.values()))[0]
    # when the model is upgraded: what is stored was embedded by the previous version
    db.execute(
        "UPDATE enrolment_samples SET model_version = 'previous', embeddings = '\\x00' WHERE tenant_id = %s",
        (tenant_id,),
    )
    db.execute("UPDATE templates SET model_version = 'previous' WHERE tenant_id = %s", (tenant_id,))
    # and the operator runs `tacit templates rebuild`
    run = _rebuild(tenant_id)
    # then the pools re-embedded the stored enrolment batches: new templates of the current model
    assert run.returncode == 0, run.stderr
    assert (
        "rebuilt 2 template(s)" in run.stdout and "rebuild [" in run.stderr
    )  # with a progress bar
    rebuilt = _templates(db, tenant_id)
    assert {u: v[0] for u, v in rebuilt.items()} == {u: model for u in current}
    assert all(rebuilt[u][1] > current[u][1] for u in current)
    # and the held-out batches score as they did against the fresh enrolment
    assert np.allclose(_scores(t, probes), fresh, atol=1e-4)
    # and running it again changes nothing (idempotent)
    again = _rebuild(tenant_id)
    assert again.returncode == 0, again.stderr
    assert _templates(db, tenant_id) == rebuilt


def test_a_rebuild_cut_short_says_so_and_resumes(stack, settings, db):  # type: ignore[no-untyped-def]
    from cli.bench_ingest import PoolSwitch

    # given an enrolled user whose stored samples are of an older model
    t = flow.tenancy(stack, settings, phones=1, factors=(FACTOR,), seed=31)
    flow.enrol(t, FACTOR)
    tenant_id = str(
        db.execute(
            "SELECT tenant_id FROM devices WHERE id = %s", (t.phones[0].device_id,)
        ).fetchone()["tenant_id"]
    )
    model = next(iter(_templates(db, tenant_id).values()))[0]
    db.execute(
        "UPDATE enrolment_samples SET model_version = 'previous' WHERE tenant_id = %s", (tenant_id,)
    )
    db.execute("UPDATE templates SET model_version = 'previous' WHERE tenant_id = %s", (tenant_id,))
    # when the rebuild runs while the pool takes no work, and gives up after a second
    pool = PoolSwitch(dict(os.environ), FACTOR)
    pool.pause()
    try:
        cut = _rebuild(tenant_id, timeout=1)
    finally:
        pool.resume()
    # then it says what is left and how to go on
    assert (
        cut.returncode == 2
        and "not rebuilt within 1s" in cut.stderr
        and "again to resume" in cut.stderr
    )
    # and run again, it finishes the same work
    again = _rebuild(tenant_id)
    assert again.returncode == 0, again.stderr
    assert {v[0] for v in _templates(db, tenant_id).values()} == {model}
