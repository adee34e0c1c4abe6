"""GET /v1/users/{user}/trust: fused on read from the scores table, per-factor breakdown, tenant scoped."""

from __future__ import annotations

import math

import pytest

from tests.webhooks import rows


def _fusion(settings):  # type: ignore[no-untyped-def]
    from core.trust.fusion import FusionParams

    return FusionParams.from_settings(settings.trust)


def test_trust_fuses_recent_scores_with_decay(api, tenant, db, settings) -> None:  # type: ignore[no-untyped-def]
    params = _fusion(settings)
    hk, hg = params.half_life("keystroke"), params.half_life("gait")
    # given a fresh keystroke score (llr 3), an older one (llr 2) one keystroke half-life old,
    # and a gait score (llr -3) one gait half-life old
    rows.job(db, tenant["id"], "dana", factor="keystroke", llr=3.0)
    rows.job(db, tenant["id"], "dana", factor="keystroke", llr=2.0, score_age_s=hk)
    rows.job(db, tenant["id"], "dana", factor="gait", llr=-3.0, score_age_s=hg)
    # when the tenant reads dana's trust
    r = api.get("/v1/users/dana/trust", headers=tenant["headers"])
    # then log-odds = logit(prior) + per factor its newest max_samples scores, shrunk by
    # weak_llr, clipped, halved per half-life of age; with the committed settings
    # (prior 0.9, weak_llr 1, llr_clip 3, max_samples 1): 2.197 + 2 + (-2 / 2) = 3.197
    ks = params.evidence(3.0) + (params.evidence(2.0) / 2 if params.max_samples >= 2 else 0.0)
    gait = params.evidence(-3.0) / 2
    expected = math.log(params.prior_probability / (1 - params.prior_probability)) + ks + gait
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["llr"] == pytest.approx(expected, abs=0.02)
    assert t["probability"] == pytest.approx(1 / (1 + math.exp(-expected)), abs=0.003)
    assert t["threshold"] == 0.5 and t["decision"] == "genuine"
    by = {f["factor"]: f for f in t["factors"]}
    assert by["keystroke"]["samples"] == min(2, params.max_samples)
    assert by["keystroke"]["llr"] == pytest.approx(ks, abs=0.02)
    assert by["keystroke"]["age_s"] < 5 and by["gait"]["age_s"] == pytest.approx(hg, abs=5)
    assert by["gait"]["llr"] == pytest.approx(gait, abs=0.01) and by["gait"]["half_life_s"] == hg


def test_the_tenant_operating_point_decides(api, tenant, db, settings) -> None:  # type: ignore[no-untyped-def]
    params = _fusion(settings)
    rows.job(db, tenant["id"], "erin", factor="face", llr=-2.0)
    logit = math.log(params.prior_probability / (1 - params.prior_probability))
    p = 1 / (1 + math.exp(-(logit + params.evidence(-2.0))))  # 0.768 with the committed settings
    db.execute(
        "UPDATE tenants SET decision_threshold = %s WHERE id = %s", ((p + 1) / 2, tenant["id"])
    )
    t = api.get("/v1/users/erin/trust", headers=tenant["headers"]).json()
    assert t["threshold"] == pytest.approx((p + 1) / 2) and t["decision"] == "impostor"


def test_a_user_without_scores_has_no_decision(api, tenant, db, settings) -> None:  # type: ignore[no-untyped-def]
    rows.device(db, tenant["id"], "fred")
    t = api.get("/v1/users/fred/trust", headers=tenant["headers"]).json()
    assert t["decision"] == "unknown" and t["factors"] == []
    assert t["probability"] == pytest.approx(settings.trust.prior_probability)


def test_another_tenants_user_is_404(api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    rows.job(db, tenant["id"], "gina", llr=1.0)
    _, other = create_tenant(db, name="other")
    r = api.get("/v1/users/gina/trust", headers={"Authorization": f"Bearer {other.token}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    assert api.get("/v1/users/nobody/trust", headers=tenant["headers"]).status_code == 404
