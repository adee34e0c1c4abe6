"""Gait protocol on a tiny fake HAPT folder, the baseline, and training behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.gait.baseline import WindowStatsBaseline
from pipelines.gait.dataset import load_protocol, load_segments
from pipelines.gait.evaluate import eer
from pipelines.gait.train import fit_encoder, train

# experiment, user, activity, start, end (1-based, inclusive) as in HAPT's labels.txt
LABELS = [
    (1, 1, 1, 1, 300),  # 300 samples -> 3 windows
    (1, 1, 4, 301, 500),  # sitting: ignored
    (1, 1, 2, 501, 700),  # 200 -> 2
    (2, 1, 3, 11, 400),  # 390 -> 5
    (2, 1, 5, 401, 600),
    (3, 2, 1, 1, 130),  # one experiment only: 130 -> 1
    (3, 2, 1, 201, 400),  # 200 -> 2
    (3, 2, 2, 401, 700),  # 300 -> 3
    (3, 2, 1, 701, 800),  # 100 samples: too short for a window
    (4, 3, 1, 1, 1000),  # 1000 -> 14
    (5, 3, 1, 1, 1600),  # 1600 -> 24
    (6, 9, 1, 1, 500),  # no files for this experiment: skipped
]
LENGTHS = {(1, 1): 800, (2, 1): 700, (3, 2): 900, (4, 3): 1100, (5, 3): 1700}


def _walk(user: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A user-specific periodic signal: each user walks at their own cadence."""
    t = np.arange(n) / 50.0
    f = 0.8 + 0.35 * user
    acc = np.stack([np.sin(2 * np.pi * f * t + k) * (0.2 + 0.1 * k) for k in range(3)], 1)
    acc[:, 2] += 1.0  # gravity, in g as HAPT stores it
    gyro = np.stack([np.cos(2 * np.pi * f * (k + 1) * t) * 0.5 for k in range(3)], 1)
    return acc + rng.normal(0, 0.02, acc.shape), gyro + rng.normal(0, 0.02, gyro.shape)


@pytest.fixture
def hapt(tmp_path: Path) -> Path:
    root = tmp_path / "HAPT_RawData"
    root.mkdir()
    rng = np.random.default_rng(0)
    for (exp, user), n in LENGTHS.items():
        acc, gyro = _walk(user, n, rng)
        np.savetxt(root / f"acc_exp{exp:02d}_user{user:02d}.txt", acc)
        np.savetxt(root / f"gyro_exp{exp:02d}_user{user:02d}.txt", gyro)
    np.savetxt(root / "labels.txt", np.array(LABELS), fmt="%d")
    return tmp_path


def test_protocol_counts_on_fake_hapt(hapt: Path) -> None:
    # given a HAPT folder with two-session users, a one-session user and stray labels
    # when the protocol is loaded from the parent folder
    subjects = load_protocol(hapt)
    # then each user enrols on its first session (or first half) and probes with the rest
    counts = {s.subject: (len(s.enrol), len(s.genuine), len(s.impostor)) for s in subjects}
    assert counts == {"user01": (5, 5, 5), "user02": (3, 3, 3), "user03": (14, 24, 20)}
    user03 = subjects[2]
    assert user03.enrol.shape == (14, 6, 128) and user03.enrol.dtype == np.float32
    assert user03.genuine[0][0] == "user03/exp05/0"
    assert user03.genuine[0][1].shape == (1, 6, 128)
    assert [pid for pid, _ in user03.impostor] == [pid for pid, _ in user03.genuine[:20]]
    assert len({pid for s in subjects for pid, _ in s.genuine}) == 32


def test_protocol_selects_subjects(hapt: Path) -> None:
    # given the fake folder, when two subjects are asked for by name or number
    subjects = load_protocol(hapt / "HAPT_RawData", ["user03", "1"])
    # then only they come back, in user order
    assert [s.subject for s in subjects] == ["user01", "user03"]


def test_eer_of_separated_and_identical_scores() -> None:
    assert eer(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert eer(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == pytest.approx(0.5)


def test_baseline_prefers_the_genuine_user(hapt: Path) -> None:
    # given user03's enrolment
    subjects = load_protocol(hapt)
    scorer = WindowStatsBaseline()
    state = scorer.fit(subjects[2].enrol)
    # when its own probes and another user's probes are scored
    genuine = scorer.score(state, np.concatenate([x for _, x in subjects[2].genuine]))
    impostor = scorer.score(state, np.concatenate([x for _, x in subjects[0].impostor]))
    # then its own score higher
    assert genuine.shape == (24,) and genuine.min() > impostor.max()


def test_a_few_training_steps_lower_the_loss(hapt: Path) -> None:
    torch.set_num_threads(1)
    segments = load_segments(hapt)
    _, losses = fit_encoder(segments, seed=0, steps=40, per_user=6, lr=3e-3)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_training_is_reproducible_with_a_seed(hapt: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    # given two trainings with the same seed
    a = train(hapt, out=tmp_path / "a", seed=3, steps=3, calibrate="train")
    b = train(hapt, out=tmp_path / "b", seed=3, steps=3, calibrate="train")
    # then the weights and calibration are byte-identical
    for name in ("model.safetensors", "calibration.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a["slope"] == b["slope"] and a["trained_on"] == ["user01", "user02", "user03"]


def test_the_harness_can_skip_out_of_fold_calibration(hapt: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    # given the evaluation harness's switch (it trains once per fold and needs no calibration)
    # when training is asked not to calibrate out of fold
    summary = train(hapt, out=tmp_path / "w", seed=0, steps=2, out_of_fold=False)
    # then one model is trained and calibrated on its own users, as with calibrate="train"
    assert summary["calibrated_on"] == "train"


def test_per_batch_eer_fuses_consecutive_probe_windows_like_a_job(hapt: Path) -> None:
    from pipelines.gait import load
    from pipelines.gait.evaluate import batch_subject_eers, probe_batches

    # given the fake HAPT users: user03 probes with 24 windows of its second experiment
    subjects = {s.subject: s for s in load_protocol(hapt)}
    # then it has 3 full batches of 8 windows (and user01 with 5 probe windows has none of 8)
    assert [b.shape for b in probe_batches(subjects["user03"], 8)] == [(8, 6, 128)] * 3
    assert probe_batches(subjects["user01"], 8) == []
    # and the per-batch EER is defined where a user has genuine and impostor batches of 4
    # (user02 probes with 3 windows: none)
    pipeline = load()
    pipeline.min_enrol_samples = 1  # the fake users enrol on a few windows only
    eers = batch_subject_eers(list(subjects.values()), pipeline, 4)
    assert set(eers) == {"user01", "user03"} and all(0.0 <= v <= 1.0 for v in eers.values())
