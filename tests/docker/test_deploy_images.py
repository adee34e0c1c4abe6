"""Dockerfiles: pinned bases, non-root runtime, health checks, the torch pin."""

from __future__ import annotations

import re

import pytest

from .deploy_files import DOCKER, load_script

DOCKERFILES = {"api.Dockerfile": 8000, "worker.Dockerfile": 9100, "worker-cuda.Dockerfile": 9100}


def _lines(name: str) -> list[str]:
    text = (DOCKER / name).read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _final_stage(name: str) -> list[str]:
    lines = _lines(name)
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return lines[last_from:]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_images_are_pinned_by_tag(name: str) -> None:
    for line in _lines(name):
        if line.startswith("FROM "):
            image = line.split()[1]
            assert ":" in image and not image.endswith(":latest"), line


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runtime_stage_is_non_root_with_a_healthcheck_on_its_port(name: str) -> None:
    stage = _final_stage(name)
    users = [line.split()[1] for line in stage if line.startswith("USER ")]
    assert users and not users[-1].startswith(("root", "0"))
    (health,) = [line for line in stage if line.startswith("HEALTHCHECK ")]
    assert f"127.0.0.1:{DOCKERFILES[name]}/healthz" in health


@pytest.mark.parametrize("name", ["api.Dockerfile", "worker.Dockerfile"])
def test_cpu_images_pin_torch_from_the_cpu_index(name: str) -> None:
    text = " ".join(_lines(name))
    assert re.search(r"--index-url https://download.pytorch.org/whl/cpu torch==2\.13\.0\b", text)


def test_cuda_image_reuses_the_base_torch() -> None:
    lines = _lines("worker-cuda.Dockerfile")
    assert all(
        line.startswith("FROM pytorch/pytorch:2.13.0-cuda")
        for line in lines
        if line.startswith("FROM ")
    )
    assert not any(re.search(r"pip install[^&]*\btorch\b", line) for line in lines)
    assert any("--system-site-packages" in line for line in lines)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_each_dockerfile_has_its_own_ignore_file(name: str) -> None:
    # BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile; the context is the repo root.
    ignore = (DOCKER / f"{name}.dockerignore").read_text().split()
    assert ignore.count("*") == 1 and "!core/" in ignore and "!pyproject.toml" in ignore


def test_build_context_holds_the_project_and_nothing_else() -> None:
    # Given Docker's reading of the api image's ignore file
    context = load_script(DOCKER / "check_build_context.py")
    patterns = context._patterns(DOCKER / "api.Dockerfile.dockerignore")
    # Then the installable project goes in
    for path in ("pyproject.toml", "README.md", "core/queues.py", "pipelines/registry.py"):
        assert context.included(path, patterns), path
    # and tests, deployment files, local state and bytecode stay out
    for path in (
        "tests/docker/__init__.py",
        "docker/compose.yaml",
        ".venv/bin/python",
        "core/sub/__pycache__/m.pyc",
    ):
        assert not context.included(path, patterns), path
