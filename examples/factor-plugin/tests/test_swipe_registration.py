"""The package registers as a Tacit factor: what the registry and a pool read from it."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from core import factors as registry

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.fixture
def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The package's entry point as an installed distribution would declare it."""
    entry = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]["entry-points"]
    info = tmp_path / "tacit_factor_swipe-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tacit-factor-swipe\nVersion: 0.1.0\n"
    )
    lines = "".join(f"{k} = {v}\n" for k, v in entry["tacit.factors"].items())
    (info / "entry_points.txt").write_text(f"[tacit.factors]\n{lines}")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.installed.cache_clear()
    yield
    registry.installed.cache_clear()


def test_the_entry_point_names_the_factor_and_its_module() -> None:
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["tacit.factors"] == {"swipe": "tacit_swipe"}


def test_the_registry_reads_the_constants_without_loading_a_model(registered) -> None:  # type: ignore[no-untyped-def]
    swipe = registry.get("swipe")
    assert swipe.wire_code == 200 and swipe.queue == "score.swipe"
    assert swipe.half_life_s == 300.0
    assert swipe.scaling["min_replicas"] == 1 and swipe.resources["cpu_request"] == "250m"
    assert swipe.plaintext_bounds["max_swipes"] == (1, 4_096)
    assert "swipe" in registry.providing("synthetic")
    assert registry.by_code(200) == swipe


def test_a_pool_loads_the_pipeline_through_the_registry(registered) -> None:  # type: ignore[no-untyped-def]
    pipeline = registry.load_pipeline("swipe")
    assert pipeline.factor == "swipe" and pipeline.limits.max_swipes == 256  # type: ignore[attr-defined]
