"""`tacit deploy`: every per-factor deployment file comes from one template per kind."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.fake_factors import install_swipe, plugins  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def test_the_committed_deployment_files_are_what_tacit_deploy_writes() -> None:
    # Given the committed docker/ folder and the built-in factors
    # When `tacit deploy --check` compares it with what it would write
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "deploy", "--check", "--dir", str(DOCKER)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    # Then nothing is out of date (after editing a template, run `tacit deploy`)
    assert out.returncode == 0, out.stderr


def test_a_plug_in_factor_gets_its_pool_in_every_deployment_file(
    plugins: Path, tmp_path: Path
) -> None:
    from cli.deploy import planned

    # Given a plug-in factor installed beside the built-ins, and a copy of docker/
    install_swipe(plugins)
    root = tmp_path / "docker"
    shutil.copytree(DOCKER, root)
    # When the deployment files are planned
    plan = planned(root)
    # Then it has a worker Deployment with its own resources, a ScaledObject on its queue,
    worker = list(yaml.safe_load_all(plan[root / "k8s/base/worker-swipe.yaml"]))
    container = worker[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["worker", "--factor", "swipe", "--device", "cpu"]
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    keda = yaml.safe_load(plan[root / "k8s/base/keda-swipe.yaml"])
    assert keda["spec"]["triggers"][0]["metadata"]["listName"] == "score.swipe"
    assert keda["spec"]["minReplicaCount"] == 2
    kustomization = yaml.safe_load(plan[root / "k8s/base/kustomization.yaml"])
    assert {"worker-swipe.yaml", "keda-swipe.yaml"} <= set(kustomization["resources"])
    # a compose service (CPU, GPU and Triton variants), and a Prometheus target
    compose = yaml.safe_load(plan[root / "compose.yaml"])
    assert compose["services"]["worker-swipe"]["command"][:3] == ["worker", "--factor", "swipe"]
    assert "worker-swipe" in yaml.safe_load(plan[root / "compose.gpu.yaml"])["services"]
    triton = yaml.safe_load(plan[root / "compose.triton.yaml"])
    assert {"triton-swipe", "triton-models-swipe", "worker-swipe"} <= set(triton["services"])
    assert "triton-swipe" in triton["volumes"]
    prometheus = yaml.safe_load(plan[root / "prometheus.yml"])
    targets = prometheus["scrape_configs"][1]["static_configs"][0]["targets"]
    assert targets[-1] == "worker-swipe:9100" and len(targets) == 4


def test_a_template_with_an_unknown_placeholder_is_refused_with_its_name(tmp_path: Path) -> None:
    from cli.deploy import DeployError, planned

    root = tmp_path / "docker"
    shutil.copytree(DOCKER, root)
    (root / "templates" / "compose-worker.yaml").write_text("  worker-{{factr}}:\n")
    try:
        planned(root)
    except DeployError as e:
        assert "{{factr}}" in str(e) and "compose.yaml" in str(e)
    else:
        raise AssertionError("the typo was rendered")
