"""The fault scenarios of `tacit chaos`, bounded in time: nothing accepted is lost or scored twice.

They run on a loaded machine (busy processes, one per core, beside the stack): timing
windows that a quiet machine never opens (an upload's statement cut by a Postgres
restart) open under load.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cli.faults import ChaosStack, cpu_load

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with (
        cpu_load(os.cpu_count() or 2),
        ChaosStack(Path(tmp_path_factory.mktemp("chaos")), "gait") as c,
    ):
        yield c


@pytest.mark.parametrize(
    "scenario",
    ["kill_worker", "restart_redis", "restart_postgres", "store_down", "duplicate_uploads"],
)
def test_scenario_loses_nothing_and_duplicates_nothing(chaos, scenario):  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    result = getattr(chaos, scenario)(12)
    assert result["accepted"] > 0, result
    assert result["lost"] == 0, result
    assert result["duplicated"] == 0, result
    assert result["orphans"] == 0, result
    assert result["done"] == result["accepted"], result
    assert time.monotonic() - t0 < 240
    if scenario == "store_down":
        assert result["note"].startswith("10/10 refused with 503; 0 row(s)"), result["note"]
