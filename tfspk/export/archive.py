"""The Keras ExportArchive with the `serving_default` and `frame_embeddings` endpoints."""
from __future__ import annotations

import keras
import tensorflow as tf

from tfspk import model_spec as spec_lib
from tfspk.export.geometry import analysis_window_samples, min_samples, receptive_field
from tfspk.export.input_checks import validated
from tfspk.frontend.layers import network_inputs

EMBEDDING_LAYERS = ("fc1", "fc2")


def _zero_past_lengths(frames, lengths):
    mask = tf.sequence_mask(lengths, tf.shape(frames)[1])
    return tf.where(mask[..., None], frames, tf.zeros_like(frames))


#: The endpoint that returns every embedding layer, keyed by layer name.
ALL_EMBEDDINGS = "embeddings"


def build_export_archive(spec: spec_lib.ModelSpec, embedding_model,
                         embedding_layer: str | None = None) -> keras.export.ExportArchive:
    """An ExportArchive with the `serving_default`, `frame_embeddings` and `embeddings`
    (every embedding layer, e.g. `fc1` and `fc2`) endpoints."""
    from tfspk import models

    embedding_layer = embedding_layer or spec.embedding_layer
    if embedding_layer not in embedding_model.output:
        raise ValueError(f"embedding_layer {embedding_layer!r} is not an output of "
                         f"{embedding_model.name}; outputs: {sorted(embedding_model.output)}")
    frontend = spec.features.build()
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
        waveform, lengths = validated(waveform, lengths, window, minimum, receptive)
        inputs = network_inputs(frontend, waveform, lengths)
        features, frame_lengths = inputs["features"], inputs["lengths"]
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

    def all_embeddings(waveform, lengths):
        # Every embedding layer (fc1 and fc2) from one run of the network, so extraction
        # of several layers does not run the CNN once per layer.
        features, frame_lengths, batch = checked_features(waveform, lengths)
        outputs = embedding_model({"features": features, "lengths": frame_lengths},
                                  training=False)
        return {name: tf.cast(value, tf.float32)[:batch] for name, value in outputs.items()}

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
    archive.add_endpoint(ALL_EMBEDDINGS, all_embeddings, input_signature=signature)
    return archive
