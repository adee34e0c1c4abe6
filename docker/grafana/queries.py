"""The PromQL of the Grafana dashboard, as a Prometheus rule file for `promtool`.

Grafana variables are replaced by plain values first ($__rate_interval -> 5m, a
regex variable -> .*), so `promtool check rules` parses every panel's query.

    python docker/grafana/queries.py docker/grafana/tacit.json > /tmp/dashboard-rules.yml
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def dashboard_queries(path: Path) -> Iterator[tuple[str, str]]:
    """``(panel title, expr)`` for every target of every panel, rows included."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield panel.get("title", ""), target["expr"]
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard.get("panels", []))


def plain(expr: str) -> str:
    """``expr`` with Grafana's variables replaced by values Prometheus accepts."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", ".*", expr)


def rule_file(path: Path) -> str:
    """A rule file with one recording rule per dashboard query."""
    rules = [
        {"record": f"tacit:dashboard_query_{i}", "expr": plain(expr)}
        for i, (_, expr) in enumerate(dashboard_queries(path))
    ]
    return json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}, indent=2)


if __name__ == "__main__":
    print(rule_file(Path(sys.argv[1])))
