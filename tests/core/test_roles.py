"""One Postgres role per service (core/migrations/0005_roles.sql): each runs its own code
path under its role, and is refused what it has no business reading or changing.

Connections log in as the suite's user and take the role at start-up (`-c role=...`), so
every statement runs with exactly the role's privileges.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from core.db import connect, make_pool
from tests.webhooks.conftest import receiver  # noqa: F401, F811 - fixture

ROLES = ("tacit_api", "tacit_workers", "tacit_relay", "tacit_webhooks", "tacit_migrate")


def as_role(url: str, role: str) -> str:
    return make_conninfo(url, options=f"-c role={role}")


def refused(url: str, role: str, sql: str) -> bool:
    with connect(as_role(url, role), autocommit=True) as conn:
        try:
            conn.execute(sql)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_every_service_role_exists_and_cannot_log_in(db) -> None:  # type: ignore[no-untyped-def]
    rows = db.execute(
        "SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = ANY(%s)",
        (list(ROLES),),
    ).fetchall()
    assert {r["rolname"] for r in rows} == set(ROLES)
    assert not any(r["rolcanlogin"] or r["rolsuper"] for r in rows)


@pytest.mark.parametrize(
    ("role", "sql"),
    [
        ("tacit_webhooks", "SELECT * FROM batches LIMIT 1"),
        ("tacit_webhooks", "SELECT * FROM jobs LIMIT 1"),
        ("tacit_webhooks", "SELECT * FROM devices LIMIT 1"),
        ("tacit_webhooks", "SELECT * FROM api_keys LIMIT 1"),
        ("tacit_webhooks", "SELECT * FROM templates LIMIT 1"),
        ("tacit_webhooks", "SELECT * FROM server_keys LIMIT 1"),
        ("tacit_webhooks", "DELETE FROM webhook_attempts"),
        ("tacit_workers", "SELECT * FROM api_keys LIMIT 1"),
        ("tacit_workers", "SELECT * FROM enrolment_tokens LIMIT 1"),
        ("tacit_workers", "SELECT secret FROM webhook_endpoints LIMIT 1"),
        ("tacit_workers", "DELETE FROM batches"),
        ("tacit_workers", "UPDATE devices SET status = status"),
        ("tacit_relay", "SELECT * FROM enrolment_samples LIMIT 1"),
        ("tacit_relay", "SELECT distance FROM scores LIMIT 1"),
        ("tacit_relay", "SELECT * FROM templates LIMIT 1"),
        ("tacit_relay", "SELECT secret FROM webhook_endpoints LIMIT 1"),
        ("tacit_relay", "SELECT public_key FROM devices LIMIT 1"),
        ("tacit_api", "CREATE TABLE not_here (id int)"),
        ("tacit_api", "DROP TABLE batches"),
        ("tacit_api", "INSERT INTO schema_migrations (version) VALUES ('9999')"),
    ],
)
def test_a_role_is_refused_what_its_service_never_does(settings, role: str, sql: str) -> None:  # type: ignore[no-untyped-def]
    assert refused(settings.database_url, role, sql), f"{role} may run: {sql}"


def test_the_migrate_role_can_change_the_schema(settings) -> None:  # type: ignore[no-untyped-def]
    with connect(as_role(settings.database_url, "tacit_migrate")) as conn:
        conn.execute("CREATE TABLE roles_probe (id int)")
        conn.execute("ALTER TABLE batches ADD COLUMN roles_probe int")
        conn.rollback()


def test_the_webhooks_role_delivers_a_webhook(settings, api, tenant, db, receiver) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from tests.webhooks.conftest import register
    from tests.webhooks.test_delivery import emit_here
    from workers.webhooks.delivery import WebhookRuntime, deliver

    register(api, tenant, receiver.url, receiver=receiver)
    _, did = emit_here(db, tenant["id"])
    pool = make_pool(
        as_role(settings.database_url, "tacit_webhooks"), min_size=1, max_size=2, name="as-webhooks"
    )
    pool.open(wait=True)
    try:
        assert deliver(WebhookRuntime(settings, pool), did) == "succeeded"
    finally:
        pool.close()
    assert len(receiver.requests) == 1


def test_the_relay_role_hands_out_due_deliveries(settings, api, tenant, db, receiver) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from core.webhooks.deliveries import publish_due
    from tests.webhooks.conftest import emit, register

    register(api, tenant, receiver.url, receiver=receiver)
    emit(db, tenant["id"])
    sent: list[uuid.UUID] = []
    pool = make_pool(
        as_role(settings.database_url, "tacit_relay"), min_size=1, max_size=2, name="as-relay"
    )
    pool.open(wait=True)
    try:
        assert publish_due(pool, sent.append, republish_after_s=120) >= 1
        from workers import relay

        relay.sweep(pool, settings)  # requeues, dead jobs, forgetting expired secrets
    finally:
        pool.close()
    assert sent


def test_the_workers_role_claims_a_job_and_reads_its_batch(settings, api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    from core.db import transaction
    from core.jobs import endings
    from tests.api.conftest import enrol_phone, post_envelope

    phone = enrol_phone(api, tenant)
    r = post_envelope(api, phone, phone.envelope()[1])
    assert r.status_code == 202, r.text
    pool = make_pool(
        as_role(settings.database_url, "tacit_workers"), min_size=1, max_size=2, name="as-workers"
    )
    pool.open(wait=True)
    try:
        with transaction(pool) as conn:
            job = endings.claim(conn, uuid.UUID(r.json()["job_id"]))
            assert job is not None and job.object_key
    finally:
        pool.close()
    # and the relay may build the job.failed event of that job
    from core.webhooks import events

    pool = make_pool(
        as_role(settings.database_url, "tacit_relay"), min_size=1, max_size=2, name="as-relay"
    )
    pool.open(wait=True)
    try:
        with transaction(pool) as conn:
            events.job_failed(conn, job_id=job.id)
    finally:
        pool.close()


def test_the_relay_role_runs_the_retention_sweep(settings) -> None:  # type: ignore[no-untyped-def]
    from core import retention
    from core.storage import make_store

    # given the relay's role, when it runs a whole retention sweep (every prune statement)
    pool = make_pool(
        as_role(settings.database_url, "tacit_relay"),
        min_size=1,
        max_size=2,
        name="as-relay-retention",
    )
    pool.open(wait=True)
    try:
        counts = retention.sweep(pool, make_store(settings.storage), settings.retention)
    finally:
        pool.close()
    # then no statement is refused for want of a grant
    assert isinstance(counts, dict)
