"""The capacity model behind `tacit capacity`: one day of uploads through autoscaled pools.

Each factor pool is simulated on its own, in fixed time steps of ``dt`` seconds (a
discrete-event simulation that counts the events of each step rather than drawing them
one by one, so 10 million users cost what 1,000 do):

- uploads arrive as a Poisson process whose rate follows the profile's diurnal curve
  (hourly weights, linearly interpolated, normalised to a mean of 1);
- a ready replica scores jobs at its measured rate ``mu`` (jobs/s, from
  `tacit bench worker --json`); with ``n`` jobs in the pool and ``r`` ready replicas,
  ``min(n, Poisson(min(n, r) * mu * dt))`` jobs finish in a step: for small ``mu * dt``
  that is the M/M/c birth-death chain, for large ``mu * dt`` the fluid limit;
- jobs leave in arrival order; a job's upload-to-score time is its time in the pool plus
  the profile's ``service_latency_s`` (fetch, decrypt, model, write on an idle pool);
- every ``polling_s`` the scaler reads what KEDA reads (list length: jobs not held by a
  replica; the oldest queued job's age; jobs scored per second over the last two
  minutes) and applies ``core.scaling.desired_replicas``;
  it scales up at once, and down to the largest wish of the last ``cooldown_s`` (the HPA's
  stabilisation window, KEDA's cooldown for the last replica); a new replica serves after
  ``cold_start_s`` but is paid from its start.

Policies: ``always-on`` keeps the replicas the day's peak needs at 70% utilisation;
``zero`` scales on list length and scoring rate with ``min_replicas=0``; ``age`` adds the
age rule (the ScaledObjects' three triggers).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import factors as registry
from core.scaling import DEFAULT_SCALING, PoolScaling, desired_replicas, pool_scaling

POLICIES = ("always-on", "zero", "age")
ALWAYS_ON_UTILISATION = 0.7
DAY_S = 86_400
WARMUP_S = 3_600  # simulated before the day (its last hour), not counted

# The default profile (`tacit capacity --write-profile FILE` writes it for editing).
# Upload rates: a phone uploads whenever the network allows; per user and day, keystroke
# batches every ~30 min of use, gait every ~hour of walking, face a few unlocks. Service
# rates: `tacit bench worker --json` on the 2-core CPU machine (BENCHMARKS.md): worker
# samples/s over samples per job. Cold start: model load of a CPU worker; use ~60 s for a
# GPU pod on a warm node. The diurnal curve (hour 0..23, local time of most users) has a
# night trough at 15% of the mean and an evening peak at 1.8x.
DEFAULT_PROFILE: dict[str, Any] = {
    "diurnal": [
        0.25,
        0.17,
        0.15,
        0.15,
        0.2,
        0.35,
        0.7,
        1.15,
        1.35,
        1.3,
        1.2,
        1.15,
        1.25,
        1.2,
        1.1,
        1.1,
        1.2,
        1.35,
        1.55,
        1.7,
        1.8,
        1.5,
        1.0,
        0.55,
    ],
    # per factor: what each installed factor declares (``CAPACITY`` in its module)
    "factors": {},
    # `tacit bench ingest`: ~200-240 uploads/s per API process on one core
    "api": {"uploads_per_s_per_process": 200},
    # rows written: batch, job, outbox insert and its publish mark per upload; claim,
    # score, job done, trust per scored job (webhook deliveries not counted)
    "postgres": {"writes_per_upload": 4, "writes_per_job": 4},
    "redis": {"bytes_per_queued_message": 1_500},  # one kombu message of a score task
    "threads_per_replica": 32,  # jobs a replica holds (TACIT_POOL__THREADS), off the list
    # null: unbounded (the plan tells the max_replicas to set); else a cap per factor
    "max_replicas": None,
}


def default_profile() -> dict[str, Any]:
    profile = copy.deepcopy(DEFAULT_PROFILE)
    profile["factors"] = {
        f.name: dict(f.capacity) for f in registry.installed().values() if f.capacity
    }
    return profile


def load_profile(path: Path | None) -> dict[str, Any]:
    """The default profile, with the keys of ``path`` (JSON) merged over it, factor by factor."""
    profile = default_profile()
    if path is None:
        return profile
    given = json.loads(path.read_text(encoding="utf-8"))
    for key, value in given.items():
        if key == "factors":
            for factor, figures in value.items():
                profile["factors"].setdefault(factor, {}).update(figures)
        else:
            profile[key] = value
    return profile


def service_rates_from_bench(
    lines: Sequence[str], rows_per_job: Mapping[str, int]
) -> dict[str, float]:
    """Jobs/s per replica from `tacit bench worker --json` lines (their ``worker_per_s`` is in samples)."""
    rates = {}
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        out = json.loads(line)
        if "factor" in out and "worker_per_s" in out:
            rows = int(out.get("rows_per_job") or rows_per_job[out["factor"]])
            rates[out["factor"]] = float(out["worker_per_s"]) / rows
    return rates


def diurnal_rates(weights: Sequence[float], per_day: float, times: np.ndarray) -> np.ndarray:
    """Arrival rate (per s) at each time of ``times`` (seconds into the day)."""
    w = np.asarray(weights, dtype=float)
    w = w / w.mean()
    hours = np.arange(len(w) + 1) * (DAY_S / len(w)) + DAY_S / len(w) / 2
    curve = np.concatenate([w, w[:1]])
    shifted = np.concatenate([[hours[0] - DAY_S / len(w)], hours])
    values = np.concatenate([[w[-1]], curve])
    return per_day / DAY_S * np.interp(times % DAY_S, shifted, values)


@dataclass
class Pool:
    """What the simulator needs of one factor pool."""

    mu: float  # jobs/s of one ready replica
    cold_start_s: float
    service_latency_s: float
    scaling: PoolScaling
    threads: int = 32
    # measured cold starts: each new replica draws one (``cold_start_s`` when empty)
    cold_start_samples: tuple[float, ...] = ()
    stop_s: float = 0.0  # warm shutdown: a stopped replica is paid this long, serving nothing


@dataclass
class PoolResult:
    replica_seconds: float
    p50_s: float
    p99_s: float
    mean_s: float
    max_backlog: int
    jobs: int
    scored: int
    replicas: list[tuple[float, int]] = field(default_factory=list)  # (t, replicas) per sample
    backlog: list[tuple[float, int]] = field(default_factory=list)
    mean_in_system: float = 0.0
    wait_probability: float = 0.0  # share of time all ready replicas are busy (n >= r)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    if len(values) == 0 or weights.sum() == 0:
        return 0.0
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    return float(v[min(len(v) - 1, int(np.searchsorted(cum, q * cum[-1])))])


def simulate_pool(
    arrivals: np.ndarray,
    pool: Pool,
    *,
    dt: float,
    policy: str,
    fixed_replicas: int | None = None,
    warmup_s: float = 0.0,
    drain: bool = True,
    sample_every_s: float = 60.0,
    seed: int = 0,
) -> PoolResult:
    """Run one pool through ``arrivals`` (jobs arriving in each step of ``dt`` seconds).

    ``fixed_replicas`` (always-on) keeps that many ready replicas throughout. The first
    ``warmup_s`` only bring the pool to its state (a day follows another): nothing in
    them is counted, and reported times start after them. With ``drain``, the run goes
    on after the last step until the pool is empty.
    """
    run = _PoolRun(pool, policy, fixed_replicas, dt, warmup_s, sample_every_s, seed)
    steps = len(arrivals)
    step = 0
    while step < steps or (drain and (run.n > 0 and step < steps * 4 + 1_000_000)):
        t = step * dt
        run.arrive(t, int(arrivals[step]) if step < steps else 0)
        if fixed_replicas is None:
            run.autoscale(t)
        run.serve(t)
        run.account(t)
        step += 1
        if step >= steps and not drain:
            break
    return run.result(step * dt - warmup_s)


class _PoolRun:
    """One simulated pool's state, advanced one step of ``dt`` at a time."""

    def __init__(
        self,
        pool: Pool,
        policy: str,
        fixed_replicas: int | None,
        dt: float,
        warmup_s: float,
        sample_every_s: float,
        seed: int,
    ) -> None:
        self.pool, self.dt, self.warmup_s, self.sample_every_s = pool, dt, warmup_s, sample_every_s
        self.rng = np.random.default_rng(seed)
        s = pool.scaling
        self.scaling = dataclasses.replace(s, min_replicas=0) if policy in ("zero", "age") else s
        self.use_age = policy == "age"
        self.autoscaled = fixed_replicas is None
        self.queue: deque[list[float]] = deque()  # [arrival time, count], oldest first
        self.n = 0
        self.ready = fixed_replicas or 0
        self.starting: list[float] = []  # ready-at times of replicas still loading
        self.stopping: list[float] = []  # exit times of replicas in their warm shutdown
        self.wishes: deque[tuple[float, int]] = deque()  # (time, desired) in the cooldown window
        self.recent: deque[tuple[float, int]] = deque()  # (time, jobs scored) in the rate window
        self.recent_sum = 0
        self.next_poll = 0.0
        self.next_sample = warmup_s
        self.poll_every = max(dt, float(self.scaling.polling_s))
        self.lat_values: list[float] = []
        self.lat_weights: list[int] = []
        self.replica_seconds = self.area_n = self.busy_time = 0.0
        self.max_backlog = self.jobs = self.scored = 0
        self.replicas_series: list[tuple[float, int]] = []
        self.backlog_series: list[tuple[float, int]] = []

    def arrive(self, t: float, k: int) -> None:
        if k:
            self.queue.append([t + self.dt / 2, k])
            self.n += k
            self.jobs += k if t >= self.warmup_s else 0

    def autoscale(self, t: float) -> None:
        """Loading replicas that are ready join; on each poll, KEDA's rules set the target."""
        if self.starting and any(x <= t for x in self.starting):
            self.ready += sum(1 for x in self.starting if x <= t)
            self.starting = [x for x in self.starting if x > t]
        if t < self.next_poll:
            return
        s = self.scaling
        self.next_poll = t + self.poll_every
        current = self.ready + len(self.starting)
        held = min(self.n, self.ready * self.pool.threads)
        depth = self.n - held
        age = _age_at(self.queue, held, t) if depth > 0 else 0.0
        while self.recent and self.recent[0][0] < t - s.rate_window_s:
            self.recent_sum -= self.recent.popleft()[1]
        rate = self.recent_sum / s.rate_window_s
        want = desired_replicas(depth, age, current, s, jobs_per_s=rate, use_age=self.use_age)
        self.wishes.append((t, want))
        while self.wishes and self.wishes[0][0] < t - s.cooldown_s:
            self.wishes.popleft()
        target = max(w for _, w in self.wishes)
        if target > current:
            self.starting += [t + _cold_start(self.pool, self.rng) for _ in range(target - current)]
        elif target < current:
            drop = current - target
            while drop and self.starting:  # cancel loading replicas first
                self.starting.pop()
                drop -= 1
            self.ready -= drop
            self.stopping += [t + self.pool.stop_s] * drop

    def serve(self, t: float) -> None:
        """The ready replicas score what this step allows, oldest jobs first."""
        busy = min(self.n, self.ready)
        if not (self.n and busy):
            return
        done = min(self.n, int(self.rng.poisson(busy * self.pool.mu * self.dt)))
        if done and self.autoscaled:
            self.recent.append((t, done))
            self.recent_sum += done
        self.n -= done
        end = t + self.dt / 2
        while done:
            head = self.queue[0]
            take = min(done, int(head[1]))
            if head[0] >= self.warmup_s:
                self.lat_values.append(end - head[0])
                self.lat_weights.append(take)
                self.scored += take
            head[1] -= take
            done -= take
            if head[1] == 0:
                self.queue.popleft()

    def account(self, t: float) -> None:
        if self.stopping:
            self.stopping = [x for x in self.stopping if x > t]
        if t < self.warmup_s:
            return
        dt = self.dt
        self.replica_seconds += (self.ready + len(self.starting) + len(self.stopping)) * dt
        self.area_n += self.n * dt
        if self.ready and self.n >= self.ready:
            self.busy_time += dt
        self.max_backlog = max(self.max_backlog, self.n)
        if t >= self.next_sample:
            self.next_sample = t + self.sample_every_s
            self.replicas_series.append((t - self.warmup_s, self.ready + len(self.starting)))
            self.backlog_series.append((t - self.warmup_s, self.n))

    def result(self, horizon: float) -> PoolResult:
        values = np.asarray(self.lat_values) + self.pool.service_latency_s
        weights = np.asarray(self.lat_weights, dtype=float)
        mean = float((values * weights).sum() / weights.sum()) if weights.sum() else 0.0
        return PoolResult(
            replica_seconds=self.replica_seconds,
            p50_s=_weighted_quantile(values, weights, 0.5),
            p99_s=_weighted_quantile(values, weights, 0.99),
            mean_s=mean,
            max_backlog=self.max_backlog,
            jobs=self.jobs,
            scored=self.scored,
            replicas=self.replicas_series,
            backlog=self.backlog_series,
            mean_in_system=self.area_n / horizon if horizon else 0.0,
            wait_probability=self.busy_time / horizon if horizon else 0.0,
        )


def _cold_start(pool: Pool, rng: np.random.Generator) -> float:
    if pool.cold_start_samples:
        return float(rng.choice(pool.cold_start_samples))
    return pool.cold_start_s


def _age_at(queue: deque[list[float]], held: int, t: float) -> float:
    """Age of the oldest job not held by a replica: the one after the first ``held``."""
    seen = 0
    for arrived, count in queue:
        seen += int(count)
        if seen > held:
            return max(0.0, t - arrived)
    return 0.0


def always_on_replicas(peak_rate: float, mu: float) -> int:
    """Replicas a fixed pool needs to carry the peak at ``ALWAYS_ON_UTILISATION``."""
    return max(1, math.ceil(peak_rate / (mu * ALWAYS_ON_UTILISATION)))


def pools_from_profile(
    profile: Mapping[str, Any], scaling: Mapping[str, PoolScaling] | None = None
) -> dict[str, Pool]:
    figures = pool_scaling() | dict(scaling or {})
    pools = {}
    for factor, f in profile["factors"].items():
        sc = figures.get(factor, DEFAULT_SCALING)
        cap = profile.get("max_replicas")
        if cap is None:
            sc = dataclasses.replace(sc, max_replicas=1_000_000)
        elif isinstance(cap, Mapping):
            sc = dataclasses.replace(sc, max_replicas=int(cap.get(factor, sc.max_replicas)))
        else:
            sc = dataclasses.replace(sc, max_replicas=int(cap))
        pools[factor] = Pool(
            mu=float(f["jobs_per_s_per_replica"]),
            cold_start_s=float(f["cold_start_s"]),
            service_latency_s=float(f.get("service_latency_s", 0.0)),
            scaling=sc,
            threads=int(profile.get("threads_per_replica", 32)),
        )
    return pools


def plan_day(
    users: int,
    profile: Mapping[str, Any],
    *,
    policy: str,
    scaling: Mapping[str, PoolScaling] | None = None,
    dt: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Simulate one day for ``users``; the per-factor results and the other tiers' load."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
    rng = np.random.default_rng(seed)
    times = np.arange(0, DAY_S, dt)
    pools = pools_from_profile(profile, scaling)
    results: dict[str, PoolResult] = {}
    rates_total = np.zeros_like(times)
    uploads = 0
    bytes_per_day = 0.0
    for i, (factor, pool) in enumerate(pools.items()):
        f = profile["factors"][factor]
        per_day = users * float(f["uploads_per_user_per_day"])
        rates = diurnal_rates(profile["diurnal"], per_day, times)
        rates_total += rates
        arrivals = rng.poisson(rates * dt)
        fixed = always_on_replicas(float(rates.max()), pool.mu) if policy == "always-on" else None
        # the day follows another: its last hour brings the pool to its midnight state
        warm = int(WARMUP_S / dt)
        results[factor] = simulate_pool(
            np.concatenate([arrivals[-warm:], arrivals]),
            pool,
            dt=dt,
            policy=policy,
            fixed_replicas=fixed,
            warmup_s=warm * dt,
            seed=seed + i + 1,
        )
        uploads += results[factor].jobs
        bytes_per_day += results[factor].jobs * float(f.get("bytes_per_upload", 0))
    peak = float(rates_total.max())
    api_rate = float(profile["api"]["uploads_per_s_per_process"])
    pg = profile["postgres"]
    writes = peak * (float(pg["writes_per_upload"]) + float(pg["writes_per_job"]))
    redis_bytes = sum(r.max_backlog for r in results.values()) * float(
        profile["redis"]["bytes_per_queued_message"]
    )
    return {
        "users": users,
        "policy": policy,
        "factors": {f: r for f, r in results.items()},
        "peak_uploads_per_s": peak,
        "mean_uploads_per_s": float(rates_total.mean()),
        "api_processes": max(1, math.ceil(peak / (api_rate * ALWAYS_ON_UTILISATION))),
        "postgres_writes_per_s": writes,
        "redis_queue_bytes": redis_bytes,
        "objects_per_day": uploads,
        "bytes_per_day": bytes_per_day,
    }


def summary_json(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The `--json` last line of `tacit capacity`."""
    return {
        "users": int(plan["users"]),
        "policy": str(plan["policy"]),
        "factors": {
            f: {
                "replica_hours": round(r.replica_seconds / 3600, 2),
                "p99_s": round(r.p99_s, 3),
                "max_backlog": int(r.max_backlog),
            }
            for f, r in plan["factors"].items()
        },
        "api_processes": int(plan["api_processes"]),
        "postgres_writes_per_s": round(float(plan["postgres_writes_per_s"]), 1),
    }


def erlang_c(c: int, offered: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load ``a = lambda / mu``."""
    rho = offered / c
    term = 1.0
    total = 1.0
    for k in range(1, c):
        term *= offered / k
        total += term
    last = term * offered / c / (1 - rho)
    return last / (total + last)
