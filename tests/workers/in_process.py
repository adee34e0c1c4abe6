"""This test process as one of a scoring pool's processes, over the session's real services."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from core.db import make_pool
from core.settings import Settings
from core.storage import make_store
from pipelines.base import FactorPipeline
from workers import runtime
from workers.embedding import Embedder
from workers.group_commit import GroupCommit
from workers.opening import KeyFile


@contextlib.contextmanager
def pool_process(
    settings: Settings,
    keyring_file: Path,
    factor: str,
    *,
    pipeline: FactorPipeline | None = None,
    embedder: Embedder | None = None,
) -> Iterator[runtime.Runtime]:
    """The worker runtime ``runtime.get()`` returns while the block runs: the workers' key
    file (the in-process API never sees it), and no model unless one is given."""
    pool = make_pool(settings.database_url, name=f"test-worker-{factor}")
    pool.open()
    commits = GroupCommit(pool, name=f"test-commit-{factor}")
    rt = runtime.Runtime(
        factor,
        settings,
        pool,
        make_store(settings.storage),
        pipeline,  # type: ignore[arg-type]
        embedder,  # type: ignore[arg-type]
        commits=commits,
        keys=KeyFile(keyring_file),
    )
    runtime._runtime = rt
    try:
        yield rt
    finally:
        runtime._runtime = None
        if embedder is not None:
            embedder.close()
        commits.close()
        pool.close()
