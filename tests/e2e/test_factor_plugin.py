"""The factor plug-in example (examples/factor-plugin) from a fresh virtual environment.

The environment sees Tacit's installed packages (a .pth file) and gets the plug-in by a
plain `pip install` of a copy of the example (no network, no build isolation): the
factor comes from the package alone, Tacit's code is not touched. The whole path then
runs there on real processes: upload -> score.swipe -> `tacit worker --factor swipe`
-> score -> trust -> webhook (tests/e2e/plugin_stack.py), and `tacit scale
--emit-keda` writes the swipe pool's ScaledObject.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from cli.stack import KEYRING_ENV
from core import factors as registry

# services of this module's own: the swipe jobs it scores stay out of the session's database
# (the /ops dashboard's tests chart every factor found there)
from tests.isolated import services, settings  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "examples" / "factor-plugin"


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a fresh virtual environment: Tacit's packages plus the plug-in."""
    root = tmp_path_factory.mktemp("plugin-venv")
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    paths = {"base": str(venv), "platbase": str(venv)}
    site = Path(sysconfig.get_path("purelib", vars=paths))
    tacit_site = sysconfig.get_path("purelib")
    (site / "tacit.pth").write_text(f"import site; site.addsitedir({tacit_site!r})\n")
    # a copy: the build's egg-info and build/ stay out of the tree (a stale one would shadow)
    source = shutil.copytree(
        PLUGIN, root / "factor-plugin", ignore=shutil.ignore_patterns("*.egg-info", "build")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--prefix", str(venv), str(source)],
        check=True,
        timeout=120,
    )
    return venv / "bin" / "python"


def run(python: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_the_installed_plug_in_is_one_more_factor(plugin_python: Path) -> None:
    # given Tacit's own environment, which does not have the plug-in
    assert "swipe" not in registry.names()
    # when the fresh environment lists its factors
    out = run(plugin_python, "-c", "from core import factors; print(','.join(factors.names()))")
    # then the swipe factor is there after the built-in ones, from its own distribution
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == ",".join((*registry.names(), "swipe"))


def test_a_swipe_batch_goes_through_its_own_pool_to_trust_and_a_webhook(
    plugin_python: Path, settings, services, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # given the fresh environment's stack over this run's services
    env = dict(os.environ, **{KEYRING_ENV: str(services.keyring_file)})
    # when two phones enrol and verify with swipes (tests/e2e/plugin_stack.py)
    proc = subprocess.run(
        [str(plugin_python), "-m", "tests.e2e.plugin_stack", str(tmp_path / "stack")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # then the uploads waited on the swipe queue until the swipe pool took them
    assert out["queue"] == "score.swipe" and out["queued_before_pool"] >= 4
    assert out["enrol"] == ["done"] * 4
    # and every verification was scored by the swipe model, genuine users above the threshold
    assert [v["status"] for v in out["verify"]] == ["done"] * 4, out["verify"]
    assert all(v["factor"] == "swipe" and v["score"]["score"] > 0.5 for v in out["verify"])
    # and each user's trust is fused from swipe evidence with the factor's own half-life
    for trust in out["trust"].values():
        (swipe,) = trust["factors"]
        assert swipe["factor"] == "swipe" and swipe["half_life_s"] == 300.0
        assert trust["decision"] == "genuine"
    # and the tenant's endpoint got every job.completed and a trust.changed per user, signed
    assert set(out["job_ids"]) <= set(out["completed_events"])
    assert out["trust_events"] >= 2 and out["unverified_deliveries"] == 0


def test_scale_emits_the_swipe_pools_scaled_object(
    plugin_python: Path, settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # when `tacit scale --emit-keda` runs in the fresh environment
    out = run(plugin_python, "-m", "cli.main", "scale", "--emit-keda", str(tmp_path / "keda"))
    # then it writes a ScaledObject for the swipe pool, on its queue, with its scaling
    assert out.returncode == 0, out.stderr
    (keda,) = (tmp_path / "keda").glob("*swipe*")
    text = keda.read_text()
    assert "score.swipe" in text and "maxReplicaCount: 4" in text, text
    assert "swipe" in out.stdout
