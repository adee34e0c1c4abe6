"""GET /v1/users/{user}/trust: fused on read from the scores table, per-factor breakdown, tenant scoped."""

from __future__ import annotations

import math

import pytest

from tests.webhooks import rows


def test_trust_fuses_recent_scores_with_decay(api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    # given a fresh keystroke score (llr 2) and a gait score (llr -1) one gait half-life (3600 s) old,
    # and an older keystroke score (llr 1) one keystroke half-life (1800 s) old
    rows.job(db, tenant["id"], "dana", factor="keystroke", llr=2.0)
    rows.job(db, tenant["id"], "dana", factor="keystroke", llr=1.0, score_age_s=1800)
    rows.job(db, tenant["id"], "dana", factor="gait", llr=-1.0, score_age_s=3600)
    # when the tenant reads dana's trust
    r = api.get("/v1/users/dana/trust", headers=tenant["headers"])
    # then log-odds = 0 (prior 0.5) + (2 + 1/2) + (-1/2) = 2, p = sigmoid(2) = 0.8808
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["llr"] == pytest.approx(2.0, abs=0.01)
    assert t["probability"] == pytest.approx(1 / (1 + math.exp(-2.0)), abs=0.002)
    assert t["threshold"] == 0.5 and t["decision"] == "genuine"
    by = {f["factor"]: f for f in t["factors"]}
    assert by["keystroke"]["samples"] == 2 and by["keystroke"]["llr"] == pytest.approx(
        2.5, abs=0.01
    )
    assert by["keystroke"]["age_s"] < 5 and by["gait"]["age_s"] == pytest.approx(3600, abs=5)
    assert by["gait"]["llr"] == pytest.approx(-0.5, abs=0.01) and by["gait"]["half_life_s"] == 3600


def test_the_tenant_operating_point_decides(api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    rows.job(db, tenant["id"], "erin", factor="face", llr=1.0)  # p = 0.731
    db.execute("UPDATE tenants SET decision_threshold = 0.8 WHERE id = %s", (tenant["id"],))
    t = api.get("/v1/users/erin/trust", headers=tenant["headers"]).json()
    assert t["threshold"] == pytest.approx(0.8) and t["decision"] == "impostor"


def test_a_user_without_scores_has_no_decision(api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    rows.device(db, tenant["id"], "fred")
    t = api.get("/v1/users/fred/trust", headers=tenant["headers"]).json()
    assert t["decision"] == "unknown" and t["factors"] == [] and t["probability"] == 0.5


def test_another_tenants_user_is_404(api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    rows.job(db, tenant["id"], "gina", llr=1.0)
    _, other = create_tenant(db, name="other")
    r = api.get("/v1/users/gina/trust", headers={"Authorization": f"Bearer {other.token}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    assert api.get("/v1/users/nobody/trust", headers=tenant["headers"]).status_code == 404
