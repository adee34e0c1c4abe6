"""The /ops dashboard's access rules and JSON API against real Postgres and Redis."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import redis

from core import metrics as m
from tests.ops.conftest import OPS_TOKEN, make_job


def test_dashboard_refuses_without_the_operator_token(ops_api):  # type: ignore[no-untyped-def]
    # when nobody signed in asks for the page, its data, or an action
    page = ops_api.get("/ops")
    data = ops_api.get("/ops/api/overview")
    wrong = ops_api.get("/ops/api/overview", headers={"Authorization": "Bearer not-the-token"})
    action = ops_api.post(f"/ops/api/jobs/{uuid.uuid4()}/requeue")
    # then each is 401: a login form for the page, a coded error for the API
    assert page.status_code == 401 and 'action="/ops/login"' in page.text
    assert data.status_code == wrong.status_code == action.status_code == 401
    assert data.json()["error"]["code"] == "ops_unauthorized"


def test_login_form_sets_an_httponly_cookie_that_opens_the_dashboard(ops_settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(ops_settings), raise_server_exceptions=False) as browser:
        # given a wrong token, the form answers 401 and sets nothing
        bad = browser.post(
            "/ops/login",
            content="token=nope",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert bad.status_code == 401 and "not the operator token" in bad.text
        assert "tacit_ops" not in browser.cookies
        # when the right token is posted
        ok = browser.post(
            "/ops/login",
            content=f"token={OPS_TOKEN}",
            follow_redirects=False,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        # then a redirect sets an HttpOnly, SameSite=Strict cookie that is not the token itself
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert OPS_TOKEN not in cookie
        assert browser.get("/ops").status_code == 200
        assert browser.get("/ops/api/overview").status_code == 200
        # and an action with the cookie alone (no same-origin header) is refused
        refused = browser.post(f"/ops/api/jobs/{uuid.uuid4()}/requeue")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "ops_csrf"


def test_requeue_turns_a_dead_job_into_a_queued_one_with_a_due_outbox_row(
    ops_api, bearer, db, tenant
):  # type: ignore[no-untyped-def]
    # given a dead job with its reason
    job_id = make_job(
        db,
        tenant,
        factor="gait",
        status="dead",
        attempts=5,
        error_code="attempts_exhausted",
        error_message="the job was interrupted on every attempt",
        finished_at=datetime.now(UTC),
    )
    listed = ops_api.get("/ops/api/overview", headers=bearer).json()["dead_jobs"]
    assert any(j["id"] == str(job_id) and j["error_code"] == "attempts_exhausted" for j in listed)
    # when the operator requeues it
    r = ops_api.post(f"/ops/api/jobs/{job_id}/requeue", headers=bearer)
    # then it is queued with fresh attempts, and the relay has an outbox row due now for its queue
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "queued" and r.json()["queue"].startswith("score.gait.")
    job = db.execute(
        "SELECT status, attempts, error_code, finished_at FROM jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert job == {"status": "queued", "attempts": 0, "error_code": None, "finished_at": None}
    due = db.execute(
        "SELECT queue FROM outbox WHERE job_id = %s AND published_at IS NULL"
        " AND not_before <= now()",
        (job_id,),
    ).fetchall()
    assert [row["queue"] for row in due] == [r.json()["queue"]]
    # and requeueing it again, or an unknown job, is refused
    again = ops_api.post(f"/ops/api/jobs/{job_id}/requeue", headers=bearer)
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_not_dead"
    assert ops_api.post(f"/ops/api/jobs/{uuid.uuid4()}/requeue", headers=bearer).status_code == 404


def test_overview_has_series_from_postgres_and_redis(ops_api, ops_settings, bearer, db, tenant):  # type: ignore[no-untyped-def]
    from workers.relay import sample_queue_depths

    # given face jobs finished a few seconds after their upload, and a sampled queue
    now = datetime.now(UTC)
    for delay in (1, 2, 4):
        make_job(
            db,
            tenant,
            factor="face",
            status="done",
            created_at=now - timedelta(seconds=delay),
            started_at=now,
            finished_at=now,
        )
    client = redis.Redis.from_url(ops_settings.redis_url)
    client.delete(m.QUEUE_DEPTH_SAMPLE_LOCK)
    client.rpush(ops_settings.queues.face, b"a", b"b", b"c")
    assert sample_queue_depths(client, ops_settings) is not None
    # when the dashboard refreshes
    data = ops_api.get("/ops/api/overview?minutes=15", headers=bearer).json()
    # then the face factor shows its backlog, throughput and latency percentiles
    assert data["factors"]["face"]["depth"] == 3
    assert data["factors"]["face"]["per_s"] > 0
    assert sum(p[1] for p in data["throughput"]["face"]) > 0
    p50, p95, p99 = data["latency"]["face"][-1][1:]
    assert 1 <= p50 <= p95 <= p99 <= 5
    assert data["queue_history"][-1]["depths"]["face"] == 3
    assert set(data["evaluation"]) == {"keystroke", "gait", "face"}
    client.delete(ops_settings.queues.face)


def test_relay_samples_queue_depth_once_per_interval_into_a_capped_list(ops_settings):  # type: ignore[no-untyped-def]
    from workers.relay import sample_queue_depths

    client = redis.Redis.from_url(ops_settings.redis_url)
    client.delete(m.QUEUE_DEPTH_SAMPLE_LOCK, m.QUEUE_DEPTH_HISTORY_KEY)
    client.rpush(
        m.QUEUE_DEPTH_HISTORY_KEY,
        *[json.dumps({"t": 0, "depths": {}})] * (m.QUEUE_DEPTH_HISTORY_LEN + 5),
    )
    # when two relays sample within the same interval
    first = sample_queue_depths(client, ops_settings)
    second = sample_queue_depths(client, ops_settings)
    # then one sample is taken, the newest first, and the list stays capped
    assert first is not None and second is None
    assert set(first) == {"keystroke", "gait", "face", "webhooks"}
    newest = json.loads(client.lindex(m.QUEUE_DEPTH_HISTORY_KEY, 0))
    assert newest["depths"] == first and abs(newest["t"] - time.time()) < 5
    assert client.llen(m.QUEUE_DEPTH_HISTORY_KEY) == m.QUEUE_DEPTH_HISTORY_LEN


def test_overview_shows_the_stored_trust_evaluation_and_its_plots(
    ops_api, bearer, tmp_path, monkeypatch
):  # type: ignore[no-untyped-def]
    from api.ops import data as ops_data

    # given a trust evaluation report written by `tacit eval trust --report` (a trust plot, no DET)
    figures = {"ania": 1.25, "detected": 1.0, "false_lockouts_per_1000": 3.9, "anga": 255.0}
    report = {
        "users": 15,
        "sessions": 225,
        "uploads": 3825,
        "fused": figures,
        "factors": {f: {**figures, "ania": 2.0} for f in ("keystroke", "gait", "face")},
        "details": {"fused": {**figures, "mean_detection_s": 75.0}},
        "trust_eer": 0.01,
        "setup": {"data": "/data", "models": {"gait": "gait-cnn-1"}},
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    (tmp_path / "trust.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    monkeypatch.setattr(ops_data, "trust_evaluation_dir", lambda: tmp_path)
    # when the dashboard refreshes
    shown = ops_api.get("/ops/api/overview?minutes=5", headers=bearer).json()["trust_evaluation"]
    # then it carries the fused and per-factor figures and which plots exist
    assert (shown["users"], shown["sessions"], shown["uploads"]) == (15, 225, 3825)
    assert shown["fused"] == {**figures, "mean_detection_s": 75.0}
    assert shown["factors"]["gait"]["ania"] == 2.0
    assert shown["plots"] == {"trust": True, "det": False}
    # and the trust plot is served, a missing one is a 404 with a code
    assert ops_api.get("/ops/api/evaluation/trust/trust.png", headers=bearer).content.endswith(
        b"fake"
    )
    missing = ops_api.get("/ops/api/evaluation/trust/det.png", headers=bearer)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "evaluation_missing"
    assert ops_api.get("/ops/api/evaluation/trust/det.png").status_code == 401


def test_overview_without_a_trust_evaluation_says_none(ops_api, bearer, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from api.ops import data as ops_data

    monkeypatch.setattr(ops_data, "trust_evaluation_dir", lambda: tmp_path / "none")
    assert (
        ops_api.get("/ops/api/overview?minutes=5", headers=bearer).json()["trust_evaluation"]
        is None
    )
