"""Reverberation by FFT convolution with a room impulse response (RIR).

Mirrors Kaldi's `wav-reverberate --shift-output=true --normalize-output=true`: the RIR is
normalised to unit energy, the output keeps the input's length and is aligned to the
direct path (the full convolution is read from the RIR's peak index onwards, so the
direct sound lands where the dry sound was), and it is rescaled to the input's power.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfspk.augment.mixing import signal_power


def _fft_length(min_length: tf.Tensor) -> tf.Tensor:
    """Smallest power of two >= min_length (linear, not circular, convolution)."""
    exponent = tf.math.ceil(tf.math.log(tf.cast(min_length, tf.float64)) / np.log(2.0))
    length = tf.cast(tf.pow(tf.constant(2.0, tf.float64), exponent), tf.int32)
    # Guard against log rounding just below an exact power of two.
    return tf.where(length < min_length, 2 * length, length)


def reverberate(speech: tf.Tensor, rir: tf.Tensor) -> tf.Tensor:
    """Convolves `speech` with `rir`; output has the input's length and power.

    Args:
      speech: float [..., samples].
      rir: float [..., rir_samples] with the same leading axes as `speech` (zero padding
        at the end of an RIR changes nothing, so RIRs of different lengths can be padded
        to a common length for batching).
    Returns:
      float32 [..., samples]. An all-zero RIR or silent input gives silence.
    """
    speech = tf.convert_to_tensor(speech, tf.float32)
    rir = tf.convert_to_tensor(rir, tf.float32)
    num_samples = tf.shape(speech)[-1]
    rir = rir * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(rir), -1, keepdims=True),
                                         1e-20))
    fft_length = _fft_length(num_samples + tf.shape(rir)[-1] - 1)[tf.newaxis]
    full = tf.signal.irfft(tf.signal.rfft(speech, fft_length) * tf.signal.rfft(rir, fft_length),
                           fft_length)
    peak = tf.argmax(tf.abs(rir), axis=-1, output_type=tf.int32)
    window = peak[..., tf.newaxis] + tf.range(num_samples)
    reverberant = tf.gather(full, window, axis=-1, batch_dims=len(speech.shape) - 1)
    gain = tf.sqrt(tf.math.divide_no_nan(signal_power(speech), signal_power(reverberant)))
    return reverberant * gain[..., tf.newaxis]
