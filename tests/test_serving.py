"""REST and gRPC client helpers against loopback servers that speak TF Serving's
protocols and run the exported SavedModel (there is no TF Serving binary here)."""
import http.server
import json
import re
import socket
import struct
import sys
import threading
import time
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


# ------------------------------------------------------------------ hostile servers
def _reply_json(handler, payload, status=200):
    data = json.dumps(payload).encode()  # json writes NaN/Infinity as TF Serving can
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class _HostileHandler(http.server.BaseHTTPRequestHandler):
    """Misbehaves as the model name in the URL says (POST /v1/models/<how>:predict)."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        try:
            self._misbehave()
        except OSError:  # the client gave up (deadline) and closed the connection
            self.close_connection = True

    def _misbehave(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        how = re.fullmatch(r"/v1/models/([^/:]+).*", self.path).group(1)
        three = [[0.1, 0.2, 0.3, 0.4]] * 3
        if how == "trickle":  # a valid reply, one byte every 0.5 s (50 s in all)
            data = json.dumps({"outputs": three}).encode().ljust(100)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.5)
        elif how == "slow_headers":  # the status line itself trickles
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.5)
        elif how == "not_json":
            self.send_response(200)
            self.send_header("Content-Length", "17")
            self.end_headers()
            self.wfile.write(b"<html>oops</html>")
        elif how == "hang_up":  # RemoteDisconnected in http.client
            self.close_connection = True
        elif how == "reset":  # ConnectionResetError
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
        elif how == "truncated":  # IncompleteRead
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"outputs": [[0.1')
            self.close_connection = True
        elif how == "html_500":
            self.send_response(500)
            self.send_header("Content-Length", "21")
            self.end_headers()
            self.wfile.write(b"<h1>Internal err</h1>")
        elif how == "rows":
            _reply_json(self, {"outputs": three[:1]})
        elif how == "nan":
            _reply_json(self, {"outputs": [[0.1, float("nan"), 0.3, 0.4]] * 3})
        elif how == "inf":
            _reply_json(self, {"outputs": {"embedding": three,
                                           "conv1": [[[float("inf")]]] * 3,
                                           "conv1_lengths": [1, 1, 1]}})
        elif how == "flat":
            _reply_json(self, {"outputs": [0.1, 0.2, 0.3]})
        elif how == "ragged":
            _reply_json(self, {"outputs": [[0.1, 0.2], [0.3], [0.4, 0.5]]})
        elif how == "lengths":
            _reply_json(self, {"outputs": {"conv1": [[[0.0]] * 2] * 3,
                                           "conv1_lengths": [1, 2, 5]}})
        elif how == "no_outputs":
            _reply_json(self, {"predictions": three})
        else:
            _reply_json(self, {"outputs": three})

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def hostile_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("how", ["trickle", "slow_headers"])
def test_embed_rest_timeout_bounds_the_whole_call(hostile_server, how):
    started = time.monotonic()
    with pytest.raises(serving.ServingError, match=r"no complete reply within the 3 s "
                                                   r"deadline") as error:
        serving.embed_rest(hostile_server, how, _clips(), timeout=3)
    assert error.value.code == "DEADLINE_EXCEEDED"
    assert time.monotonic() - started < 4.5


@pytest.mark.parametrize("how,message", [
    ("not_json", r"the reply is not JSON: '<html>oops</html>'"),
    ("hang_up", r"connection failed: RemoteDisconnected"),
    ("reset", r"connection failed: (ConnectionResetError|RemoteDisconnected)"),
    ("truncated", r"connection failed: IncompleteRead"),
    ("html_500", r"HTTP 500: <h1>Internal err</h1>"),
    ("no_outputs", r"the reply has no 'outputs'"),
    ("rows", r"output 'embedding' has shape \(1, 4\), not 3 row\(s\), one per waveform"),
    ("nan", r"output 'embedding' holds 3 NaN or Inf value\(s\)"),
    ("inf", r"output 'conv1' holds 3 NaN or Inf value\(s\)"),
    ("flat", r"output 'embedding' has shape \(3,\), expected \[3, D\]"),
    ("ragged", r"output 'embedding' is not a numeric array"),
    ("lengths", r"output 'conv1_lengths' reaches 5, beyond the 2 frames of 'conv1'"),
])
def test_embed_rest_refuses_every_bad_reply_with_a_serving_error(hostile_server, how,
                                                                 message):
    with pytest.raises(serving.ServingError, match=message) as error:
        serving.embed_rest(hostile_server, how, _clips(), timeout=10)
    assert f"/v1/models/{how}:predict" in str(error.value)


def test_embed_rest_checks_the_embedding_dimension_and_its_arguments(hostile_server):
    good = serving.embed_rest(hostile_server, "good", _clips(), embedding_dim=4)
    assert good["embedding"].shape == (3, 4)
    with pytest.raises(serving.ServingError, match="dimension 4, expected 12"):
        serving.embed_rest(hostile_server, "good", _clips(), embedding_dim=12)
    for timeout in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="timeout must be"):
            serving.embed_rest(hostile_server, "good", _clips(), timeout=timeout)
    with pytest.raises(ValueError, match="server_url must be http"):
        serving.embed_rest("localhost:8501", "good", _clips())


class _HostilePredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):  # noqa: N802 (the gRPC method name)
        how = request.model_spec.name
        rows = request.inputs["waveform"].tensor_shape.dim[0].size
        embedding = np.full((rows, 4), 0.5, np.float32)
        if how == "sleep":
            time.sleep(4)
        elif how == "rows":
            embedding = embedding[:1]
        elif how == "nan":
            embedding[1, 2] = np.nan
        elif how == "rank":
            embedding = embedding[:, 0]
        response = predict_pb2.PredictResponse()
        response.outputs["embedding"].CopyFrom(tf.make_tensor_proto(embedding))
        return response


@pytest.fixture(scope="module")
def hostile_grpc():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _HostilePredictionService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None).wait(timeout=10)


@pytest.mark.parametrize("how,message", [
    ("sleep", "DEADLINE_EXCEEDED"),
    ("rows", r"output 'embedding' has shape \(1, 4\), not 3 row\(s\)"),
    ("nan", r"output 'embedding' holds 1 NaN or Inf value\(s\)"),
    ("rank", r"output 'embedding' has shape \(3,\), expected \[3, D\]"),
])
def test_embed_grpc_refuses_late_and_bad_replies(hostile_grpc, how, message):
    started = time.monotonic()
    with pytest.raises(serving.ServingError, match=message):
        serving.embed_grpc(hostile_grpc, how, _clips(), timeout=1.5)
    assert time.monotonic() - started < 3.5
    assert serving.embed_grpc(hostile_grpc, "good", _clips(),
                              embedding_dim=4)["embedding"].shape == (3, 4)


def test_embed_grpc_without_the_serving_extra_says_how_to_install_it(monkeypatch):
    from tfspk import extras
    monkeypatch.setitem(sys.modules, "grpc", None)  # `import grpc` now fails
    with pytest.raises(extras.MissingExtraError,
                       match=r"the gRPC client .*needs the optional package grpcio, which "
                             r"is not installed: pip install 'tfspk\[serving\]'") as error:
        serving.embed_grpc("127.0.0.1:1", MODEL_NAME, _clips())
    assert isinstance(error.value, ImportError) and error.value.extra == "serving"
