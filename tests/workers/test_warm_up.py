"""A pool's warm-up: inputs from the factor's synthetic module, found through the registry."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from core.factors import load_pipeline
from tests.fake_factors import install_swipe, plugins  # noqa: F401 - a fixture
from workers.embedding import warm_up


def test_the_model_runs_at_batch_one_and_full_before_the_first_job() -> None:
    # given a factor that ships a synthetic module
    pipeline = load_pipeline("keystroke")
    batches: list[int] = []
    # when its pool warms up with a maximum batch of 16
    warm_up(pipeline, lambda x: batches.append(len(np.asarray(x))), 16)
    # then the model ran once on one row and once on a full batch
    assert batches == [1, 16]


def test_a_factor_without_a_synthetic_module_starts_cold(plugins) -> None:  # type: ignore[no-untyped-def]
    # given a plug-in that ships no synthetic module
    install_swipe(plugins)
    batches: list[int] = []
    # when its pool warms up
    warm_up(SimpleNamespace(factor="swipe"), batches.append, 16)  # type: ignore[arg-type]
    # then nothing runs and the pool starts
    assert batches == []
