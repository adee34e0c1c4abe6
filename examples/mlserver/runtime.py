"""An MLServer runtime serving a model exported by `tacit export FACTOR --onnx FILE`.

MLServer speaks the same Open Inference Protocol v2 as Triton (REST and gRPC), so a pool
with ``TACIT_POOL__BACKEND=oip`` and ``TACIT_POOL__OIP_URL=http://host:8080`` scores
through it unchanged. README.md says how to run it and what differs from Triton.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, Parameters
from mlserver.utils import get_model_uri


class TacitEmbedding(MLModel):
    async def load(self) -> bool:
        self._session = ort.InferenceSession(
            await get_model_uri(self._settings), providers=["CPUExecutionProvider"]
        )
        return True

    async def metadata(self) -> MetadataModelResponse:
        meta = await super().metadata()
        # the pool checks this before it takes a job (workers/oip.py)
        extra = (self._settings.parameters.extra or {}) if self._settings.parameters else {}
        meta.parameters = Parameters(tacit_model_version=extra.get("tacit_model_version"))
        return meta

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        y = self._session.run(["EMBEDDING"], {"INPUT": x})[0].astype(np.float32)
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("EMBEDDING", y)]
        )
