"""tf.data input pipelines: training crops with augmentation and features, evaluation
utterances.

Training (`train_dataset`), per input pipeline:

  shards (this worker's share) -> shuffled file order, repeated -> interleave
  -> shuffle records -> per example (stateless, seeded by (pipeline seed, index)):
     parse (the PCM stays raw bytes), draw the augmentation plan, random crop of
     exactly the samples that give `num_frames` frames, decoding only those samples
     (speed-perturbed crops are cut longer or shorter and resampled to that length)
     -> zip with the augmentation sources (`AugmentationSources.example_streams`: a
     kind's stream is read only for the examples whose plan applies it)
     -> [speaker-balanced grouping] -> the additive sources summed at unit speech power
     (`augment.premix_additive`: one signal per example, whatever the kind)
     -> batch (drop_remainder) -> augment + MFCC + CMN + SpecAugment
     (`device_augment_and_features`, in tf.data, or later on the accelerator)
  -> prefetch.

Utterances shorter than the crop are tiled (repeated end to start), not zero-padded,
so every training example has exactly `num_frames` frames of speech and the `lengths`
are all `num_frames`; padding would teach the network on silence and make the frame
statistics depend on utterance length.

Speaker-balanced batches (`speaker_balanced=(N, M)`, N speakers x M utterances) use
`group_by_window` keyed by label after the crop: a group of M crops of one speaker is
emitted as soon as it is complete and N groups form a batch. It streams any number of
speakers (no per-speaker dataset or file list is needed); memory is at most M - 1
pending crops per speaker (for 6,000 speakers, M = 2, 2-s crops: about 0.8 GB); the
same speaker can appear in two groups of one batch when few speakers remain open,
which becomes rare as the number of speakers grows.

Determinism: with a seed, every random choice is a stateless op of (seed, example
index) or a seeded shuffle, every parallel map keeps order and
`tf.data.Options.deterministic` is set, so the same seed gives the same batches.
"""
from __future__ import annotations

import os
import random
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf

from tfspk import features as features_lib
from tfspk import paths, schema
from tfspk.augment import (AugmentationConfig, AugmentationSources, augment_waveforms,
                           draw_plan, mask_features, resample_to_length, speed_label)
from tfspk.augment.cropping import random_crop_pcm16
from tfspk.augment.plan import draw_kinds, premix_additive
from tfspk.augment.speed import perturbed_length
from tfspk.frontend import framing
from tfspk.frontend import layers as frontend_layers

_SOURCE_PLAN_KEYS = ("reverb", "additive", "snr_db", "noise_snr_db", "babble_snr_db",
                     "num_babble")
_MASK_PLAN_KEYS = ("time_mask_start", "time_mask_width", "freq_mask_start", "freq_mask_width")


def samples_for_frames(num_frames: int, feature_options: Mapping[str, Any] | None = None,
                       sample_rate: int = 16000) -> int:
    """The fewest samples that give exactly `num_frames` feature frames."""
    options = features_lib.resolve_options("mfcc", sample_rate, **dict(feature_options or {}))
    return framing.FrameGrid.from_options(sample_rate, **options).samples_for_frames(
        num_frames)


def make_frontend(feature_options: Mapping[str, Any] | None = None, cmn: bool | str = True,
                  sample_rate: int = 16000) -> features_lib.MfccFeatures:
    """The MFCC layer (paper defaults when `feature_options` is None) with CMN."""
    return frontend_layers.build_mfcc_frontend(sample_rate, cmn, feature_options)


def device_augment_and_features(inputs: Mapping[str, Any], frontend) -> dict[str, tf.Tensor]:
    """Augmentation + features for one batch from `train_dataset(features_on_device=True)`.

    Call it inside the (distributed) training step so the FFT convolutions, mixing and
    MFCCs run on the accelerator. `inputs` has `waveform` [B, S] and `lengths` [B]
    (samples) and, when augmenting, the per-example `plan` and source crops `sources`
    drawn in tf.data; `frontend` maps (waveform, lengths) to (features, frame_lengths),
    e.g. `make_frontend(...)` or `tfspk.features.MfccFeatures`.

    Returns {"features": [B, frames, C], "lengths": [B] int32}. Speed perturbation is
    not here: it decides how many samples to crop, so it stays in tf.data.
    """
    waveform = inputs["waveform"]
    plan = inputs.get("plan", {})
    sources = inputs.get("sources")
    if sources:
        waveform = augment_waveforms(waveform, plan, sources)
    network_inputs = frontend_layers.network_inputs(frontend, waveform, inputs["lengths"])
    if "time_mask_start" in plan:
        network_inputs["features"] = mask_features(network_inputs["features"], plan)
    return network_inputs


def _pipeline_seed(seed: int, pipeline_id: int) -> int:
    """A distinct 31-bit seed for each input pipeline (worker) from the user's seed."""
    return int(np.random.SeedSequence([seed, pipeline_id]).generate_state(1)[0] % (2**31 - 1))


def _shard_files(files: list[str], input_context) -> tuple[list[str], bool]:
    """This pipeline's files; (all files, True) when there are too few to split, in
    which case examples are sharded instead (every worker reads every file)."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return files, False
    count, index = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) >= count:
        return files[index::count], False
    return files, True


def _records_with_filenames(files: list[str], *, cycle_length: int, seed: int | None,
                            repeat: bool) -> tf.data.Dataset:
    """(serialized example, shard path) pairs, so errors can name the file."""
    names = tf.data.Dataset.from_tensor_slices(files)
    if repeat:
        names = names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()

    gzip = [f.endswith(".gz") for f in files]
    if any(gzip) and not all(gzip):
        raise ShardFilesError(f"{files[gzip.index(False)]} and {files[gzip.index(True)]}: "
                              "a mix of gzip and uncompressed shards; use one kind")
    compression = "GZIP" if all(gzip) else ""

    def read(path):
        return tf.data.TFRecordDataset(path, compression_type=compression).map(
            lambda record: (record, path))

    return names.interleave(read, cycle_length=max(1, min(cycle_length, len(files))),
                            block_length=1, num_parallel_calls=tf.data.AUTOTUNE)


class ShardFilesError(ValueError):
    """A shard glob matches files that are not shards, or shards without any example."""


def _shard_files_checked(file_pattern, require_examples: bool) -> list[str]:
    """The files of a shard glob, refusing non-shard files (sidecar `.json`, `.tmp-`
    leftovers, ...) by name, and, for training, shards that hold no record at all:
    an endlessly repeated empty dataset would make the first batch wait forever."""
    from tfspk.shards.verify import SHARD_NAME_RE

    # Not the augmentation sources' helper: a bad shard glob is a shard error.
    files = paths.list_files(file_pattern, "TFRecord shards", error=ShardFilesError)
    wrong = [f for f in files if not SHARD_NAME_RE.search(f)]
    if wrong:
        raise ShardFilesError(f"{file_pattern}: matches files that are not TFRecord shards: "
                              f"{', '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''}")
    if require_examples:
        for path in files:
            compression = "GZIP" if path.endswith(".gz") else ""
            if any(True for _ in tf.data.TFRecordDataset(path, compression).take(1)):
                break
        else:
            raise ShardFilesError(f"{file_pattern}: the {len(files)} shard(s) hold no "
                                  "examples")
    return files


# What training and evaluation read of an example: the PCM stays raw bytes here, so a
# training crop decodes only its own samples (`random_crop_pcm16`) and the phone lists
# are never parsed.
_RECORD_SPEC = {key: schema.FEATURE_SPEC[key] for key in (
    "schema_version", "utt_id", "speaker", "label", "audio_pcm16", "sample_rate")}


def _parse_record(serialized, path, sample_rate: int, labelled: bool) -> dict:
    """`pcm` (raw little-endian int16 bytes), `label`, `utt_id`, `speaker` of one record,
    after the checks every reader makes (schema version, rate, non-empty, label)."""
    example = tf.io.parse_single_example(serialized, _RECORD_SPEC)
    checks = [
        tf.debugging.assert_less_equal(
            example["schema_version"], tf.constant(schema.SCHEMA_VERSION, tf.int64),
            message="TFRecord written by a newer tfspk schema"),
        tf.debugging.Assert(
            tf.equal(example["sample_rate"], sample_rate),
            [f"sample rate differs from the expected {sample_rate} Hz; shard, utt_id, rate:",
             path, example["utt_id"], example["sample_rate"]]),
        tf.debugging.Assert(tf.strings.length(example["audio_pcm16"]) >= 2,
                            ["empty utterance; shard, utt_id:", path, example["utt_id"]]),
    ]
    if labelled:
        checks.append(tf.debugging.Assert(
            example["label"] >= 0,
            ["utterance without a speaker label (label -1: build the shards with a "
             "speakers.tsv); shard, utt_id:", path, example["utt_id"]]))
    with tf.control_dependencies(checks):
        return {"pcm": tf.identity(example["audio_pcm16"]),
                "label": tf.identity(example["label"]),
                "utt_id": example["utt_id"], "speaker": example["speaker"]}


def _parse_checked(serialized, path, sample_rate: int, labelled: bool) -> dict:
    """`_parse_record` with the whole waveform decoded (float32 in [-1, 1])."""
    example = _parse_record(serialized, path, sample_rate, labelled)
    return dict(example, waveform=schema.decode_pcm16(example.pop("pcm")))


def _example_seeds(base_seed: int, index) -> tuple[tf.Tensor, tf.Tensor]:
    """The crop and plan seeds of the `index`-th example of a pipeline."""
    seed = tf.stack([tf.constant(base_seed, tf.int64), tf.cast(index, tf.int64)])
    crop_seed, plan_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    return crop_seed, plan_seed


def _example_kinds(augmentation: AugmentationConfig, base_seed: int) -> tf.data.Dataset:
    """(reverb, additive) of the `index`-th example's plan, for every index.

    Drawn from the same seed as `_crop_example` draws the plan (`draw_kinds` is the
    part of `draw_plan` that picks the kinds), so the source streams line up with the
    examples without a second pass over the records."""
    return tf.data.Dataset.range(2**62).map(
        lambda index: draw_kinds(augmentation, _example_seeds(base_seed, index)[1]),
        num_parallel_calls=tf.data.AUTOTUNE)


def _crop_example(index, example, *, base_seed: int, crop_samples: int,
                  augmentation: AugmentationConfig | None, num_frames: int,
                  num_features: int, num_fg_noises: int = 1) -> dict:
    """Random crop (with speed perturbation) and the plan of one example."""
    crop_seed, plan_seed = _example_seeds(base_seed, index)
    label = tf.cast(example["label"], tf.int32)
    if augmentation is None:
        waveform = random_crop_pcm16(example["pcm"], crop_samples, crop_seed)
        return {"waveform": tf.ensure_shape(waveform, [crop_samples]), "label": label,
                "plan": {}}
    plan = draw_plan(augmentation, plan_seed, num_frames=num_frames, num_features=num_features,
                     num_fg_noises=num_fg_noises)
    if augmentation.speed > 0:
        # Cut factor x the crop and play it factor times faster: exactly crop_samples.
        source_samples = perturbed_length(crop_samples, 1.0 / plan["speed_factor"])
        waveform = random_crop_pcm16(example["pcm"], source_samples, crop_seed)
        waveform = tf.cond(plan["speed_index"] > 0,
                           lambda: resample_to_length(waveform, crop_samples),
                           lambda: waveform)
        label = speed_label(label, plan["speed_index"], augmentation.speed_label_offset)
    else:
        waveform = random_crop_pcm16(example["pcm"], crop_samples, crop_seed)
    wanted = (_SOURCE_PLAN_KEYS if augmentation.source_kinds else ()) + (
        _MASK_PLAN_KEYS if augmentation.specaugment > 0 else ())
    return {"waveform": tf.ensure_shape(waveform, [crop_samples]), "label": label,
            "plan": {key: plan[key] for key in wanted}}


def _balanced(dataset: tf.data.Dataset, speakers: int, per_speaker: int,
              batch_size: int) -> tf.data.Dataset:
    if speakers * per_speaker != batch_size:
        raise ValueError(f"speaker_balanced={speakers}x{per_speaker} needs batch_size "
                         f"{speakers * per_speaker}, got {batch_size}")
    grouped = dataset.group_by_window(
        key_func=lambda example: tf.cast(example["label"], tf.int64),
        # padded_batch: gated source crops are empty for examples that do not use them.
        reduce_func=lambda _, window: window.padded_batch(per_speaker, drop_remainder=True),
        window_size=per_speaker)
    # Groups are M consecutive examples and batches hold N * M, so every batch is N
    # whole groups.
    return grouped.unbatch()


def _shard_set_weights(patterns: list, label_offsets, set_speakers) -> list[float] | None:
    """Sampling probability of each shard set (None: the globs form one pool)."""
    if label_offsets is None and set_speakers is None:
        return None
    for name, values in (("label_offsets", label_offsets), ("set_speakers", set_speakers)):
        if values is not None and len(values) != len(patterns):
            raise ValueError(f"{name} has {len(values)} entries for {len(patterns)} shard "
                             f"sets ({', '.join(map(str, patterns))})")
    if set_speakers is None:
        return [1.0 / len(patterns)] * len(patterns)
    if any(count < 1 for count in set_speakers):
        raise ValueError(f"set_speakers must all be >= 1, got {list(set_speakers)}")
    total = float(sum(set_speakers))
    return [count / total for count in set_speakers]


def train_dataset(file_pattern, *, batch_size: int, num_frames: int = 200,
                  feature_options: Mapping[str, Any] | None = None, cmn: bool | str = True,
                  augmentation: AugmentationConfig | None = None,
                  augmentation_sources: AugmentationSources | None = None,
                  speaker_balanced: tuple[int, int] | None = None, seed: int | None = None,
                  input_context: tf.distribute.InputContext | None = None,
                  features_on_device: bool = False, shuffle_buffer: int = 2048,
                  cycle_length: int = 8, sample_rate: int = 16000,
                  label_offsets: Sequence[int] | None = None,
                  set_speakers: Sequence[int] | None = None) -> tf.data.Dataset:
    """Infinite training batches of fixed-length crops from `tfspk.schema` shards.

    Args:
      file_pattern: glob (or list of globs) of TFRecord shards with speaker labels.
        Without `label_offsets`/`set_speakers` the globs' files form one pool.
        With either, each glob is a shard set with its own pipeline: its labels are
        shifted by `label_offsets[i]` (sets built with different speaker maps would
        otherwise share labels), and set i is drawn with probability
        `set_speakers[i] / sum(set_speakers)` (uniformly without `set_speakers`).
        Weighting a set by its speakers makes the sampler speaker-balanced across
        sets: a speaker of a small real-speech set is drawn about as often as one of
        a large synthetic set (exactly so when each set has as many utterances per
        speaker).
      batch_size: examples per yielded batch, i.e. per replica: under
        `strategy.distribute_datasets_from_function` pass
        `input_context.get_per_replica_batch_size(global_batch_size)`.
      num_frames: feature frames per example; the crop is exactly the samples needed.
      feature_options: `tfspk.features` MFCC options (None: the paper's 40-dim MFCC).
      cmn: True (per-crop mean normalisation), False, or a `MfccFeatures` cmn mode.
      augmentation, augmentation_sources: see `tfspk.augment`; sources are needed when
        reverb, noise, music or babble is enabled.
      speaker_balanced: (N speakers, M utterances per speaker), N * M == batch_size.
      seed: makes the batches reproducible; None draws a fresh seed.
      input_context: `tf.distribute.InputContext`; each input pipeline reads its own
        shards (or, with fewer shards than pipelines, its own share of examples).
      features_on_device: yield waveforms and leave augmentation and features to
        `device_augment_and_features` in the training step.
      shuffle_buffer: examples (whole utterances) in the shuffle buffer.
      cycle_length: shards read in parallel.
      sample_rate: expected rate of every example; a mismatch is an error.
      label_offsets, set_speakers: per shard set (see `file_pattern`).

    Yields:
      ({"features": [B, num_frames, C] float32, "lengths": [B] int32}, labels [B] int32),
      or with `features_on_device`: ({"waveform": [B, S], "lengths": [B] (samples),
      "plan": {...}, "sources": {...}}, labels), "plan"/"sources" holding what
      augmentation needs (empty without it).
    """
    patterns = ([file_pattern] if isinstance(file_pattern, (str, os.PathLike))
                else list(file_pattern))
    weights = _shard_set_weights(patterns, label_offsets, set_speakers)
    groups = [patterns] if weights is None else [[pattern] for pattern in patterns]
    offsets = list(label_offsets) if label_offsets is not None else [0] * len(groups)
    files_per_set = [_shard_files_checked(group if len(group) > 1 else group[0],
                                          require_examples=True) for group in groups]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if augmentation is not None and augmentation.source_kinds:
        if augmentation_sources is None:
            raise ValueError(f"augmentation enables {list(augmentation.source_kinds)} but "
                             "augmentation_sources is None")
        augmentation_sources.check(augmentation)
    deterministic = seed is not None
    if seed is None:
        seed = random.SystemRandom().randrange(2**31 - 1)
    pipeline_id = 0 if input_context is None else input_context.input_pipeline_id
    base_seed = _pipeline_seed(seed, pipeline_id)
    crop_samples = samples_for_frames(num_frames, feature_options, sample_rate)
    frontend = make_frontend(feature_options, cmn, sample_rate)

    per_set = []
    for index, (files, offset) in enumerate(zip(files_per_set, offsets)):
        # Set 0 keeps the seeds a single pool always had; set i > 0 gets its own.
        set_seed = base_seed + 1000 * index
        files, shard_examples = _shard_files(files, input_context)
        records = _records_with_filenames(files, cycle_length=cycle_length, seed=set_seed,
                                          repeat=True)
        if shard_examples:
            records = records.shard(input_context.num_input_pipelines, pipeline_id)
        records = records.shuffle(shuffle_buffer, seed=set_seed + 1,
                                  reshuffle_each_iteration=True)
        if len(files_per_set) == 1 and not offset:
            per_set.append(records)  # parsed in the crop's map: one function per example
            break

        def parse(record, path, offset=offset):
            example = _parse_record(record, path, sample_rate, True)
            return dict(example, label=example["label"] + offset) if offset else example

        per_set.append(records.map(parse, num_parallel_calls=tf.data.AUTOTUNE))
    fused_parse = isinstance(per_set[0].element_spec, tuple)
    examples = per_set[0] if len(per_set) == 1 else tf.data.Dataset.sample_from_datasets(
        per_set, weights=weights, seed=base_seed + 2)
    num_fg_noises = 1 if augmentation is None else augmentation.max_fg_noises(
        crop_samples, sample_rate)
    fg_interval = None if augmentation is None or (
        augmentation.noise_placement != "foreground") else augmentation.fg_interval_samples(
            sample_rate)
    examples = examples.enumerate().map(
        lambda index, example: _crop_example(
            index, _parse_record(*example, sample_rate, True) if fused_parse else example,
            base_seed=base_seed, crop_samples=crop_samples,
            augmentation=augmentation, num_frames=num_frames,
            num_features=frontend.feature_dim, num_fg_noises=num_fg_noises),
        num_parallel_calls=tf.data.AUTOTUNE)
    uses_sources = augmentation is not None and bool(augmentation.source_kinds)

    def to_inputs(example, streams=None):
        # One map per example after the crop: the additive sources are summed at unit
        # speech power here (`premix_additive`), so a batch carries one signal per
        # example instead of up to seven babble crops.
        streams = example.get("sources", {}) if streams is None else streams
        sources = {}
        if "rir" in streams:
            sources["rir"] = streams["rir"]
        if "additive" in streams:
            crops, lengths = streams["additive"]
            sources["additive"] = tf.ensure_shape(premix_additive(
                example["plan"], crops, lengths, fg_interval), [crop_samples])
        inputs = {"waveform": example["waveform"],
                  "lengths": tf.constant(crop_samples, tf.int32),
                  "plan": example["plan"], "sources": sources}
        return inputs, example["label"]

    if uses_sources:
        # Zipped before balancing, while an example's position is still its plan index; a
        # kind the plan does not apply is not read (an empty crop or zeros travel).
        streams = augmentation_sources.example_streams(
            augmentation, crop_samples, base_seed, _example_kinds(augmentation, base_seed))
        examples = tf.data.Dataset.zip((examples, streams))
        if speaker_balanced is not None:
            examples = examples.map(lambda example, crops: dict(example, sources=crops))
    if speaker_balanced is not None:
        examples = _balanced(examples, *speaker_balanced, batch_size)
    if uses_sources and speaker_balanced is None:
        examples = examples.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        examples = examples.map(lambda example: to_inputs(example),
                                num_parallel_calls=tf.data.AUTOTUNE)
    batches = examples.batch(batch_size, drop_remainder=True)
    if not features_on_device:
        batches = batches.map(
            lambda inputs, labels: (device_augment_and_features(inputs, frontend), labels),
            num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)


def eval_dataset(file_pattern, *, batch_size: int, sample_rate: int = 16000,
                 max_seconds: float | None = None) -> tf.data.Dataset:
    """Whole utterances in shard order, zero-padded per batch.

    Yields dicts: `waveform` [B, S] float32, `lengths` [B] int32 (valid samples),
    `utt_id` and `speaker` [B] strings, `label` [B] int32 (-1 for unlabelled shards).
    `max_seconds` keeps only the first `max_seconds` of each utterance. Batches are not
    sorted by length: the order of the shards is kept so results line up with them.
    """
    files = _shard_files_checked(file_pattern, require_examples=False)
    max_samples = None if max_seconds is None else int(round(max_seconds * sample_rate))
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")

    def to_utterance(record, path):
        example = _parse_checked(record, path, sample_rate, labelled=False)
        waveform = example["waveform"]
        if max_samples is not None:
            waveform = waveform[:max_samples]
        return {"waveform": waveform, "lengths": tf.shape(waveform)[0],
                "utt_id": example["utt_id"], "speaker": example["speaker"],
                "label": tf.cast(example["label"], tf.int32)}

    records = _records_with_filenames(files, cycle_length=1, seed=None, repeat=False)
    utterances = records.map(to_utterance, num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=True)
    return utterances.padded_batch(batch_size).prefetch(tf.data.AUTOTUNE)
