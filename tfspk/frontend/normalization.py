"""Cepstral mean (and variance) normalisation over each row's valid frames:
per utterance (Kaldi `apply-cmvn`) and sliding-window (`apply-cmvn-sliding`)."""
from __future__ import annotations

import tensorflow as tf


def _as_feature_batch(features, lengths):
    features = tf.convert_to_tensor(features)
    if features.shape.rank not in (2, 3):
        raise ValueError(
            f"features must have shape [frames, dim] or [batch, frames, dim], "
            f"got {features.shape}")
    batched = features.shape.rank == 3
    if not batched:
        features = features[None]
    num = tf.shape(features)[1]
    if lengths is None:
        lengths = tf.fill([tf.shape(features)[0]], num)
    else:
        lengths = tf.reshape(tf.cast(lengths, tf.int32), [-1])
        lengths = tf.minimum(lengths, num)
    valid = tf.range(num)[None, :] < lengths[:, None]
    return features, lengths, valid, batched


def _restore(result, valid, batched):
    result = tf.where(valid[..., None], result, tf.zeros_like(result))
    return result if batched else result[0]


def apply_cmn(features, lengths=None, norm_vars=False):
    """Per-utterance cepstral mean (and variance) normalisation, Kaldi `apply-cmvn`.

    Statistics come from each row's first `lengths[b]` frames only; frames past
    the length are returned as zeros. With `norm_vars`, the variance is floored
    at 1e-20 as in Kaldi.
    """
    features, lengths, valid, batched = _as_feature_batch(features, lengths)
    x = tf.cast(features, tf.float64)
    mask = tf.cast(valid, tf.float64)[..., None]
    count = tf.maximum(tf.cast(lengths, tf.float64), 1.0)[:, None, None]
    mean = tf.reduce_sum(x * mask, axis=1, keepdims=True) / count
    result = x - mean
    if norm_vars:
        variance = tf.reduce_sum(tf.square(result) * mask, axis=1, keepdims=True) / count
        result *= tf.math.rsqrt(tf.maximum(variance, 1e-20))
    return _restore(tf.cast(result, features.dtype), valid, batched)


def sliding_cmn(features, lengths=None, cmn_window=300, min_window=100,
                center=True, norm_vars=False):
    """Kaldi's `apply-cmvn-sliding` over each row's valid frames.

    Frame t is normalised by the statistics of frames [start, end): with
    `center`, start = t - cmn_window // 2 and end = start + cmn_window; otherwise
    start = t - cmn_window, end = t + 1, and early frames use at least
    `min_window` frames. A window that falls off either end is shifted back
    inside the utterance, and clipped to it when the utterance is shorter. With
    `norm_vars`, the windowed variance is floored at 1e-10 and a one-frame window
    gives zeros. Defaults follow Kaldi's VoxCeleb recipe (window 300, centred);
    the binary's own defaults are 600 frames, not centred.
    """
    if int(cmn_window) < 1 or int(min_window) < 1:
        raise ValueError(
            f"cmn_window and min_window must be >= 1, got {cmn_window}, {min_window}")
    features, lengths, valid, batched = _as_feature_batch(features, lengths)
    x = tf.cast(features, tf.float64)
    num = tf.shape(x)[1]
    t = tf.range(num)[None, :]
    n = lengths[:, None]
    if center:
        start = t - cmn_window // 2
        end = start + cmn_window
    else:
        start = t - cmn_window
        end = t + 1
    end -= tf.minimum(start, 0)
    start = tf.maximum(start, 0)
    if not center:
        end = tf.where(end > t, tf.maximum(t + 1, min_window), end)
    overshoot = tf.maximum(end - n, 0)
    start = tf.maximum(start - overshoot, 0)
    end = tf.minimum(end, n)
    start = tf.minimum(start, end)  # rows past their length: empty windows

    def window_sum(values):
        cumulative = tf.pad(tf.cumsum(values, axis=1), [[0, 0], [1, 0], [0, 0]])
        return (tf.gather(cumulative, end, batch_dims=1)
                - tf.gather(cumulative, start, batch_dims=1))

    count = tf.cast(tf.maximum(end - start, 1), tf.float64)[..., None]
    mean = window_sum(x) / count
    result = x - mean
    if norm_vars:
        variance = tf.maximum(window_sum(tf.square(x)) / count - tf.square(mean), 1e-10)
        result = tf.where(count > 1.0, result * tf.math.rsqrt(variance), 0.0)
    return _restore(tf.cast(result, features.dtype), valid, batched)

