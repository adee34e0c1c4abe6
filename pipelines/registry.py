"""Find a factor's pipeline by name; the weights committed in the repo load by default."""

from __future__ import annotations

import importlib

from pipelines.base import FACTORS, FactorPipeline


def load_pipeline(factor: str, device: str = "cpu") -> FactorPipeline:
    """Load the factor's pipeline with its committed weights on `device` (``cpu`` or ``cuda:N``)."""
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}; expected one of {', '.join(FACTORS)}")
    module = importlib.import_module(f"pipelines.{factor}")
    pipeline: FactorPipeline = module.load(device=device)
    return pipeline
