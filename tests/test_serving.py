"""REST and gRPC client helpers against loopback servers that speak TF Serving's
protocols and run the exported SavedModel (there is no TF Serving binary here)."""
import http.server
import json
import re
import socket
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import export_fixtures as fx
from tfspk import export, serving

MODEL_NAME = "spk"
VERSION = 1
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    spec = fx.tiny_spec()
    _, classifier = fx.make_model_dir(str(root / "run"), spec, seed=1)
    path = export.export_saved_model(str(root / "run"), str(root / MODEL_NAME),
                                     version=VERSION, warmup=False)
    return {"spec": spec, "classifier": classifier,
            "loaded": tf.saved_model.load(path)}


def _predict(loaded, signature_name, inputs):
    """What TF Serving does with a request: run the signature on the named inputs."""
    if signature_name not in loaded.signatures:
        raise KeyError(f"Serving signature name: \"{signature_name}\" not found in "
                       "signature def")
    function = loaded.signatures[signature_name]
    specs = function.structured_input_signature[1]
    tensors = {name: tf.constant(np.asarray(value), specs[name].dtype)
               for name, value in inputs.items()}
    return {name: value.numpy() for name, value in function(**tensors).items()}


def _servable_error(model_name, version):
    if model_name != MODEL_NAME or version not in (None, VERSION):
        return f"Servable not found for request: Specific({model_name}, {version})"
    return None


class _RestHandler(http.server.BaseHTTPRequestHandler):
    """POST /v1/models/<name>[/versions/<v>]:predict, columnar `inputs` only."""

    loaded = None

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict", self.path)
        if match is None:
            return self._reply(404, {"error": f"Malformed request: POST {self.path}"})
        version = int(match.group(2)) if match.group(2) else None
        missing = _servable_error(match.group(1), version)
        if missing:
            return self._reply(404, {"error": missing})
        try:
            outputs = _predict(self.loaded, body.get("signature_name", "serving_default"),
                               body["inputs"])
        except (tf.errors.InvalidArgumentError, KeyError) as error:
            message = error.message if hasattr(error, "message") else str(error)
            return self._reply(400, {"error": message})
        # TF Serving drops the output name when a signature has a single output.
        if len(outputs) == 1:
            return self._reply(200, {"outputs": next(iter(outputs.values())).tolist()})
        return self._reply(200, {"outputs": {k: v.tolist() for k, v in outputs.items()}})

    def _reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def rest_server(model):
    handler = type("Handler", (_RestHandler,), {"loaded": model["loaded"]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, loaded):
        self.loaded = loaded

    def Predict(self, request, context):  # noqa: N802 (the gRPC method name)
        version = request.model_spec.version.value if request.model_spec.HasField(
            "version") else None
        missing = _servable_error(request.model_spec.name, version)
        if missing:
            context.abort(grpc.StatusCode.NOT_FOUND, missing)
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        try:
            outputs = _predict(self.loaded, request.model_spec.signature_name
                               or "serving_default", inputs)
        except (tf.errors.InvalidArgumentError, KeyError) as error:
            message = error.message if hasattr(error, "message") else str(error)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response


@pytest.fixture(scope="module")
def grpc_target(model):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _PredictionService(model["loaded"]), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None).wait(timeout=10)


def _clips():
    return [fx.speech_like(n, seed=i) for i, n in enumerate((9000, 16000, 4100))]


def test_pad_batch():
    batch, lengths = serving.pad_batch([np.ones(3), np.full(5, 0.5), np.zeros(0)])
    assert batch.dtype == np.float32 and lengths.dtype == np.int32
    np.testing.assert_array_equal(lengths, [3, 5, 0])
    np.testing.assert_array_equal(batch, [[1, 1, 1, 0, 0], [0.5] * 5, [0] * 5])
    empty, empty_lengths = serving.pad_batch([])
    assert empty.shape == (0, 0) and empty_lengths.shape == (0,)
    with pytest.raises(ValueError, match="waveform 1 must be 1-D"):
        serving.pad_batch([np.ones(3), np.ones((2, 3))])


@pytest.fixture(scope="module")
def reference(model):
    return fx.keras_embeddings(model["classifier"], model["spec"], _clips())


def test_embed_rest(rest_server, reference):
    outputs = serving.embed_rest(rest_server, MODEL_NAME, _clips())
    assert list(outputs) == ["embedding"] and outputs["embedding"].dtype == np.float32
    np.testing.assert_allclose(outputs["embedding"], reference, rtol=0, atol=TOLERANCE)
    versioned = serving.embed_rest(rest_server, MODEL_NAME, _clips()[:1], version=VERSION)
    np.testing.assert_allclose(versioned["embedding"], reference[:1], rtol=0, atol=TOLERANCE)


def test_embed_rest_frame_embeddings(rest_server):
    clips = _clips()
    outputs = serving.embed_rest(rest_server, MODEL_NAME, clips,
                                 signature_name="frame_embeddings")
    assert outputs["conv4"].shape[::2] == (3, 24)
    # MFCC frames: 1 + (n - 400) // 160 for each row.
    np.testing.assert_array_equal(outputs["mfcc_lengths"],
                                  [1 + (len(c) - 400) // 160 for c in clips])


def test_embed_rest_errors(rest_server):
    with pytest.raises(serving.ServingError,
                       match=r"(?s)HTTP 400: .*shorter than the model minimum") as error:
        serving.embed_rest(rest_server, MODEL_NAME, [np.zeros(16000), np.zeros(1000)])
    assert error.value.code == 400
    with pytest.raises(serving.ServingError, match=r"(?s)HTTP 400: .*NaN or Inf"):
        serving.embed_rest(rest_server, MODEL_NAME, [np.full(16000, np.inf)])
    with pytest.raises(serving.ServingError, match="HTTP 404: Servable not found"):
        serving.embed_rest(rest_server, MODEL_NAME, _clips(), version=VERSION + 1)


def test_embed_grpc(grpc_target, reference):
    outputs = serving.embed_grpc(grpc_target, MODEL_NAME, _clips())
    np.testing.assert_allclose(outputs["embedding"], reference, rtol=0, atol=TOLERANCE)
    frames = serving.embed_grpc(grpc_target, MODEL_NAME, _clips()[:1], version=VERSION,
                                signature_name="frame_embeddings")
    assert frames["conv1_lengths"].dtype == np.int32
    assert frames["conv1_lengths"].tolist() == [1 + (9000 - 400) // 160 - 4]


def test_embed_grpc_errors(grpc_target):
    with pytest.raises(serving.ServingError,
                       match="(?s)INVALID_ARGUMENT: .*shorter than one analysis window") as error:
        serving.embed_grpc(grpc_target, MODEL_NAME, [np.zeros(100)])
    assert error.value.code == "INVALID_ARGUMENT"
    with pytest.raises(serving.ServingError, match="NOT_FOUND"):
        serving.embed_grpc(grpc_target, "other", _clips())
    empty = serving.embed_grpc(grpc_target, MODEL_NAME, [])
    assert empty["embedding"].shape == (0, 12)


def test_embed_rest_unreachable_server():
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(serving.ServingError, match="cannot reach the server"):
        serving.embed_rest(f"http://127.0.0.1:{port}", MODEL_NAME, _clips(), timeout=5)
