"""Pools whose model runs in a real Triton server, over the Open Inference Protocol v2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.e2e import flow
from tests.workers.triton import Triton, ensure_environment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FACTOR = "keystroke"


@pytest.fixture(scope="module")
def pipeline():  # type: ignore[no-untyped-def]
    from core.factors import load_pipeline

    return load_pipeline(FACTOR)


@pytest.fixture(scope="module")
def triton(tmp_path_factory, pipeline):  # type: ignore[no-untyped-def]
    from pipelines.export import TritonModel, write_triton_repo

    venv = ensure_environment()
    root = tmp_path_factory.mktemp("triton")
    repo = root / "models"
    write_triton_repo(
        pipeline, repo, TritonModel(backend="python", kind="KIND_CPU", max_batch_size=64)
    )
    # a second model holding another version of the same network, as after a half-done upgrade
    stale = repo / "keystroke_stale"
    shutil.copytree(repo / FACTOR, stale)
    config = (stale / "config.pbtxt").read_text()
    (stale / "config.pbtxt").write_text(
        config.replace(f'name: "{FACTOR}"', 'name: "keystroke_stale"').replace(
            pipeline.model_version, "keystroke-enc-0"
        )
    )
    server = Triton(venv, repo, root / "triton.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("transport", ["http-binary", "http-json", "grpc"])
def test_served_embeddings_match_the_in_process_model(triton, pipeline, transport):  # type: ignore[no-untyped-def]
    from pipelines.export import embed_reference, example_input
    from workers import oip

    # given the exported model served by Triton, and the same rows through torch
    x = example_input(pipeline, rows=40)
    url = triton.grpc_url if transport == "grpc" else triton.http_url
    client = oip.connect(url, FACTOR, binary=transport == "http-binary")
    try:
        # when the pool's client checks the model and sends one batch
        info = oip.check_model(client, model_version=pipeline.model_version)
        got = client.infer(x)
    finally:
        client.close()
    # then the server's model is the pipeline's version and its embeddings agree within 1e-5
    assert info.model_version == pipeline.model_version
    assert got.shape == (40, embed_reference(pipeline, x[:1]).shape[1])
    assert float(np.abs(got - embed_reference(pipeline, x)).max()) <= 1e-5


def test_pool_refuses_to_start_on_another_model_version(triton, services):  # type: ignore[no-untyped-def]
    # given a server whose model was exported from another version of the pipeline
    env = dict(
        os.environ,
        TACIT_POOL__BACKEND="oip",
        TACIT_POOL__OIP_URL=triton.http_url,
        TACIT_POOL__OIP_MODEL="keystroke_stale",
        TACIT_METRICS_PORT="0",
    )
    # when a pool starts against it
    r = subprocess.run(
        [sys.executable, "-m", "cli.main", "worker", "--factor", FACTOR],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then it refuses, naming both versions
    assert r.returncode == 2, r.stderr[-2000:]
    assert "keystroke-enc-0" in r.stderr and "refusing to start" in r.stderr


@pytest.fixture(scope="module")
def oip_stack(triton, settings, services, tmp_path_factory):  # type: ignore[no-untyped-def]
    """An API, relay and keystroke pool on the OIP backend, on a queue of their own."""
    from cli.stack import KEYRING_ENV, Stack, free_port

    queue = f"score.keystroke.oip-{uuid.uuid4().hex[:6]}"
    env = dict(
        os.environ,
        **{KEYRING_ENV: str(services.keyring_file)},
        TACIT_POOL__BACKEND="oip",
        TACIT_POOL__OIP_URL=triton.grpc_url,
        TACIT_POOL__OIP_TIMEOUT_S="5",
        TACIT_QUEUES__KEYSTROKE=queue,
        TACIT_RELIABILITY__MAX_ATTEMPTS="10",
    )
    st = Stack(Path(tmp_path_factory.mktemp("oip-stack")), env, free_port(), factors=(FACTOR,))
    st.start(timeout=180)
    try:
        yield st
    finally:
        st.stop()


def _scores(t, ids):  # type: ignore[no-untyped-def]
    jobs = flow.wait_all(t, ids)
    assert all(j["status"] == "done" for j in jobs.values()), [j["error"] for j in jobs.values()]
    return [jobs[j]["score"]["score"] for j in ids], jobs


def test_oip_pool_scores_as_the_in_process_pool(stack, oip_stack, settings):  # type: ignore[no-untyped-def]
    # given the same people enrolled through an in-process pool and through the Triton-backed one
    # (one enrolment batch each: a keystroke template depends on the order its batches
    # were committed in, which concurrent jobs do not fix)
    local, remote = (
        flow.tenancy(s, settings, phones=2, factors=(FACTOR,), seed=11) for s in (stack, oip_stack)
    )
    flow.enrol(local, FACTOR, batches=1, samples=24)
    flow.enrol(remote, FACTOR, batches=1, samples=24)
    # when both verify the same captures
    local_scores, _ = _scores(local, flow.verify_uploads(local, FACTOR, 6))
    remote_scores, _ = _scores(remote, flow.verify_uploads(remote, FACTOR, 6))
    # then the calibrated scores are the same
    assert np.allclose(local_scores, remote_scores, atol=1e-6), (local_scores, remote_scores)


def test_server_killed_mid_run_retries_every_job_once(oip_stack, triton, settings, db):  # type: ignore[no-untyped-def]
    # given an enrolled user scored through Triton
    t = flow.tenancy(oip_stack, settings, phones=2, factors=(FACTOR,), seed=12)
    flow.enrol(t, FACTOR)
    before = flow.verify_uploads(t, FACTOR, 8, seed=2)
    _scores(t, before)
    # when the server dies while more uploads arrive, and comes back a few seconds later
    triton.kill()
    during = flow.verify_uploads(t, FACTOR, 12, seed=3)
    time.sleep(3)
    triton.start()
    # then every job ends done, retried rather than failed, and is scored exactly once
    _, jobs = _scores(t, during)
    assert max(j["attempts"] for j in jobs.values()) > 1
    ids = [uuid.UUID(j) for j in before + during]
    rows = db.execute(
        "SELECT job_id, count(*) FROM scores WHERE job_id = ANY(%s) GROUP BY job_id", (ids,)
    ).fetchall()
    assert len(rows) == len(ids) and all(r["count"] == 1 for r in rows)
