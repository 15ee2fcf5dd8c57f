"""Random augmentation decisions per example (`draw_plan`) and their application per
batch (`augment_waveforms`).

Drawing and applying are split so that every random choice is made in tf.data with
stateless ops from an explicit per-example seed (reproducible whatever the parallelism),
while the arithmetic (FFT convolution, mixing, masking) is a pure function of its
inputs that can run in tf.data or inside a training step on an accelerator.

A plan is a dict of tensors (per example: scalars or short vectors):
  `reverb` bool; `additive` int32 (`NONE`, `NOISE`, `MUSIC`, `BABBLE`); `snr_db` float32
  (noise or music); `babble_snr_db` float32 [max babble speakers]; `num_babble` int32;
  `speed_index` int32 (0 = unperturbed, j + 1 = `speed_factors[j]`); `speed_factor`
  float32; `time_mask_start/width`, `freq_mask_start/width` int32 vectors (widths are 0
  for an example that SpecAugment skips).
"""
from __future__ import annotations

import tensorflow as tf

from tfspk.augment import specaugment
from tfspk.augment.config import AugmentationConfig
from tfspk.augment.mixing import mix_at_snr, mix_babble
from tfspk.augment.reverb import reverberate

NONE, NOISE, MUSIC, BABBLE = 0, 1, 2, 3


def _categorical(seed, probabilities) -> tf.Tensor:
    """Index i with probability probabilities[i]; len(probabilities) with the rest."""
    cumulative = tf.math.cumsum(tf.constant(probabilities, tf.float32))
    u = tf.random.stateless_uniform([], seed)
    return tf.reduce_sum(tf.cast(u >= cumulative, tf.int32))


def _draw_snr(seed, values, sampling: str, shape=()) -> tf.Tensor:
    if sampling == "uniform":
        return tf.random.stateless_uniform(shape, seed, min(values), max(values))
    index = tf.random.stateless_uniform(shape, seed, 0, len(values), tf.int32)
    return tf.gather(tf.constant(values, tf.float32), index)


def draw_plan(config: AugmentationConfig, seed, *, num_frames: int,
              num_features: int) -> dict[str, tf.Tensor]:
    """Draws one example's augmentation decisions from `seed` (int [2])."""
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 9))
    if config.exclusive:
        kind = _categorical(seeds[0], [config.reverb, config.noise, config.music,
                                       config.babble])
        reverb = tf.equal(kind, 0)
        additive = tf.where((kind >= 1) & (kind <= 3), kind, NONE)
    else:
        reverb = tf.random.stateless_uniform([], seeds[1]) < config.reverb
        kind = _categorical(seeds[0], [config.noise, config.music, config.babble])
        additive = tf.where(kind <= 2, kind + 1, NONE)
    noise_snr = _draw_snr(seeds[2], config.noise_snrs, config.snr_sampling)
    music_snr = _draw_snr(seeds[3], config.music_snrs, config.snr_sampling)
    low, high = config.babble_speakers
    speed_index = tf.where(
        tf.random.stateless_uniform([], seeds[6]) < config.speed,
        tf.random.stateless_uniform([], seeds[7], 1, len(config.speed_factors) + 1, tf.int32),
        0)
    factors = tf.constant((1.0,) + config.speed_factors, tf.float32)
    specaugment_seed, enable_seed = tf.unstack(
        tf.random.experimental.stateless_split(seeds[5], 2))
    plan = {
        "reverb": reverb,
        "additive": tf.cast(additive, tf.int32),
        "snr_db": tf.where(tf.equal(additive, MUSIC), music_snr, noise_snr),
        "babble_snr_db": _draw_snr(seeds[4], config.babble_snrs, config.snr_sampling,
                                   [high]),
        "num_babble": tf.random.stateless_uniform([], seeds[8], low, high + 1, tf.int32),
        "speed_index": speed_index,
        "speed_factor": tf.gather(factors, speed_index),
    }
    plan.update(specaugment.draw_masks(
        specaugment_seed, num_frames=num_frames, num_features=num_features,
        num_time_masks=config.num_time_masks, max_time_width=config.max_time_mask_frames,
        num_freq_masks=config.num_freq_masks, max_freq_width=config.max_freq_mask_bins,
        enabled=tf.random.stateless_uniform([], enable_seed) < config.specaugment))
    return plan


def augment_waveforms(waveforms: tf.Tensor, plan: dict[str, tf.Tensor],
                      sources: dict[str, tf.Tensor]) -> tf.Tensor:
    """Applies batched plans to `waveforms` [batch, samples].

    `sources` holds the batched source crops of the enabled kinds: `rir`
    [batch, rir_samples], `noise` and `music` [batch, samples'], `babble`
    [batch, max_speakers, samples']. Reverberation comes first, then the additive kind,
    whose SNR is measured against the (possibly reverberant) speech, as in Kaldi.
    """
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    if "rir" in sources:
        waveforms = tf.where(plan["reverb"][:, tf.newaxis],
                             reverberate(waveforms, sources["rir"]), waveforms)
    mixed = waveforms
    additive = plan["additive"][:, tf.newaxis]
    for kind, code in (("noise", NOISE), ("music", MUSIC)):
        if kind in sources:
            mixed = tf.where(tf.equal(additive, code),
                             mix_at_snr(waveforms, sources[kind], plan["snr_db"]), mixed)
    if "babble" in sources:
        babble = mix_babble(waveforms, sources["babble"], plan["babble_snr_db"],
                            plan["num_babble"])
        mixed = tf.where(tf.equal(additive, BABBLE), babble, mixed)
    return mixed


def mask_features(features: tf.Tensor, plan: dict[str, tf.Tensor]) -> tf.Tensor:
    """Applies the plan's SpecAugment masks to `features` [batch, frames, features]."""
    return specaugment.apply_masks(features, plan)
