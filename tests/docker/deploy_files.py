"""Shared loaders for the deployment-file tests (docker/)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
K8S_BASE = DOCKER / "k8s" / "base"
HPKE_SECRET = "tacit-hpke-keys"
HPKE_ENV = "TACIT_CRYPTO__PRIVATE_KEYS_FILE"


def load_script(path: Path) -> ModuleType:
    """Import a stand-alone script of docker/ as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def yaml_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def base_documents() -> list[dict[str, Any]]:
    """Every object the base kustomization lists, read file by file."""
    kustomization = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(yaml_documents((K8S_BASE / name).read_text()))
    return docs


def kustomize_command() -> list[str] | None:
    """`kubectl kustomize` or `kustomize build`, whichever is installed."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def build_overlay(name: str) -> list[dict[str, Any]]:
    command = kustomize_command()
    if command is None:
        pytest.skip("neither kubectl nor kustomize is installed")
    out = subprocess.run(
        [*command, str(DOCKER / "k8s" / "overlays" / name)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return yaml_documents(out.stdout)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]
