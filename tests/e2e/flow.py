"""Helpers for end-to-end tests: a tenant's phones driving the stack over real HTTP."""

from __future__ import annotations

import time
import uuid

import httpx
import numpy as np

from cli import simulate


def tenancy(
    stack, settings, phones: int = 2, factors=("keystroke",), seed: int = 3
) -> simulate.Tenancy:  # type: ignore[no-untyped-def]
    t = simulate.Tenancy(
        stack.api_url, simulate.create_tenant(settings.database_url, f"e2e-{uuid.uuid4().hex[:6]}")
    )
    simulate.make_phones(t, phones=phones, factors=list(factors), seed=seed)
    return t


def enrol(
    t: simulate.Tenancy, factor: str, batches: int = 3, seed: int = 0, samples: int = 8
) -> list[str]:
    rng = np.random.default_rng(seed)
    with t.client() as c:
        ids = [
            simulate.upload(
                c, p, factor, "enrol", simulate.capture(factor, p.persons[factor], rng, samples)
            )
            for p in t.phones
            for _ in range(batches)
        ]
    jobs = simulate.wait_jobs(t, ids, "enrol", timeout=120)
    assert all(j["status"] == "done" for j in jobs.values()), [j["error"] for j in jobs.values()]
    return ids


def verify_uploads(t: simulate.Tenancy, factor: str, n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    with t.client() as c:
        return [
            simulate.upload(
                c,
                t.phones[i % len(t.phones)],
                factor,
                "verify",
                simulate.capture(factor, t.phones[i % len(t.phones)].persons[factor], rng, 4),
            )
            for i in range(n)
        ]


def wait_all(t: simulate.Tenancy, ids: list[str], timeout: float = 180) -> dict[str, dict]:
    return simulate.wait_jobs(t, ids, "jobs", timeout=timeout)


def get(t: simulate.Tenancy, path: str) -> httpx.Response:
    with t.client() as c:
        return c.get(path)


def eventually(check, timeout: float = 30, interval: float = 0.3):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)
