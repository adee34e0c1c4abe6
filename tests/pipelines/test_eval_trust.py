"""`tacit eval trust` end to end on tiny data sets of the three factors in the public layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli import eval as eval_command
from cli.eval_trust import DEFAULT_THRESHOLD
from core.settings import get_settings
from core.trust.evaluation import read_trace, trace_figures
from core.trust.fusion import FusionParams
from tests.pipelines.commands import run_command
from tests.pipelines.conftest import write_cmu_csv, write_orl

# per HAPT user: a first experiment of 1600 walking samples (24 windows: enrolment) and a
# second of 1100 (16 windows: two gait batches of 8)
HAPT_USERS = (1, 2, 3)


def _write_hapt(root: Path) -> None:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = []
    for k, user in enumerate(HAPT_USERS):
        for exp, n in ((2 * k + 1, 1600), (2 * k + 2, 1100)):
            t = np.arange(n) / 50.0
            f = 0.8 + 0.35 * user
            acc = np.stack([np.sin(2 * np.pi * f * t + j) * (0.2 + 0.1 * j) for j in range(3)], 1)
            acc[:, 2] += 1.0
            gyro = np.stack([np.cos(2 * np.pi * f * (j + 1) * t) * 0.5 for j in range(3)], 1)
            np.savetxt(
                root / f"acc_exp{exp:02d}_user{user:02d}.txt", acc + rng.normal(0, 0.02, acc.shape)
            )
            np.savetxt(
                root / f"gyro_exp{exp:02d}_user{user:02d}.txt",
                gyro + rng.normal(0, 0.02, gyro.shape),
            )
            labels.append((exp, user, 1, 1, n))
    np.savetxt(root / "labels.txt", np.array(labels), fmt="%d")


@pytest.fixture
def trust_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_cmu_csv(data / "keystroke", ["s002", "s003", "s004", "s005"])  # 4: one more than gait
    _write_hapt(data / "gait" / "HAPT_RawData")
    write_orl(data / "faces" / "att_faces", ["s1", "s2", "s10"])
    return data


def test_eval_trust_builds_the_sessions_and_its_trace_reproduces_the_json(
    trust_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given 4 keystroke subjects, 3 gait users (2 batches each) and 3 face subjects
    trace, report = tmp_path / "trace.csv", tmp_path / "report"
    # when the trust evaluation runs with the default batch sizes and interval
    rc = run_command(
        eval_command,
        [
            "eval",
            "trust",
            "--data",
            str(trust_data),
            "--trace-out",
            str(trace),
            "--report",
            str(report),
            "--json",
        ],
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # then 3 users; a genuine session is k g f k g f k (gait runs out) = 7 uploads;
    # 3 genuine + 6 takeover sessions of 7 uploads each
    assert (summary["users"], summary["sessions"], summary["uploads"]) == (3, 9, 63)
    keys = {"ania", "detected", "false_lockouts_per_1000", "anga"}
    assert set(summary) == {"users", "sessions", "uploads", "fused", "factors"}
    assert set(summary["fused"]) == keys
    assert set(summary["factors"]) == {"keystroke", "gait", "face"}
    assert all(set(v) == keys for v in summary["factors"].values())
    rows = read_trace(trace)
    assert len(rows) == 63
    # takeovers: floor(7 / 3) = 2 genuine uploads, then 5 impostor ones
    assert sum(r.impostor for r in rows) == 6 * 5
    assert {(r.kind, r.step) for r in rows if r.impostor} == {("takeover", k) for k in range(2, 7)}
    assert all(r.locked == (r.trust < DEFAULT_THRESHOLD) for r in rows)
    # and the figures recomputed from the trace alone equal the printed ones
    params = FusionParams.from_settings(get_settings().trust)
    again = trace_figures(
        rows, params=params, threshold=DEFAULT_THRESHOLD, factors=["keystroke", "gait", "face"]
    )
    assert again["fused"].summary() == pytest.approx(summary["fused"])
    for f in ("keystroke", "gait", "face"):
        assert again[f].summary() == pytest.approx(summary["factors"][f])
    assert {p.name for p in report.iterdir()} == {
        "report.json",
        "report.md",
        "trust.png",
        "det.png",
    }
    stored = json.loads((report / "report.json").read_text())
    assert stored["fused"] == summary["fused"] and stored["setup"]["pairs"][2] == {
        "keystroke": "s004",
        "gait": "user03",
        "face": "s10",
    }


def test_eval_trust_of_a_missing_folder_or_factor_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(eval_command, ["eval", "trust", "--data", str(tmp_path / "nope")]) == 2
    write_cmu_csv(tmp_path / "d" / "keystroke", ["s002", "s003"])
    assert run_command(eval_command, ["eval", "trust", "--data", str(tmp_path / "d")]) == 2
    assert "error:" in capsys.readouterr().err
