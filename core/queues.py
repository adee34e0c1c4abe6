"""The queue contract: every task name and queue name lives here.

Each installed factor (core/factors.py) has its own score queue, ``score.<factor>`` unless
settings say otherwise (``TACIT_QUEUES__<FACTOR>=...``), so operators can split or merge
pools; the KEDA scalers read the same names.
"""

from __future__ import annotations

# Task names are part of the wire contract between api/relay and workers: never rename lightly.
TASK_SCORE = "tacit.score_job"
TASK_DELIVER_WEBHOOK = "tacit.deliver_webhook"
# on the factor's score queue: the pool that holds the model rebuilds its templates
TASK_REBUILD_TEMPLATE = "tacit.rebuild_template"

DEFAULT_WEBHOOK_QUEUE = "webhooks"
