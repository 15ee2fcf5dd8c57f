"""Client helpers for a tfspk model served by TF Serving (REST and gRPC).

    docker run -p 8500:8500 -p 8501:8501 \
        -v "$PWD/exports/spk:/models/spk" -e MODEL_NAME=spk tensorflow/serving
    embed_rest("http://localhost:8501", "spk", [wave1, wave2])
    embed_grpc("localhost:8500", "spk", [wave1, wave2])

Both pad a list of 1-D float32 waveforms (16 kHz, [-1, 1]) into one batch with lengths,
which is what the exported `serving_default` signature expects.
"""
from __future__ import annotations

import json
import urllib.request
from typing import Sequence

import numpy as np


def pad_batch(waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pads waveforms with zeros; returns ([B, max_len] float32, [B] int32 lengths)."""
    lengths = np.array([len(w) for w in waveforms], dtype=np.int32)
    batch = np.zeros((len(waveforms), int(lengths.max(initial=0))), dtype=np.float32)
    for row, waveform in enumerate(waveforms):
        batch[row, :len(waveform)] = np.asarray(waveform, dtype=np.float32)
    return batch, lengths


def embed_rest(server_url: str, model_name: str, waveforms: Sequence[np.ndarray],
               signature_name: str = "serving_default", version: int | None = None,
               timeout: float = 60.0) -> dict[str, np.ndarray]:
    """POSTs to `/v1/models/<name>[/versions/<v>]:predict` (columnar `inputs` format)."""
    batch, lengths = pad_batch(waveforms)
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version else "") + ":predict"
    body = json.dumps({"signature_name": signature_name,
                       "inputs": {"waveform": batch.tolist(), "lengths": lengths.tolist()}})
    request = urllib.request.Request(server_url.rstrip("/") + path, data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{server_url}{path}: HTTP {error.code}: "
                           f"{error.read().decode(errors='replace')}") from error
    outputs = payload["outputs"]
    if not isinstance(outputs, dict):
        outputs = {"embedding": outputs}
    return {name: np.asarray(value) for name, value in outputs.items()}


def embed_grpc(target: str, model_name: str, waveforms: Sequence[np.ndarray],
               signature_name: str = "serving_default", version: int | None = None,
               timeout: float = 60.0) -> dict[str, np.ndarray]:
    """Calls PredictionService/Predict on `host:port` (needs tfspk[serving])."""
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
    with grpc.insecure_channel(target, options=[
            ("grpc.max_send_message_length", 256 << 20),
            ("grpc.max_receive_message_length", 256 << 20)]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
