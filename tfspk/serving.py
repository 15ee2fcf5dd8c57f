"""Client helpers for a tfspk model served by TF Serving (REST and gRPC).

Serve an export (`python -m tfspk.export --model_dir=RUN --export_dir=exports/spk`)
with the official image, then call it:

    docker run -p 8500:8500 -p 8501:8501 \
        -v "$PWD/exports/spk:/models/spk" -e MODEL_NAME=spk tensorflow/serving
    embed_rest("http://localhost:8501", "spk", [wave1, wave2])["embedding"]
    embed_grpc("localhost:8500", "spk", [wave1, wave2])["embedding"]

Both pad a list of 1-D float32 waveforms (at the model's sample rate, in [-1, 1]) into
one batch with lengths, which is what the exported signatures expect, and return the
signature's outputs as numpy arrays keyed by output name. A request the model rejects
(see the input table in `tfspk.export`) raises `ServingError` carrying the server's
message. The gRPC helper needs `grpcio` and `tensorflow-serving-api` (tfspk[serving]);
the REST helper needs only the standard library and numpy.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Sequence

import numpy as np

# The single output of `serving_default`; TF Serving's REST API drops the name when
# a signature has one output.
DEFAULT_OUTPUT = "embedding"
MAX_GRPC_MESSAGE_BYTES = 256 << 20


class ServingError(RuntimeError):
    """The server rejected a request; `code` is the HTTP status or gRPC status name."""

    def __init__(self, message: str, code=None):
        super().__init__(message)
        self.code = code


def pad_batch(waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pads waveforms with zeros; returns ([B, max_len] float32, [B] int32 lengths).

    An empty list gives a `[0, 0]` batch (the model answers `[0, D]`).
    """
    arrays = [np.asarray(w, dtype=np.float32) for w in waveforms]
    for index, array in enumerate(arrays):
        if array.ndim != 1:
            raise ValueError(f"waveform {index} must be 1-D (mono samples), "
                             f"got shape {array.shape}")
    lengths = np.array([len(a) for a in arrays], dtype=np.int32)
    batch = np.zeros((len(arrays), int(lengths.max(initial=0))), dtype=np.float32)
    for row, array in enumerate(arrays):
        batch[row, :len(array)] = array
    return batch, lengths


def _model_path(model_name: str, version: int | None) -> str:
    return f"/v1/models/{model_name}" + (f"/versions/{version}" if version else "")


def embed_rest(server_url: str, model_name: str, waveforms: Sequence[np.ndarray],
               signature_name: str = "serving_default", version: int | None = None,
               timeout: float = 60.0) -> dict[str, np.ndarray]:
    """POSTs to `<server_url>/v1/models/<name>[/versions/<v>]:predict` (columnar
    `inputs`) and returns `{output name: array}`."""
    batch, lengths = pad_batch(waveforms)
    url = server_url.rstrip("/") + _model_path(model_name, version) + ":predict"
    body = json.dumps({"signature_name": signature_name,
                       "inputs": {"waveform": batch.tolist(), "lengths": lengths.tolist()}})
    request = urllib.request.Request(url, data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            text = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            pass
        raise ServingError(f"{url}: HTTP {error.code}: {text}", code=error.code) from error
    except urllib.error.URLError as error:
        raise ServingError(f"{url}: cannot reach the server: {error.reason}") from error
    if "outputs" not in payload:
        raise ServingError(f"{url}: response has no 'outputs': {str(payload)[:200]}")
    outputs = payload["outputs"]
    if not isinstance(outputs, dict):
        outputs = {DEFAULT_OUTPUT: outputs}
    return {name: np.asarray(value, dtype=np.int32 if name.endswith("_lengths")
                             else np.float32)
            for name, value in outputs.items()}


def embed_grpc(target: str, model_name: str, waveforms: Sequence[np.ndarray],
               signature_name: str = "serving_default", version: int | None = None,
               timeout: float = 60.0) -> dict[str, np.ndarray]:
    """Calls `PredictionService/Predict` on `host:port`; returns `{output name: array}`."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    batch, lengths = pad_batch(waveforms)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version:
        request.model_spec.version.value = version
    request.inputs["waveform"].CopyFrom(tf.make_tensor_proto(batch))
    request.inputs["lengths"].CopyFrom(tf.make_tensor_proto(lengths))
    options = [("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
               ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ServingError(f"{target} {model_name}: {error.code().name}: "
                               f"{error.details()}", code=error.code().name) from error
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
