"""Triton python-backend model: runs the exported ONNX file with ONNX Runtime on the CPU.

Copied into a Triton model repository as ``<factor>/1/model.py`` by
``tacit export FACTOR --triton-repo DIR --backend python``, for Triton builds that carry
no onnxruntime backend (CPU-only test servers). Requests Triton batched together are run
as one ONNX Runtime call and split back per request.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils  # provided by Triton's python backend


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        here = os.path.join(args["model_repository"], args["model_version"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("TACIT_ORT_THREADS", "1"))
        self.session = ort.InferenceSession(
            os.path.join(here, "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def execute(self, requests: list) -> list:
        inputs = [
            pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy().astype(np.float32)
            for r in requests
        ]
        out = self.session.run(["EMBEDDING"], {"INPUT": np.concatenate(inputs)})[0].astype(
            np.float32
        )
        responses, start = [], 0
        for x in inputs:
            responses.append(
                pb_utils.InferenceResponse(
                    [pb_utils.Tensor("EMBEDDING", out[start : start + len(x)])]
                )
            )
            start += len(x)
        return responses
