"""Additive noise at a target signal-to-noise ratio: noise, music and babble.

Follows Kaldi's MUSAN recipe (steps/data/augment_data_dir.py driving wav-reverberate):
the gain of every added source is set from the power of the speech it is added to, so
the realised SNR of each source equals the requested one over the speech's length.

Two placements, as in augment_data_dir.py:
* background (`mix_at_snr`, `mix_babble`; Kaldi's music and babble, `--bg-snrs`): the
  source covers the whole speech, tiled when shorter (`wav-reverberate --duration`
  repeats it) and cropped from its start when longer;
* foreground (`mix_foreground`; Kaldi's noise, `--fg-snrs`, `--fg-interval`): whole
  noise recordings one after another, each followed by `interval` of no noise, until
  the speech is covered (the last one cut at its end), each at its own SNR.

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


def foreground_starts(noise_lengths, interval, length) -> tuple[tf.Tensor, tf.Tensor]:
    """Where Kaldi's foreground noises start, and which of them are placed at all.

    augment_data_dir.py places noise k at the sum of the previous noises' durations plus
    one `interval` after each, and stops once that sum reaches the speech's duration:

        start_0 = 0,  start_k = start_{k-1} + length_{k-1} + interval,
        noise k is used iff start_k < length.

    Args:
      noise_lengths: int [..., K], samples of each candidate noise (in drawing order).
      interval: int, samples of silence after each noise (`--fg-interval` x rate).
      length: int, samples of the speech.
    Returns:
      (starts int32 [..., K], used bool [..., K]).
    """
    lengths = tf.cast(noise_lengths, tf.int32)
    starts = tf.math.cumsum(lengths + tf.cast(interval, tf.int32), axis=-1, exclusive=True)
    return starts, starts < tf.cast(length, tf.int32)


def mix_foreground(speech: tf.Tensor, noises: tf.Tensor, noise_lengths, snr_db,
                   interval) -> tf.Tensor:
    """Kaldi's foreground noise: whole noises at intervals, each at its own SNR.

    As wav-reverberate's AddNoise does for each `--additive-signals` entry: the gain of
    noise k is sqrt(10^(-snr_k/10) * P_speech / P_noise_k), with P_speech the mean
    square of the whole speech and P_noise_k that of the whole noise k (its first
    `noise_lengths[k]` samples), and the scaled noise is added from `start_k`
    (`foreground_starts`), cut at the end of the speech.

    Args:
      speech: float [..., samples].
      noises: float [..., K, max_noise_samples], candidate noises zero-padded; K must be
        at least the number placed (ceil(samples / (min length + interval))); unused
        candidates are ignored.
      noise_lengths: int [..., K] valid samples of each noise.
      snr_db: float [..., K] (or broadcastable), one SNR per noise.
      interval: int samples between the end of a noise and the start of the next.
    Returns:
      float32 [..., samples].
    """
    speech = tf.convert_to_tensor(speech, tf.float32)
    noises = tf.convert_to_tensor(noises, tf.float32)
    lengths = tf.cast(noise_lengths, tf.int32)
    samples = tf.shape(speech)[-1]
    starts, used = foreground_starts(lengths, interval, samples)
    # offsets[..., k, t]: the sample of noise k that lands on speech sample t.
    offsets = tf.range(samples)[tf.newaxis, :] - starts[..., tf.newaxis]
    inside = (offsets >= 0) & (offsets < lengths[..., tf.newaxis]) & used[..., tf.newaxis]
    last = tf.maximum(tf.shape(noises)[-1] - 1, 0)
    placed = tf.gather(noises, tf.clip_by_value(offsets, 0, last),
                       batch_dims=noises.shape.rank - 1)
    placed = tf.where(inside, placed, tf.zeros_like(placed))
    valid = tf.range(tf.shape(noises)[-1]) < lengths[..., tf.newaxis]
    noise_power = tf.math.divide_no_nan(
        tf.reduce_sum(tf.where(valid, tf.square(noises), tf.zeros_like(noises)), axis=-1),
        tf.cast(lengths, tf.float32))
    gains = gain_for_snr(signal_power(speech)[..., tf.newaxis], noise_power,
                         tf.convert_to_tensor(snr_db, tf.float32))
    gains = tf.where(used, gains, tf.zeros_like(gains))
    return speech + tf.reduce_sum(gains[..., tf.newaxis] * placed, axis=-2)
