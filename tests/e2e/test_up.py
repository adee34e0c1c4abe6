"""`tacit up` on the embedded stack: state survives Ctrl-C and a second `tacit up`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cli.stack import free_port

pytestmark = pytest.mark.integration


def _up(data_dir: Path, port: int) -> subprocess.Popen:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "TACIT_"))
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "up", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(proc: subprocess.Popen, data_dir: Path, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        state = data_dir / "stack.json"
        if state.exists():
            return json.loads(state.read_text())
        time.sleep(0.5)
    raise AssertionError("tacit up did not become ready")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def test_state_survives_ctrl_c_and_a_second_up(tmp_path: Path):  # type: ignore[no-untyped-def]
    data_dir, port = tmp_path / "data", free_port()
    # given a running embedded stack with a demo's jobs in it
    proc = _up(data_dir, port)
    try:
        state = _wait_ready(proc, data_dir)
        demo = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "demo",
                "--data-dir",
                str(data_dir),
                "--phones",
                "2",
                "--factors",
                "keystroke",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert demo.returncode == 0, demo.stderr[-2000:]
        summary = json.loads(demo.stdout.strip().splitlines()[-1])
        assert summary["done"] == summary["jobs"] > 0
    finally:
        out = _stop(proc)
    # then Ctrl-C stopped every process and said so
    assert "stopped" in out
    assert not (data_dir / "stack.json").exists()
    # when the stack starts again on the same data directory
    proc = _up(data_dir, port)
    try:
        state = _wait_ready(proc, data_dir)
        from core.db import connect

        with connect(state["env"]["DATABASE_URL"]) as conn:
            jobs = conn.execute("SELECT count(*) AS n FROM jobs WHERE status = 'done'").fetchone()[
                "n"
            ]
            scores = conn.execute("SELECT count(*) AS n FROM scores").fetchone()["n"]
        assert httpx.get(state["api_url"] + "/readyz", timeout=5).status_code == 200
    finally:
        _stop(proc)
    # then the earlier jobs and scores are all still there
    assert jobs == summary["jobs"]
    assert (
        scores == summary["jobs"] - 2 * 3
    )  # every verification job has its score (enrolment: 3 per phone)
