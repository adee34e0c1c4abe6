"""Prometheus metrics of the API and of worker processes, and the workers' heartbeat."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from cli.stack import free_port
from tests.ops.conftest import make_job


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_api_metrics_read_queue_depth_and_dead_jobs_at_scrape_time(ops_settings, db, tenant):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.app import create_app

    # (a gait queue of its own: the other ops tests' uploads are published to the session's)
    queues = ops_settings.queues.model_copy(update={"gait": f"score.gait.{uuid.uuid4().hex[:8]}"})
    ops_settings = ops_settings.model_copy(update={"queues": queues})
    # given two messages waiting on the gait queue and a dead keystroke job
    client = redis.Redis.from_url(ops_settings.redis_url)
    client.delete(ops_settings.queues.gait)
    client.rpush(ops_settings.queues.gait, b"m1", b"m2")
    make_job(db, tenant, factor="keystroke", status="dead", error_code="attempts_exhausted")
    dead_before = db.execute(
        "SELECT count(*) AS n FROM jobs WHERE status = 'dead' AND factor = 'keystroke'"
    ).fetchone()["n"]
    with TestClient(create_app(ops_settings), raise_server_exceptions=False) as api:
        # when an upload is refused and Prometheus scrapes
        api.post("/v1/batches", content=b"not an envelope")
        page = api.get("/metrics")
    # then the page carries the gauges read now and the upload's timing
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    got = samples(page.text)
    assert got[("tacit_queue_depth", (("queue", ops_settings.queues.gait),))] == 2
    assert got[("tacit_dead_jobs", (("factor", "keystroke"),))] == dead_before
    assert got[("tacit_upload_seconds_count", ())] >= 1
    client.delete(ops_settings.queues.gait)


def test_worker_metrics_server_exports_job_observations(settings):  # type: ignore[no-untyped-def]
    from workers import metrics

    port = free_port()
    server = metrics.serve(port, host="127.0.0.1")
    try:
        # given a job scored after 3 s and a batch of 12 rows
        metrics.observe_claim("face", 0.4)
        metrics.observe_batch("face", jobs=3, rows=12)
        metrics.observe_done(
            "face",
            datetime.now(UTC) - timedelta(seconds=3),
            {"fetch": 0.01, "decrypt": 0.001, "preprocess": 0.02, "model": 0.05, "write": 0.004},
        )
        metrics.observe_error("face", "dead")  # a retryable error on its last attempt
        # when Prometheus scrapes the worker
        page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        metrics.stop(server)
    # then every scoring metric is there under its contract name
    got = samples(page.text)
    assert got[("tacit_jobs_total", (("factor", "face"), ("status", "done")))] >= 1
    assert got[("tacit_jobs_total", (("factor", "face"), ("status", "dead")))] >= 1
    assert got[("tacit_upload_to_score_seconds_count", (("factor", "face"),))] >= 1
    assert (
        got[("tacit_upload_to_score_seconds_bucket", (("factor", "face"), ("le", "2.0")))]
        < got[("tacit_upload_to_score_seconds_bucket", (("factor", "face"), ("le", "5.0")))]
    )
    assert got[("tacit_queue_wait_seconds_count", (("factor", "face"),))] >= 1
    assert got[("tacit_batch_size_sum", (("factor", "face"),))] >= 12
    for stage in ("fetch", "decrypt", "preprocess", "model", "write"):
        assert got[("tacit_stage_seconds_count", (("factor", "face"), ("stage", stage)))] >= 1
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_heartbeat_lists_the_process_until_it_stops(settings):  # type: ignore[no-untyped-def]
    import os
    import socket

    from core import metrics as m
    from workers import metrics

    client = redis.Redis.from_url(settings.redis_url)
    key = metrics.heartbeat_key(socket.gethostname(), os.getpid())
    # when a pool starts its heartbeat (metrics server off)
    stop = metrics.start(
        role="score", port=0, redis_url=settings.redis_url, factor="gait", device="cpu"
    )
    deadline = time.monotonic() + 5
    while not client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    # then its key says what it is and expires unless renewed
    beat = json.loads(client.get(key))
    assert beat["factor"] == "gait" and beat["device"] == "cpu" and beat["pid"] == os.getpid()
    assert 0 < client.ttl(key) <= m.WORKER_HEARTBEAT_TTL_S
    # and stopping removes it
    stop.set()
    deadline = time.monotonic() + 5
    while client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.exists(key)


def test_api_processes_sharing_a_port_report_one_sum(settings):  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    # given the API as two processes on one port
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api", "--port", str(port), "--workers", "2"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        # when 12 uploads are refused, on fresh connections (spread over both processes)
        for _ in range(12):
            assert httpx.post(base + "/v1/batches", content=b"not an envelope").status_code >= 400
        # then every scrape, whichever process answers, counts all 12
        counts = {
            samples(httpx.get(base + "/metrics").text)[("tacit_upload_seconds_count", ())]
            for _ in range(6)
        }
        assert counts == {12.0}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
