"""The pipeline contract is typed by each factor's decoded samples: mypy refuses a mix-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

pytestmark = pytest.mark.slow  # mypy reads torch's stubs: quick with the check's warm cache

MIXED_UP = """
from pipelines.base import FactorPipeline
from pipelines.gait.pipeline import GaitPipeline
from pipelines.keystroke.pipeline import KeystrokePipeline


def mixed_up(gait: GaitPipeline, keystroke: KeystrokePipeline) -> None:
    gait.preprocess(keystroke.decode(b""))
    keystroke.preprocess(gait.decode(b""))
    plugin: FactorPipeline[list[int]] = gait
"""


def test_mypy_checks_what_each_pipeline_decodes(tmp_path: Path) -> None:
    # given code that hands one factor's decoded samples to another factor's preprocess
    source = tmp_path / "mixed_up.py"
    source.write_text(MIXED_UP)
    # when mypy checks it
    out, _, status = api.run([str(source)])  # the project's own .mypy_cache
    # then each mix-up is an error naming the decoded types
    assert status == 1
    assert 'incompatible type "list[Typing]"; expected "GaitRecording"' in out
    assert 'incompatible type "GaitRecording"; expected "list[Typing]"' in out
    assert 'variable has type "FactorPipeline[list[int]]"' in out
