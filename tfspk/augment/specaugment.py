"""SpecAugment-style time and frequency masks on features (Park et al., 2019).

Masks are drawn per example (`draw_masks`, inside tf.data, stateless) and applied per
batch (`apply_masks`, anywhere), so the random decisions are reproducible under a seed
while the masking itself can run on an accelerator. Masked values are set to 0, the mean
of a mean-normalised (CMN) feature, so apply them after CMN.
"""
from __future__ import annotations

import tensorflow as tf


def _draw_intervals(seed, count: int, max_width: int, extent) -> tuple[tf.Tensor, tf.Tensor]:
    """`count` intervals of width U{0..max_width} at uniform starts inside [0, extent)."""
    width_seed, start_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    extent = tf.cast(extent, tf.int32)
    widths = tf.random.stateless_uniform([count], width_seed, 0, max_width + 1, tf.int32)
    widths = tf.minimum(widths, extent)
    fraction = tf.random.stateless_uniform([count], start_seed)
    starts = tf.cast(fraction * tf.cast(extent - widths + 1, tf.float32), tf.int32)
    return starts, widths


def draw_masks(seed, *, num_frames, num_features: int, num_time_masks: int,
               max_time_width: int, num_freq_masks: int, max_freq_width: int,
               enabled=True) -> dict[str, tf.Tensor]:
    """One example's masks: int32 `time_mask_start/width` [num_time_masks] and
    `freq_mask_start/width` [num_freq_masks]; widths are 0 when `enabled` is False."""
    time_seed, freq_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    time_start, time_width = _draw_intervals(time_seed, num_time_masks, max_time_width,
                                             num_frames)
    freq_start, freq_width = _draw_intervals(freq_seed, num_freq_masks, max_freq_width,
                                             num_features)
    keep = tf.cast(enabled, tf.int32)
    return {"time_mask_start": time_start, "time_mask_width": time_width * keep,
            "freq_mask_start": freq_start, "freq_mask_width": freq_width * keep}


def _interval_mask(positions, starts, widths):
    """[..., positions] bool: inside any of the [..., k] intervals."""
    starts = starts[..., tf.newaxis]
    inside = (positions >= starts) & (positions < starts + widths[..., tf.newaxis])
    return tf.reduce_any(inside, axis=-2)


def apply_masks(features: tf.Tensor, masks: dict[str, tf.Tensor]) -> tf.Tensor:
    """Zeroes the masked frames and coefficients of `features` [batch, frames, features];
    `masks` holds [batch, k] tensors from `draw_masks`."""
    features = tf.convert_to_tensor(features)
    frames = tf.range(tf.shape(features)[1])
    coefficients = tf.range(tf.shape(features)[2])
    time = _interval_mask(frames, masks["time_mask_start"], masks["time_mask_width"])
    freq = _interval_mask(coefficients, masks["freq_mask_start"], masks["freq_mask_width"])
    masked = time[:, :, tf.newaxis] | freq[:, tf.newaxis, :]
    return tf.where(masked, tf.zeros_like(features), features)
