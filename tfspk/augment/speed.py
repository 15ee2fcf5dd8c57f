"""Speed perturbation by band-limited resampling, in graph.

Kaldi (utils/data/perturb_data_dir_speed.sh, sox `speed`) changes tempo and pitch
together: a factor of 1.1 plays the audio 10% faster, so it lasts 1/1.1 as long and every
frequency rises by 10%. That is resampling from `n` to `round(n / factor)` samples while
keeping the nominal sample rate, done here exactly in the frequency domain (truncating
or zero-padding the spectrum is an ideal low-pass filter; the signal is treated as
periodic, which only touches the first and last few milliseconds of a crop).

Labels: Kaldi's recipes that use speed perturbation treat each perturbed copy as a new
speaker (the pitch shift changes the voice). `speed_label` implements that mapping; see
`AugmentationConfig.speed_label_offset`.
"""
from __future__ import annotations

import tensorflow as tf


def resample_to_length(signal: tf.Tensor, length) -> tf.Tensor:
    """Band-limited resampling of `signal` [..., n] to [..., length] samples."""
    signal = tf.convert_to_tensor(signal, tf.float32)
    length = tf.convert_to_tensor(length, tf.int32)
    source_length = tf.shape(signal)[-1]
    spectrum = tf.signal.rfft(signal)
    bins = length // 2 + 1
    available = tf.shape(spectrum)[-1]
    kept = spectrum[..., :tf.minimum(bins, available)]
    padding = tf.concat([tf.zeros([tf.rank(signal) - 1, 2], tf.int32),
                         [[0, tf.maximum(bins - available, 0)]]], axis=0)
    kept = tf.pad(kept, padding)
    scale = tf.cast(length, tf.float32) / tf.cast(source_length, tf.float32)
    return tf.signal.irfft(kept, length[tf.newaxis]) * scale


def perturbed_length(num_samples, factor) -> tf.Tensor:
    """Length of a `num_samples` signal played `factor` times faster."""
    return tf.cast(tf.round(tf.cast(num_samples, tf.float32) / tf.cast(factor, tf.float32)),
                   tf.int32)


def speed_perturb(signal: tf.Tensor, factor) -> tf.Tensor:
    """Plays `signal` [..., n] `factor` times faster: round(n / factor) samples."""
    signal = tf.convert_to_tensor(signal, tf.float32)
    return resample_to_length(signal, perturbed_length(tf.shape(signal)[-1], factor))


def speed_label(label, factor_index, label_offset: int | None):
    """Kaldi's new-speaker labels: copy `factor_index` (0 = unperturbed) of speaker `label`
    becomes `label + factor_index * label_offset`; with `label_offset=None` the label is
    kept (the perturbed copy counts as the same speaker)."""
    label = tf.convert_to_tensor(label)
    if label_offset is None:
        return label
    return label + tf.cast(factor_index, label.dtype) * tf.cast(label_offset, label.dtype)
