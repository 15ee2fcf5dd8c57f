"""SavedModel export for TF Serving: raw 16 kHz waveform in, speaker embedding out.

`python -m tfspk.export --model_dir=RUN --export_dir=BASE/NAME` restores a training
run (`RUN/model_spec.json` + `RUN/checkpoints/ckpt-<step>`) and writes
`BASE/NAME/<version>/`, TF Serving's versioned layout, with two signatures:

* `serving_default`: `waveform` float32 [batch, samples] in [-1, 1] at the training
  sample rate, `lengths` int32 [batch] (valid samples per row; rows are right-padded)
  -> `embedding` float32 [batch, D].
* `frame_embeddings`: same inputs -> `mfcc` [batch, frames, F] and every frame-level
  layer of the network (`conv1`..`conv4`, or `frame1`..`frame5`; for the frame-level
  CNN also `fc1`, `fc2`), each with its `<layer>_lengths` [batch]. Frames past a row's
  length are zero.

Kaldi MFCC and cepstral mean normalisation run inside the graph with the training
options, so a client sends audio only. Beside the SavedModel, `assets.extra/` holds
`tf_serving_warmup_requests` (PredictionLogs TF Serving replays before it reports the
model ready), `frame_geometry.json` (where each layer's frames sit in the waveform)
and `source.txt` (the checkpoint exported); `BASE/models.config` and
`BASE/batching.config` are example server configs.

What clients may send, and what they get back (InvalidArgument is what TF Serving
returns to the client: HTTP 400 with the message, or gRPC status INVALID_ARGUMENT):

| input | result |
| --- | --- |
| rows right-padded to the longest, any mix of lengths | each row's embedding equals the row sent alone; padding values never matter (they are zeroed) |
| a batch of one | `[1, D]` |
| an empty batch (`[0, S]`, `lengths` `[0]`) | `[0, D]` |
| `lengths` with a different batch size than `waveform` | InvalidArgument `lengths must have one entry per waveform row` |
| a negative length | InvalidArgument `lengths must be >= 0`, naming the rows |
| a length longer than the row | InvalidArgument `lengths exceed the waveform width of the batch`, naming the rows |
| a row shorter than one analysis window (25 ms) | InvalidArgument `utterance shorter than one analysis window`, naming the rows |
| a row shorter than the network's receptive field (`min_samples`) | InvalidArgument `utterance shorter than the model minimum`, naming the rows |
| NaN or Inf in the valid part of a row | InvalidArgument `waveform contains NaN or Inf`, naming the rows (NaN/Inf in the padding is ignored) |
| wrong rank or dtype | InvalidArgument from the signature itself (TF Serving checks it) |

The checks run in order, so a batch with several problems reports the first one in
this table.
"""
from __future__ import annotations

import json
import os
import re

import keras
import tensorflow as tf
from absl import app, flags

from tfspk import features as features_lib
from tfspk import model_spec as spec_lib

WARMUP_FILENAME = "tf_serving_warmup_requests"
GEOMETRY_FILENAME = "frame_geometry.json"
EXTRA_DIR = "assets.extra"
EMBEDDING_LAYERS = ("fc1", "fc2")


def _samples_for_frames(spec: spec_lib.ModelSpec, frames: int) -> int:
    """Fewest samples that give `frames` MFCC frames (by `features.num_frames` itself)."""
    def count(num_samples):
        return features_lib.num_frames(
            num_samples, spec.features.frame_length_ms, spec.features.frame_shift_ms,
            spec.features.snip_edges, spec.features.sample_rate)

    low, high = 0, spec.features.samples_for_frames(frames) + spec.features.sample_rate
    while low < high:  # num_frames is non-decreasing in the number of samples
        middle = (low + high) // 2
        if count(middle) >= frames:
            high = middle
        else:
            low = middle + 1
    return max(low, 1)


def _milliseconds_to_samples(spec: spec_lib.ModelSpec, milliseconds: float) -> int:
    # Kaldi's truncation, as in tfspk.features.
    return int(spec.features.sample_rate * 0.001 * milliseconds)


def analysis_window_samples(spec: spec_lib.ModelSpec) -> int:
    """Samples in one MFCC analysis window (a row shorter than this has no frame)."""
    return _milliseconds_to_samples(spec, spec.features.frame_length_ms)


def receptive_field(embedding_model) -> int:
    """MFCC frames the network needs for one frame at its last frame-level layer."""
    from tfspk import models

    geometry = models.layer_frame_geometry(embedding_model)
    return max((field for _, _, field in geometry.values()), default=1)


def min_samples(spec: spec_lib.ModelSpec, embedding_model) -> int:
    """Shortest utterance (samples) that yields at least one frame at every layer."""
    return max(_samples_for_frames(spec, receptive_field(embedding_model)),
               analysis_window_samples(spec))


def restore_embedding_model(model_dir: str, checkpoint: str | None = None):
    """Rebuilds the trained network from model_spec.json and restores a checkpoint.

    Returns `(spec, embedding_model, checkpoint_path)`.
    """
    spec = spec_lib.ModelSpec.load(model_dir)
    classifier = spec_lib.build_classifier_model(spec)
    path = resolve_checkpoint(model_dir, checkpoint)
    # Training checkpoints also hold the optimizer; only the model is needed here,
    # but every model variable must be found.
    tf.train.Checkpoint(model=classifier).restore(path).expect_partial() \
        .assert_existing_objects_matched()
    return spec, classifier.embedding_model, path


def resolve_checkpoint(model_dir: str, checkpoint: str | None) -> str:
    """The checkpoint prefix to export from `<model_dir>/checkpoints`.

    `None` or "" -> the latest; "1200" -> `ckpt-1200`; otherwise a prefix, either a
    path or a name inside the checkpoints directory (`ckpt-1200`).
    """
    directory = os.path.join(model_dir, "checkpoints")
    if not checkpoint:
        latest = tf.train.latest_checkpoint(directory)
        if latest is None:
            raise FileNotFoundError(f"{directory}: no checkpoint found")
        return latest
    if checkpoint.isdigit():
        prefix = os.path.join(directory, f"ckpt-{int(checkpoint)}")
        if not tf.io.gfile.exists(prefix + ".index"):
            raise FileNotFoundError(f"{prefix}: no checkpoint for step {checkpoint}; "
                                    f"available: {_available_steps(directory)}")
        return prefix
    for prefix in (checkpoint, os.path.join(directory, checkpoint)):
        if tf.io.gfile.exists(prefix + ".index"):
            return prefix
    raise FileNotFoundError(f"{checkpoint}: not a checkpoint prefix (no {checkpoint}.index, "
                            f"nor in {directory}); available steps: "
                            f"{_available_steps(directory)}")


def _available_steps(directory: str) -> list[int]:
    if not tf.io.gfile.isdir(directory):
        return []
    return sorted(int(match.group(1)) for name in tf.io.gfile.listdir(directory)
                  if (match := re.fullmatch(r"ckpt-(\d+)\.index", name)))


def _require(row_ok, message: str, lengths):
    """An assertion naming the offending rows (and their lengths) when it fails."""
    bad = tf.where(~row_ok)[:, 0]
    return tf.debugging.Assert(
        tf.reduce_all(row_ok),
        [message + "; rows:", bad, "lengths:", tf.gather(lengths, bad)], summarize=20)


def _validated(waveform, lengths, window: int, minimum: int, receptive: int):
    """Checks a client's batch; returns (waveform with zeroed padding, lengths).

    Raises InvalidArgument (which TF Serving returns to the client as is). The checks
    are chained so that the first failing one in the module docstring's table is the
    one reported.
    """
    width = tf.shape(waveform, out_type=tf.int32)[1]
    batch = tf.shape(waveform, out_type=tf.int32)[0]
    checks = [
        lambda: tf.debugging.Assert(
            tf.equal(tf.shape(lengths, out_type=tf.int32)[0], batch),
            ["lengths must have one entry per waveform row; waveform rows:", batch,
             "lengths entries:", tf.shape(lengths)[0]]),
        lambda: _require(lengths >= 0, "lengths must be >= 0", lengths),
        lambda: _require(lengths <= width,
                         "lengths exceed the waveform width of the batch", lengths),
        lambda: _require(
            lengths >= window,
            f"utterance shorter than one analysis window ({window} samples)", lengths),
        lambda: _require(
            lengths >= minimum,
            f"utterance shorter than the model minimum of {minimum} samples "
            f"(receptive field of {receptive} MFCC frames)", lengths),
        lambda: _require(
            tf.reduce_all(tf.math.is_finite(waveform)
                          | ~tf.sequence_mask(lengths, width), axis=1),
            "waveform contains NaN or Inf", lengths),
    ]
    dependency = []
    for check in checks:
        with tf.control_dependencies(dependency):
            dependency = [check()]
    with tf.control_dependencies(dependency):
        valid = tf.sequence_mask(lengths, width)
        # Whatever a client (or TF Serving's batcher) pads with cannot reach the features.
        return tf.where(valid, waveform, tf.zeros_like(waveform)), tf.identity(lengths)


def _zero_past_lengths(frames, lengths):
    mask = tf.sequence_mask(lengths, tf.shape(frames)[1])
    return tf.where(mask[..., None], frames, tf.zeros_like(frames))


def build_export_archive(spec: spec_lib.ModelSpec, embedding_model,
                         embedding_layer: str | None = None) -> keras.export.ExportArchive:
    """An ExportArchive with the `serving_default` and `frame_embeddings` endpoints."""
    from tfspk import models

    embedding_layer = embedding_layer or spec.embedding_layer
    if embedding_layer not in embedding_model.output:
        raise ValueError(f"embedding_layer {embedding_layer!r} is not an output of "
                         f"{embedding_model.name}; outputs: {sorted(embedding_model.output)}")
    frontend = spec_lib.build_frontend(spec)
    window = analysis_window_samples(spec)
    # Build the front end (it has no variables) so that the archive can track it.
    frontend(tf.zeros([1, window]), tf.constant([window]))
    frame_model = models.frame_embedding_model(embedding_model)
    minimum = min_samples(spec, embedding_model)
    receptive = receptive_field(embedding_model)
    signature = [tf.TensorSpec([None, None], tf.float32, name="waveform"),
                 tf.TensorSpec([None], tf.int32, name="lengths")]

    def checked_features(waveform, lengths):
        """Validated MFCCs, and the batch size the outputs must be cut back to.

        TF's convolutions mishandle a batch of zero rows (wrong output depth), and
        'valid' convolutions need at least `receptive` frames, so an empty batch runs
        as one all-padding row of `receptive` frames whose outputs are then dropped.
        A non-empty batch is never padded: every row passed the minimum length.
        """
        waveform, lengths = _validated(waveform, lengths, window, minimum, receptive)
        features, frame_lengths = frontend(waveform, lengths)
        batch = tf.shape(features)[0]
        extra_rows = tf.cast(tf.equal(batch, 0), tf.int32)
        extra_frames = tf.maximum(receptive - tf.shape(features)[1], 0)
        features = tf.pad(features, [[0, extra_rows], [0, extra_frames], [0, 0]])
        frame_lengths = tf.pad(frame_lengths, [[0, extra_rows]])
        return features, frame_lengths, batch

    def serve(waveform, lengths):
        features, frame_lengths, batch = checked_features(waveform, lengths)
        outputs = embedding_model({"features": features, "lengths": frame_lengths},
                                  training=False)
        return {"embedding": tf.cast(outputs[embedding_layer], tf.float32)[:batch]}

    def frames(waveform, lengths):
        features, frame_lengths, batch = checked_features(waveform, lengths)
        outputs = {"mfcc": _zero_past_lengths(features, frame_lengths),
                   "mfcc_lengths": frame_lengths}
        layer_outputs = frame_model({"features": features, "lengths": frame_lengths},
                                    training=False)
        for name, value in layer_outputs.items():
            if name.endswith("_lengths"):
                outputs[name] = tf.cast(value, tf.int32)
            else:
                outputs[name] = _zero_past_lengths(tf.cast(value, tf.float32),
                                                   layer_outputs[name + "_lengths"])
        return {name: value[:batch] for name, value in outputs.items()}

    archive = keras.export.ExportArchive()
    archive.track(embedding_model)
    archive.track(frame_model)
    archive.track(frontend)
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    archive.add_endpoint("frame_embeddings", frames, input_signature=signature)
    return archive


def frame_geometry(spec: spec_lib.ModelSpec, embedding_model) -> dict:
    """Where each layer's frames sit in the waveform, for mapping phone labels to frames.

    Frame `j` of a layer is centred on MFCC frame `offset + j * stride` and sees
    `receptive_field` MFCC frames; MFCC frame `i` covers samples
    `[first_frame_start + i * shift, first_frame_start + i * shift + window)`
    (`first_frame_start` is 0 with snip_edges, else `shift // 2 - window // 2`, with
    samples before 0 reflected). `min_samples` is the shortest utterance served.
    """
    from tfspk import models

    window = analysis_window_samples(spec)
    shift = _milliseconds_to_samples(spec, spec.features.frame_shift_ms)
    layers = {"mfcc": {"offset": 0, "stride": 1, "receptive_field": 1}}
    for name, (offset, stride, receptive) in models.layer_frame_geometry(embedding_model).items():
        layers[name] = {"offset": offset, "stride": stride, "receptive_field": receptive}
    return {"sample_rate": spec.features.sample_rate, "frame_length_samples": window,
            "frame_shift_samples": shift, "snip_edges": spec.features.snip_edges,
            "first_frame_start": 0 if spec.features.snip_edges else shift // 2 - window // 2,
            "min_samples": min_samples(spec, embedding_model), "layers": layers}


def write_frame_geometry(export_path: str, spec, embedding_model) -> str:
    """assets.extra/frame_geometry.json (see `frame_geometry`)."""
    directory = os.path.join(export_path, EXTRA_DIR)
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, GEOMETRY_FILENAME)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(frame_geometry(spec, embedding_model), indent=2))
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
    """assets.extra/tf_serving_warmup_requests: PredictionLogs TF Serving replays at load.

    One `serving_default` request per batch size, `seconds` of low-level noise per row
    (deterministic), so the first client request does not pay for graph
    initialisation.
    """
    import numpy as np
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

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


def write_serving_configs(export_base: str, model_name: str) -> list[str]:
    """Example `models.config` and `batching.config` in the parent of BASE/NAME.

    `base_path` is where the official container mounts models (`/models/<name>`).
    """
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
        # Rows of different widths are padded by the batcher; the graph zeroes
        # everything past `lengths`, so the padding value cannot change a result.
        # Compute grows with the batch's longest row, so keep batches modest and the
        # timeout short.
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
    """Exports a training run to `export_dir/<version>`; returns that path."""
    spec, embedding_model, checkpoint_path = restore_embedding_model(model_dir, checkpoint)
    version = version or next_version(export_dir)
    if version < 1:
        raise ValueError(f"version must be >= 1, got {version}")
    export_path = os.path.join(export_dir, str(version))
    if tf.io.gfile.exists(export_path):
        raise FileExistsError(f"{export_path} exists; TF Serving versions are immutable")
    archive = build_export_archive(spec, embedding_model, embedding_layer)
    archive.write_out(export_path, verbose=False)
    model_name = os.path.basename(os.path.abspath(export_dir.rstrip("/")))
    if warmup:
        write_warmup_requests(export_path, spec, model_name)
    write_frame_geometry(export_path, spec, embedding_model)
    with open(os.path.join(export_path, EXTRA_DIR, "source.txt"), "w",
              encoding="utf-8") as f:
        f.write(f"model_dir: {os.path.abspath(model_dir)}\n"
                f"checkpoint: {checkpoint_path}\n"
                f"embedding_layer: {embedding_layer or spec.embedding_layer}\n")
    write_serving_configs(export_dir, model_name)
    return export_path


FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """CLI flags; defined on demand so importing this library module defines none."""
    flags.DEFINE_string("model_dir", None, "Training directory (model_spec.json + "
                        "checkpoints/).", flag_values=flag_values)
    flags.DEFINE_string("export_dir", None, "BASE/NAME; the SavedModel goes to "
                        "BASE/NAME/<version>.", flag_values=flag_values)
    flags.DEFINE_integer("version", None, "Version number; default: one above the highest "
                         "present.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_string("checkpoint", None, "Step number or checkpoint prefix; default: "
                        "latest.", flag_values=flag_values)
    flags.DEFINE_enum("embedding_layer", None, list(EMBEDDING_LAYERS),
                      "Embedding to serve; default: the one trained on (model_spec.json).",
                      flag_values=flag_values)
    flags.DEFINE_bool("warmup", True, "Write assets.extra/tf_serving_warmup_requests.",
                      flag_values=flag_values)
    flags.mark_flags_as_required(["model_dir", "export_dir"], flag_values=flag_values)


def export_from_flags(flag_values=FLAGS) -> str:
    """What the CLI does, for parsed `flag_values` (see `define_flags`)."""
    try:
        return export_saved_model(flag_values.model_dir, flag_values.export_dir,
                                  flag_values.version, flag_values.checkpoint,
                                  flag_values.embedding_layer, flag_values.warmup)
    except (FileNotFoundError, FileExistsError) as error:
        raise app.UsageError(str(error)) from error


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    print(f"exported {export_from_flags()}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
