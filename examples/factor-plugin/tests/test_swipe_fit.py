"""`python -m tacit_swipe.fit` rebuilds weights that load and separate people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import tacit_swipe
from tacit_swipe import fit, synthetic


def test_fitting_writes_weights_that_load_and_separate_people(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a smaller run than the committed one
    monkeypatch.setitem(fit.HPARAMS, "people", 64)
    monkeypatch.setitem(fit.HPARAMS, "steps", 60)
    # when the weights are rebuilt into a folder
    assert fit.main(["--out", str(tmp_path)]) == 0
    # then they load, and the owner scores above someone else
    pipeline = tacit_swipe.load(weights_dir=tmp_path)
    assert pipeline.model_version == fit.MODEL_VERSION
    rng = np.random.default_rng(0)

    def embed(person: int, n: int) -> np.ndarray:
        frame = synthetic.capture(synthetic.make_person(person), rng, n)
        x = torch.from_numpy(pipeline.preprocess(pipeline.decode(frame)))
        return pipeline.embed(x).numpy()

    template = pipeline.enrol(embed(7, 20))
    assert (
        pipeline.verify(template, embed(7, 4)).score > pipeline.verify(template, embed(8, 4)).score
    )
