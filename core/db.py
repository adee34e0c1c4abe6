"""Postgres access: connection pools, a transaction helper, and the migration runner."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from typing import Any, cast

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from core.errors import Unavailable

DictConnection = psycopg.Connection[
    DictRow
]  # every connection here is made with row_factory=dict_row
AsyncDictConnection = psycopg.AsyncConnection[DictRow]

MIGRATIONS_PACKAGE = "core.migrations"
# One lock id for every migrator, so two `tacit migrate` runs never interleave.
MIGRATION_LOCK_ID = 0x7AC17


def connect(url: str, **kwargs: object) -> DictConnection:
    """One connection with dict rows (for commands and tests)."""
    try:
        return psycopg.connect(url, row_factory=dict_row, **kwargs)  # type: ignore[arg-type]
    except psycopg.OperationalError as e:
        raise Unavailable(
            f"database unreachable: {e.__class__.__name__}", code="database_unavailable"
        ) from e


def make_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    name: str = "tacit",
    durable_commits: bool = True,
) -> ConnectionPool:
    """A pool of dict-row connections; opened lazily so a down database does not block start-up.

    ``durable_commits=False`` turns off ``synchronous_commit`` for the pool's sessions: a
    commit returns before its WAL is flushed. Only for writes that are safe to lose in a
    database crash because they are redone (the workers' claims and scores: a lost commit
    leaves the job open, and the sweeper runs it again). Never for accepting uploads.
    """
    kwargs: dict[str, object] = {"row_factory": dict_row, "autocommit": False}
    if not durable_commits:
        kwargs["options"] = "-c synchronous_commit=off"
    return ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs=kwargs,
        name=name,
        open=False,
        timeout=10,
        reconnect_timeout=0,
    )


def make_async_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, name: str = "tacit"
) -> AsyncConnectionPool:
    """A pool of autocommit dict-row connections for asyncio code; open it with ``await pool.open()``.

    Every statement is its own transaction, so each is one round trip: for reads that
    need no shared snapshot and for writes that are one statement (atomic by itself).
    Commits are durable (``synchronous_commit`` as the server sets it).
    """
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": True},
        name=name,
        open=False,
        timeout=10,
        reconnect_timeout=0,
    )


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    """Database connectivity errors surface as ``Unavailable`` so callers answer 503."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as e:
        raise Unavailable("database unavailable", code="database_unavailable") from e
    except PoolTimeout as e:
        raise Unavailable("database busy or unavailable", code="database_unavailable") from e


@contextlib.contextmanager
def transaction(pool: ConnectionPool[Any]) -> Iterator[DictConnection]:
    """A connection inside one transaction: commit on success, roll back on error."""
    with _database_errors(), pool.connection() as conn, conn.transaction():
        yield cast(DictConnection, conn)  # pools from make_pool use dict rows


@contextlib.asynccontextmanager
async def async_connection(pool: AsyncConnectionPool[Any]) -> AsyncIterator[AsyncDictConnection]:
    """A connection from a pool made by `make_async_pool` (autocommit)."""
    with _database_errors():
        async with pool.connection() as conn:
            yield cast(AsyncDictConnection, conn)


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) for every migration shipped in the package, in order."""
    files = sorted(
        (f.name, f.read_text())
        for f in resources.files(MIGRATIONS_PACKAGE).iterdir()
        if f.name.endswith(".sql")
    )
    return [(name.removesuffix(".sql"), sql) for name, sql in files]


def migrate(url: str) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; return those applied."""
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in migration_files():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)  # type: ignore[arg-type]
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    return applied


def ensure_database(url: str) -> None:
    """Create the database named in `url` if it does not exist (embedded stack and tests)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    name = info.get("dbname") or "postgres"
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(str(name)))
            )
