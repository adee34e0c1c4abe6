"""The Grafana dashboard and Prometheus files speak the metrics the code exports."""

from __future__ import annotations

import json
import re

import yaml

from .deploy_files import DOCKER, load_script

EXPORTED = {
    "tacit_queue_depth",
    "tacit_jobs_total",
    "tacit_upload_seconds",
    "tacit_upload_to_score_seconds",
    "tacit_batch_size",
    "tacit_queue_wait_seconds",
    "tacit_stage_seconds",
    "tacit_webhook_deliveries_total",
    "tacit_dead_jobs",
}
HISTOGRAMS = {
    "tacit_upload_seconds",
    "tacit_upload_to_score_seconds",
    "tacit_batch_size",
    "tacit_queue_wait_seconds",
    "tacit_stage_seconds",
}


def _metrics_in(expr: str) -> set[str]:
    names = set(re.findall(r"\btacit_[a-z_]+\b", expr))
    return {
        re.sub(r"_(bucket|sum|count)$", "", n) if n.endswith(("_bucket", "_sum", "_count")) else n
        for n in names
    }


def test_dashboard_uses_every_exported_metric_and_no_other() -> None:
    queries = load_script(DOCKER / "grafana" / "queries.py")
    used: set[str] = set()
    for _, expr in queries.dashboard_queries(DOCKER / "grafana" / "tacit.json"):
        used |= _metrics_in(expr)
        # histograms are read through their series, never by the bare name
        for name in HISTOGRAMS:
            assert not re.search(rf"\b{name}\b(?!_)", expr), expr
    assert used == EXPORTED


def test_dashboard_panels_have_unique_ids_and_a_datasource_variable() -> None:
    dashboard = json.loads((DOCKER / "grafana" / "tacit.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "factor"} <= variables
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"


def test_dashboard_variables_become_valid_placeholders_for_promtool() -> None:
    queries = load_script(DOCKER / "grafana" / "queries.py")
    plain = queries.plain('sum(rate(tacit_jobs_total{factor=~"$factor"}[$__rate_interval]))')
    assert plain == 'sum(rate(tacit_jobs_total{factor=~".*"}[5m]))'


def test_prometheus_rules_and_config_name_known_metrics_and_files() -> None:
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        assert (DOCKER / rule_file).is_file()
    jobs = [job["job_name"] for job in config["scrape_configs"]]
    assert len(jobs) == len(set(jobs))
    rules = yaml.safe_load((DOCKER / "prometheus-rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert _metrics_in(rule["expr"]) <= EXPORTED, rule["alert"]
