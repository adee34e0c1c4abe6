"""Gait pipeline with its committed weights: plaintext in, calibrated verification out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.base import FactorPipeline, SampleError, Template
from pipelines.codec import PlaintextError, decode, encode
from pipelines.gait import load
from pipelines.gait.pipeline import GaitPipeline
from pipelines.gait.signal import STANDARD_GRAVITY, resample
from pipelines.gait.synthetic import capture, make_person


@pytest.fixture(scope="module")
def pipeline() -> GaitPipeline:
    torch.set_num_threads(1)
    return load("cpu")


def _frame(seconds: float = 6.0, rate: float = 50.0, **override: np.ndarray) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    acc = np.stack([np.sin(2 * np.pi * 1.8 * t), np.cos(2 * np.pi * 0.9 * t), np.ones_like(t)], 1)
    arrays = {
        "acc": (acc * STANDARD_GRAVITY).astype("<f4"),
        "gyro": (0.3 * np.stack([np.sin(2 * np.pi * k * t) for k in (0.9, 1.8, 2.7)], 1)).astype(
            "<f4"
        ),
        "rate_hz": np.array(rate, dtype="<f4"),
    }
    arrays.update(override)
    return encode("gait", arrays)


def _inputs(p: GaitPipeline, plaintext: bytes) -> np.ndarray:
    return p.preprocess(p.decode(plaintext))


def test_it_honours_the_pipeline_contract(pipeline: GaitPipeline) -> None:
    assert isinstance(pipeline, FactorPipeline)
    assert pipeline.factor == "gait" and pipeline.model_version.startswith("gait-")
    assert pipeline.min_enrol_samples >= 1


def test_preprocess_cuts_50hz_windows_with_hop_64(pipeline: GaitPipeline) -> None:
    # given 6 s at 50 Hz (300 samples), when preprocessed
    x = _inputs(pipeline, _frame(6.0))
    # then windows start at 0, 64, 128 and hold acc in g and gyro in rad/s
    assert x.shape == (3, 6, 128) and x.dtype == np.float32
    assert np.allclose(x[:, 2], 1.0, atol=1e-5)  # gravity axis, converted from m/s^2


def test_another_rate_is_resampled_to_50hz(pipeline: GaitPipeline) -> None:
    # given the same walk sampled at 50 Hz and at 200 Hz
    at_50 = _inputs(pipeline, _frame(6.0, 50.0))
    at_200 = _inputs(pipeline, _frame(6.0, 200.0))
    # then both give the same windows, up to the low-pass and interpolation error
    assert at_200.shape == at_50.shape
    assert np.abs(at_200 - at_50).max() < 0.05


def test_timestamps_drive_resampling() -> None:
    # given irregular timestamps of a 1 Hz sine, when resampled to 50 Hz
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.005, 0.015, 800))
    x = np.sin(2 * np.pi * t)[:, None]
    out = resample(x, 100.0, t)
    grid = np.arange(out.shape[0]) / 50.0 + t[0]
    # then the samples sit on a uniform 50 Hz grid
    assert np.abs(out[:, 0] - np.sin(2 * np.pi * grid)).max() < 0.05


def _reference_resample(x: np.ndarray, rate: float, t: np.ndarray | None) -> np.ndarray:
    """The per-channel form the vectorised resampler replaced: np.convolve, then np.interp."""
    times = np.arange(len(x)) / rate if t is None else t - t[0]
    width = int(round(rate / 50.0))
    if width > 1:
        padded = np.pad(x, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
        kernel = np.ones(width) / width
        x = np.stack(
            [np.convolve(padded[:, c], kernel, mode="valid") for c in range(x.shape[1])], 1
        )
    grid = np.arange(0.0, times[-1] + 1e-9, 1 / 50.0)
    return np.stack([np.interp(grid, times, x[:, c]) for c in range(x.shape[1])], 1)


@pytest.mark.parametrize("rate", [60.0, 100.0, 200.0, 1000.0])
@pytest.mark.parametrize("irregular", [False, True])
def test_resampling_all_channels_at_once_matches_per_channel_interpolation(
    rate: float, irregular: bool
) -> None:
    # given six channels at `rate`, on a uniform or a jittered clock
    rng = np.random.default_rng(int(rate))
    x = rng.normal(size=(int(rate * 7.3), 6))
    t = np.cumsum(rng.uniform(0.5, 1.5, len(x))) / rate + 12.0 if irregular else None
    # when resampled to 50 Hz, then it equals low-pass + np.interp channel by channel
    out, ref = resample(x, rate, t), _reference_resample(x, rate, t)
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 1e-12


def test_windows_hold_every_hop_of_the_recording(pipeline: GaitPipeline) -> None:
    # given 9 s at 100 Hz, when preprocessed
    rec = pipeline.decode(_frame(9.0, 100.0))
    x = pipeline.preprocess(rec)
    # then window i is samples 64 i .. 64 i + 127 of acc and gyro, channels first
    signal = np.concatenate([rec.acc, rec.gyro], 1)
    assert x.shape == (6, 6, 128) and x.flags["C_CONTIGUOUS"]
    for i in range(6):
        np.testing.assert_array_equal(x[i], signal[64 * i : 64 * i + 128].T.astype(np.float32))


@pytest.mark.parametrize(
    ("plaintext", "code"),
    [
        (_frame(2.0), "gait_too_short"),
        (_frame(rate=5.0), "gait_bad_rate"),
        (_frame(rate=5000.0), "gait_bad_rate"),
        (_frame(acc=np.full((300, 3), np.nan, dtype="<f4")), "gait_not_finite"),
        (_frame(gyro=np.zeros((299, 3), dtype="<f4")), "gait_length_mismatch"),
        (_frame(acc=np.zeros((300, 2), dtype="<f4")), "gait_bad_shape"),
        (_frame(acc=np.zeros((300, 3), dtype="<i4")), "gait_bad_dtype"),
        (_frame(t=np.zeros(300, dtype="<f8")), "gait_bad_timestamps"),
        (
            encode("gait", {"gyro": np.zeros((300, 3), "<f4"), "rate_hz": np.array(50.0, "<f4")}),
            "plaintext_missing_array",
        ),
        (encode("face", {}), "plaintext_wrong_factor"),
        (b"junk", "plaintext_bad_magic"),
    ],
)
def test_bad_plaintext_has_a_code(pipeline: GaitPipeline, plaintext: bytes, code: str) -> None:
    with pytest.raises((PlaintextError, SampleError)) as info:
        _inputs(pipeline, plaintext)
    assert info.value.code == code


def test_embeddings_are_unit_length_and_deterministic(pipeline: GaitPipeline) -> None:
    x = torch.from_numpy(_inputs(pipeline, _frame(10.0)))
    a, b = pipeline.embed(x), pipeline.embed(x)
    assert a.shape == (x.shape[0], 128) and not a.requires_grad
    assert torch.equal(a, b)
    assert torch.allclose(a.norm(dim=1), torch.ones(a.shape[0]), atol=1e-5)
    # one window embedded alone equals the same window embedded in a batch
    assert torch.allclose(pipeline.embed(x[1:2])[0], a[1], atol=1e-5)


def test_enrol_needs_enough_windows(pipeline: GaitPipeline) -> None:
    with pytest.raises(SampleError) as info:
        pipeline.enrol(np.zeros((pipeline.min_enrol_samples - 1, 128), np.float32))
    assert info.value.code == "gait_too_few_enrol_samples"


def test_template_round_trip_and_verification(pipeline: GaitPipeline) -> None:
    # given a synthetic walker enrolled from three captures
    rng = np.random.default_rng(1)
    walker = make_person(7)
    enrol = np.concatenate(
        [pipeline.embed_numpy(_inputs(pipeline, capture(walker, rng, 10))) for _ in range(3)]
    )
    template = pipeline.enrol(enrol)
    # when the template travels through the plaintext codec and back
    frame = decode(encode("gait", template.arrays))
    restored = Template(
        template.factor, template.model_version, dict(frame.arrays), template.samples
    )
    probe = pipeline.embed_numpy(_inputs(pipeline, capture(walker, rng, 6)))
    before, after = pipeline.verify(template, probe), pipeline.verify(restored, probe)
    # then it verifies the same, with a calibrated score per window and for the batch
    assert after == before
    assert 0.0 <= before.score <= 1.0 and np.isfinite(before.llr)
    assert len(before.per_sample) == probe.shape[0]
    assert all(0.0 <= s <= 1.0 for s in before.per_sample)
    assert (before.llr > 0) == (before.score > 0.5)


def test_a_template_from_another_model_is_refused(pipeline: GaitPipeline) -> None:
    template = Template("gait", "gait-other-0", {"embeddings": np.zeros((30, 128), np.float32)}, 30)
    with pytest.raises(SampleError) as info:
        pipeline.verify(template, np.zeros((2, 128), np.float32))
    assert info.value.code == "template_model_mismatch"


def test_synthetic_genuine_captures_outscore_impostors(pipeline: GaitPipeline) -> None:
    # given six simulated walkers, each enrolled from three captures (as `tacit demo` does)
    rng = np.random.default_rng(0)
    walkers = [make_person(seed) for seed in range(6)]

    def embed(b: bytes) -> np.ndarray:
        return pipeline.embed_numpy(_inputs(pipeline, b))

    templates = [
        pipeline.enrol(np.concatenate([embed(capture(w, rng, 10)) for _ in range(3)]))
        for w in walkers
    ]
    # when fresh captures are verified against their own and everyone else's template
    genuine, impostor = [], []
    for i, walker in enumerate(walkers):
        for _ in range(2):
            probe = embed(capture(walker, rng, 5))
            genuine.append(pipeline.verify(templates[i], probe).score)
            impostor += [pipeline.verify(t, probe).score for j, t in enumerate(templates) if j != i]
    # then genuine captures score clearly higher
    assert np.mean(genuine) > np.mean(impostor) + 0.3
    assert np.median(genuine) > 0.5 > np.median(impostor)
