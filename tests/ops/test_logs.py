"""Logs of a scoring run are JSON lines that correlate by job id and hold no secret or plaintext.

The upload goes through the real API (Postgres, Redis, S3) with a tenant API key and an
enrolled phone; the score task then runs in this process over the same services, with
the real key file and the gait pipeline's committed weights.
"""

from __future__ import annotations

import base64
import io
import json
import logging

import numpy as np
import pytest

from tests.api.conftest import enrol_phone, post_envelope
from tests.workers.in_process import pool_process


@pytest.fixture()
def captured_logs():  # type: ignore[no-untyped-def]
    """Every log record of the test, formatted by the commands' JSON formatter."""
    from cli.console import setup_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    setup_logging("DEBUG")
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


@pytest.fixture()
def gait_worker(settings, keyring_file):  # type: ignore[no-untyped-def]
    """This process as a gait pool: the key file, the committed model and a batcher."""
    from core.factors import load_pipeline
    from workers.batcher import DynamicBatcher
    from workers.embedding import log_batch, make_embed

    try:
        pipeline = load_pipeline("gait", device="cpu")
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"the gait pipeline does not load here: {e}")
    batcher = DynamicBatcher(
        make_embed(pipeline, "cpu"),
        max_batch=32,
        max_wait_s=0.002,
        on_batch=lambda s: log_batch("gait", s),
    )
    with pool_process(settings, keyring_file, "gait", pipeline=pipeline, embedder=batcher) as rt:
        yield rt


def test_scoring_run_logs_correlate_and_leak_nothing(api, tenant, gait_worker, captured_logs):  # type: ignore[no-untyped-def]
    from pipelines.gait import synthetic
    from workers.tasks.score import score

    # given a phone that uploads a real gait capture, sealed to the server key
    phone = enrol_phone(api, tenant, user="walker")
    frame = synthetic.capture(synthetic.make_person(7), np.random.default_rng(7), 24)
    batch_id, body = phone.envelope(factor="gait", purpose="enrol", frame=frame)
    r = post_envelope(api, phone, body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert api.get(f"/v1/jobs/{job_id}", headers=tenant["headers"]).status_code == 200
    # when the score task runs it (as the gait pool would)
    score(job_id)
    logged = captured_logs.getvalue()
    lines = [json.loads(line) for line in logged.splitlines() if line.strip()]
    # then the job's completion is one JSON line with its id, tenant, factor and stage times
    done = [e for e in lines if e.get("event") == "job_done" and e.get("job_id") == job_id]
    assert len(done) == 1, logged[-2000:]
    assert done[0]["tenant_id"] == str(tenant["id"]) and done[0]["factor"] == "gait"
    assert {"fetch_ms", "decrypt_ms", "preprocess_ms", "model_ms", "write_ms"} <= set(done[0])
    # and nothing logged carries the API key, the device's private key or the plaintext
    secrets = {
        "api key": tenant["key"],
        "api key (secret part)": tenant["key"].rsplit("_", 1)[-1],
        "device key": phone.key.private_bytes_raw().hex(),
        "device key (base64)": base64.b64encode(phone.key.private_bytes_raw()).decode(),
    }
    samples = [
        frame[i : i + 24] for i in range(len(frame) // 4, len(frame), max(1, len(frame) // 4))
    ]
    for name, value in secrets.items():
        assert value not in logged, f"{name} was logged"
    for chunk in samples:
        assert chunk.hex() not in logged, "plaintext (hex) was logged"
        assert base64.b64encode(chunk).decode()[:24] not in logged, "plaintext (base64) was logged"
        assert chunk.decode("latin-1") not in logged, "plaintext (raw) was logged"
