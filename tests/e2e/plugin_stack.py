"""Driver of tests/e2e/test_factor_plugin.py, run by the fresh environment's interpreter.

Everything here runs where the swipe plug-in is installed and Tacit's code is unchanged:
the API, the relay and the pools are that interpreter's processes (``cli.stack``). The
swipe pool starts only once the uploads wait on its queue, so the jobs are seen on
``score.swipe`` before its pool takes them. Prints one JSON line of what happened.

    python -m tests.e2e.plugin_stack DATA_DIR   (services from DATABASE_URL, REDIS_URL, ...)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import redis

from cli import simulate
from cli.stack import Role, Stack, free_port
from core import factors as registry
from core.settings import Settings
from tests.e2e import flow
from tests.webhooks.receiver import Receiver

FACTOR = "swipe"


def wait_queued(redis_url: str, queue: str, n: int, timeout: float = 30) -> int:
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while r.llen(queue) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    return int(r.llen(queue))


def start_pool(stack: Stack, timeout: float = 120) -> None:
    """`tacit worker --factor swipe`, its own pool, supervised and stopped with the stack."""
    role = Role(
        f"worker-{FACTOR}", [sys.executable, "-m", "cli.main", "worker", "--factor", FACTOR]
    )
    stack.roles[role.name] = role
    stack.spawn(role)
    stack.wait_ready(timeout)


def run(data_dir: Path) -> dict[str, object]:
    settings = Settings()
    # the API, the relay and the webhook pool; the swipe pool is started by hand below
    stack = Stack(data_dir, dict(os.environ), free_port(), factors=(FACTOR,), autoscaled=(FACTOR,))
    receiver = Receiver().start()
    stack.start(timeout=120)
    try:
        t = flow.tenancy(stack, settings, phones=2, factors=(FACTOR,))
        with t.client() as c:
            r = c.post("/v1/webhooks/endpoints", json={"url": receiver.url, "event_types": []})
            r.raise_for_status()
            receiver.secrets.append(r.json()["secret"])
        rng = np.random.default_rng(0)
        with t.client() as c:
            enrol = [
                simulate.upload(
                    c, p, FACTOR, "enrol", simulate.capture(FACTOR, p.persons[FACTOR], rng, 8)
                )
                for p in t.phones
                for _ in range(2)
            ]
        queue = settings.queues.score_queue(FACTOR)
        queued = wait_queued(settings.redis_url, queue, len(enrol))
        start_pool(stack)
        enrolled = simulate.wait_jobs(t, enrol, "enrol", timeout=120)
        verify = flow.verify_uploads(t, FACTOR, 4)
        scored = flow.wait_all(t, verify, timeout=120)
        trust = {p.user: flow.get(t, f"/v1/users/{p.user}/trust").json() for p in t.phones}
        events = set(verify + enrol)
        flow.eventually(
            lambda: (
                events <= {e["data"]["job_id"] for e in receiver.of_type("job.completed")}
                and len(receiver.of_type("trust.changed")) >= len(t.phones)
            ),
            timeout=60,
        )
        return {
            "installed": list(registry.names()),
            "queue": queue,
            "queued_before_pool": queued,
            "enrol": [j["status"] for j in enrolled.values()],
            "verify": [
                {
                    "status": j["status"],
                    "factor": j["factor"],
                    "score": j["score"],
                    "error": j["error"],
                }
                for j in scored.values()
            ],
            "trust": trust,
            "completed_events": sorted(
                e["data"]["job_id"] for e in receiver.of_type("job.completed")
            ),
            "job_ids": sorted(events),
            "trust_events": len(receiver.of_type("trust.changed")),
            "unverified_deliveries": receiver.unverified,
        }
    finally:
        receiver.stop()
        stack.stop()


if __name__ == "__main__":
    out = run(Path(sys.argv[1]))
    print(json.dumps(out, default=str))
