"""A factor's embedding model as a file other runtimes serve: ONNX, and a Triton model repository.

What is exported is exactly ``pipeline.embed``: model input rows ``[N, ...]`` (what
``preprocess`` returns) in, embeddings ``[N, D]`` out. Decoding, preprocessing and the
enrol/verify comparison stay in the worker, so a served model and the in-process one
produce the same scores. Tensor names are fixed (``INPUT``, ``EMBEDDING``) and the
pipeline's ``model_version`` travels as the model parameter ``tacit_model_version``,
which a pool checks at start-up (workers/oip.py).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core import factors as registry
from pipelines.base import FactorPipeline, embed_numpy

INPUT, OUTPUT, VERSION_PARAMETER = "INPUT", "EMBEDDING", "tacit_model_version"


class _Embedding(torch.nn.Module):
    def __init__(self, pipeline: FactorPipeline) -> None:
        super().__init__()
        self.pipeline = pipeline

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pipeline.embed(x)


def example_input(pipeline: FactorPipeline, rows: int = 4) -> np.ndarray:
    """Model input rows made from the factor's synthetic generator (``[rows, ...]``, float32)."""
    synth = registry.get(pipeline.factor).submodule("synthetic")
    x = pipeline.preprocess(
        pipeline.decode(synth.capture(synth.make_person(0), np.random.default_rng(0), 2))
    )
    return np.ascontiguousarray(np.concatenate([x] * (rows // len(x) + 1))[:rows], dtype=np.float32)


def embed_reference(pipeline: FactorPipeline, x: np.ndarray) -> np.ndarray:
    """The in-process embeddings of `x`: what a served model must reproduce."""
    return embed_numpy(pipeline, x)


def export_onnx(pipeline: FactorPipeline, path: Path, *, max_batch: int = 4096) -> Path:
    """Write ``pipeline.embed`` as one self-contained ONNX file with a dynamic batch axis.

    The dynamo exporter (``torch.export``) is used: the TorchScript tracer cannot capture
    models that run under ``inference_mode`` (the face model among them).
    """
    import logging
    import warnings

    x = torch.from_numpy(example_input(pipeline, rows=2))
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _Embedding(pipeline).eval(),
            (x,),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=max_batch)},),
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    program.save(str(path), external_data=False)
    return path


@dataclass(frozen=True)
class TritonModel:
    """How the model is served: Triton's backend, where instances run, how requests batch."""

    backend: str = (
        "onnxruntime"  # or "python": ONNX Runtime inside Triton's python backend (CPU test servers)
    )
    kind: str = "KIND_GPU"  # or KIND_CPU
    instances: int = 1
    max_batch_size: int = 64  # >= the pool's TACIT_POOL__MAX_BATCH: one worker batch is one request
    max_queue_delay_us: int = 2000


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(str(int(d)) for d in shape)


def triton_config(
    pipeline: FactorPipeline, model: TritonModel, *, input_shape: tuple[int, ...], output_dim: int
) -> str:
    """The model's ``config.pbtxt`` (shapes without the batch axis, which Triton adds)."""
    return f"""name: "{pipeline.factor}"
backend: "{model.backend}"
max_batch_size: {model.max_batch_size}
input [
  {{ name: "{INPUT}" data_type: TYPE_FP32 dims: [ {_dims(input_shape)} ] }}
]
output [
  {{ name: "{OUTPUT}" data_type: TYPE_FP32 dims: [ {output_dim} ] }}
]
dynamic_batching {{ max_queue_delay_microseconds: {model.max_queue_delay_us} }}
instance_group [ {{ count: {model.instances} kind: {model.kind} }} ]
parameters {{ key: "{VERSION_PARAMETER}" value: {{ string_value: "{pipeline.model_version}" }} }}
"""


_PYTHON_MODEL = Path(__file__).with_name("triton_python_model.py")


def write_triton_repo(
    pipeline: FactorPipeline, repo: Path, model: TritonModel = TritonModel()
) -> Path:
    """Write ``repo/<factor>/config.pbtxt`` and ``repo/<factor>/1/model.onnx`` (plus ``model.py``
    for the python backend); returns the model's folder. An existing folder is replaced."""
    if model.backend not in ("onnxruntime", "python"):
        raise ValueError("backend must be onnxruntime or python")
    if model.kind not in ("KIND_GPU", "KIND_CPU"):
        raise ValueError("kind must be KIND_GPU or KIND_CPU")
    folder = repo / pipeline.factor
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "1").mkdir(parents=True)
    export_onnx(pipeline, folder / "1" / "model.onnx")
    x = example_input(pipeline, rows=2)
    out = embed_reference(pipeline, x)
    (folder / "config.pbtxt").write_text(
        triton_config(pipeline, model, input_shape=tuple(x.shape[1:]), output_dim=int(out.shape[1]))
    )
    if model.backend == "python":
        shutil.copyfile(_PYTHON_MODEL, folder / "1" / "model.py")
    return folder
