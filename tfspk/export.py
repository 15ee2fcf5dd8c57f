"""SavedModel export for TF Serving: raw 16 kHz waveform in, speaker embedding out.

`python -m tfspk.export --model_dir=RUN --export_dir=BASE/NAME` writes
`BASE/NAME/<version>/`, TF Serving's versioned layout, with two signatures:

* `serving_default`: `waveform` float32 [batch, samples] in [-1, 1] at the training
  sample rate, `lengths` int32 [batch] (valid samples per row; rows are right-padded)
  -> `embedding` float32 [batch, D].
* `frame_embeddings`: same inputs -> every layer's frame-level outputs (`mfcc`,
  `conv1`, ...; for the frame-level CNN also `fc1`, `fc2`) and `<layer>_lengths`.

MFCC and mean normalisation run in the graph with the training options, so a client
sends audio only. What clients may send, and what they get back:

| input | result |
| --- | --- |
| padded rows, any mix of lengths | each row's embedding equals the row alone |
| batch of one / empty batch | [1, D] / [0, D] |
| `lengths` > row width, or < 0 | InvalidArgument naming the problem |
| a row shorter than `min_samples` (the network's receptive field) | InvalidArgument |
| NaN or Inf in the valid part of a row | InvalidArgument |
"""
from __future__ import annotations

import os
import re

import keras
import tensorflow as tf
from absl import app, flags

from tfspk import model_spec as spec_lib

WARMUP_FILENAME = "tf_serving_warmup_requests"


def min_samples(spec: spec_lib.ModelSpec, embedding_model) -> int:
    """Shortest utterance (samples) that yields at least one frame at every layer."""
    from tfspk import models

    geometry = models.layer_frame_geometry(embedding_model)
    receptive = max(g[2] for g in geometry.values()) if geometry else 1
    return spec.features.samples_for_frames(receptive)


def restore_embedding_model(model_dir: str, checkpoint: str | None = None):
    """Rebuilds the trained network from model_spec.json and restores a checkpoint."""
    spec = spec_lib.ModelSpec.load(model_dir)
    classifier = spec_lib.build_classifier_model(spec)
    path = resolve_checkpoint(model_dir, checkpoint)
    tf.train.Checkpoint(model=classifier).restore(path).expect_partial() \
        .assert_existing_objects_matched()
    return spec, classifier.embedding_model, path


def resolve_checkpoint(model_dir: str, checkpoint: str | None) -> str:
    """`None` -> latest; an integer string -> that step; otherwise a checkpoint prefix."""
    directory = os.path.join(model_dir, "checkpoints")
    if not checkpoint:
        latest = tf.train.latest_checkpoint(directory)
        if latest is None:
            raise FileNotFoundError(f"{directory}: no checkpoint found")
        return latest
    if checkpoint.isdigit():
        prefix = os.path.join(directory, f"ckpt-{int(checkpoint)}")
        if not tf.io.gfile.exists(prefix + ".index"):
            raise FileNotFoundError(f"{prefix}: no checkpoint for step {checkpoint}")
        return prefix
    if not tf.io.gfile.exists(checkpoint + ".index"):
        raise FileNotFoundError(f"{checkpoint}: not a checkpoint prefix")
    return checkpoint


def _validated(waveform, lengths, minimum: int):
    """Checks a client's batch; raises InvalidArgument (TF Serving returns it as is)."""
    width = tf.shape(waveform, out_type=tf.int32)[1]
    checks = [
        tf.debugging.assert_equal(tf.shape(lengths)[0], tf.shape(waveform)[0],
                                  message="lengths must have one entry per waveform row"),
        tf.debugging.assert_non_negative(lengths, message="lengths must be >= 0"),
        tf.debugging.assert_less_equal(lengths, width,
                                       message="lengths exceed the waveform width"),
        tf.debugging.assert_greater_equal(
            lengths, tf.constant(minimum, tf.int32),
            message=f"utterance shorter than the model's minimum of {minimum} samples"),
    ]
    valid = tf.sequence_mask(lengths, width)
    finite = tf.reduce_all(tf.math.is_finite(waveform) | ~valid)
    checks.append(tf.debugging.Assert(finite, ["waveform contains NaN or Inf"]))
    with tf.control_dependencies(checks):
        # Padding is zeroed so that whatever a client pads with cannot reach the features.
        return tf.where(valid, waveform, tf.zeros_like(waveform)), tf.identity(lengths)


def build_export_archive(spec: spec_lib.ModelSpec, embedding_model,
                         embedding_layer: str | None = None) -> keras.export.ExportArchive:
    """An ExportArchive with the `serving_default` and `frame_embeddings` endpoints."""
    from tfspk import models

    embedding_layer = embedding_layer or spec.embedding_layer
    frontend = spec_lib.build_frontend(spec)
    frame_model = models.frame_embedding_model(embedding_model)
    minimum = min_samples(spec, embedding_model)
    signature = [tf.TensorSpec([None, None], tf.float32, name="waveform"),
                 tf.TensorSpec([None], tf.int32, name="lengths")]

    def serve(waveform, lengths):
        waveform, lengths = _validated(waveform, lengths, minimum)
        features, frame_lengths = frontend(waveform, lengths)
        outputs = embedding_model({"features": features, "lengths": frame_lengths},
                                  training=False)
        return {"embedding": tf.cast(outputs[embedding_layer], tf.float32)}

    def frames(waveform, lengths):
        waveform, lengths = _validated(waveform, lengths, minimum)
        features, frame_lengths = frontend(waveform, lengths)
        outputs = {"mfcc": features, "mfcc_lengths": frame_lengths}
        layer_outputs = frame_model({"features": features, "lengths": frame_lengths},
                                    training=False)
        outputs.update({name: tf.cast(value, tf.float32) if value.dtype.is_floating else value
                        for name, value in layer_outputs.items()})
        return outputs

    archive = keras.export.ExportArchive()
    archive.track(embedding_model)
    archive.track(frame_model)
    archive.track(frontend)
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    archive.add_endpoint("frame_embeddings", frames, input_signature=signature)
    return archive


def frame_geometry(spec: spec_lib.ModelSpec, embedding_model) -> dict:
    """Where each layer's frames sit in the waveform, for mapping phone labels to frames.

    Frame `j` of a layer is centred on input MFCC frame `offset + j * stride` and sees
    `receptive_field` MFCC frames; MFCC frame `i` covers samples
    `[i * shift, i * shift + window)`.
    """
    from tfspk import models

    window = spec.features.samples_for_frames(1)
    shift = spec.features.samples_for_frames(2) - window
    layers = {"mfcc": {"offset": 0, "stride": 1, "receptive_field": 1}}
    for name, (offset, stride, receptive) in models.layer_frame_geometry(embedding_model).items():
        layers[name] = {"offset": offset, "stride": stride, "receptive_field": receptive}
    return {"sample_rate": spec.features.sample_rate, "frame_length_samples": window,
            "frame_shift_samples": shift, "layers": layers}


def write_frame_geometry(export_path: str, spec, embedding_model) -> str:
    import json

    path = os.path.join(export_path, "assets.extra", "frame_geometry.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(frame_geometry(spec, embedding_model), f, indent=2)
    return path


def next_version(export_base: str) -> int:
    """TF Serving loads the highest numeric version; default to one above it."""
    if not tf.io.gfile.isdir(export_base):
        return 1
    versions = [int(name.strip("/")) for name in tf.io.gfile.listdir(export_base)
                if re.fullmatch(r"\d+/?", name)]
    return max(versions, default=0) + 1


def write_warmup_requests(export_path: str, spec: spec_lib.ModelSpec, model_name: str,
                          seconds: float = 3.0, batch_sizes=(1, 8)) -> str:
    """assets.extra/tf_serving_warmup_requests: PredictionLogs TF Serving replays at load."""
    import numpy as np
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    directory = os.path.join(export_path, "assets.extra")
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


def write_serving_configs(export_base: str, model_name: str) -> list[str]:
    """An example models.config and batching config beside the versioned model."""
    parent = os.path.dirname(os.path.abspath(export_base.rstrip("/")))
    models_config = os.path.join(parent, "models.config")
    with open(models_config, "w", encoding="utf-8") as f:
        f.write(
            "model_config_list {\n"
            "  config {\n"
            f"    name: \"{model_name}\"\n"
            f"    base_path: \"/models/{model_name}\"\n"
            "    model_platform: \"tensorflow\"\n"
            "  }\n"
            "}\n")
    batching_config = os.path.join(parent, "batching.config")
    with open(batching_config, "w", encoding="utf-8") as f:
        # Utterances vary in length; padding to the batch's longest row is cheap next to
        # the convolutions, so modest batches with a short timeout serve best.
        f.write(
            "max_batch_size { value: 32 }\n"
            "batch_timeout_micros { value: 5000 }\n"
            "max_enqueued_batches { value: 100 }\n"
            "num_batch_threads { value: 4 }\n"
            "pad_variable_length_inputs: true\n")
    return [models_config, batching_config]


def export_saved_model(model_dir: str, export_dir: str, version: int | None = None,
                       checkpoint: str | None = None, embedding_layer: str | None = None,
                       warmup: bool = True) -> str:
    """Exports a training run; returns the versioned SavedModel path."""
    spec, embedding_model, checkpoint_path = restore_embedding_model(model_dir, checkpoint)
    version = version or next_version(export_dir)
    export_path = os.path.join(export_dir, str(version))
    if tf.io.gfile.exists(export_path):
        raise FileExistsError(f"{export_path} exists; TF Serving versions are immutable")
    archive = build_export_archive(spec, embedding_model, embedding_layer)
    archive.write_out(export_path, verbose=False)
    model_name = os.path.basename(os.path.abspath(export_dir.rstrip("/")))
    if warmup:
        write_warmup_requests(export_path, spec, model_name)
    tf.io.gfile.makedirs(os.path.join(export_path, "assets.extra"))
    write_frame_geometry(export_path, spec, embedding_model)
    with open(os.path.join(export_path, "assets.extra", "source.txt"), "w") as f:
        f.write(f"checkpoint: {checkpoint_path}\n"
                f"embedding_layer: {embedding_layer or spec.embedding_layer}\n")
    write_serving_configs(export_dir, model_name)
    return export_path


FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Training directory (model_spec.json + checkpoints/).")
flags.DEFINE_string("export_dir", None, "BASE/NAME; the SavedModel goes to BASE/NAME/<version>.")
flags.DEFINE_integer("version", None, "Version number; default: one above the highest present.")
flags.DEFINE_string("checkpoint", None, "Step number or checkpoint prefix; default: latest.")
flags.DEFINE_enum("embedding_layer", None, ["fc1", "fc2"], "Embedding to serve; default: training's.")
flags.DEFINE_bool("warmup", True, "Write assets.extra/tf_serving_warmup_requests.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    path = export_saved_model(FLAGS.model_dir, FLAGS.export_dir, FLAGS.version,
                              FLAGS.checkpoint, FLAGS.embedding_layer, FLAGS.warmup)
    print(f"exported {path}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["model_dir", "export_dir"])
    app.run(main)
