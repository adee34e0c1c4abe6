"""Simulated phones driving a running stack over HTTP (shared by demo, chaos and benchmarks).

Each phone enrols like a real one: the tenant asks for a one-time enrolment token and
opens an enrolment window for the user, the phone redeems the token with a fresh
Ed25519 key through the device SDK, then seals every batch to the server's current key
and signs its uploads (docs/protocol.md).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import numpy as np

from cli.console import Progress
from core import factors as registry

if TYPE_CHECKING:
    from sdk.client import DeviceClient


@dataclass
class Phone:
    user: str
    device_id: str
    persons: dict[str, object]  # factor -> synthetic person
    device: DeviceClient | None = None  # the phone's SDK client: signing key, server key


@dataclass
class Tenancy:
    api_url: str
    api_key: str
    phones: list[Phone] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )


def create_tenant(database_url: str, name: str) -> str:
    from core.db import connect
    from core.tenants.service import create_tenant as create

    with connect(database_url) as conn:
        _, key = create(conn, name=name)
    return key.token


def enrol_device(
    t: Tenancy,
    user: str,
    *,
    server_keys: list | None = None,
    factors: list[str] | None = None,  # type: ignore[type-arg]
) -> DeviceClient:
    """A new phone for `user`: enrolment token from the tenant API, redeemed through the SDK,
    and an enrolment window for `factors` (every factor when not given) opened by the tenant."""
    from sdk import client as sdk

    with t.client() as c:
        r = c.post(f"/v1/users/{user}/enrolment-tokens")
        r.raise_for_status()
        token = r.json()["token"]
    sdk.open_enrolment_window(
        t.api_url, t.api_key, user, factors or list(registry.names()), ttl_s=3600
    )
    creds = sdk.redeem_enrolment(t.api_url, token)
    keys = server_keys or sdk.fetch_server_keys(t.api_url)
    return sdk.DeviceClient(t.api_url, creds.device_id, creds.signing_key, keys, creds.tenant_id)


def make_phones(t: Tenancy, *, phones: int, factors: list[str], seed: int) -> None:

    from sdk import client as sdk

    synth = {f: registry.get(f).submodule("synthetic") for f in factors}
    keys = sdk.fetch_server_keys(t.api_url)
    for i in range(phones):
        user = f"user-{i}"
        device = enrol_device(t, user, server_keys=keys, factors=factors)
        persons = {f: synth[f].make_person(seed * 1000 + i) for f in factors}
        t.phones.append(Phone(user, device.device_id, persons, device))


def capture(factor: str, person: object, rng: np.random.Generator, n: int) -> bytes:

    return registry.get(factor).submodule("synthetic").capture(person, rng, n)


def upload(c: httpx.Client, phone: Phone, factor: str, purpose: str, body: bytes) -> str:
    """Seal a plaintext frame on the phone and upload it signed; returns the job id.

    `c` (the tenant's client) is not used: a phone speaks for itself, with no API key.
    """
    from sdk.client import UploadError

    if phone.device is None:
        raise RuntimeError(f"phone of {phone.user} was not enrolled through the SDK")
    end_ms = int(time.time() * 1000)
    batch_id, envelope = phone.device.build_envelope(
        body,
        factor=factor,
        purpose=purpose,
        capture_start_ms=end_ms - 10_000,
        capture_end_ms=end_ms,
    )
    try:
        return phone.device.send(batch_id, envelope).job_id
    except UploadError as e:
        raise RuntimeError(f"upload refused: {e.status} {e.code}: {e.message}") from None


def wait_jobs(t: Tenancy, job_ids: list[str], label: str, timeout: float = 300) -> dict[str, dict]:
    """Poll until every job is final; returns the job views."""
    pending, done = set(job_ids), {}
    bar = Progress(label, len(job_ids))
    deadline = time.monotonic() + timeout
    with t.client() as c:
        while pending and time.monotonic() < deadline:
            for jid in list(pending):
                r = c.get(f"/v1/jobs/{jid}")
                if r.status_code == 200 and r.json()["status"] in ("done", "failed", "dead"):
                    done[jid] = r.json()
                    pending.discard(jid)
            bar.update(len(done))
            if pending:
                time.sleep(0.2)
    bar.finish()
    if pending:
        raise RuntimeError(f"{len(pending)} job(s) did not finish within {timeout:.0f}s")
    return done


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def _ms(job: dict) -> float:
    from datetime import datetime

    return (
        datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])
    ).total_seconds() * 1e3


def run_simulation(
    api_url: str,
    database_url: str,
    *,
    phones: int,
    factors: list[str],
    enrol_batches: int,
    verify_batches: int,
    seed: int,
) -> dict:
    rng = np.random.default_rng(seed)
    t = Tenancy(api_url, create_tenant(database_url, f"demo-{uuid.uuid4().hex[:6]}"))
    make_phones(t, phones=phones, factors=factors, seed=seed)
    pool = ThreadPoolExecutor(8)
    with t.client() as c:
        enrol = [
            (p, f, capture(f, p.persons[f], rng, 8))
            for p in t.phones
            for f in factors
            for _ in range(enrol_batches)
        ]
        enrol_ids = list(pool.map(lambda a: upload(c, a[0], a[1], "enrol", a[2]), enrol))
    enrolled = wait_jobs(t, enrol_ids, "enrol ")
    probes: list[tuple[Phone, str, bool, bytes]] = []
    for i, p in enumerate(t.phones):
        for f in factors:
            for k in range(verify_batches):
                probes.append((p, f, True, capture(f, p.persons[f], rng, 4)))
                other = t.phones[(i + 1 + k) % len(t.phones)]
                probes.append((p, f, False, capture(f, other.persons[f], rng, 4)))
    with t.client() as c:
        verify_ids = list(pool.map(lambda a: upload(c, a[0], a[1], "verify", a[3]), probes))
    verified = wait_jobs(t, verify_ids, "verify")
    pool.shutdown()
    everything = {**enrolled, **verified}
    per_factor: dict[str, dict[str, list[float]]] = {
        f: {"genuine": [], "impostor": []} for f in factors
    }
    for (_, f, genuine, _), jid in zip(probes, verify_ids, strict=True):
        job = verified[jid]
        if job["status"] == "done" and job["score"]:
            per_factor[f]["genuine" if genuine else "impostor"].append(job["score"]["score"])
    latencies = [_ms(j) for j in everything.values() if j["status"] == "done"]
    return {
        "jobs": len(everything),
        "done": sum(j["status"] == "done" for j in everything.values()),
        "failed": sum(j["status"] != "done" for j in everything.values()),
        "upload_to_score_ms": {
            "p50": _percentile(latencies, 50),
            "p99": _percentile(latencies, 99),
        },
        "factors": {
            f: {
                "genuine_mean": float(np.mean(v["genuine"])) if v["genuine"] else 0.0,
                "impostor_mean": float(np.mean(v["impostor"])) if v["impostor"] else 0.0,
            }
            for f, v in per_factor.items()
        },
    }
