"""A factor plug-in installed for one test: a dist-info with entry points and its module."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import factors as registry

# A plug-in factor module as a third party writes one (describing it loads no model).
SWIPE = """
    WIRE_CODE = 200
    HALF_LIFE_S = 45.0
    SCALING = {"min_replicas": 2}
    RESOURCES = {"cpu_request": "250m", "memory_request": "512Mi"}
    def load(device="cpu"):
        raise AssertionError("the registry never loads a model to describe a factor")
"""


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path where a test installs distributions (dist-info + module)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.installed.cache_clear()
    yield tmp_path
    registry.installed.cache_clear()
    for name in [m for m in sys.modules if m.startswith("plugin_")]:
        del sys.modules[name]


def install(root: Path, dist: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[tacit.factors]\n{lines}")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


def install_swipe(root: Path) -> None:
    install(root, "tacit_swipe", {"swipe": "plugin_swipe"}, {"plugin_swipe": SWIPE})
