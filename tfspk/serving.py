"""Client helpers for a tfspk model served by TF Serving (REST and gRPC).

Serve an export (`python -m tfspk.export --model_dir=RUN --export_dir=exports/spk`)
with the official image, then call it:

    docker run -p 8500:8500 -p 8501:8501 \
        -v "$PWD/exports/spk:/models/spk" -e MODEL_NAME=spk tensorflow/serving
    embed_rest("http://localhost:8501", "spk", [wave1, wave2])["embedding"]
    embed_grpc("localhost:8500", "spk", [wave1, wave2])["embedding"]

Both pad a list of 1-D float32 waveforms (at the model's sample rate, in [-1, 1]) into
one batch with lengths, which is what the exported signatures expect, and return the
signature's outputs as numpy arrays keyed by output name. Every failure of a call is a
`ServingError`: a request the model rejects (see the input table in `tfspk.export`)
carries the server's message; an unreachable server, a dropped connection, a call
past its `timeout` (which bounds the whole call, not each read) and a reply that
cannot be the answer (not JSON; the wrong number of rows or dimensions; NaN or Inf)
each say so, naming the output at fault. The gRPC helper needs `grpcio` and `tensorflow-serving-api` (tfspk[serving]);
the REST helper needs only the standard library and numpy.
"""
from __future__ import annotations

import http.client
import json
import math
import socket
import threading
import time
import urllib.parse
from typing import Optional, Sequence

import numpy as np

# The single output of `serving_default`; TF Serving's REST API drops the name when
# a signature has one output.
DEFAULT_OUTPUT = "embedding"
MAX_GRPC_MESSAGE_BYTES = 256 << 20
LENGTHS_SUFFIX = "_lengths"
# Largest error body quoted in a ServingError.
_QUOTE_CHARS = 300


class ServingError(RuntimeError):
    """A call that gave no usable answer: the server refused the request, could not be
    reached, missed the deadline or replied with something that is not a valid
    answer. `code` is the HTTP status or gRPC status name (or one of
    "DEADLINE_EXCEEDED", "UNAVAILABLE", "BAD_REPLY" for the client's own findings)."""

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


def check_outputs(outputs: dict, batch_size: int, source: str,
                  embedding_dim: Optional[int] = None) -> dict[str, np.ndarray]:
    """Refuses a reply that cannot be the answer to a batch of `batch_size` rows.

    Every output needs `batch_size` rows and finite values; `embedding` must be
    `[batch_size, D]` (with `D == embedding_dim` when given); `<name>_lengths` must be
    whole numbers in `[0, T]` where `<name>` is a `[batch_size, T, C]` output. Returns
    the outputs as arrays (float32; int32 for lengths). Raises ServingError naming
    `source` and the output.
    """
    checked = {}
    for name, value in outputs.items():
        integer = name.endswith(LENGTHS_SUFFIX)
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ServingError(f"{source}: output {name!r} is not a numeric array "
                               f"({error})", code="BAD_REPLY") from None
        if batch_size == 0 and array.shape == (0,) and name == DEFAULT_OUTPUT:
            # JSON writes an empty [0, D] batch as `[]`, which loses D.
            array = array.reshape((0, embedding_dim or 0))
        if array.ndim == 0 or array.shape[0] != batch_size:
            raise ServingError(f"{source}: output {name!r} has shape {array.shape}, not "
                               f"{batch_size} row(s), one per waveform sent",
                               code="BAD_REPLY")
        if not np.isfinite(array).all():
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise ServingError(f"{source}: output {name!r} holds {bad} NaN or Inf "
                               f"value(s)", code="BAD_REPLY")
        if integer and (array.ndim != 1 or (array != np.round(array)).any()
                        or (array < 0).any()):
            raise ServingError(f"{source}: output {name!r} must be {batch_size} "
                               f"non-negative whole numbers, got shape {array.shape}",
                               code="BAD_REPLY")
        checked[name] = array.astype(np.int32 if integer else np.float32)
    embedding = checked.get(DEFAULT_OUTPUT)
    if embedding is not None:
        if embedding.ndim != 2:
            raise ServingError(f"{source}: output {DEFAULT_OUTPUT!r} has shape "
                               f"{embedding.shape}, expected [{batch_size}, D]",
                               code="BAD_REPLY")
        if embedding_dim is not None and embedding.shape[1] != embedding_dim:
            raise ServingError(f"{source}: output {DEFAULT_OUTPUT!r} has dimension "
                               f"{embedding.shape[1]}, expected {embedding_dim}",
                               code="BAD_REPLY")
    for name, lengths in checked.items():
        frames = checked.get(name[:-len(LENGTHS_SUFFIX)]) if name.endswith(
            LENGTHS_SUFFIX) else None
        if frames is not None and frames.ndim == 3 and len(lengths) and \
                lengths.max() > frames.shape[1]:
            raise ServingError(f"{source}: output {name!r} reaches {int(lengths.max())}, "
                               f"beyond the {frames.shape[1]} frames of "
                               f"{name[:-len(LENGTHS_SUFFIX)]!r}", code="BAD_REPLY")
    return checked


def _check_timeout(timeout: float) -> float:
    timeout = float(timeout)
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout}")
    return timeout


def _post(url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    """POSTs `body`; returns (status, reply body), all within `timeout` seconds.

    A socket timeout bounds each read only, so a server that trickles bytes could hold
    the call forever; a timer therefore shuts the socket down at the deadline, which
    ends whatever read or write is blocked. Every failure is a ServingError.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"server_url must be http://HOST:PORT or https://HOST:PORT, "
                         f"got {url!r}")
    connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                        else http.client.HTTPConnection)
    deadline = time.monotonic() + timeout
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    expired = threading.Event()
    # http.client drops `connection.sock` once a reply that closes the connection has
    # begun, so the timer keeps its own reference.
    sockets = []

    def expire():
        expired.set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    stage = "cannot reach the server"
    try:
        connection.connect()
        sockets.append(connection.sock)
        if expired.is_set():
            raise TimeoutError
        stage = "connection failed"
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        chunks = []
        while True:
            sockets[0].settimeout(max(deadline - time.monotonic(), 1e-3))
            chunk = response.read1(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        if expired.is_set():  # the shutdown may read as an early end of the body
            raise TimeoutError
        if response.length:  # read1 ends quietly at EOF, short of Content-Length
            raise http.client.IncompleteRead(b"".join(chunks), response.length)
        return response.status, b"".join(chunks)
    except (OSError, http.client.HTTPException) as error:
        if expired.is_set() or isinstance(error, TimeoutError):
            raise ServingError(f"{url}: no complete reply within the {timeout:g} s "
                               "deadline", code="DEADLINE_EXCEEDED") from None
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise ServingError(f"{url}: {stage}: {detail}", code="UNAVAILABLE") from None
    finally:
        timer.cancel()
        connection.close()


def embed_rest(server_url: str, model_name: str, waveforms: Sequence[np.ndarray],
               signature_name: str = "serving_default", version: int | None = None,
               timeout: float = 60.0, embedding_dim: Optional[int] = None
               ) -> dict[str, np.ndarray]:
    """POSTs to `<server_url>/v1/models/<name>[/versions/<v>]:predict` (columnar
    `inputs`) and returns `{output name: array}`.

    `timeout` bounds the whole call (connect, send, every byte of the reply). The
    reply is checked by `check_outputs` (`embedding_dim`: the expected embedding
    size, when known). Every failure raises ServingError.
    """
    timeout = _check_timeout(timeout)
    batch, lengths = pad_batch(waveforms)
    url = server_url.rstrip("/") + _model_path(model_name, version) + ":predict"
    body = json.dumps({"signature_name": signature_name,
                       "inputs": {"waveform": batch.tolist(), "lengths": lengths.tolist()}})
    status, data = _post(url, body.encode(), timeout)
    text = data.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if status != 200:
        message = payload.get("error", text) if isinstance(payload, dict) else text
        raise ServingError(f"{url}: HTTP {status}: {str(message)[:_QUOTE_CHARS]}",
                           code=status)
    if payload is None:
        raise ServingError(f"{url}: the reply is not JSON: {text[:_QUOTE_CHARS]!r}",
                           code="BAD_REPLY")
    if not isinstance(payload, dict) or "outputs" not in payload:
        raise ServingError(f"{url}: the reply has no 'outputs': "
                           f"{str(payload)[:_QUOTE_CHARS]}", code="BAD_REPLY")
    outputs = payload["outputs"]
    if not isinstance(outputs, dict):
        outputs = {DEFAULT_OUTPUT: outputs}
    return check_outputs(outputs, len(batch), url, embedding_dim)


def embed_grpc(target: str, model_name: str, waveforms: Sequence[np.ndarray],
               signature_name: str = "serving_default", version: int | None = None,
               timeout: float = 60.0, embedding_dim: Optional[int] = None
               ) -> dict[str, np.ndarray]:
    """Calls `PredictionService/Predict` on `host:port`; returns `{output name: array}`.

    `timeout` is the call's gRPC deadline (the whole call); the reply is checked as
    `embed_rest`'s is. Needs tfspk[serving]; every failure raises ServingError.
    """
    from tfspk import extras

    timeout = _check_timeout(timeout)
    grpc = extras.require("grpc", "serving", "the gRPC client (tfspk.serving.embed_grpc)")
    apis = "tensorflow_serving.apis"
    predict_pb2 = extras.require(f"{apis}.predict_pb2", "serving",
                                 "the gRPC client (tfspk.serving.embed_grpc)")
    service = extras.require(f"{apis}.prediction_service_pb2_grpc", "serving",
                             "the gRPC client (tfspk.serving.embed_grpc)")
    import tensorflow as tf

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
    source = f"{target} {model_name}"
    with grpc.insecure_channel(target, options=options) as channel:
        stub = service.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ServingError(f"{source}: {error.code().name}: "
                               f"{error.details()}", code=error.code().name) from None
    outputs = {}
    for name, proto in response.outputs.items():
        try:
            outputs[name] = tf.make_ndarray(proto)
        except (TypeError, ValueError) as error:
            raise ServingError(f"{source}: output {name!r} is not a readable tensor "
                               f"({error})", code="BAD_REPLY") from None
    return check_outputs(outputs, len(batch), source, embedding_dim)
