"""GET /v1/jobs: keyset pages newest first, filters that hold across pages, cursors that cannot lie."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.webhooks import rows

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _pages(api, tenant, **params) -> list[list[dict]]:  # type: ignore[no-untyped-def]
    pages, cursor = [], None
    while True:
        q = dict(params, **({"cursor": cursor} if cursor else {}))
        r = api.get("/v1/jobs", params=q, headers=tenant["headers"])
        assert r.status_code == 200, r.text
        pages.append(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return pages


def test_pages_cover_every_job_once_newest_first_even_with_equal_timestamps(
    api, tenant, db
) -> None:  # type: ignore[no-untyped-def]
    # given 7 jobs, three of them created at the very same instant
    made = [
        rows.job(db, tenant["id"], "pat", created_at=T0 + timedelta(seconds=i)) for i in range(4)
    ]
    made += [
        rows.job(db, tenant["id"], "pat", created_at=T0 + timedelta(seconds=10)) for _ in range(3)
    ]
    # when read three at a time
    pages = _pages(api, tenant, limit=3)
    # then 3 + 3 + 1, no job twice, none missing, ordered by (created_at, id) descending
    assert [len(p) for p in pages] == [3, 3, 1]
    items = [j for p in pages for j in p]
    assert sorted(j["id"] for j in items) == sorted(str(r.job_id) for r in made)
    keys = [(j["created_at"], j["id"]) for j in items]
    assert keys == sorted(keys, reverse=True)


def test_filters_hold_across_pages(api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        rows.job(db, tenant["id"], "quinn", status="done", created_at=T0 + timedelta(minutes=i))
        rows.job(db, tenant["id"], "quinn", status="failed", created_at=T0 + timedelta(minutes=i))
        rows.job(db, tenant["id"], "rita", status="done", created_at=T0 + timedelta(minutes=i))
    since = (T0 + timedelta(minutes=2)).isoformat()
    items = [
        j for p in _pages(api, tenant, user="quinn", status="done", since=since, limit=2) for j in p
    ]
    assert len(items) == 3
    assert all(
        j["user"] == "quinn" and j["status"] == "done" and j["created_at"] >= since[:19]
        for j in items
    )


def test_other_tenants_jobs_never_appear(api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    other, key = create_tenant(db, name="other")
    rows.job(db, other.id, "pat")
    mine = rows.job(db, tenant["id"], "pat")
    items = [j for p in _pages(api, tenant, limit=1) for j in p]
    assert [j["id"] for j in items] == [str(mine.job_id)]


def test_a_forged_cursor_is_refused(api, tenant) -> None:  # type: ignore[no-untyped-def]
    r = api.get("/v1/jobs", params={"cursor": "not-a-cursor!"}, headers=tenant["headers"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor"
    assert api.get("/v1/jobs", params={"limit": 0}, headers=tenant["headers"]).status_code == 422
