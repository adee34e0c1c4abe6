"""Real services for the test run: Postgres, Redis, an S3-speaking server (moto), worker processes.

On a machine where Postgres and Redis run (CI), DATABASE_URL / REDIS_URL point at them
and each run takes its own database and Redis db; elsewhere the embedded ones start.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis

from cli.stack import EmbeddedPostgres, EmbeddedRedis, free_port, wait_for


class TestServices:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_id = uuid.uuid4().hex[:10]
        self.env: dict[str, str] = {}
        self._pg: EmbeddedPostgres | None = None
        self._redis: EmbeddedRedis | None = None
        self._moto: subprocess.Popen | None = None
        self._dbname: str | None = None
        self._admin_url: str | None = None
        self._redis_claim: tuple[str, str] | None = None
        # The server's private keys for this run: handed to worker processes only, never
        # put into os.environ, where the in-process API would see it.
        self.keyring_file = root / "keys" / "server-keys.json"

    # -- postgres -----------------------------------------------------------------
    def _postgres(self) -> str:
        base = os.environ.get("TACIT_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
        if base:
            self._admin_url = psycopg.conninfo.make_conninfo(base, dbname="postgres")
        else:
            self._pg = EmbeddedPostgres(self.root / "postgres")
            self._admin_url = self._pg.start("postgres")
        self._dbname = f"tacit_test_{self.run_id}"
        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self._dbname}"')
        return psycopg.conninfo.make_conninfo(self._admin_url, dbname=self._dbname)

    # -- redis --------------------------------------------------------------------
    def _redis_url(self) -> str:
        base = os.environ.get("TACIT_TEST_REDIS_URL") or os.environ.get("REDIS_URL")
        if not base:
            self._redis = EmbeddedRedis(self.root / "redis")
            base = self._redis.start()
            return base.rsplit("/", 1)[0] + "/1"
        root = base.rsplit("/", 1)[0] if base.count("/") >= 3 else base
        claims = redis.Redis.from_url(root + "/0")
        for db in range(1, 16):  # claim a free db for this run so concurrent runs never collide
            key = f"tacit:test-db:{db}"
            if claims.set(key, self.run_id, nx=True, ex=3600):
                self._redis_claim = (root + "/0", key)
                url = f"{root}/{db}"
                redis.Redis.from_url(url).flushdb()
                return url
        raise RuntimeError("no free Redis db for this test run")

    # -- object store -------------------------------------------------------------
    def _start_moto(self) -> str:
        port = free_port()
        exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
        self._moto = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        import httpx

        wait_for(
            lambda: httpx.get(url + "/moto-api/", timeout=1).status_code < 500, 30, "moto server"
        )
        return url

    def start(self) -> dict[str, str]:
        s3 = self._start_moto()
        self.env = {
            "DATABASE_URL": self._postgres(),
            "REDIS_URL": self._redis_url(),
            "TACIT_ENV": "test",
            "TACIT_OPS_TOKEN": secrets.token_hex(
                32
            ),  # settings refuse weak ones outside development
            # one test client calls these far more often than one address would
            "TACIT_HTTP__REDEEM_PER_MIN": "100000",
            "TACIT_HTTP__KEYS_PER_MIN": "100000",
            "TACIT_HTTP__READYZ_PER_MIN": "100000",
            "TACIT_OPS__LOGIN_ATTEMPTS_PER_MIN": "100000",
            "TACIT_STORAGE__BACKEND": "s3",
            "TACIT_STORAGE__ENDPOINT_URL": s3,
            "TACIT_STORAGE__BUCKET": f"tacit-test-{self.run_id}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "TACIT_RELIABILITY__RUNNING_DEADLINE_S": "8",
            "TACIT_RELIABILITY__VISIBILITY_TIMEOUT_S": "15",
            "TACIT_RELIABILITY__QUEUED_DEADLINE_S": "60",
            "OMP_NUM_THREADS": "1",
            # webhooks: seconds instead of hours between attempts, and the loopback receiver allowed
            "TACIT_WEBHOOKS__RETRY_SCHEDULE_S": "[0, 0.5, 1, 1.5, 2, 2, 2, 2]",
            "TACIT_WEBHOOKS__TIMEOUT_S": "5",
            "TACIT_WEBHOOKS__ALLOWLIST": '["127.0.0.1/32"]',
        }
        from core.db import migrate

        migrate(self.env["DATABASE_URL"])
        from cli.stack import ensure_keyring

        ensure_keyring(self.keyring_file, self.env["DATABASE_URL"])
        return self.env

    def stop(self) -> None:
        if self._moto:
            self._moto.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._moto.wait(5)
        if self._redis_claim:
            url, key = self._redis_claim
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(self.env["REDIS_URL"]).flushdb()
                redis.Redis.from_url(url).delete(key)
        if self._dbname and self._admin_url:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(self._admin_url, autocommit=True) as conn,
            ):
                conn.execute(f'DROP DATABASE IF EXISTS "{self._dbname}" WITH (FORCE)')
        if self._redis:
            self._redis.stop()
        if self._pg:
            self._pg.stop()


@contextlib.contextmanager
def services_in_environ(root: Path) -> Iterator[TestServices]:
    """Start a run's services and put their environment in os.environ until the block ends."""
    from core.settings import get_settings

    svc = TestServices(root)
    env = svc.start()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield svc
    finally:
        svc.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


def settings_with_bucket():  # type: ignore[no-untyped-def]
    """The settings of the services now in os.environ, their bucket created."""
    from core.settings import Settings
    from core.storage import S3Store

    s = Settings()
    S3Store(s.storage).ensure_bucket()
    return s


@contextlib.contextmanager
def connection(settings) -> Iterator[psycopg.Connection]:  # type: ignore[no-untyped-def]
    from core.db import connect

    with connect(settings.database_url, autocommit=True) as conn:
        yield conn


@contextlib.contextmanager
def api_client(settings):  # type: ignore[no-untyped-def]
    """The FastAPI app in-process, over the given services."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def service_fixtures(scope: str, folder: str):  # type: ignore[no-untyped-def]
    """The fixtures ``services``, ``settings``, ``db`` and ``api`` over services started per
    `scope` ("session": tests/conftest.py; "module": tests/isolated.py)."""
    import pytest

    @pytest.fixture(scope=scope)  # type: ignore[misc]
    def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestServices]:
        with services_in_environ(tmp_path_factory.mktemp(folder)) as svc:
            yield svc

    @pytest.fixture(scope=scope)  # type: ignore[misc]
    def settings(services: TestServices):  # type: ignore[no-untyped-def]
        return settings_with_bucket()

    @pytest.fixture()
    def db(settings):  # type: ignore[no-untyped-def]
        with connection(settings) as conn:
            yield conn

    @pytest.fixture(scope=scope)  # type: ignore[misc]
    def api(settings):  # type: ignore[no-untyped-def]
        """The FastAPI app in-process, over these services."""
        with api_client(settings) as client:
            yield client

    return services, settings, db, api
