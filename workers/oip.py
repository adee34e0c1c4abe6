"""A factor's model served outside the worker, over the Open Inference Protocol (v2).

The protocol Triton, KServe, MLServer and TorchServe share: the worker still decodes and
preprocesses, still groups jobs with its dynamic batcher, and sends ONE inference request
per batch; the server returns the embeddings and the worker runs enrol/verify on them.

- ``http://host:port``: REST. Tensors travel with the binary tensor extension when the
  server lists it among its extensions (``GET /v2``: Triton), as JSON otherwise
  (MLServer, KServe's Python server).
- ``grpc://host:port``: gRPC through ``tritonclient`` (Triton's own client).

The exported model has one input ``INPUT`` (FP32, ``[-1, ...]``) and one output
``EMBEDDING`` (FP32, ``[-1, D]``), and carries the pipeline's ``model_version`` as the
model parameter ``tacit_model_version`` (``tacit export --triton-repo`` writes it), so a
pool refuses to start against a server holding another model.

A server that is down, slow past the timeout or answering 5xx is a transient error: the
job is retried, never failed and never scored twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np

from core.errors import TransientJobError

INPUT = "INPUT"
OUTPUT = "EMBEDDING"
VERSION_PARAMETER = "tacit_model_version"
_HEADER_LENGTH = "Inference-Header-Content-Length"


class InferenceServerUnavailable(TransientJobError):
    """The inference server did not answer in time, or answered with a server error (retried)."""

    code = "model_server_unavailable"


class ModelMismatch(RuntimeError):
    """The server holds no model, or another model version than the pipeline's: refuse to start."""


@dataclass(frozen=True)
class ServerModel:
    """What the server says about the model: readiness, version parameter, tensor names."""

    ready: bool
    model_version: str | None
    inputs: list[str]
    outputs: list[str]


class InferenceClient(Protocol):
    url: str
    model: str

    def describe(self) -> ServerModel: ...

    def infer(self, x: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


def connect(
    url: str, model: str, *, timeout_s: float = 10.0, binary: bool = True
) -> InferenceClient:
    """A client for ``url`` (``http://``, ``https://`` or ``grpc://``) and ``model``."""
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        return HttpClient(url, model, timeout_s=timeout_s, binary=binary)
    if scheme == "grpc":
        return GrpcClient(url, model, timeout_s=timeout_s)
    raise ValueError(
        f"inference server URL must start with http://, https:// or grpc://, got {url!r}"
    )


def check_model(client: InferenceClient, *, model_version: str) -> ServerModel:
    """Refuse (ModelMismatch) unless the server's model is ready and is the pipeline's version."""
    try:
        info = client.describe()
    except InferenceServerUnavailable as e:
        raise ModelMismatch(f"inference server {client.url} is unreachable: {e}") from None
    where = f"model {client.model!r} on {client.url}"
    if not info.ready:
        raise ModelMismatch(f"{where} is not ready")
    if info.model_version is None:
        raise ModelMismatch(
            f"{where} does not declare the parameter {VERSION_PARAMETER!r}; "
            "export it with `tacit export FACTOR --triton-repo DIR`"
        )
    if info.model_version != model_version:
        raise ModelMismatch(
            f"{where} is version {info.model_version}, this pool's pipeline is {model_version}; "
            "re-export the model or deploy the matching worker image"
        )
    if INPUT not in info.inputs or OUTPUT not in info.outputs:
        raise ModelMismatch(
            f"{where} must have input {INPUT!r} and output {OUTPUT!r}, "
            f"has {info.inputs} -> {info.outputs}"
        )
    return info


def _as_input(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


class HttpClient:
    """OIP v2 over REST, with Triton's binary tensor extension when ``binary``."""

    def __init__(self, url: str, model: str, *, timeout_s: float, binary: bool = True) -> None:
        import httpx

        self.url, self.model, self.binary = url.rstrip("/"), model, binary
        # httpx applies the timeout to connecting and to each read and write (gRPC's is one
        # deadline for the whole call); the server is the operator's own, not a client's.
        self._timeout_s = timeout_s
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout_s))
        self._httpx = httpx

    def _call(self, method: str, path: str, **kw: Any):  # type: ignore[no-untyped-def]
        try:
            r = self._http.request(method, path, **kw)
        except self._httpx.HTTPError as e:
            raise InferenceServerUnavailable(
                f"{e.__class__.__name__} calling {self.url}{path}"
            ) from None
        if r.status_code >= 500:
            raise InferenceServerUnavailable(f"{self.url}{path} answered {r.status_code}")
        return r

    def describe(self) -> ServerModel:
        base = f"/v2/models/{self.model}"
        server = self._call("GET", "/v2")
        if server.status_code == 200 and "binary_tensor_data" not in (
            server.json().get("extensions") or []
        ):
            self.binary = False  # MLServer, KServe's Python server: JSON tensors only
        ready = self._call("GET", base + "/ready").status_code == 200
        meta = self._call("GET", base)
        if meta.status_code != 200:
            return ServerModel(False, None, [], [])
        body = meta.json()
        params = dict(body.get("parameters") or {})
        # Triton keeps model parameters in its configuration, not in the metadata
        config = self._call("GET", base + "/config")
        if config.status_code == 200:
            params.update(config.json().get("parameters") or {})
        version = params.get(VERSION_PARAMETER)
        if isinstance(version, dict):  # Triton: {"string_value": "..."}
            version = version.get("string_value")
        return ServerModel(
            ready,
            None if version is None else str(version),
            [t["name"] for t in body.get("inputs", [])],
            [t["name"] for t in body.get("outputs", [])],
        )

    def infer(self, x: np.ndarray) -> np.ndarray:
        x = _as_input(x)
        tensor: dict[str, Any] = {"name": INPUT, "shape": list(x.shape), "datatype": "FP32"}
        output: dict[str, Any] = {"name": OUTPUT}
        path = f"/v2/models/{self.model}/infer"
        if self.binary:
            tensor["parameters"] = {"binary_data_size": x.nbytes}
            output["parameters"] = {"binary_data": True}
            header = json.dumps({"inputs": [tensor], "outputs": [output]}).encode()
            r = self._call(
                "POST",
                path,
                content=header + x.tobytes(),
                headers={
                    _HEADER_LENGTH: str(len(header)),
                    "Content-Type": "application/octet-stream",
                },
            )
        else:
            tensor["data"] = x.reshape(-1).tolist()
            r = self._call("POST", path, json={"inputs": [tensor], "outputs": [output]})
        if r.status_code != 200:
            raise InferenceServerUnavailable(
                f"{self.url}{path} answered {r.status_code}: {r.text[:200]}"
            )
        return _decode_reply(r.content, r.headers.get(_HEADER_LENGTH))

    def close(self) -> None:
        self._http.close()


def _decode_reply(content: bytes, header_length: str | None) -> np.ndarray:
    n = int(header_length) if header_length else len(content)
    body = json.loads(content[:n])
    out = next((o for o in body.get("outputs", []) if o.get("name") == OUTPUT), None)
    if out is None:
        raise InferenceServerUnavailable(f"reply has no {OUTPUT} output")
    shape = [int(d) for d in out["shape"]]
    if "data" in out:
        return np.asarray(out["data"], dtype=np.float32).reshape(shape)
    size = int(out.get("parameters", {}).get("binary_data_size", 0))
    return np.frombuffer(content[n : n + size], dtype=np.float32).reshape(shape).copy()


class GrpcClient:
    """OIP v2 over gRPC, through ``tritonclient.grpc``."""

    def __init__(self, url: str, model: str, *, timeout_s: float) -> None:
        try:
            import tritonclient.grpc as grpcclient
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise ModelMismatch("grpc:// needs tritonclient: pip install 'tacit[oip]'") from None
        self.url, self.model, self._timeout_s = url, model, timeout_s
        self._g = grpcclient
        self._client = grpcclient.InferenceServerClient(urlsplit(url).netloc)

    def _guard(self, fn, *args: Any, **kw: Any):  # type: ignore[no-untyped-def]
        from tritonclient.utils import InferenceServerException

        try:
            return fn(*args, **kw)
        except InferenceServerException as e:
            raise InferenceServerUnavailable(f"{self.url}: {e.status() or 'error'}") from None

    def describe(self) -> ServerModel:
        ready = self._guard(self._client.is_model_ready, self.model, client_timeout=self._timeout_s)
        if not ready:
            return ServerModel(False, None, [], [])
        meta = self._guard(
            self._client.get_model_metadata,
            self.model,
            as_json=True,
            client_timeout=self._timeout_s,
        )
        try:  # ModelConfig is Triton's own RPC; other servers answer UNIMPLEMENTED
            config = self._guard(
                self._client.get_model_config,
                self.model,
                as_json=True,
                client_timeout=self._timeout_s,
            )
        except InferenceServerUnavailable:
            config = {}
        params = config.get("config", {}).get("parameters", {})
        version = params.get(VERSION_PARAMETER, {}).get("string_value")
        return ServerModel(
            True,
            version,
            [t["name"] for t in meta.get("inputs", [])],
            [t["name"] for t in meta.get("outputs", [])],
        )

    def infer(self, x: np.ndarray) -> np.ndarray:
        x = _as_input(x)
        inp = self._g.InferInput(INPUT, list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        out = self._g.InferRequestedOutput(OUTPUT)
        result = self._guard(
            self._client.infer, self.model, [inp], outputs=[out], client_timeout=self._timeout_s
        )
        return np.asarray(result.as_numpy(OUTPUT), dtype=np.float32)

    def close(self) -> None:
        self._client.close()
