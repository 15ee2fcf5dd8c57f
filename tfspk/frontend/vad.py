"""Kaldi's energy voice-activity detection (`compute-vad`) on raw MFCCs."""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf

from tfspk.frontend.normalization import _as_feature_batch

# Kaldi ivector/voice-activity-detection.h defaults (compute-vad).
KALDI_VAD_OPTIONS: Mapping[str, Any] = {
    "vad_energy_threshold": 5.0,
    "vad_energy_mean_scale": 0.5,
    "vad_frames_context": 0,
    "vad_proportion_threshold": 0.6,
}

# Kaldi egs/voxceleb/v2/conf/vad.conf.
VOXCELEB_V2_VAD_OPTIONS: Mapping[str, Any] = {
    "vad_energy_threshold": 5.5,
    "vad_energy_mean_scale": 0.5,
    "vad_frames_context": 2,
    "vad_proportion_threshold": 0.12,
}


def energy_vad(features, lengths=None, vad_energy_threshold=5.0,
               vad_energy_mean_scale=0.5, vad_frames_context=0,
               vad_proportion_threshold=0.6):
    """Kaldi's `compute-vad` on column 0 (log-energy / C0) of raw MFCCs.

    A frame is above threshold when its C0 exceeds `vad_energy_threshold +
    vad_energy_mean_scale * mean(C0 over the row's valid frames)`; it is voiced
    when at least `vad_proportion_threshold` of the valid frames within
    `vad_frames_context` frames either side are above threshold. Defaults are
    compute-vad's (`KALDI_VAD_OPTIONS`); `VOXCELEB_V2_VAD_OPTIONS` is the
    VoxCeleb recipe's. Apply it before any mean normalisation.

    Returns bool [batch, frames] (or [frames]); False past each row's length.
    """
    if vad_energy_mean_scale < 0:
        raise ValueError(f"vad_energy_mean_scale must be >= 0, got {vad_energy_mean_scale}")
    if int(vad_frames_context) != vad_frames_context or vad_frames_context < 0:
        raise ValueError(
            f"vad_frames_context must be an integer >= 0, got {vad_frames_context}")
    if not 0.0 < vad_proportion_threshold < 1.0:
        raise ValueError(
            f"vad_proportion_threshold must be in (0, 1), got {vad_proportion_threshold}")
    features, lengths, valid, batched = _as_feature_batch(features, lengths)
    energy = tf.cast(features[..., 0], tf.float64)
    mask = tf.cast(valid, tf.float64)
    count = tf.maximum(tf.cast(lengths, tf.float64), 1.0)[:, None]
    threshold = vad_energy_threshold + (
        vad_energy_mean_scale * tf.reduce_sum(energy * mask, axis=1, keepdims=True) / count)
    above = tf.cast((energy > threshold) & valid, tf.float64)
    context = int(vad_frames_context)
    kernel = tf.ones([2 * context + 1, 1, 1], tf.float64)

    def context_sum(values):
        # Sum over [t - context, t + context]; the zero padding keeps frames
        # outside the row out of both counts, as Kaldi's bounds check does.
        return tf.nn.conv1d(values[..., None], kernel, stride=1, padding="SAME")[..., 0]

    voiced = context_sum(above) >= context_sum(mask) * vad_proportion_threshold
    voiced &= valid
    return voiced if batched else voiced[0]

