"""A real Triton Inference Server for the tests, from the `nvidia-pytriton` wheel.

The wheel ships a working ``tritonserver`` (2.5x) with its python backend, which runs on
the CPU; it has no onnxruntime backend, so the models are served by the python-backend
variant of ``tacit export --triton-repo`` (ONNX Runtime inside Triton's python backend).

What it takes, learnt the hard way:
- its own virtual environment with numpy < 2 (under numpy 2 every reply fails with
  "output tensor shape does not match"); built once and cached out of the tree;
- the python-backend stub finds its interpreter through PATH (the venv's bin first) and
  needs LD_LIBRARY_PATH to hold that interpreter's own libpython directory;
- the ``tritonserver`` binary is started directly (PyTriton's launcher left orphans).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from cli.stack import free_port, wait_for

CACHE = Path(os.environ.get("TACIT_TRITON_CACHE", Path.home() / ".cache" / "tacit" / "triton"))
REQUIREMENTS = ["nvidia-pytriton==0.7.*", "onnxruntime", "numpy<2"]
_UNREACHABLE = (
    "Failed to establish a new connection",
    "Network is unreachable",
    "Temporary failure in name resolution",
    "Could not fetch URL",
    "Name or service not known",
)


def _base_python() -> str:
    return str(
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    )


def ensure_environment() -> Path:
    """The cached venv holding tritonserver; built on first use (a minute or two).

    Skips (with the reason) only when the package registry cannot be reached; any other
    failure to build it fails the test."""
    venv = CACHE / "venv"
    marker = venv / ".tacit-ready"
    if marker.exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"\nbuilding the Triton test environment in {venv} (once; a minute or two)", file=sys.stderr
    )
    subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True)
    r = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        out = r.stdout + r.stderr
        if any(s in out for s in _UNREACHABLE):
            pytest.skip(
                f"the package registry is unreachable, cannot install {REQUIREMENTS}: {out[-300:]}"
            )
        pytest.fail(f"could not build the Triton environment: {out[-2000:]}")
    marker.touch()
    return venv


def _server_dir(venv: Path) -> Path:
    found = list((venv / "lib").glob("python3*/site-packages/pytriton/tritonserver"))
    if not found:
        pytest.fail(f"no pytriton/tritonserver in {venv}")
    return found[0]


def _backends(venv: Path) -> Path:
    """A backend folder with the python backend and the stub built for this Python."""
    server = _server_dir(venv)
    dest = CACHE / f"backends-py{sys.version_info.major}{sys.version_info.minor}" / "python"
    if not (dest / "triton_python_backend_stub").exists():
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
            shutil.copyfile(server / "backends" / "python" / name, dest / name)
        stub = (
            server
            / "python_backend_stubs"
            / f"{sys.version_info.major}.{sys.version_info.minor}"
            / "triton_python_backend_stub"
        )
        shutil.copyfile(stub, dest / "triton_python_backend_stub")
        (dest / "triton_python_backend_stub").chmod(0o755)
    return dest.parent


class Triton:
    """One tritonserver process over a model repository; restartable on the same ports."""

    def __init__(self, venv: Path, repo: Path, log: Path) -> None:
        self.venv, self.repo, self.log = venv, repo, log
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 120) -> None:
        server = _server_dir(self.venv)
        libs = [
            sysconfig.get_config_var("LIBDIR"),
            str(server.parent.parent / "nvidia_pytriton.libs"),
        ]
        env = dict(
            os.environ,
            PATH=f"{self.venv / 'bin'}:{os.environ.get('PATH', '')}",
            LD_LIBRARY_PATH=":".join(p for p in libs if p),
            TACIT_ORT_THREADS="1",
        )
        env.pop("PYTHONPATH", None)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                str(server / "bin" / "tritonserver"),
                "--model-repository",
                str(self.repo),
                "--backend-directory",
                str(_backends(self.venv)),
                "--http-port",
                str(self.http_port),
                "--grpc-port",
                str(self.grpc_port),
                "--metrics-port",
                str(self.metrics_port),
                "--allow-gpu-metrics",
                "false",
                "--log-verbose",
                "0",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited ({self.proc.returncode}); see {self.log}")
            try:
                return httpx.get(self.http_url + "/v2/health/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout, "Triton server")

    def kill(self) -> None:
        """SIGKILL, as a crashed server: no drain, connections reset."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
