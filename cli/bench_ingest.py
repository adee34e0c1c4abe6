"""`tacit bench ingest`: accepted uploads per second against a no-op on the same server.

Simulated phones send real signed, HPKE-encrypted batches. In one run it measures
(1) a no-op endpoint (`POST /v1/bench/noop`, bench-only, with bodies of the same size)
and (2) uploads at full speed, both driven by the same load generator, (3) upload-to-score
latency at light load, then waits for every accepted job and counts lost and duplicated
ones.

The generator must not set either figure. By default it is `wrk` (compiled, Debian's
`wrk` package) replaying a file of requests sealed and signed beforehand, each with its
own nonce and a timestamp inside the freshness window, through a Lua script; its CPU (and
the API processes' CPU) during each window is measured and reported. `--generator python`
(threads of SDK clients, also what `--rate` uses to pace a soak) reports its own CPU too.

The ratio compares the API with itself. In a deployment the scoring pools run on their
own (GPU) machines; on one small machine they would take the API's cores. So by default
(`--scoring after`) the pool stops taking jobs during the two timed windows (Celery's
`cancel_consumer`: the jobs wait in Redis, counted by the backlog guard) and resumes to
score them all afterwards. `--scoring during` leaves it running on the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from cli.console import Progress
from cli.up import add_api_processes_argument, add_running_stack_argument

FACTOR = "keystroke"
PHONES_PER_CONNECTION = 4
NOOP_PATH = "/v1/bench/noop"
# The embedded stack the benchmark starts: the no-op route on, and rate limits far above the
# load (they are still checked on every upload: the Redis script runs as always).
BENCH_ENV = {
    "TACIT_BENCH__NOOP_ENDPOINT": "1",
    "TACIT_LIMITS__DEVICE_RATE_PER_MIN": "1000000",
    "TACIT_LIMITS__TENANT_RATE_PER_MIN": "100000000",
}


def register(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser(
        "ingest", help="uploads/s vs a no-op endpoint, latencies, lost and duplicated jobs"
    )
    p.add_argument("--duration", type=float, default=20.0, help="seconds of upload load")
    p.add_argument(
        "--concurrency", type=int, default=32, help="connections (phones uploading at once)"
    )
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="paced uploads/s instead of as fast as possible (uses the python generator)",
    )
    p.add_argument(
        "--generator",
        choices=("wrk", "python"),
        default="wrk",
        help="wrk replaying pre-signed requests (default) or threads of SDK clients",
    )
    p.add_argument(
        "--max-rate",
        type=float,
        default=1500.0,
        help="uploads/s the pre-signed request file has room for (wrk)",
    )
    add_running_stack_argument(p)
    add_api_processes_argument(p)
    p.add_argument(
        "--scoring",
        choices=("after", "during"),
        default="after",
        help="score the timed uploads after the timed windows (default) or during them",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="py-spy the API processes during the upload window (collapsed stacks in DIR)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


class Load:
    """Closed-loop (or paced) clients; each thread is one phone with its own connection."""

    def __init__(self, phones: list, concurrency: int) -> None:  # type: ignore[type-arg]
        self.phones, self.concurrency = phones, concurrency

    def run(
        self, duration: float, fn, *, rate: float | None = None, label: str
    ) -> tuple[int, int, list[float], list[str], float]:  # type: ignore[no-untyped-def]
        ok, errors, latencies, ids = [0], [0], [], []
        lock = threading.Lock()
        t_end = time.monotonic() + duration
        interval = self.concurrency / rate if rate else 0.0
        bar = Progress(label, int(duration))

        def worker(i: int) -> None:
            mine = self.phones[i :: self.concurrency] or [self.phones[i % len(self.phones)]]
            turn = 0
            rng = np.random.default_rng(i)
            next_at = time.monotonic() + (interval * i / self.concurrency if interval else 0)
            while time.monotonic() < t_end:
                if interval:
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += interval
                phone, turn = mine[turn % len(mine)], turn + 1  # a connection's phones take turns
                t0 = time.perf_counter()
                try:
                    result = fn(phone, rng)
                except Exception:  # noqa: BLE001 - counted as an error
                    with lock:
                        errors[0] += 1
                    continue
                dt = (time.perf_counter() - t0) * 1e3
                with lock:
                    ok[0] += 1
                    latencies.append(dt)
                    if result:
                        ids.append(result)

        threads = [
            threading.Thread(target=worker, args=(i,), daemon=True) for i in range(self.concurrency)
        ]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        while any(th.is_alive() for th in threads):
            bar.update(
                min(int(duration), int(time.perf_counter() - t0)), f"{ok[0]} ok {errors[0]} errors"
            )
            time.sleep(0.5)
        elapsed = time.perf_counter() - t0
        bar.finish(f"{ok[0]} ok {errors[0]} errors")
        return ok[0], errors[0], latencies, ids, elapsed


def run(args: argparse.Namespace) -> int:
    from cli.console import fail
    from cli.stack import running_stack

    if args.rate:
        args.generator = "python"  # wrk cannot pace
    if args.generator == "wrk" and shutil.which("wrk") is None:
        return fail("wrk is not installed (Debian: apt-get install wrk), or use --generator python")
    if args.data_dir is None:
        os.environ.update(BENCH_ENV)
    try:
        with running_stack(
            args.data_dir, factors=(FACTOR,), label="bench-ingest", api_processes=args.api_processes
        ) as (api_url, env):
            result = measure(api_url, env, args)
    except Exception as e:  # noqa: BLE001 - one clear line
        return fail(f"{e.__class__.__name__}: {e}")
    gen = result["generator"]
    print(
        f"no-op          {result['noop_per_s']:9.1f} req/s      generator ({gen['name']}) CPU"
        f" {gen['noop_cpu_share']:.0%} of the machine"
    )
    print(
        f"ingest         {result['ingest_per_s']:9.1f} uploads/s   ratio {result['ratio']:.3f}   errors {result['errors']}"
        f"   generator CPU {gen['ingest_cpu_share']:.0%} of the machine"
    )
    if result.get("api_cpu_ms_per_upload") is not None:
        print(
            f"API CPU        {result['api_cpu_ms_per_upload']:.2f} ms per upload,"
            f" {result['api_cpu_ms_per_noop']:.2f} ms per no-op"
        )
    print(
        f"upload         p50 {result['upload_ms']['p50']:.1f} ms   p99 {result['upload_ms']['p99']:.1f} ms"
    )
    print(
        f"upload->score  p50 {result['e2e_ms']['p50']:.1f} ms   p99 {result['e2e_ms']['p99']:.1f} ms   (light load)"
    )
    if args.scoring == "during":
        print(
            f"upload->score  p50 {result['e2e_loaded_ms']['p50']:.1f} ms   p99 {result['e2e_loaded_ms']['p99']:.1f} ms"
            "   (under the load above)"
        )
    else:
        print(
            f"backlog        {result['accepted']} jobs scored afterwards at {result['drain_per_s']:.1f} jobs/s"
        )
    print(
        f"lost {result['lost']}   duplicated {result['duplicated']}   accepted {result['accepted']}"
        f"   failed {result['failed']}"
    )
    if args.json:
        print(json.dumps(result))
    return 0 if result["lost"] == result["duplicated"] == result["failed"] == 0 else 1


class PoolSwitch:
    """Stops and restarts a factor pool's consumption with Celery's remote control."""

    def __init__(self, env: dict[str, str], factor: str) -> None:
        from celery import Celery

        from core.publisher import celery_config
        from core.settings import Settings

        settings = Settings(redis_url=env["REDIS_URL"])
        self.queue = settings.queues.score_queue(factor)
        self.app = Celery("tacit-bench")
        self.app.conf.update(celery_config(settings))
        self.workers: list[str] = []

    def pause(self) -> None:
        # only the workers consuming the queue: add_consumer sent to every worker would
        # make the others (the webhook pool too) consume it
        active = self.app.control.inspect(timeout=3).active_queues() or {}
        self.workers = [
            w for w, queues in active.items() if any(q["name"] == self.queue for q in queues)
        ]
        if not self.workers:
            raise RuntimeError(f"no worker answered; is a pool consuming {self.queue}?")
        self.app.control.cancel_consumer(
            self.queue, destination=self.workers, reply=True, timeout=3
        )
        time.sleep(0.5)  # jobs already taken finish

    def resume(self) -> None:
        replies = self.app.control.add_consumer(
            self.queue, destination=self.workers, reply=True, timeout=3
        )
        if len(replies) < len(self.workers):
            raise RuntimeError(f"workers {self.workers} did not all resume consuming {self.queue}")


def measure(api_url: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from cli import simulate

    database_url = env["DATABASE_URL"]
    with httpx.Client(base_url=api_url, timeout=10) as c:
        if c.post(NOOP_PATH, content=b"x").status_code == 404:
            raise RuntimeError(
                f"{NOOP_PATH} is off on this stack: start it with TACIT_BENCH__NOOP_ENDPOINT=1"
            )
    t = simulate.Tenancy(api_url, simulate.create_tenant(database_url, "bench"))
    # Several phones per connection, as many phones share a server.
    simulate.make_phones(
        t, phones=args.concurrency * PHONES_PER_CONNECTION, factors=[FACTOR], seed=3
    )
    rng = np.random.default_rng(0)
    enrol = [
        simulate.upload(
            None, p, FACTOR, "enrol", simulate.capture(FACTOR, p.persons[FACTOR], rng, 8)
        )  # type: ignore[arg-type]
        for p in t.phones
        for _ in range(3)
    ]
    simulate.wait_jobs(t, enrol, "enrol ", timeout=300)
    for p in t.phones:
        p.device.max_attempts = 1  # count refusals instead of retrying them

    pool = PoolSwitch(env, FACTOR) if args.scoring == "after" else None
    noop_s = min(10.0, max(3.0, args.duration / 2))
    if args.generator == "wrk":
        timed = _wrk_phases(api_url, env, t, args, rng, noop_s, pool)
    else:
        timed = _python_phases(api_url, t, args, rng, noop_s, pool)
    loaded_ids = timed["ids"]
    drain_s = wait_final(database_url, loaded_ids, "drain ")
    # light load: one phone, one upload at a time, paced
    light = Load(t.phones[:1], 1)
    light_upload = _sealed_sender({t.phones[0].device_id: []})
    _, light_errors, _, light_ids, _ = light.run(5.0, light_upload, rate=10.0, label="light ")
    wait_final(database_url, light_ids, "score ")
    loaded, lit = job_stats(database_url, loaded_ids), job_stats(database_url, light_ids)
    noop_rate, ingest_rate = timed["noop_per_s"], timed["ingest_per_s"]
    return {
        "ingest_per_s": round(ingest_rate, 1),
        "noop_per_s": round(noop_rate, 1),
        "ratio": round(ingest_rate / noop_rate, 3) if noop_rate else 0.0,
        "upload_ms": timed["upload_ms"],
        "generator": timed["generator"],
        "api_cpu_ms_per_upload": timed.get("api_cpu_ms_per_upload"),
        "api_cpu_ms_per_noop": timed.get("api_cpu_ms_per_noop"),
        "api_cpu_kernel_share": timed.get("api_cpu_kernel_share"),
        "machine_cpu_busy": timed.get("machine_cpu_busy"),
        "statuses": timed.get("statuses"),
        "e2e_ms": {"p50": _pct(lit["e2e"], 50), "p99": _pct(lit["e2e"], 99)},
        "e2e_loaded_ms": {"p50": _pct(loaded["e2e"], 50), "p99": _pct(loaded["e2e"], 99)},
        "errors": timed["errors"] + light_errors,
        "lost": loaded["lost"] + lit["lost"],
        "duplicated": loaded["duplicated"] + lit["duplicated"],
        "accepted": len(loaded_ids) + len(light_ids),
        "failed": loaded["failed"] + lit["failed"],
        "scoring": args.scoring,
        "drain_per_s": round(len(loaded_ids) / drain_s, 1) if drain_s else 0.0,
        "machine": {"cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
    }


def _sealed_sender(sealed: dict[str, list]):  # type: ignore[no-untyped-def,type-arg]
    """An upload function for `Load`: the phone's next sealed batch (or a fresh one), signed now."""
    from cli import simulate

    def upload(phone, rng):  # type: ignore[no-untyped-def]
        queue = sealed.get(phone.device_id)
        if queue:
            batch_id, envelope = queue.pop()
            return phone.device.send(batch_id, envelope).job_id
        return simulate.upload(
            None, phone, FACTOR, "verify", simulate.capture(FACTOR, phone.persons[FACTOR], rng, 4)
        )  # type: ignore[arg-type]

    return upload


def _seal(t, rng, per_phone: int) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    """Phones seal their batches when they capture them: (phone, batch_id, envelope), round-robin."""
    from cli import simulate

    frames = {
        p.device_id: [simulate.capture(FACTOR, p.persons[FACTOR], rng, 4) for _ in range(4)]
        for p in t.phones
    }
    out = []
    bar = Progress("seal  ", len(t.phones) * per_phone)
    for k in range(per_phone):
        for p in t.phones:
            now = int(time.time() * 1000)
            batch_id, envelope = p.device.build_envelope(
                frames[p.device_id][k % 4],
                factor=FACTOR,
                purpose="verify",
                capture_start_ms=now - 10_000,
                capture_end_ms=now,
            )
            out.append((p, batch_id, envelope))
        bar.update((k + 1) * len(t.phones))
    bar.finish()
    return out


class CpuMeter:
    """CPU seconds of the API processes (the server and its workers) and of the whole machine."""

    def __init__(self, api_url: str) -> None:
        import psutil

        port = api_url.rsplit(":", 1)[1]
        self.procs = []
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            if "api" in cmd and "--port" in cmd and port in cmd:
                self.procs = [proc, *proc.children(recursive=True)]
                break

    def api_cpu_s(self) -> float:
        return sum(self.api_cpu_split())

    def api_cpu_split(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the API processes."""
        user = system = 0.0
        for proc in self.procs:
            try:
                c = proc.cpu_times()
                user, system = user + c.user, system + c.system
            except Exception:  # noqa: BLE001 - a process gone is counted as far as it got
                pass
        return user, system

    @staticmethod
    def machine() -> tuple[float, float]:
        import psutil

        c = psutil.cpu_times()
        return c.user + c.nice + c.system + c.irq + c.softirq, c.idle + c.iowait


# Replays a file of complete HTTP requests: "<length>\n<bytes>" records, each thread taking
# every n-th one. "once": each request is sent once (nonces), "cycle": round and round.
WRK_LUA = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  local nthreads = tonumber(args[3])
  cycle = args[2] == "cycle"
  reqs, statuses, ids, sent, exhausted = {}, {}, {}, 0, 0
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos, i = 1, 0
  while pos <= #data do
    local nl = data:find("\n", pos, true)
    local len = tonumber(data:sub(pos, nl - 1))
    if i % nthreads == tid then reqs[#reqs + 1] = data:sub(nl + 1, nl + len) end
    pos, i = nl + 1 + len, i + 1
  end
end
function request()
  sent = sent + 1
  if sent > #reqs then
    if cycle then return reqs[(sent - 1) % #reqs + 1] end
    exhausted = exhausted + 1
    return reqs[#reqs]
  end
  return reqs[sent]
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 202 then
    local id = body:match('"job_id":"([^"]+)"')
    if id then ids[#ids + 1] = id end
  end
end
function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("TACIT_WRK_OUT"), "w"))
  local st, exh = {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do st[k] = (st[k] or 0) + v end
    exh = exh + t:get("exhausted")
    for _, id in ipairs(t:get("ids")) do out:write("id ", id, "\n") end
  end
  for k, v in pairs(st) do out:write("status ", k, " ", v, "\n") end
  local e = summary.errors
  out:write("duration_us ", summary.duration, "\n", "requests ", summary.requests, "\n",
            "exhausted ", exh, "\n", "p50_us ", latency:percentile(50), "\n",
            "p99_us ", latency:percentile(99), "\n",
            "socket_errors ", e.connect + e.read + e.write + e.timeout, "\n")
  out:close()
end
"""


def _profile(meter: CpuMeter, out: Path, duration: float) -> list[subprocess.Popen]:  # type: ignore[type-arg]
    """py-spy on each API worker process for the window, samples of the thread holding the GIL
    (what costs CPU, not what waits); py-spy: pip install py-spy."""
    out.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    workers = meter.procs[1:] or meter.procs
    return [
        subprocess.Popen(
            [
                spy,
                "record",
                "--format",
                "raw",
                "--rate",
                "200",
                "--nonblocking",
                "--gil",
                "-d",
                str(max(1, int(duration) - 1)),
                "-p",
                str(p.pid),
                "-o",
                str(out / f"api-{p.pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in workers
    ]


def _raw_request(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _write_requests(path: Path, requests: list[bytes]) -> None:
    with open(path, "wb") as f:
        for r in requests:
            f.write(b"%d\n" % len(r))
            f.write(r)


def _wrk(
    api_url: str,
    file: Path,
    mode: str,
    duration: float,
    connections: int,
    meter: CpuMeter,
    label: str,
    profile: Path | None = None,
) -> dict[str, Any]:
    """One wrk window; its counts and latencies, its own CPU and the API's, per request."""
    work = file.parent
    script, out = work / "replay.lua", work / f"{label}.out"
    script.write_text(WRK_LUA)
    threads = 1
    argv = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration:.0f}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        api_url,
        "--",
        str(file),
        mode,
        str(threads),
    ]
    bar = Progress(f"{label:<6}", int(duration))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    (u0, k0), (busy0, idle0) = meter.api_cpu_split(), meter.machine()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "TACIT_WRK_OUT": str(out)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    spies = _profile(meter, profile, duration) if profile else []
    while proc.poll() is None:
        bar.update(min(int(duration), int(time.perf_counter() - t0)))
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    (u1, k1), (busy1, idle1) = meter.api_cpu_split(), meter.machine()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for spy in spies:  # reaped after the count: py-spy's CPU is not the generator's
        spy.wait()
    text = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text.strip()[-500:]}")
    ids, statuses, fig = [], {}, {}
    for line in out.read_text().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "id":
            ids.append(rest)
        elif kind == "status":
            code, n = rest.split()
            statuses[code] = int(n)
        else:
            fig[kind] = float(rest)
    bar.finish(f"{int(fig['requests'])} requests, {statuses}")
    seconds = fig["duration_us"] / 1e6
    gen_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    ok = sum(n for code, n in statuses.items() if code.startswith("2"))
    machine_s = (busy1 - busy0) + (idle1 - idle0)
    return {
        "ok": ok,
        "per_s": ok / seconds,
        "seconds": seconds,
        "ids": ids,
        "statuses": statuses,
        "errors": int(fig["requests"]) - ok + int(fig["socket_errors"]),
        "exhausted": int(fig["exhausted"]),
        "p50_ms": round(fig["p50_us"] / 1e3, 2),
        "p99_ms": round(fig["p99_us"] / 1e3, 2),
        "generator_cpu_s": gen_cpu,
        "generator_cpu_share": gen_cpu / (wall * (os.cpu_count() or 1)),
        "api_cpu_ms_per_ok": ((u1 - u0) + (k1 - k0)) * 1e3 / ok if ok else None,
        "api_sys_share": (k1 - k0) / ((u1 - u0) + (k1 - k0)) if (u1 - u0) + (k1 - k0) else None,
        "machine_busy": (busy1 - busy0) / machine_s if machine_s else None,
    }


def _wrk_phases(api_url, env, t, args, rng, noop_s, pool) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from core.protocol import signing
    from core.protocol.envelope import CONTENT_TYPE
    from sdk.client import UPLOAD_PATH

    host = api_url.split("//", 1)[1]
    per_phone = max(10, int(args.max_rate * args.duration / len(t.phones)) + 1)
    sealed = _seal(t, rng, per_phone)
    # each request signed ahead with its own nonce; timestamps stay within the freshness
    # window (signing.WINDOW_S either side) for the whole run
    uploads = []
    bar = Progress("sign  ", len(sealed))
    for i, (p, _, envelope) in enumerate(sealed):
        headers = {
            "Content-Type": CONTENT_TYPE,
            **signing.sign(
                p.device.signing_key,
                method="POST",
                target=UPLOAD_PATH,
                body=envelope,
                device_id=p.device_id,
            ),
        }
        uploads.append(_raw_request(host, UPLOAD_PATH, headers, envelope))
        if i % 1000 == 0:
            bar.update(i)
    bar.finish()
    noops = [
        r.replace(f"POST {UPLOAD_PATH} ".encode(), f"POST {NOOP_PATH} ".encode(), 1)
        for r in uploads[:2000]
    ]
    work = Path(tempfile.mkdtemp(prefix="tacit-wrk-"))
    try:
        _write_requests(work / "uploads.req", uploads)
        _write_requests(work / "noop.req", noops)
        meter = CpuMeter(api_url)
        if pool:
            pool.pause()
        try:
            noop = _wrk(
                api_url, work / "noop.req", "cycle", noop_s, args.concurrency, meter, "no-op"
            )
            up = _wrk(
                api_url,
                work / "uploads.req",
                "once",
                args.duration,
                args.concurrency,
                meter,
                "ingest",
                profile=args.profile,
            )
        finally:
            if pool:
                pool.resume()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if up["exhausted"]:
        raise RuntimeError(f"the {len(uploads)} pre-signed uploads ran out; raise --max-rate")
    return {
        "noop_per_s": noop["per_s"],
        "ingest_per_s": up["per_s"],
        "ids": up["ids"],
        "upload_ms": {"p50": up["p50_ms"], "p99": up["p99_ms"]},
        "errors": up["errors"] + noop["errors"],
        "statuses": {"noop": noop["statuses"], "upload": up["statuses"]},
        "api_cpu_ms_per_upload": _round(up["api_cpu_ms_per_ok"]),
        "api_cpu_ms_per_noop": _round(noop["api_cpu_ms_per_ok"]),
        "api_cpu_kernel_share": {
            "noop": _round(noop["api_sys_share"]),
            "ingest": _round(up["api_sys_share"]),
        },
        "machine_cpu_busy": {
            "noop": _round(noop["machine_busy"]),
            "ingest": _round(up["machine_busy"]),
        },
        "generator": {
            "name": "wrk",
            "threads": 1,
            "connections": args.concurrency,
            "noop_cpu_share": round(noop["generator_cpu_share"], 3),
            "ingest_cpu_share": round(up["generator_cpu_share"], 3),
            "ingest_cpu_ms_per_upload": _round(
                up["generator_cpu_s"] * 1e3 / up["ok"] if up["ok"] else None
            ),
        },
    }


def _round(x: float | None, n: int = 3) -> float | None:
    return None if x is None else round(x, n)


def _python_phases(api_url, t, args, rng, noop_s, pool) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import httpx

    # Phones seal their batches when they capture them, not when the network comes back:
    # build the envelopes first, so the timed phase pays only for signing and sending.
    per_phone = int(min(1000, max(50, (args.rate or 600) * args.duration / len(t.phones) * 1.2)))
    sealed: dict[str, list] = {p.device_id: [] for p in t.phones}  # type: ignore[type-arg]
    for p, batch_id, envelope in _seal(t, rng, per_phone):
        sealed[p.device_id].append((batch_id, envelope))
    upload = _sealed_sender(sealed)
    size = len(next(iter(sealed.values()))[0][1])
    clients: dict[int, httpx.Client] = {}

    def noop(phone, rng):  # type: ignore[no-untyped-def]
        c = clients.get(threading.get_ident())
        if c is None:
            c = clients[threading.get_ident()] = httpx.Client(base_url=api_url, timeout=30)
        c.post(NOOP_PATH, content=b"\0" * size).raise_for_status()
        return None

    def own_cpu() -> float:
        t_ = os.times()
        return t_.user + t_.system

    meter = CpuMeter(api_url)
    load = Load(t.phones, args.concurrency)
    if pool:
        pool.pause()
    try:
        c0, a0 = own_cpu(), meter.api_cpu_s()
        n_noop, noop_errors, _, _, s_noop = load.run(noop_s, noop, label="no-op ")
        c1, a1 = own_cpu(), meter.api_cpu_s()
        n_up, errors, up_lat, ids, s_up = load.run(
            args.duration, upload, rate=args.rate, label="ingest"
        )
        c2, a2 = own_cpu(), meter.api_cpu_s()
    finally:
        if pool:
            pool.resume()
    cores = os.cpu_count() or 1
    return {
        "noop_per_s": n_noop / s_noop,
        "ingest_per_s": n_up / s_up,
        "ids": ids,
        "upload_ms": {"p50": _pct(up_lat, 50), "p99": _pct(up_lat, 99)},
        "errors": errors + noop_errors,
        "api_cpu_ms_per_upload": _round((a2 - a1) * 1e3 / n_up if n_up else None),
        "api_cpu_ms_per_noop": _round((a1 - a0) * 1e3 / n_noop if n_noop else None),
        "generator": {
            "name": "python",
            "threads": args.concurrency,
            "noop_cpu_share": round((c1 - c0) / (s_noop * cores), 3),
            "ingest_cpu_share": round((c2 - c1) / (s_up * cores), 3),
        },
    }


def wait_final(database_url: str, ids: list[str], label: str, timeout: float = 600) -> float:
    """Seconds until every job in `ids` is done, failed or dead (or the timeout)."""
    from core.db import connect

    bar = Progress(label, len(ids))
    deadline = time.monotonic() + timeout
    with connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            n = conn.execute(
                "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s::uuid[])"
                " AND status IN ('done','failed','dead')",
                (ids,),
            ).fetchone()["n"]
            bar.update(n)
            if n == len(ids):
                break
            time.sleep(0.3)
    bar.finish()
    return timeout - max(0.0, deadline - time.monotonic())


def job_stats(database_url: str, ids: list[str]) -> dict[str, Any]:
    """Upload-to-score ms of the done jobs, and the lost and duplicated counts."""
    from core.db import connect

    with connect(database_url, autocommit=True) as conn:
        rows = {
            r["id"]: r
            for r in conn.execute(
                "SELECT j.id::text AS id, j.status, extract(epoch FROM j.finished_at - j.created_at) * 1000 AS ms,"
                " (SELECT count(*) FROM scores s WHERE s.job_id = j.id) AS scores"
                " FROM jobs j WHERE j.id = ANY(%s::uuid[])",
                (ids,),
            ).fetchall()
        }
        dup_batches = conn.execute(
            "SELECT count(*) AS n FROM (SELECT batch_id FROM jobs WHERE id = ANY(%s::uuid[])"
            " GROUP BY batch_id HAVING count(*) > 1) x",
            (ids,),
        ).fetchone()["n"]
    e2e = [float(rows[i]["ms"]) for i in ids if i in rows and rows[i]["status"] == "done"]
    failed = sum(1 for i in ids if i in rows and rows[i]["status"] in ("failed", "dead"))
    lost = sum(
        1 for i in ids if i not in rows or rows[i]["status"] not in ("done", "failed", "dead")
    )
    duplicated = (
        sum(1 for r in rows.values() if r["scores"] > 1) + dup_batches + (len(ids) - len(set(ids)))
    )
    return {"e2e": e2e, "lost": lost, "duplicated": duplicated, "failed": failed}
