"""Group commit on a real Postgres: one transaction for steps that wait together, a bad step
fails alone, results stay with their steps, a database that is down fails every step at once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from core.db import DictConnection, make_pool
from core.errors import Unavailable
from workers.group_commit import GroupCommit, GroupStats


@pytest.fixture()
def pool(settings) -> Iterator[ConnectionPool]:  # type: ignore[no-untyped-def]
    p = make_pool(settings.database_url, max_size=4, name="group-commit-test")
    p.open()
    yield p
    p.close()


@pytest.fixture()
def table(db) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"group_commit_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, txid bigint NOT NULL)")
    yield name
    db.execute(f"DROP TABLE {name}")


def _insert(table: str, i: int):  # type: ignore[no-untyped-def]
    def step(conn: DictConnection) -> int:
        row = conn.execute(
            f"INSERT INTO {table} (id, txid) VALUES (%s, txid_current()) RETURNING id, txid", (i,)
        ).fetchone()
        assert row is not None
        return int(row["id"]) * 10

    return step


class Hold:
    """A first step that keeps the committer busy, so that the next steps queue up together."""

    def __init__(self, gc: GroupCommit) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.future = gc.submit(self._step)
        assert self.started.wait(10)

    def _step(self, conn: DictConnection) -> None:
        self.started.set()
        self.release.wait(10)

    def end(self) -> None:
        self.release.set()
        self.future.result(timeout=10)


def test_steps_waiting_together_commit_in_one_transaction(pool, table, db):  # type: ignore[no-untyped-def]
    # given a committer busy with a first step while eight more are submitted
    groups: list[GroupStats] = []
    gc = GroupCommit(pool, threads=1, on_group=groups.append)
    hold = Hold(gc)
    futures = [gc.submit(_insert(table, i), key=f"{i:02d}") for i in range(8)]
    # when the first step ends
    hold.end()
    results = [f.result(timeout=10) for f in futures]
    gc.close()
    # then each step got its own result, and the eight rows were written by one transaction
    assert results == [i * 10 for i in range(8)]
    rows = db.execute(f"SELECT id, txid FROM {table} ORDER BY id").fetchall()
    assert [r["id"] for r in rows] == list(range(8))
    assert len({r["txid"] for r in rows}) == 1
    assert [g.steps for g in groups] == [1, 8]


def test_a_failing_step_fails_alone_and_the_others_commit(pool, table, db):  # type: ignore[no-untyped-def]
    # given a group in which one step breaks the transaction (a duplicate key)
    db.execute(f"INSERT INTO {table} (id, txid) VALUES (3, 0)")
    groups: list[GroupStats] = []
    gc = GroupCommit(pool, threads=1, on_group=groups.append)
    hold = Hold(gc)
    futures = {i: gc.submit(_insert(table, i), key=f"{i:02d}") for i in range(6)}
    hold.end()
    # then the bad step raises its own error, and every other step is committed
    import psycopg

    with pytest.raises(psycopg.errors.UniqueViolation):
        futures[3].result(timeout=10)
    assert [futures[i].result(timeout=10) for i in (0, 1, 2, 4, 5)] == [0, 10, 20, 40, 50]
    gc.close()
    ids = [
        r["id"]
        for r in db.execute(f"SELECT id FROM {table} WHERE txid <> 0 ORDER BY id").fetchall()
    ]
    assert ids == [0, 1, 2, 4, 5]
    assert groups[-1].alone and groups[-1].steps == 6


def test_a_step_that_raises_before_writing_fails_alone(pool, table, db):  # type: ignore[no-untyped-def]
    # given a step that raises a domain error after another step of its group wrote a row
    gc = GroupCommit(pool, threads=1)
    hold = Hold(gc)
    ok = gc.submit(_insert(table, 1), key="a")

    def not_enrolled(conn: DictConnection) -> None:
        raise LookupError("no template")

    bad = gc.submit(not_enrolled, key="b")
    hold.end()
    with pytest.raises(LookupError):
        bad.result(timeout=10)
    assert ok.result(timeout=10) == 10
    gc.close()
    assert db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"] == 1


def test_steps_of_a_group_run_in_key_order(pool):  # type: ignore[no-untyped-def]
    order: list[str] = []
    gc = GroupCommit(pool, threads=1)
    hold = Hold(gc)

    def note(key: str):  # type: ignore[no-untyped-def]
        return lambda conn: order.append(key)

    futures = [gc.submit(note(k), key=k) for k in ("c", "a", "d", "b")]
    hold.end()
    for f in futures:
        f.result(timeout=10)
    gc.close()
    assert order == ["a", "b", "c", "d"]


def test_a_database_that_is_down_fails_every_step_at_once():
    # given a pool whose database does not answer
    from cli.stack import free_port

    down = ConnectionPool(
        f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        min_size=0,
        max_size=1,
        timeout=1,
        open=False,
        reconnect_timeout=0,
    )
    down.open(wait=False)
    gc = GroupCommit(down, threads=1)
    # when several steps are submitted
    import time

    t0 = time.monotonic()
    futures = [gc.submit(lambda conn: None, key=str(i)) for i in range(5)]
    # then each gets Unavailable, a group at a time rather than one connection timeout per step
    for f in futures:
        with pytest.raises(Unavailable):
            f.result(timeout=8)
    assert time.monotonic() - t0 < 4.0
    gc.close()
    down.close()


def test_close_commits_what_was_submitted(pool, table, db):  # type: ignore[no-untyped-def]
    gc = GroupCommit(pool, threads=2)
    futures = [gc.submit(_insert(table, i)) for i in range(20)]
    gc.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"] == 20
