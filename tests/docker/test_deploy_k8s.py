"""Kubernetes manifests: one Deployment per role, keys only where they belong."""

from __future__ import annotations

import json

import pytest

from core import factors as registry
from core.scaling import worker_deployment_name

from .deploy_files import (
    DOCKER,
    HPKE_ENV,
    HPKE_SECRET,
    K8S_BASE,
    base_documents,
    build_overlay,
    by_kind,
    pod_spec,
)

ROLES = (
    "tacit-api",
    "tacit-relay",
    "tacit-webhooks",
    *(worker_deployment_name(f) for f in registry.names()),
)


def _selects(pdb: dict, deployment: dict) -> bool:
    wanted = pdb["spec"]["selector"]["matchLabels"].items()
    return wanted <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_every_yaml_in_base_is_listed_in_the_kustomization() -> None:
    listed = {
        name
        for name in (K8S_BASE / "kustomization.yaml").read_text().split()
        if name.endswith(".yaml")
    }
    on_disk = {p.name for p in K8S_BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == listed


@pytest.mark.parametrize("factor", registry.names())
def test_every_factor_has_deployment_scaledobject_and_pdb(factor: str) -> None:
    # Given the base objects
    docs = base_documents()
    name = worker_deployment_name(factor)
    deployment = by_kind(docs, "Deployment")[name]
    # Then KEDA scales it, a PDB guards it, and it runs that factor's pool
    assert by_kind(docs, "ScaledObject")[name]["spec"]["scaleTargetRef"]["name"] == name
    assert any(_selects(pdb, deployment) for pdb in by_kind(docs, "PodDisruptionBudget").values())
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"


def test_every_role_has_a_pdb_that_selects_only_it() -> None:
    docs = base_documents()
    deployments = by_kind(docs, "Deployment")
    assert set(ROLES) == set(deployments)
    for pdb in by_kind(docs, "PodDisruptionBudget").values():
        assert [n for n, d in deployments.items() if _selects(pdb, d)] == [pdb["metadata"]["name"]]


def test_api_has_no_reference_to_the_hpke_private_keys() -> None:
    # Given the API Deployment, serialised whole
    api = json.dumps(by_kind(base_documents(), "Deployment")["tacit-api"])
    # Then neither the Secret nor the keys-file setting appears anywhere in it
    assert HPKE_SECRET not in api
    assert HPKE_ENV not in api


def test_only_factor_pools_mount_the_hpke_private_keys() -> None:
    docs = base_documents()
    holders = {
        d["metadata"]["name"]
        for d in docs
        if d["kind"] in ("Deployment", "Job") and HPKE_SECRET in json.dumps(d)
    }
    assert holders == {worker_deployment_name(f) for f in registry.names()}
    for name in holders:
        spec = pod_spec(by_kind(docs, "Deployment")[name])
        (volume,) = [
            v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == HPKE_SECRET
        ]
        mounts = [
            m for c in spec["containers"] for m in c["volumeMounts"] if m["name"] == volume["name"]
        ]
        assert mounts and all(m.get("readOnly") for m in mounts)


@pytest.mark.parametrize("role", ROLES)
def test_pods_run_non_root_with_probes_and_resources(role: str) -> None:
    spec = pod_spec(by_kind(base_documents(), "Deployment")[role])
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"requests", "limits"} <= container["resources"].keys()
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] in ("/readyz", "/healthz")


@pytest.mark.parametrize("role", [r for r in ROLES if r != "tacit-api"])
def test_celery_roles_outlast_the_longest_batch(role: str) -> None:
    # Warm shutdown needs the in-flight batch (60 s at most) to finish before SIGKILL.
    spec = pod_spec(by_kind(base_documents(), "Deployment")[role])
    assert spec["terminationGracePeriodSeconds"] >= 90


def test_api_readiness_checks_dependencies() -> None:
    (container,) = pod_spec(by_kind(base_documents(), "Deployment")["tacit-api"])["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["lifecycle"]["preStop"]


def test_gpu_overlay_gives_each_factor_pool_one_gpu_and_the_cuda_image() -> None:
    # Given the gpu overlay, built by kustomize
    deployments = by_kind(build_overlay("gpu"), "Deployment")
    for name, deployment in deployments.items():
        (container,) = pod_spec(deployment)["containers"]
        gpus = container["resources"]["limits"].get("nvidia.com/gpu")
        if name in {worker_deployment_name(f) for f in registry.names()}:
            # Then factor pools get one GPU, the CUDA image and --device cuda:0
            assert str(gpus) == "1"
            assert container["image"].split(":")[0] == "tacit/worker-cuda"
            assert container["args"][-2:] == ["--device", "cuda:0"]
        else:
            # and no other role asks for a GPU
            assert gpus is None


def test_cpu_overlay_keeps_every_role_on_cpu() -> None:
    deployments = by_kind(build_overlay("cpu"), "Deployment")
    assert set(deployments) == set(ROLES)
    for deployment in deployments.values():
        (container,) = pod_spec(deployment)["containers"]
        assert "nvidia.com/gpu" not in container["resources"]["limits"]
        assert "cuda" not in container["image"]


def test_every_pod_carries_the_labels_and_annotations_prometheus_keeps() -> None:
    # Given the scrape job for Kubernetes, which keeps pods by label and annotation
    scrape = (DOCKER / "k8s" / "prometheus-scrape.yml").read_text()
    assert "__meta_kubernetes_pod_label_app_kubernetes_io_part_of" in scrape
    # Then every built pod template has both
    for deployment in by_kind(build_overlay("cpu"), "Deployment").values():
        template = deployment["spec"]["template"]["metadata"]
        assert template["labels"]["app.kubernetes.io/part-of"] == "tacit"
        assert template["annotations"]["prometheus.io/scrape"] == "true"
