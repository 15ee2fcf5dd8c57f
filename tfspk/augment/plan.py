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
from tfspk.augment.mixing import (foreground_starts, mix_at_snr, mix_babble, signal_power)
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


def _draw_kinds(config: AugmentationConfig, seeds) -> tuple[tf.Tensor, tf.Tensor]:
    if config.exclusive:
        kind = _categorical(seeds[0], [config.reverb, config.noise, config.music,
                                       config.babble])
        reverb = tf.equal(kind, 0)
        additive = tf.where((kind >= 1) & (kind <= 3), kind, NONE)
    else:
        reverb = tf.random.stateless_uniform([], seeds[1]) < config.reverb
        kind = _categorical(seeds[0], [config.noise, config.music, config.babble])
        additive = tf.where(kind <= 2, kind + 1, NONE)
    return reverb, tf.cast(additive, tf.int32)


def draw_kinds(config: AugmentationConfig, seed) -> tuple[tf.Tensor, tf.Tensor]:
    """`draw_plan(config, seed)`'s `reverb` and `additive` alone, drawing nothing else:
    what a source stream needs to know whether an example uses it."""
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 9))
    return _draw_kinds(config, seeds[:2])


def draw_plan(config: AugmentationConfig, seed, *, num_frames: int, num_features: int,
              num_fg_noises: int = 1) -> dict[str, tf.Tensor]:
    """Draws one example's augmentation decisions from `seed` (int [2]).

    `num_fg_noises` SNRs are drawn for foreground noise (`noise_snr_db`); the first is
    `snr_db`, so a one-noise crop gets the same SNR whatever the count."""
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 9))
    reverb, additive = _draw_kinds(config, seeds)
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
    more_noise_snrs = _draw_snr(tf.random.experimental.stateless_fold_in(seeds[2], 1),
                                config.noise_snrs, config.snr_sampling,
                                [max(int(num_fg_noises), 1) - 1])
    plan = {
        "noise_snr_db": tf.concat([noise_snr[tf.newaxis], more_noise_snrs], 0),
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


def premix_additive(plan: dict[str, tf.Tensor], crops: tf.Tensor, lengths: tf.Tensor,
                    fg_interval: int | None = None) -> tf.Tensor:
    """One example's additive sources as a single signal at unit speech power.

    Every additive kind sets source k's gain from the power of the speech it is added
    to, gain_k = sqrt(P_speech) * w_k with w_k = 1 / sqrt(10^(snr_k / 10) * P_k), so the
    sources of an example can be summed before the speech is known:
    A = sum_k w_k * source_k, and `augment_waveforms` adds sqrt(P_speech) * A. Carrying
    A instead of up to seven babble crops (or three candidate noises) per example makes
    the batch, and what is sent to an accelerator, up to 7x smaller.

    Args:
      plan: this example's plan (`additive`, `snr_db`, `noise_snr_db`, `babble_snr_db`,
        `num_babble`).
      crops: [n, samples] sources (`AugmentationSources.example_streams`): none for no
        additive kind, one for music and background noise, the babble talkers (the first
        `num_babble` are used), or candidate foreground noises.
      lengths: [n] valid samples of each (its power is over those).
      fg_interval: samples between foreground noises (`AugmentationConfig.fg_interval`
        at the sample rate); None: noise is background. Foreground noise k is placed at
        `mixing.foreground_starts` and cut at the end (`mixing.mix_foreground`).
    Returns:
      float32 [samples].
    """
    crops = tf.convert_to_tensor(crops, tf.float32)
    lengths = tf.cast(lengths, tf.int32)
    count, samples = tf.shape(crops)[0], tf.shape(crops)[1]
    additive = plan["additive"]
    index = tf.range(count)

    def per_source(values):
        values = tf.reshape(tf.cast(values, tf.float32), [-1])
        return tf.gather(values, tf.minimum(index, tf.size(values) - 1))

    noise_snrs = plan["noise_snr_db"] if "noise_snr_db" in plan else plan["snr_db"]
    snr = tf.where(tf.equal(additive, BABBLE), per_source(plan["babble_snr_db"]),
                   tf.where(tf.equal(additive, NOISE), per_source(noise_snrs),
                            per_source(plan["snr_db"])))
    used = tf.where(tf.equal(additive, BABBLE), index < plan["num_babble"], index < 1)
    power = tf.math.divide_no_nan(tf.reduce_sum(tf.square(crops), -1),
                                  tf.cast(lengths, tf.float32))
    if fg_interval is not None:
        starts, placed = foreground_starts(lengths, fg_interval, samples)
        foreground = tf.equal(additive, NOISE)
        used = tf.where(foreground, placed, used)
        starts = tf.where(foreground & placed, starts, tf.zeros_like(starts))

        def shifted():
            # Noise k from starts[k] on, cut at the end of the crop (rarely needed: only
            # after a noise shorter than the crop).
            return tf.map_fn(lambda row_start: tf.pad(
                row_start[0][:samples - row_start[1]], [[row_start[1], 0]]),
                (crops, starts), fn_output_signature=tf.float32)

        crops = tf.cond(tf.reduce_any(starts > 0), shifted, lambda: crops)
    weights = tf.sqrt(tf.math.divide_no_nan(1.0, tf.pow(10.0, snr / 10.0) * power))
    weights = tf.where(used, weights, tf.zeros_like(weights))
    return tf.reduce_sum(weights[:, tf.newaxis] * crops, axis=0)


def augment_waveforms(waveforms: tf.Tensor, plan: dict[str, tf.Tensor],
                      sources: dict[str, tf.Tensor]) -> tf.Tensor:
    """Applies batched plans to `waveforms` [batch, samples].

    `sources` holds the batched source crops of the enabled kinds: `rir`
    [batch, rir_samples], and either `additive` [batch, samples] (`premix_additive`,
    what `tfspk.data.train_dataset` yields) or the crops per kind: `noise` and `music`
    [batch, samples'], `babble` [batch, max_speakers, samples']. Reverberation comes
    first, then the additive kind, whose SNR is measured against the (possibly
    reverberant) speech, as in Kaldi.
    """
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    if "rir" in sources:
        waveforms = tf.where(plan["reverb"][:, tf.newaxis],
                             reverberate(waveforms, sources["rir"]), waveforms)
    if "additive" in sources:
        return waveforms + tf.sqrt(signal_power(waveforms))[:, tf.newaxis] * tf.convert_to_tensor(
            sources["additive"], tf.float32)
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
