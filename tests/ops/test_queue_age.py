"""The age of each factor's oldest queued job: from Postgres, against hand-made queues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from core import factors as registry
from core.backlog import oldest_queued_age
from tests.ops.conftest import make_job


class _Rollback(Exception):
    pass


def test_oldest_queued_age_per_factor(settings, tenant):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    try:
        with (
            psycopg.connect(settings.database_url, row_factory=dict_row) as conn,
            conn.transaction(),
        ):
            # given only these jobs (inside a transaction rolled back at the end):
            conn.execute("DELETE FROM jobs WHERE status = 'queued'")
            # gait: queued 40 s and 10 s ago, and older ones that no longer wait
            make_job(conn, tenant, factor="gait", created_at=now - timedelta(seconds=40))
            make_job(conn, tenant, factor="gait", created_at=now - timedelta(seconds=10))
            make_job(
                conn, tenant, factor="gait", status="running", created_at=now - timedelta(hours=1)
            )
            make_job(
                conn, tenant, factor="gait", status="done", created_at=now - timedelta(hours=2)
            )
            make_job(
                conn, tenant, factor="gait", status="dead", created_at=now - timedelta(hours=3)
            )
            # face: one job queued 5 minutes ago; keystroke: nothing queued
            make_job(conn, tenant, factor="face", created_at=now - timedelta(seconds=300))
            make_job(
                conn,
                tenant,
                factor="keystroke",
                status="done",
                created_at=now - timedelta(seconds=99),
            )
            # when the ages are read
            ages = oldest_queued_age(conn, registry.names())
            raise _Rollback
    except _Rollback:
        pass
    # then each is the oldest queued job's wait, zero without one
    assert set(ages) == set(registry.names())
    assert 40 <= ages["gait"] < 45
    assert 300 <= ages["face"] < 305
    assert ages["keystroke"] == 0.0


def test_api_exports_the_age_where_prometheus_scrapes(ops_settings, db, tenant):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.ops.test_metrics import samples

    # given a face job waiting for 7 minutes, older than anything else queued
    make_job(db, tenant, factor="face", created_at=datetime.now(UTC) - timedelta(seconds=420))
    try:
        with TestClient(create_app(ops_settings), raise_server_exceptions=False) as api:
            # when Prometheus scrapes the API
            got = samples(api.get("/metrics").text)
    finally:
        db.execute(
            "DELETE FROM jobs WHERE created_at < now() - interval '400 seconds' AND status = 'queued'"
        )
    # then the gauge carries it per factor
    assert 420 <= got[("tacit_queue_oldest_age_seconds", (("factor", "face"),))] < 430
    assert ("tacit_queue_oldest_age_seconds", (("factor", "keystroke"),)) in got
