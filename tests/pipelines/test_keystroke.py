"""Keystroke: plaintext events, the CMU protocol, the baseline and the committed model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import pipelines.keystroke as keystroke
from pipelines import codec
from pipelines.base import FactorPipeline, SampleError
from pipelines.evaluation.harness import run_protocol
from pipelines.keystroke import train as trainer
from pipelines.keystroke.baseline import ScaledManhattan
from pipelines.keystroke.dataset import load_protocol, read_subjects
from pipelines.keystroke.detectors import practice_trend
from pipelines.keystroke.events import decode_typings, encode_typings, features
from pipelines.keystroke.pipeline import KeystrokePipeline
from pipelines.keystroke.synthetic import capture, make_person, timings
from tests.pipelines.simulated import embed, genuine_and_impostor


def test_cmu_timings_survive_the_trip_through_key_events() -> None:
    # given CMU-style timings of three typings
    t = timings(make_person(1), np.random.default_rng(0), 3)
    # when they become events, a plaintext frame, and features again
    x = features(decode_typings(encode_typings(t)))
    # then every hold, down-down and up-down time is the same
    np.testing.assert_allclose(x, t, atol=1e-6)


def test_protocol_counts_on_a_tiny_cmu_file(cmu_dir: Path) -> None:
    # given a CMU-format file with 3 subjects of 400 reps
    subjects = load_protocol(cmu_dir)
    # when the harness runs the protocol
    comps = run_protocol(subjects, ScaledManhattan())
    # then 200 enrolment reps, 200 genuine probes, 5 impostor probes lent per subject
    assert [s.subject for s in subjects] == ["s002", "s003", "s004"]
    assert all(s.enrol.shape == (200, 31) for s in subjects)
    assert sum(c.genuine for c in comps) == 3 * 200
    assert sum(not c.genuine for c in comps) == 3 * 2 * 5
    impostors_of_s002 = {c.probe for c in comps if c.claimed == "s002" and not c.genuine}
    assert impostors_of_s002 == {f"{s}:1.{r}" for s in ("s003", "s004") for r in range(1, 6)}


def test_protocol_enrols_on_the_first_200_reps_in_file_order(cmu_dir: Path) -> None:
    table = read_subjects(cmu_dir)
    s = load_protocol(cmu_dir, ["s003"])[0]
    # UD is rebuilt as DD - H from the 4-decimal file, so it may differ in the last digit
    np.testing.assert_allclose(s.enrol, table["s003"][1][:200], atol=2e-4)
    assert s.genuine[0][0] == "s003:5.1" and s.genuine[-1][0] == "s003:8.50"


def test_protocol_accepts_the_parent_folder_and_rejects_unknown_subjects(cmu_dir: Path) -> None:
    assert len(load_protocol(cmu_dir.parent, ["s002", "s004"])) == 2
    with pytest.raises(ValueError, match="s999"):
        load_protocol(cmu_dir, ["s999"])


def test_a_file_in_another_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "DSL-StrongPasswordData.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="format"):
        load_protocol(tmp_path)


@pytest.mark.parametrize(
    ("arrays", "code"),
    [
        (
            {
                "key": np.zeros(2, "<u2"),
                "down": np.zeros(2),
                "up": np.zeros(3),
                "sample": np.zeros(2, "<u4"),
            },
            "keystroke_bad_events",
        ),
        (
            {
                "key": np.zeros(1, "<u2"),
                "down": np.ones(1),
                "up": np.zeros(1),
                "sample": np.zeros(1, "<u4"),
            },
            "keystroke_bad_times",
        ),
        (
            {
                "key": np.zeros(2, "<u2"),
                "down": np.zeros(2),
                "up": np.ones(2),
                "sample": np.array([0, 2], "<u4"),
            },
            "keystroke_bad_samples",
        ),
    ],
)
def test_malformed_events_raise_sample_errors_with_codes(
    arrays: dict[str, np.ndarray], code: str
) -> None:
    with pytest.raises(SampleError) as e:
        decode_typings(codec.encode("keystroke", arrays))
    assert e.value.code == code


def test_a_frame_without_events_or_for_another_factor_is_a_plaintext_error() -> None:
    with pytest.raises(codec.PlaintextError) as e:
        decode_typings(codec.encode("keystroke", {"key": np.zeros(1, "<u2")}))
    assert e.value.code == "plaintext_missing_array"
    with pytest.raises(codec.PlaintextError) as e:
        decode_typings(codec.encode("face", {"frames": np.zeros((1, 20, 20), "|u1")}))
    assert e.value.code == "plaintext_wrong_factor"


def test_free_text_and_other_lengths_are_refused_by_the_phrase_model() -> None:
    frame = codec.encode(
        "keystroke",
        {
            "key": np.arange(3, dtype="<u2"),
            "down": np.array([0.0, 100, 200]),
            "up": np.array([50.0, 150, 250]),
            "sample": np.zeros(3, "<u4"),
        },
    )
    with pytest.raises(SampleError) as e:
        features(decode_typings(frame))
    assert e.value.code == "keystroke_phrase_length"
    free = codec.decode(encode_typings(np.full((1, 31), 0.1)))
    frame = codec.encode("keystroke", {**free.arrays, "text": np.zeros(1, "<u4")})
    with pytest.raises(SampleError) as e:
        features(decode_typings(frame))
    assert e.value.code == "keystroke_free_text_unsupported"


def test_committed_model_scores_simulated_genuine_typists_above_impostors() -> None:
    # given the committed pipeline and six simulated typists enrolled with three captures each
    p = keystroke.load()
    assert isinstance(p, FactorPipeline)
    rng = np.random.default_rng(7)
    people = [make_person(100 + k) for k in range(6)]
    # when each verifies a genuine capture and another person's capture
    _, genuine, impostor = genuine_and_impostor(p, people, capture, rng, enrol=(3, 10), probe=5)
    # then genuine captures score clearly higher, and scores are probabilities with matching llr
    assert np.mean([v.score for v in genuine]) > np.mean([v.score for v in impostor]) + 0.5
    for v in genuine + impostor:
        assert 0.0 <= v.score <= 1.0 and len(v.per_sample) == 5
        assert v.score == pytest.approx(1 / (1 + np.exp(-v.llr)), abs=1e-9)


def test_templates_hold_only_numpy_arrays_that_the_codec_can_carry() -> None:
    p = keystroke.load()
    t = p.enrol(embed(p, capture(make_person(3), np.random.default_rng(0), 25)))
    back = codec.decode(codec.encode("keystroke", t.arrays)).arrays
    assert back.keys() == t.arrays.keys() and t.model_version == "keystroke-enc-3"


def test_enrolment_needs_enough_typings() -> None:
    p = keystroke.load()
    with pytest.raises(SampleError) as e:
        p.enrol(embed(p, capture(make_person(3), np.random.default_rng(0), 5)))
    assert e.value.code == "enrolment_too_small"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_embeddings_match_cpu() -> None:
    x = torch.from_numpy(timings(make_person(5), np.random.default_rng(0), 16).astype(np.float32))
    cpu = keystroke.load("cpu").embed(x)
    gpu = keystroke.load("cuda:0").embed(x.to("cuda:0")).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)


def test_detectors_are_on_the_users_own_scale() -> None:
    # given a template built from one typist's enrolment
    p = keystroke.load()
    rng = np.random.default_rng(11)
    person = make_person(21)
    t = p.enrol(embed(p, capture(person, rng, 75)))
    # when that typist's new typings and another typist's are scored per detector
    own = p.detector_scores(t, embed(p, capture(person, rng, 50)))
    other = p.detector_scores(t, embed(p, capture(make_person(22), rng, 50)))
    # then the typist's own typings sit near 0 (a typical enrolment typing) on every detector in use,
    # and the other typist's lie far out
    used = p.scoring.weights() != 0
    assert np.abs(own[:, used].mean(axis=0)).max() < 1.5
    assert (other[:, used].mean(axis=0) > own[:, used].mean(axis=0) + 2.0).all()


def test_practice_trend_is_the_per_timing_change_per_typing() -> None:
    # given typings whose first timing shortens by 1 ms per typing and whose second is constant
    x = np.column_stack([0.3 - 0.001 * np.arange(40), np.full(40, 0.1)])
    # then the trend is -1 ms and 0 per typing
    np.testing.assert_allclose(practice_trend(x), [-0.001, 0.0], atol=1e-12)


def test_a_template_ahead_of_the_enrolment_sits_where_the_typist_is_heading() -> None:
    # given a typist who gets faster with practice: every timing shrinks 0.2% per typing
    p = keystroke.load()
    rng = np.random.default_rng(3)
    n = 200
    drift = np.exp(-0.002 * np.arange(n + 60))[:, None]
    t = timings(make_person(9), rng, n + 60) * drift
    e = p.embed(torch.from_numpy(t.astype(np.float32))).numpy()
    # when templates are enrolled on the first 200 typings as typed and moved 25 typings ahead
    as_typed = KeystrokePipeline(
        p.encoder, p.calibration, replace(p.scoring, ahead=None), model_version="m"
    )
    ahead = KeystrokePipeline(
        p.encoder, p.calibration, replace(p.scoring, ahead=25), model_version="m"
    )
    shape = (p.scoring.recent, p.encoder.n_features)
    assert as_typed.enrol(e[:n]).arrays["timings"].shape == shape
    assert ahead.enrol(e[:n]).arrays["timings"].shape == shape
    # then the typings after enrolment are closer to the template that moved ahead
    later = e[n + 20 :]
    assert (
        ahead.distances(ahead.enrol(e[:n]), later).mean()
        < as_typed.distances(as_typed.enrol(e[:n]), later).mean()
    )


def test_embeddings_are_the_learned_embedding_then_the_timings() -> None:
    p = keystroke.load()
    x = torch.from_numpy(timings(make_person(5), np.random.default_rng(0), 7).astype(np.float32))
    e = p.embed(x)
    assert e.shape == (7, p.encoder.dim + p.encoder.n_features)
    torch.testing.assert_close(e[:, p.encoder.dim :], x)


def _typists(n: int, reps: int = 120) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"s{k}": timings(make_person(40 + k), rng, reps) for k in range(n)}


def test_training_is_seeded_and_a_few_steps_lower_the_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    # given four simulated typists and a short schedule
    monkeypatch.setitem(trainer.HPARAMS, "steps", 30)
    data = _typists(4)
    # when the encoder is trained twice with the same seed
    losses: list[str] = []
    a = trainer.fit_encoder(data, seed=1, progress=losses.append)
    b = trainer.fit_encoder(data, seed=1)
    # then the weights are the same, and the loss after 30 steps is below the first step's
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k], atol=0, rtol=0)
    first, last = (float(m.split("loss ")[1]) for m in (losses[0], losses[-1]))
    assert losses[-1].startswith("step 30/30") and last < first


def test_the_template_rule_is_chosen_with_the_weights() -> None:
    # given out-of-fold scores under two template rules, the second separating the subjects
    rng = np.random.default_rng(0)

    def scores(gap: float) -> dict[str, trainer.SubjectScores]:
        return {
            s: trainer.SubjectScores(rng.normal(0, 1, (50, 4)), rng.normal(gap, 1, (20, 4)))
            for s in ("a", "b")
        }

    # when the rule and weights are selected
    chosen = trainer.select_weights({None: scores(0.0), 25: scores(4.0)})
    # then the rule that separates them is kept
    assert chosen.ahead == 25
