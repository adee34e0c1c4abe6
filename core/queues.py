"""The queue contract: every task name and queue name lives here.

Queue names can be overridden by settings (``TACIT_QUEUES__KEYSTROKE=...``)
so operators can split or merge pools; the KEDA scalers read the same names.
"""

from __future__ import annotations

FACTORS: tuple[str, ...] = ("keystroke", "gait", "face")

# Task names are part of the wire contract between api/relay and workers: never rename lightly.
TASK_SCORE = "tacit.score_job"
TASK_DELIVER_WEBHOOK = "tacit.deliver_webhook"
# on the factor's score queue: the pool that holds the model rebuilds its templates
TASK_REBUILD_TEMPLATE = "tacit.rebuild_template"

DEFAULT_SCORE_QUEUES: dict[str, str] = {f: f"score.{f}" for f in FACTORS}
DEFAULT_WEBHOOK_QUEUE = "webhooks"
