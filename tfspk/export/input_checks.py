"""In-graph checks of a client's batch (the table in `tfspk.export`'s docstring);
a failure is an InvalidArgument, which TF Serving returns to the client as is."""
from __future__ import annotations

import tensorflow as tf


def _require(row_ok, message: str, lengths):
    """An assertion naming the offending rows (and their lengths) when it fails."""
    bad = tf.where(~row_ok)[:, 0]
    return tf.debugging.Assert(
        tf.reduce_all(row_ok),
        [message + "; rows:", bad, "lengths:", tf.gather(lengths, bad)], summarize=20)


def validated(waveform, lengths, window: int, minimum: int, receptive: int):
    """Checks a client's batch; returns (waveform with zeroed padding, lengths).

    The checks are chained so that the first failing one in the module docstring's
    table is the one reported.
    """
    # The signature's shapes are not enforced for every caller (TF Serving passes any
    # rank through) and the graph takes the rank from the signature, so only a runtime
    # EnsureShape catches a 1-D waveform before indexing its shape fails as "slice
    # index 1 of dimension 0 out of bounds".
    waveform = tf.ensure_shape(waveform, [None, None],
                               name="waveform_must_be_batch_by_samples")
    lengths = tf.ensure_shape(lengths, [None], name="lengths_must_be_one_per_row")
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
