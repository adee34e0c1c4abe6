"""Face: plaintext frames, PGM reading, the ORL protocol, the baseline and the committed model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import pipelines.face as face
from pipelines import codec
from pipelines.base import FactorPipeline, SampleError
from pipelines.evaluation.harness import run_protocol
from pipelines.face.baseline import Eigenfaces
from pipelines.face.dataset import load_protocol, read_pgm
from pipelines.face.frames import INPUT_HW, decode_frames, encode_frames, normalise
from pipelines.face.synthetic import capture, make_person
from tests.pipelines.simulated import genuine_and_impostor


def test_pgm_with_a_comment_is_read(tmp_path: Path) -> None:
    image = np.arange(12 * 7, dtype=np.uint8).reshape(12, 7)
    (tmp_path / "x.pgm").write_bytes(b"P5\n# a comment\n7 12\n255\n" + image.tobytes())
    np.testing.assert_array_equal(read_pgm(tmp_path / "x.pgm"), image)


def test_protocol_counts_on_a_tiny_orl_tree(orl_dir: Path) -> None:
    # given an ORL-style tree of 3 subjects with 10 images each
    subjects = load_protocol(orl_dir)
    # when the harness runs the protocol
    comps = run_protocol(subjects, Eigenfaces())
    # then subjects come in numeric order, 5 enrolment images, 5 genuine and 2 x 5 impostor probes each
    assert [s.subject for s in subjects] == ["s1", "s2", "s10"]
    assert all(s.enrol.shape == (5, 1, *INPUT_HW) for s in subjects)
    assert sum(c.genuine for c in comps) == 3 * 5
    assert sum(not c.genuine for c in comps) == 3 * 2 * 5
    assert {c.probe for c in comps if c.claimed == "s1" and not c.genuine} == {
        f"{s}/{k}" for s in ("s2", "s10") for k in range(6, 11)
    }


def test_missing_or_empty_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_protocol(tmp_path)
    (tmp_path / "s1").mkdir()
    with pytest.raises(ValueError, match="lacks"):
        load_protocol(tmp_path)


@pytest.mark.parametrize("shape", [(2, 112, 92), (2, 240, 180, 3), (1, 64, 128)])
def test_grayscale_and_rgb_frames_of_any_size_become_model_inputs(shape: tuple[int, ...]) -> None:
    frames = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    x = normalise(decode_frames(encode_frames(frames)))
    assert x.shape == (shape[0], 1, *INPUT_HW) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (np.zeros((1, 20, 20), np.float32), "face_bad_dtype"),
        (np.zeros((1, 20, 20, 4), np.uint8), "face_bad_shape"),
        (np.zeros((0, 20, 20), np.uint8), "face_empty"),
        (np.zeros((1, 8, 20), np.uint8), "face_bad_size"),
    ],
)
def test_unusable_frames_raise_sample_errors_with_codes(frames: np.ndarray, code: str) -> None:
    with pytest.raises(SampleError) as e:
        decode_frames(codec.encode("face", {"frames": frames}))
    assert e.value.code == code


def test_committed_model_scores_simulated_genuine_faces_above_impostors() -> None:
    # given the committed pipeline and five simulated people enrolled with two captures of 3 frames
    p = face.load()
    assert isinstance(p, FactorPipeline)
    rng = np.random.default_rng(3)
    people = [make_person(200 + k) for k in range(5)]
    # when each verifies a genuine capture and another person's capture
    templates, genuine, impostor = genuine_and_impostor(
        p, people, capture, rng, enrol=(2, 3), probe=2
    )
    # then genuine captures are closer and score higher
    assert max(v.distance for v in genuine) < min(v.distance for v in impostor)
    assert np.mean([v.score for v in genuine]) > np.mean([v.score for v in impostor])
    back = codec.decode(codec.encode("face", templates[0].arrays)).arrays
    assert back.keys() == {"cnn", "lbp"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_embeddings_match_cpu() -> None:
    x = torch.from_numpy(
        normalise(decode_frames(capture(make_person(1), np.random.default_rng(0), 4)))
    )
    cpu = face.load("cpu").embed(x)
    gpu = face.load("cuda:0").embed(x.to("cuda:0")).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)
