"""The embedded object store: writes handed over per event-loop iteration, one sync per group."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

import pytest

from core.errors import Unavailable
from core.storage import LocalStore


def test_concurrent_async_puts_all_land_and_are_listed_by_age(tmp_path):  # type: ignore[no-untyped-def]
    store = LocalStore(tmp_path / "objects")

    async def put_all() -> None:
        await asyncio.gather(*(store.put_async(f"raw/t/d/{i}", b"x%d" % i) for i in range(300)))

    asyncio.run(put_all())
    assert sorted(store.list("raw/")) == sorted(f"raw/t/d/{i}" for i in range(300))
    assert store.get("raw/t/d/7") == b"x7"
    assert not list((tmp_path / "objects" / "raw" / "t" / "d").glob(".tmp-*"))
    assert store.list_older("raw/", 3600) == []
    old = time.time() - 120
    os.utime(tmp_path / "objects" / "raw" / "t" / "d" / "5", (old, old))
    assert store.list_older("raw/", 60) == ["raw/t/d/5"]


def test_an_async_put_fails_clearly_when_the_directory_is_gone(tmp_path):  # type: ignore[no-untyped-def]
    store = LocalStore(tmp_path / "objects")
    asyncio.run(store.put_async("raw/a", b"1"))
    shutil.rmtree(tmp_path / "objects")
    (tmp_path / "objects").write_text("not a directory")

    async def put() -> None:
        await asyncio.gather(store.put_async("raw/b", b"2"), store.put_async("raw/c", b"3"))

    with pytest.raises(Unavailable):
        asyncio.run(put())
