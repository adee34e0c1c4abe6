"""`tacit export`: the ONNX file computes what the torch pipeline computes."""

from __future__ import annotations

import numpy as np
import pytest

from core import factors as registry

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("factor", registry.names())
def test_onnx_export_matches_the_pipeline(tmp_path, factor):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from core.factors import load_pipeline
    from pipelines.export import embed_reference, example_input, export_onnx

    # given a factor's pipeline exported to one ONNX file
    pipeline = load_pipeline(factor)
    path = export_onnx(pipeline, tmp_path / f"{factor}.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # when ONNX Runtime embeds batches of a size other than the export example's
    x = example_input(pipeline, rows=24)
    got = session.run(["EMBEDDING"], {"INPUT": x})[0]
    want = embed_reference(pipeline, x)
    # then embeddings agree within 1e-5 and the calibrated scores within 1e-6
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= 1e-5
    template = pipeline.enrol(
        np.concatenate([want] * (pipeline.min_enrol_samples // len(want) + 1))
    )
    a, b = pipeline.verify(template, want[:4]), pipeline.verify(template, got[:4])
    assert abs(a.score - b.score) <= 1e-6


def test_triton_repository_layout(tmp_path):  # type: ignore[no-untyped-def]
    from core.factors import load_pipeline
    from pipelines.export import TritonModel, write_triton_repo

    pipeline = load_pipeline("keystroke")
    folder = write_triton_repo(
        pipeline, tmp_path, TritonModel(kind="KIND_CPU", max_batch_size=32, max_queue_delay_us=500)
    )
    config = (folder / "config.pbtxt").read_text()
    assert (folder / "1" / "model.onnx").stat().st_size > 0
    assert not (folder / "1" / "model.py").exists()  # the onnxruntime backend needs no python model
    for line in (
        'backend: "onnxruntime"',
        "max_batch_size: 32",
        "max_queue_delay_microseconds: 500",
        "kind: KIND_CPU",
        f'string_value: "{pipeline.model_version}"',
        "dims: [ 31 ]",
    ):
        assert line in config
