"""The swipe pipeline as a pure unit: frames in, coded errors or calibrated scores out."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from pipelines.base import FactorPipeline, SampleError
from pipelines.codec import PlaintextError, encode

import tacit_swipe
from tacit_swipe import synthetic
from tacit_swipe.gestures import SwipeLimits, decode_swipes, encode_swipes


@pytest.fixture(scope="module")
def pipeline():  # type: ignore[no-untyped-def]
    return tacit_swipe.load()


def embed(pipeline, frame: bytes) -> np.ndarray:  # type: ignore[no-untyped-def]
    x = pipeline.preprocess(pipeline.decode(frame))
    return pipeline.embed(torch.from_numpy(x)).numpy()


def test_the_pipeline_honours_the_contract(pipeline) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(pipeline, FactorPipeline)
    assert pipeline.factor == "swipe" and pipeline.model_version == "swipe-mlp-1"


def test_a_frame_decodes_to_screen_relative_positions_and_seconds() -> None:
    # given two swipes recorded on a 1000 x 2000 px screen
    points = synthetic.points(synthetic.make_person(1), np.random.default_rng(0), 2)
    # when the frame is decoded
    swipes = decode_swipes(encode_swipes(points, (1000.0, 2000.0)))
    # then positions are fractions of the screen and times start at zero, in seconds
    assert swipes.xy.shape == (2, synthetic.POINTS, 2)
    np.testing.assert_allclose(swipes.xy[0, 0], points[0, 0, :2] / [1000.0, 2000.0], rtol=1e-6)
    assert swipes.t[0, 0] == 0.0
    np.testing.assert_allclose(swipes.t[0, -1], points[0, -1, 2] / 1000.0, rtol=1e-6)


@pytest.mark.parametrize(
    ("arrays", "code"),
    [
        ({"points": np.zeros((2, 16, 2), "<f4"), "screen": np.ones(2, "<f4")}, "swipe_bad_points"),
        ({"points": np.zeros((2, 4, 3), "<f4"), "screen": np.ones(2, "<f4")}, "swipe_bad_points"),
        (
            {"points": np.zeros((300, 8, 3), "<f4"), "screen": np.ones(2, "<f4")},
            "swipe_too_many_swipes",
        ),
        ({"points": np.zeros((2, 8, 3), "<f4"), "screen": np.zeros(2, "<f4")}, "swipe_bad_screen"),
        ({"points": np.zeros((2, 8, 3), "<f4"), "screen": np.ones(2, "<f4")}, "swipe_bad_points"),
        ({"screen": np.ones(2, "<f4")}, "plaintext_missing_array"),
    ],
)
def test_a_malformed_frame_is_refused_with_a_code(arrays, code, pipeline) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((SampleError, PlaintextError)) as e:
        pipeline.decode(encode("swipe", arrays))
    assert e.value.code == code


def test_another_factors_frame_or_schema_is_refused(pipeline) -> None:  # type: ignore[no-untyped-def]
    arrays = {"points": np.zeros((1, 8, 3), "<f4"), "screen": np.ones(2, "<f4")}
    with pytest.raises(PlaintextError) as e:
        pipeline.decode(encode("keystroke", arrays))
    assert e.value.code == "plaintext_wrong_factor"
    with pytest.raises(PlaintextError) as e:
        pipeline.decode(encode("swipe", arrays, schema=2))
    assert e.value.code == "plaintext_bad_schema"


def test_the_limits_are_read_from_the_headers_before_the_data() -> None:
    # given a limit of 4 swipes
    limits = SwipeLimits(max_swipes=4)
    frame = synthetic.capture(synthetic.make_person(2), np.random.default_rng(0), 5)
    # then a batch of 5 is refused by its header
    with pytest.raises(SampleError) as e:
        decode_swipes(frame, limits)
    assert e.value.code == "swipe_too_many_swipes"
    assert dataclasses.replace(limits, max_swipes=5).max_swipes == 5


def test_genuine_swipes_score_above_another_persons(pipeline) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    genuine, impostor = [], []
    for k in range(10):
        owner, other = synthetic.make_person(10 + k), synthetic.make_person(50 + k)
        # given an enrolled owner
        template = pipeline.enrol(embed(pipeline, synthetic.capture(owner, rng, 20)))
        # when the owner and someone else each send a job of 4 swipes
        genuine.append(pipeline.verify(template, embed(pipeline, synthetic.capture(owner, rng, 4))))
        impostor.append(
            pipeline.verify(template, embed(pipeline, synthetic.capture(other, rng, 4)))
        )
    # then the owner is recognised and the other person is not
    assert min(v.score for v in genuine) > 0.9
    assert max(v.score for v in impostor) < 0.5
    assert all(v.llr > 0 for v in genuine) and all(v.llr < 0 for v in impostor)
    assert all(len(v.per_sample) == 4 for v in genuine)


def test_enrolment_needs_enough_swipes_and_a_matching_template(pipeline) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    e = embed(pipeline, synthetic.capture(synthetic.make_person(1), rng, 12))
    with pytest.raises(SampleError) as err:
        pipeline.enrol(e[:5])
    assert err.value.code == "enrolment_too_small"
    template = dataclasses.replace(pipeline.enrol(e), model_version="swipe-mlp-0")
    with pytest.raises(SampleError) as err:
        pipeline.verify(template, e[:2])
    assert err.value.code == "template_model_mismatch"
