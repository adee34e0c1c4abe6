"""The worker benchmark: (a) the model's raw forward rate at the configured batch size,
(b) the whole worker path with dynamic batching (queue -> fetch -> decrypt -> decode ->
preprocess -> model -> write score), (c) the same pool with one job per forward pass.

All three run in one invocation on the same inputs, so the ratios b/a and b/c are
comparable even on a shared, noisy machine.

Job sizes (each factor's ``BENCH["rows_per_job"]``, core/factors.py) are what one upload from a phone holds, the same for a, b
and c. A phone uploads whenever the network allows, so a gait batch holds the walking
done since its last upload: tens of seconds, not one stride. Gait jobs carry 32 windows
of 2.56 s with a hop of 1.28 s, 42 s of walking: between one enrolment's minimum (20
windows, 27 s) and a minute. Until this was set, jobs carried 16 windows (22 s), at
which the pool's fixed cost per job (message, claim, fetch, decrypt, two transactions)
weighed twice as much per window; ``--rows-per-job 16`` measures that size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from cli.console import Progress, fail
from core import factors as registry

# Samples in a typical batch from a phone (see above), and rows per forward pass, per factor.


def raw_rate(
    pipeline, x_job: np.ndarray, max_batch: int, device: str, seconds: float = 3.0
) -> float:  # type: ignore[no-untyped-def]
    """Rows per second through `embed` alone at `max_batch` rows, inputs already on the device."""
    import torch

    if device == "cpu":
        torch.set_num_threads(1)  # as in the worker processes (OMP_NUM_THREADS=1)
    reps = int(np.ceil(max_batch / len(x_job)))
    x = torch.from_numpy(np.concatenate([x_job] * reps)[:max_batch].astype(np.float32)).to(device)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(3):  # embed runs under inference_mode itself; x is on the device already
        pipeline.embed(x)
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pipeline.embed(x)
        n += 1
    sync()
    return n * max_batch / (time.perf_counter() - t0)


class Bench:
    """Embedded services, one tenant/device, sealed envelopes, and worker processes to time."""

    def __init__(self, factor: str, device: str, root: Path, *, users: int = 1) -> None:
        from cli.stack import start_services

        self.factor, self.device, self.root, self.users = factor, device, root, users
        self.services = start_services(root, use_environment=False)
        self.env = dict(self.services.env)
        self._keys()
        self._tenant()
        from core.db import make_pool
        from core.publisher import JobPublisher
        from core.settings import Settings
        from core.storage import LocalStore

        self.settings = Settings(
            _env_file=None, database_url=self.env["DATABASE_URL"], redis_url=self.env["REDIS_URL"]
        )
        self.pool = make_pool(self.env["DATABASE_URL"], max_size=4, name="bench")
        self.pool.open()
        self.store = LocalStore(Path(self.env["TACIT_STORAGE__LOCAL_DIR"]))
        self.publisher = JobPublisher(self.settings)
        self.workers: list[subprocess.Popen] = []

    def _keys(self) -> None:
        from cli.stack import ensure_keyring
        from core.protocol.keyring import PrivateKeyring

        path = self.root / "keys.json"  # one key, published as uploads need it
        ring = PrivateKeyring.load(ensure_keyring(path, self.env["DATABASE_URL"]))
        key_id = ring.current_key_id
        assert key_id is not None
        self.key_id, self.public = key_id, ring.private_key(key_id).public_key()
        self.env["TACIT_CRYPTO__PRIVATE_KEYS_FILE"] = str(path)

    def _tenant(self) -> None:
        from core.db import connect
        from core.devices.service import create_device
        from core.tenants.service import create_tenant

        with connect(self.env["DATABASE_URL"]) as conn:
            tenant, _ = create_tenant(conn, name="bench")
            self.phones = [
                create_device(conn, tenant_id=tenant.id, user_external_id=f"bench-user-{i}")
                for i in range(self.users)
            ]

    def seal(self, plaintext: bytes, purpose: str, phone) -> tuple[uuid.UUID, bytes]:  # type: ignore[no-untyped-def]
        from core.protocol.envelope import EnvelopeHeader
        from core.protocol.hpke import seal_envelope

        batch_id = uuid.uuid4()
        now = int(time.time() * 1000)
        header = EnvelopeHeader(
            device_id=str(phone.id),
            batch_id=batch_id,
            factor=self.factor,
            purpose=purpose,
            capture_start_ms=now - 60_000,
            capture_end_ms=now,
            key_id=self.key_id,
        )
        return batch_id, seal_envelope(self.public, str(phone.tenant_id), header, plaintext)

    def create_jobs(self, plaintexts: list[bytes], purpose: str) -> list[tuple[uuid.UUID, str]]:
        """Blob + batch + job + outbox rows, not yet published; round robin over the users' phones
        (enrolment: every phone gets every plaintext)."""
        from core.batches.service import NewBatch, accept_statement, utcnow
        from core.db import transaction
        from core.storage import raw_batch_key

        out = []
        queue = self.settings.queues.score_queue(self.factor)
        work = (
            [(pt, ph) for ph in self.phones for pt in plaintexts]
            if purpose == "enrol"
            else [(pt, self.phones[i % len(self.phones)]) for i, pt in enumerate(plaintexts)]
        )
        for pt, phone in work:
            batch_id, env = self.seal(pt, purpose, phone)
            nb = NewBatch(
                client_batch_id=batch_id,
                factor=self.factor,
                purpose=purpose,
                body=env,
                key_id=self.key_id,
            )
            received, row_id = utcnow(), uuid.uuid4()
            key = raw_batch_key(phone.tenant_id, phone.id, received, row_id)
            self.store.put(key, env)  # durable before the rows that point at it
            statement = accept_statement(
                device=phone,
                batch=nb,
                object_key=key,
                queue=queue,
                received=received,
                batch_id=row_id,
            )
            with transaction(self.pool) as conn:
                acc = statement.outcome(conn.execute(statement.sql, statement.params).fetchone())
                assert acc is not None  # fresh batch ids: nothing concurrent
                conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE job_id = %s", (acc.job_id,)
                )
            out.append((acc.job_id, queue))
        return out

    def start_workers(
        self,
        *,
        max_batch: int,
        threads: int,
        processes: int,
        loglevel: str = "INFO",
        cpu_processes: int = 1,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        from cli.stack import wait_for

        env = dict(
            self.env,
            TACIT_POOL__MAX_BATCH=str(max_batch),
            TACIT_POOL__THREADS=str(threads),
            TACIT_POOL__DEVICE=self.device,
            TACIT_POOL__MAX_WAIT_MS="5",
            **(extra_env or {}),
        )
        ready = []
        for i in range(processes):
            rf = self.root / f"ready-{max_batch}-{i}"
            rf.unlink(missing_ok=True)  # left by an earlier start: wait for this one
            log = open(self.root / f"worker-{max_batch}-{i}.log", "ab")  # noqa: SIM115 - lives with the process
            self.workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "cli.main",
                        "worker",
                        "--factor",
                        self.factor,
                        "--loglevel",
                        loglevel,
                        "--cpu-processes",
                        str(cpu_processes),
                        "--threads",
                        str(threads),
                    ],
                    env=dict(env, TACIT_READY_FILE=str(rf)),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            ready.append(rf)
        wait_for(lambda: all(r.exists() for r in ready), 180, "worker")

    def _cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by the worker processes (and their children), Postgres and Redis."""
        import psutil

        out = {"workers": 0.0, "postgres": 0.0, "redis": 0.0, "bench": 0.0}
        for w in self.workers:
            try:
                procs = [psutil.Process(w.pid), *psutil.Process(w.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for p in procs:
                try:
                    t = p.cpu_times()
                    out["workers"] += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
        for p in psutil.process_iter(["name", "cpu_times"]):
            name = p.info["name"] or ""
            key = (
                "postgres"
                if name.startswith("postgres")
                else "redis"
                if name.startswith("redis")
                else None
            )
            if key and p.info["cpu_times"]:
                out[key] += p.info["cpu_times"].user + p.info["cpu_times"].system
        t = psutil.Process().cpu_times()
        out["bench"] = t.user + t.system
        return out

    def _model_stats(self, since: float, elapsed: float) -> tuple[float, float]:
        """Fraction of the run the model was computing, and mean jobs per forward pass (from batch logs)."""
        import json as _json

        model_s, jobs, batches = 0.0, 0, 0
        for log in self.root.glob("worker-*.log"):
            for line in log.read_text(errors="replace").splitlines():
                if '"event": "batch"' not in line:
                    continue
                try:
                    e = _json.loads(line)
                except ValueError:
                    continue
                if e.get("ts", 0) >= since:
                    model_s += e["model_ms"] / 1e3
                    jobs += e["jobs"]
                    batches += 1
        self.batch_ms = (
            round(model_s * 1e3 / batches, 2) if batches else 0.0
        )  # mean model call per batch
        return round(model_s / elapsed, 3), round(jobs / batches, 1) if batches else 0.0

    def queue_depth(self) -> int:
        import redis

        return int(
            redis.Redis.from_url(self.env["REDIS_URL"]).llen(
                self.settings.queues.score_queue(self.factor)
            )
        )

    def wait_done(self, ids: list[uuid.UUID], timeout: float) -> list[dict]:
        """Each job's status and number of scores, once all are done or `timeout` seconds passed."""
        deadline = time.monotonic() + timeout
        while True:
            with self.pool.connection() as conn:
                rows = conn.execute(
                    "SELECT j.status, (SELECT count(*) FROM scores s WHERE s.job_id = j.id) AS scores"
                    " FROM jobs j WHERE j.id = ANY(%s)",
                    (ids,),
                ).fetchall()
            if all(r["status"] == "done" for r in rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.5)

    def stop_workers(self) -> None:
        for w in self.workers:
            w.terminate()
        for w in self.workers:
            w.wait(60)
        self.workers = []

    def run_jobs(self, jobs: list[tuple[uuid.UUID, str]], label: str) -> float:
        """Publish all jobs at once; seconds until the last one is done."""
        from core.db import transaction

        ids = [j for j, _ in jobs]
        bar = Progress(label, len(ids))
        cpu0 = self._cpu_seconds()
        t0 = time.perf_counter()
        for job_id, queue in jobs:
            self.publisher.send(job_id, queue)
        while True:
            with transaction(self.pool) as conn:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE status IN ('done','failed','dead')) AS n,"
                    " count(*) FILTER (WHERE status <> 'done' AND status IN ('failed','dead')) AS bad"
                    " FROM jobs WHERE id = ANY(%s)",
                    (ids,),
                ).fetchone()
            bar.update(row["n"])
            if row["n"] == len(ids):
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - t0
        cpu1 = self._cpu_seconds()
        self.cpu_share = {
            k: round((cpu1.get(k, 0.0) - cpu0.get(k, 0.0)) / elapsed, 2) for k in cpu1
        }
        self.model_busy, self.mean_batch = self._model_stats(time.time() - elapsed, elapsed)
        bar.finish()
        if row["bad"]:
            raise RuntimeError(
                f"{row['bad']} job(s) failed during '{label}'; see {self.root}/worker-*.log"
            )
        return elapsed

    def close(self) -> None:
        self.stop_workers()
        self.pool.close()
        self.services.stop()


def run(args: argparse.Namespace) -> int:
    from core.factors import load_pipeline

    if getattr(args, "backend", "local") == "oip":
        from workers import oip

        if not args.oip_url:
            return fail(
                "--backend oip needs --oip-url (a server holding `tacit export FACTOR --triton-repo` output)"
            )
        try:
            oip.check_model(
                oip.connect(args.oip_url, args.factor),
                model_version=load_pipeline(args.factor).model_version,
            )
        except oip.ModelMismatch as e:
            return fail(str(e))

    factor, device = args.factor, args.device
    spec = registry.get(factor)
    if not spec.provides("synthetic"):
        return fail(f"factor {factor!r} ships no synthetic generator to make the bench's captures")
    rows = args.rows_per_job or int(spec.bench.get("rows_per_job", 8))
    max_batch = args.max_batch or int(spec.bench.get("max_batch", 64))
    synth = spec.submodule("synthetic")
    rng = np.random.default_rng(0)
    person = synth.make_person(1)
    pipeline = load_pipeline(factor, device=device)
    probe = synth.capture(person, rng, rows)
    x_job = pipeline.preprocess(pipeline.decode(probe))
    rows = len(x_job)
    print(
        f"bench worker: {factor} on {device}, {args.jobs} jobs x {rows} rows, max batch {max_batch}",
        file=sys.stderr,
    )
    raw = raw_rate(pipeline, x_job, max_batch, device)
    root = Path(tempfile.mkdtemp(prefix="tacit-bench-"))
    bench = None
    try:
        bench = Bench(factor, device, root, users=args.users)
        enrol = [synth.capture(person, rng, max(rows, 8)) for _ in range(3)]
        verify = [synth.capture(person, rng, rows) for _ in range(args.jobs)]
        results: dict[str, float] = {}
        cpu: dict[str, dict[str, float]] = {}
        busy: dict[str, tuple[float, float]] = {}
        batch_ms: dict[str, float] = {}
        # (c) is the same pool with room for one job per forward pass: max batch = one job's rows.
        for label, mb in (("batched", max_batch), ("batch-1", rows)):
            bench.start_workers(
                max_batch=mb,
                threads=args.threads,
                processes=args.processes,
                cpu_processes=args.cpu_processes,
            )
            if label == "batched":
                bench.run_jobs(bench.create_jobs(enrol, "enrol"), "enrol  ")
            jobs = bench.create_jobs(verify, "verify")
            results[label] = args.jobs * rows / bench.run_jobs(jobs, f"{label:<7}")
            cpu[label] = bench.cpu_share
            busy[label] = (bench.model_busy, bench.mean_batch)
            batch_ms[label] = bench.batch_ms
            bench.stop_workers()
        if args.backend == "oip":
            # the same pool and jobs, its model in the inference server: one request per batch
            bench.start_workers(
                max_batch=max_batch,
                threads=args.threads,
                processes=args.processes,
                extra_env={"TACIT_POOL__BACKEND": "oip", "TACIT_POOL__OIP_URL": args.oip_url},
            )
            results["oip"] = (
                args.jobs * rows / bench.run_jobs(bench.create_jobs(verify, "verify"), "oip    ")
            )
            cpu["oip"], busy["oip"], batch_ms["oip"] = (
                bench.cpu_share,
                (bench.model_busy, bench.mean_batch),
                bench.batch_ms,
            )
            bench.stop_workers()
        # Celery's own per-message ceiling, same broker, same settings, same message format
        from cli import bench_celery

        noop = {
            t: bench_celery.measure(
                bench.env, root, messages=args.celery_messages, threads=args.threads, transport=t
            )
            for t in ("tacit", "stock")
        }
    except Exception as e:  # noqa: BLE001 - one clear line
        return fail(f"{e.__class__.__name__}: {e}")
    finally:
        if bench:
            bench.close()
        shutil.rmtree(root, ignore_errors=True)
    worker, batch1 = results["batched"], results["batch-1"]
    out = {
        "factor": factor,
        "device": device,
        "raw_per_s": round(raw, 1),
        "worker_per_s": round(worker, 1),
        "cores_busy": cpu["batched"],
        "model_busy": busy["batched"][0],
        "jobs_per_forward": busy["batched"][1],
        "batch1_per_s": round(batch1, 1),
        "ratio_vs_raw": round(worker / raw, 3),
        "batching_gain": round(worker / batch1, 2),
        "worker_jobs_per_s": round(worker / rows, 1),
        "celery_noop_per_s": round(noop["tacit"], 1),
        "celery_noop_stock_transport_per_s": round(noop["stock"], 1),
        "jobs_vs_celery_noop": round(worker / rows / noop["tacit"], 3),
        "jobs_vs_celery_noop_stock_transport": round(worker / rows / noop["stock"], 3),
    }
    if "oip" in results:
        oip = results["oip"]
        out.update(
            {
                "oip_per_s": round(oip, 1),
                "oip_jobs_per_s": round(oip / rows, 1),
                "oip_vs_local": round(oip / worker, 3),
                "batch_ms_local": batch_ms["batched"],
                "batch_ms_oip": batch_ms["oip"],
                "oip_added_ms_per_batch": round(batch_ms["oip"] - batch_ms["batched"], 2),
                "oip_jobs_per_forward": busy["oip"][1],
                "oip_url": args.oip_url,
            }
        )
    print(f"raw model     {raw:10.1f} samples/s  (batch {max_batch})")
    print(
        f"worker path   {worker:10.1f} samples/s  ({worker / rows:.1f} jobs/s)   b/a = {worker / raw:.3f}"
    )
    print(
        f"batch of one  {batch1:10.1f} samples/s  ({batch1 / rows:.1f} jobs/s)   b/c = {worker / batch1:.2f}"
    )
    print(
        f"celery no-op  {noop['tacit']:10.1f} messages/s (the pools' transport), {noop['stock']:.1f} (kombu's);"
        f" pool jobs/s over them = {worker / rows / noop['tacit']:.2f}, {worker / rows / noop['stock']:.2f}"
    )
    share = cpu["batched"]
    print("cores busy while batched: " + ", ".join(f"{k} {v:.2f}" for k, v in share.items()))
    print(
        f"model busy {busy['batched'][0]:.0%} of the batched run, {busy['batched'][1]:.1f} jobs per forward pass"
        f" (batch of one: {busy['batch-1'][0]:.0%})"
    )
    if "oip" in results:
        print(
            f"oip backend   {results['oip']:10.1f} samples/s  ({results['oip'] / rows:.1f} jobs/s)   "
            f"vs in-process = {results['oip'] / worker:.3f}; model call per batch {batch_ms['oip']:.2f} ms "
            f"(in-process {batch_ms['batched']:.2f} ms, {busy['oip'][1]:.1f} jobs per request)"
        )
    if args.json:
        print(json.dumps(out))
    return 0
