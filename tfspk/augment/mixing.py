"""Additive noise at a target signal-to-noise ratio: noise, music and babble.

Follows Kaldi's MUSAN recipe (steps/data/augment_data_dir.py driving wav-reverberate):
the gain of every added source is set from the power of the speech it is added to, so
the realised SNR of each source equals the requested one over the speech's length. A
source shorter than the speech is tiled, a longer one is cropped from its start.

All functions work on the last axis and broadcast over any leading (batch) axes, so the
same code runs per example inside tf.data and per batch on an accelerator.
"""
from __future__ import annotations

import tensorflow as tf


def signal_power(signal: tf.Tensor) -> tf.Tensor:
    """Mean square over the last axis."""
    return tf.reduce_mean(tf.square(signal), axis=-1)


def fit_to_length(signal: tf.Tensor, length) -> tf.Tensor:
    """Tiles (when shorter) and crops `signal` along its last axis to exactly `length`."""
    signal = tf.convert_to_tensor(signal)
    source_length = tf.shape(signal)[-1]
    checked = tf.debugging.assert_positive(
        source_length, message="cannot tile an empty signal to a longer length")
    with tf.control_dependencies([checked]):
        repeats = (length + source_length - 1) // source_length
    multiples = tf.concat(
        [tf.ones([tf.rank(signal) - 1], tf.int32), tf.reshape(repeats, [1])], axis=0)
    return tf.tile(signal, multiples)[..., :length]


def gain_for_snr(speech_power: tf.Tensor, noise_power: tf.Tensor,
                 snr_db: tf.Tensor) -> tf.Tensor:
    """Amplitude gain that puts noise of `noise_power` at `snr_db` below the speech.

    Silent noise or silent speech gives a gain of 0 (nothing is added), never NaN.
    """
    target_noise_power = speech_power / tf.pow(10.0, snr_db / 10.0)
    return tf.sqrt(tf.math.divide_no_nan(target_noise_power, noise_power))


def mix_at_snr(speech: tf.Tensor, noise: tf.Tensor, snr_db) -> tf.Tensor:
    """Adds `noise` to `speech` scaled so that 10*log10(P_speech / P_noise) = `snr_db`.

    Args:
      speech: float [..., samples].
      noise: float [..., noise_samples], same leading axes; tiled/cropped to the speech.
      snr_db: scalar or [...] (one value per leading index).
    Returns:
      float32 [..., samples], the mixture.
    """
    speech = tf.convert_to_tensor(speech, tf.float32)
    noise = fit_to_length(tf.convert_to_tensor(noise, tf.float32), tf.shape(speech)[-1])
    snr_db = tf.convert_to_tensor(snr_db, tf.float32)
    gain = gain_for_snr(signal_power(speech), signal_power(noise), snr_db)
    return speech + gain[..., tf.newaxis] * noise


def mix_babble(speech: tf.Tensor, sources: tf.Tensor, snr_db, num_sources) -> tf.Tensor:
    """Adds the first `num_sources` of `sources`, each at its own SNR, to `speech`.

    Kaldi's babble (`--num-bg-noises 3:4:5:6:7 --bg-snrs 20:17:15:13`) draws one SNR per
    background speaker and adds each speaker at that SNR relative to the speech, so the
    babble as a whole sits below the individual SNRs (7 speakers at 13 dB each are about
    4.5 dB below the speech when they are uncorrelated).

    Args:
      speech: float [..., samples].
      sources: float [..., max_sources, source_samples].
      snr_db: float [..., max_sources] (or broadcastable), one SNR per source.
      num_sources: int [...]; sources at index >= num_sources are ignored.
    Returns:
      float32 [..., samples].
    """
    speech = tf.convert_to_tensor(speech, tf.float32)
    sources = fit_to_length(tf.convert_to_tensor(sources, tf.float32), tf.shape(speech)[-1])
    snr_db = tf.convert_to_tensor(snr_db, tf.float32)
    max_sources = tf.shape(sources)[-2]
    used = tf.range(max_sources) < tf.convert_to_tensor(num_sources, tf.int32)[..., tf.newaxis]
    gains = gain_for_snr(signal_power(speech)[..., tf.newaxis], signal_power(sources), snr_db)
    gains = tf.where(used, gains, tf.zeros_like(gains))
    return speech + tf.reduce_sum(gains[..., tf.newaxis] * sources, axis=-2)
