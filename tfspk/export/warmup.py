"""`assets.extra/tf_serving_warmup_requests`: PredictionLogs TF Serving replays at load.

Writing them needs the `tensorflow_serving.apis` protos (`pip install tfspk[serving]`);
without them `write_warmup_requests` raises `ServingApiMissingError` and
`export_saved_model` exports everything else, with a one-line notice.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfspk import model_spec as spec_lib
from tfspk.export.geometry import EXTRA_DIR

WARMUP_FILENAME = "tf_serving_warmup_requests"


class ServingApiMissingError(ImportError):
    """tensorflow-serving-api is not installed, so no warm-up requests can be written."""


def _serving_apis():
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError as error:
        raise ServingApiMissingError(
            f"{WARMUP_FILENAME} needs tensorflow-serving-api, which is not installed "
            f"(pip install tfspk[serving]): {error}") from None
    return model_pb2, predict_pb2, prediction_log_pb2


def write_warmup_requests(export_path: str, spec: spec_lib.ModelSpec, model_name: str,
                          seconds: float = 3.0, batch_sizes=(1, 8)) -> str:
    """Writes the warm-up file; returns its path.

    One `serving_default` request per batch size, `seconds` of low-level noise per row
    (deterministic), so the first client request does not pay for graph
    initialisation.
    """
    model_pb2, predict_pb2, prediction_log_pb2 = _serving_apis()
    directory = os.path.join(export_path, EXTRA_DIR)
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, WARMUP_FILENAME)
    rng = np.random.default_rng(0)
    num_samples = int(seconds * spec.features.sample_rate)
    with tf.io.TFRecordWriter(path) as writer:
        for batch in batch_sizes:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name,
                                               signature_name="serving_default"))
            waveform = (0.1 * rng.standard_normal((batch, num_samples))).astype(np.float32)
            request.inputs["waveform"].CopyFrom(tf.make_tensor_proto(waveform))
            request.inputs["lengths"].CopyFrom(
                tf.make_tensor_proto(np.full([batch], num_samples, np.int32)))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
