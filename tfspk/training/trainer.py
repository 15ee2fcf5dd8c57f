"""The custom training loop shared by every tf.distribute strategy.

Before anything is written to `model_dir`, `preflight` checks the whole run: every
setting in range (`validate_config`, naming the field and its flag), each training
shard set (`tfspk.shards.verify.check_shard_set`: only shard files, each whole as its
metadata records, at least one example) and its speaker map, the model spec against the
one already in `model_dir`, the validation shards and that every utterance the
validation trials name is in them, and a fine-tuning source (`finetune`). Then the
chief holds `model_dir`'s lock (`tfspk.locking.DirectoryLock`; a second run is refused
naming the holder, a killed run's lock is taken over), writes the resolved config
(`config.json`, `flags.txt`), deletes the `ckpt-N_temp` leftovers of a run killed
while saving, and trains.

Process-wide state: a run sets Keras's dtype policy (`mixed_precision`) and the global
seeds (`seed`) for its own duration only (`run_state`); both are put back when `train`
returns or raises. Its TensorBoard writers belong to the run and are closed with it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import random
import sys
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfspk import model_spec as spec_lib
from tfspk.layers.margin import linear_margin_schedule
from tfspk.shards.writer import atomic_write_text
from tfspk.training import checkpointing, finetune, optim, strategies, summaries
from tfspk.training.config import (MIXED_PRECISION, DataConfig, OptimConfig,  # noqa: F401
                                   TrainConfig, TrainConfigError, validate_config)

__all__ = ["DataConfig", "OptimConfig", "Preflight", "TrainConfig", "TrainConfigError",
           "preflight", "train", "validate_config"]


@dataclasses.dataclass(frozen=True)
class ShardSets:
    """The training shard sets (one per `--train_data` glob): the files `check_shard_set`
    accepted, each set's speaker map and the offset added to its labels (sets sharing a
    map share an offset), its number of speakers, and the total."""

    globs: tuple[str, ...]
    checked: tuple[Any, ...]
    speaker_maps: tuple[str, ...]
    label_offsets: tuple[int, ...]
    speakers: tuple[int, ...]
    num_speakers: int


@dataclasses.dataclass(frozen=True)
class Preflight:
    """What `preflight` established: the resolved config (with `num_speakers`), its
    model spec, the training shard sets and the fine-tuning source (or None)."""

    config: TrainConfig
    spec: spec_lib.ModelSpec
    shard_sets: ShardSets
    init_source: finetune.InitSource | None = None


def preflight(config: TrainConfig) -> Preflight:
    """Every check that can refuse a run, before it writes anything (see module doc)."""
    from tfspk import trials as trials_lib
    from tfspk.shards import verify

    from tfspk.training import config as config_lib

    validate_config(config)
    config = config_lib.resolve(config)
    shard_sets = check_shard_sets(config)
    config, spec = _resolve_spec(config, shard_sets)
    data = config.data
    if data.validation_data:
        verify.check_shard_set(data.validation_data, "--validation_data", data.verify_shards)
        trial_list = trials_lib.read_trials(data.validation_trials, self_trials="error")
        check_trial_ids(trial_list, data.validation_data, data.validation_trials)
    source = None
    if config.init_from:
        source = finetune.resolve_source(config.init_from)
        finetune.check_compatible(source, spec)
    if config.freeze_until:
        # Names are checked against the real network now, not after the data pipeline.
        finetune.frozen_layers(spec_lib.build_embedding_model(spec), config.freeze_until)
    return Preflight(config, spec, shard_sets, source)


def check_shard_sets(config: TrainConfig) -> ShardSets:
    """Checks each `--train_data` glob and finds its speaker map (see ShardSets)."""
    from tfspk.shards import verify

    data = config.data
    checked, maps = [], []
    for index, glob in enumerate(data.train_data):
        checked.append(verify.check_shard_set(glob, "--train_data", data.verify_shards))
        if len(data.speakers_tsv) > 1:
            maps.append(data.speakers_tsv[index])
        elif data.speakers_tsv:
            maps.append(data.speakers_tsv[0])
        else:
            maps.append(default_speakers_tsv(glob))
    offsets, counts, known = [], [], {}
    total = 0
    for path in maps:
        key = os.path.realpath(path)
        if key not in known:
            count = read_speaker_count(path)
            if count < 1:
                raise ValueError(f"--speakers_tsv={path}: no speakers")
            known[key] = (total, count)
            total += count
        offsets.append(known[key][0])
        counts.append(known[key][1])
    return ShardSets(tuple(data.train_data), tuple(checked), tuple(maps), tuple(offsets),
                     tuple(counts), total)


def shard_utterance_ids(pattern: str) -> set[str]:
    """The utt_ids of a shard glob: from the shards' sidecars (`tfrecords_tools.build`
    writes one per shard), else by reading the records' `utt_id` feature."""
    import tensorflow as tf

    from tfspk import schema
    from tfspk.shards import metadata

    ids: set[str] = set()
    for path in sorted(tf.io.gfile.glob(pattern)):
        sidecar = path + ".json"
        if tf.io.gfile.exists(sidecar):
            try:
                rows = metadata.read_json(sidecar).get("examples")
            except metadata.MetadataError:
                rows = None
            if rows is not None:
                ids.update(str(row[0]) for row in rows)
                continue
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path, compression).as_numpy_iterator():
            ids.add(schema.parse_example_numpy(record)["utt_id"])
    return ids


def check_trial_ids(trial_list, validation_data: str, validation_trials: str) -> None:
    """Refuses, before step 1, trials naming utterances the validation shards lack
    (training would otherwise stop at the first validation, maybe days later)."""
    present = shard_utterance_ids(validation_data)
    listed = {utt for trial in trial_list for utt in (trial.enroll, trial.test)}
    missing = sorted(listed - present)
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ValueError(f"--validation_trials={validation_trials} names {len(missing)} "
                         f"utterance id(s) not in --validation_data={validation_data} "
                         f"({len(present)} utterances): {shown}")


def read_speaker_count(speakers_tsv: str) -> int:
    """Number of labels in a tfrecords_tools speaker map (`label<TAB>speaker`)."""
    from tfspk.shards import metadata

    labels = metadata.read_speakers_tsv(speakers_tsv)
    return max(labels.values()) + 1 if labels else 0


def default_speakers_tsv(train_data: str) -> str:
    """`<dir>/<split>.speakers.tsv` for shards named `<dir>/<split>-NNNNN-of-NNNNN...`."""
    directory, pattern = os.path.split(train_data)
    split = pattern.split("-", 1)[0]
    candidates = [os.path.join(directory, f"{split}.speakers.tsv"),
                  os.path.join(directory, "speakers.tsv")]
    for candidate in candidates:
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"no speaker map for --train_data={train_data}: looked for "
                            f"{' and '.join(candidates)}; pass --speakers_tsv")


def versions() -> dict[str, str]:
    import tfspk
    return {"tfspk": tfspk.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0], "platform": platform.platform()}


def weights_digest(model) -> str:
    """sha256 over every weight's bytes: equal digests mean bit-identical models."""
    import hashlib

    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()


def _resolve_spec(config: TrainConfig, shard_sets: ShardSets):
    """(config, spec) with `num_speakers` from the speaker maps (and the speed-label
    policy), checked against a `model_spec.json` already in `model_dir`."""
    spec = config.model
    classes = config.data.augmentation.num_classes(shard_sets.num_speakers)
    if spec.num_speakers <= 0:
        spec = dataclasses.replace(spec, num_speakers=classes)
    elif spec.num_speakers < classes:
        raise ValueError(f"--num_speakers={spec.num_speakers} is below the {classes} classes "
                         f"of --train_data ({', '.join(shard_sets.speaker_maps)})")
    existing = os.path.join(config.model_dir, spec_lib.SPEC_FILENAME)
    if os.path.exists(existing):
        saved = spec_lib.ModelSpec.load(config.model_dir)
        if saved != spec:
            raise ValueError(
                f"{existing} describes a different model than these flags; resume with the "
                f"original flags or use a new --model_dir.\nsaved: {saved}\nnow:   {spec}")
    return dataclasses.replace(config, model=spec), spec


def _make_train_dataset(config: TrainConfig, spec, shard_sets: ShardSets, seed):
    from tfspk import data

    augmentation = config.data.augmentation
    enabled = any((augmentation.reverb, augmentation.noise, augmentation.music,
                   augmentation.babble, augmentation.speed, augmentation.specaugment))
    sources = None
    if augmentation.source_kinds:
        from tfspk import augment
        sources = augment.AugmentationSources.from_path(config.data.augmentation_data,
                                                        sample_rate=spec.features.sample_rate)
    several = len(shard_sets.globs) > 1

    def dataset_fn(input_context):
        return data.train_dataset(
            list(shard_sets.globs),
            batch_size=input_context.get_per_replica_batch_size(config.optim.batch_size),
            num_frames=config.data.num_frames,
            feature_options=spec.features.mfcc_options(), cmn=spec.features.cmn,
            sample_rate=spec.features.sample_rate,
            augmentation=augmentation if enabled else None, augmentation_sources=sources,
            seed=seed, input_context=input_context,
            features_on_device=config.data.features_on_device,
            shuffle_buffer=config.data.shuffle_buffer,
            label_offsets=shard_sets.label_offsets if several else None,
            set_speakers=shard_sets.speakers if several else None)

    return dataset_fn


def make_train_step(strategy, classifier, optimizer, frontend, config: TrainConfig,
                    variables=None):
    """One distributed optimisation step: `train_step(iterator) -> (loss, correct)`.

    `variables`: what the step updates (default: every trainable variable); the head's
    alone during a fine-tuning head warm-up.

    The loss is averaged over the *global* batch on each replica and the gradients are
    summed across replicas, so any number of replicas gives the one-device update.
    """
    global_batch = config.optim.batch_size

    def step_fn(inputs, labels):
        labels = tf.cast(labels, tf.int32)
        with tf.GradientTape() as tape:
            if config.data.features_on_device:
                from tfspk import data
                inputs = data.device_augment_and_features(inputs, frontend)
            logits = tf.cast(classifier(inputs, labels=labels, training=True), tf.float32)
            per_example = keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            if classifier.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(classifier.losses))
            # LossScaleOptimizer (mixed_float16) scales up against gradient underflow.
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        updated = classifier.trainable_variables if variables is None else variables
        optimizer.apply_gradients(zip(tape.gradient(scaled, updated), updated))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                                                 labels), tf.float32))
        return loss, correct

    replica_fn = tf.function(step_fn, jit_compile=True) if config.xla else step_fn

    @tf.function
    def train_step(iterator):
        inputs, labels = next(iterator)
        loss, correct = strategy.run(replica_fn, args=(inputs, labels))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None))

    return train_step


def run_lock(config: TrainConfig, chief: bool, worker: int = 0):
    """The lock a run holds: `model_dir` for the chief, its own worker directory else."""
    from tfspk.locking import DirectoryLock

    directory = (config.model_dir if chief else
                 checkpointing.checkpoint_directory(config.model_dir, False, worker))
    return DirectoryLock(directory)


def train(config: TrainConfig, checked: Preflight | None = None) -> dict:
    """Trains (or resumes) in `config.model_dir`; returns the final step's metrics.

    Refuses (ValueError naming the flag or file, or `LockHeldError` naming the run that
    holds `model_dir`) before writing anything; `checked` skips a `preflight` the caller
    has just run with this config. The run uses the resolved config (`checked.config`).
    """
    checked = checked or preflight(config)
    config = checked.config
    strategy = strategies.create_strategy(config.strategy, config.tpu_address)
    chief = strategies.is_chief(strategy)
    with run_lock(config, chief, strategies.worker_index(strategy)), \
            run_state(config.seed, config.mixed_precision):
        return _train_locked(config, checked, strategy, chief)


@contextlib.contextmanager
def run_state(seed: int, mixed_precision: str = "none"):
    """Sets the process-wide state a run depends on, and puts it back on exit.

    Keras reads the dtype policy and the seeds of unseeded initializers from process
    globals, so a run has to set them: the global dtype policy to `mixed_precision`
    ("none" is float32, whatever the caller had set, so the model matches the optimizer
    `optim.build_optimizer` builds), and `seed` into Python's `random`, NumPy's global
    generator, TF's global seed and Keras's seed generator (`keras.utils.set_random_seed`):
    the same seed gives the same initial weights on every worker and under every
    strategy. On exit each is restored, so training leaves a caller's later models, dtype
    policy and random draws as they were (TF's per-op seed counter restarts from the
    restored global seed, as after any `tf.random.set_seed`).
    """
    # Keras has no public getter for its seed generator; these two attributes are the
    # whole of what `keras.utils.set_random_seed` changes besides the three libraries.
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils
    from tensorflow.python.eager import context

    keras_keys = (rng_utils.GLOBAL_RANDOM_SEED, seed_generator.GLOBAL_SEED_GENERATOR)
    saved_policy = keras.mixed_precision.global_policy()
    saved_python, saved_numpy = random.getstate(), np.random.get_state()
    saved_tf = context.global_seed()
    saved_keras = [global_state.get_global_attribute(key) for key in keras_keys]
    try:
        keras.mixed_precision.set_global_policy(
            "float32" if mixed_precision == "none" else mixed_precision)
        keras.utils.set_random_seed(seed)
        yield
    finally:
        keras.mixed_precision.set_global_policy(saved_policy)
        random.setstate(saved_python)
        np.random.set_state(saved_numpy)
        tf.random.set_seed(saved_tf)
        for key, value in zip(keras_keys, saved_keras):
            global_state.set_global_attribute(key, value)


def _train_locked(config: TrainConfig, checked: Preflight, strategy, chief: bool) -> dict:
    spec, optim_config = checked.spec, config.optim
    checkpointing.remove_incomplete_checkpoints(checkpointing.checkpoint_directory(
        config.model_dir, chief, strategies.worker_index(strategy)))
    if chief:
        os.makedirs(config.model_dir, exist_ok=True)
        spec.save(config.model_dir)
        config.save()
        atomic_write_text(os.path.join(config.model_dir, "run_config.json"), json.dumps(
            {"config": dataclasses.asdict(config), "versions": versions(),
             "num_replicas": strategy.num_replicas_in_sync}, indent=2, default=str))

    chief_manager_dir = os.path.join(config.model_dir, "checkpoints")
    latest = tf.train.latest_checkpoint(chief_manager_dir)
    with strategy.scope():
        classifier = spec_lib.build_classifier_model(spec)
        if checked.init_source is not None and not latest:
            count = finetune.load_embedding_weights(classifier.embedding_model,
                                                    checked.init_source)
            if chief:
                print(f"initialised {count} weights up to the embedding from "
                      f"{checked.init_source.prefix}; new {spec.head} head for "
                      f"{spec.num_speakers} classes", flush=True)
        if config.freeze_until:
            frozen = finetune.freeze(classifier.embedding_model, config.freeze_until)
            if chief:
                print(f"frozen: {', '.join(frozen)}", flush=True)
        learning_rate = optim.build_learning_rate(
            optim_config.lr_schedule, optim_config.learning_rate, optim_config.lr_decay_steps,
            optim_config.lr_decay_rate, optim_config.max_steps, optim_config.warmup_steps)
        optimizer = optim.build_optimizer(optim_config.optimizer, learning_rate,
                                          optim_config.momentum, optim_config.weight_decay,
                                          config.mixed_precision)
        optimizer.build(classifier.trainable_variables)
        frontend = spec_lib.build_frontend(spec) if (
            config.data.features_on_device or config.data.validation_data) else None

    checkpoint = tf.train.Checkpoint(model=classifier, optimizer=optimizer)
    manager = checkpointing.make_manager(
        checkpoint, checkpointing.checkpoint_directory(
            config.model_dir, chief, strategies.worker_index(strategy)),
        config.keep_checkpoints)
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        print(f"resumed from {latest} at step {int(optimizer.iterations.numpy())}", flush=True)
    start_step = int(optimizer.iterations.numpy())

    # A fresh shuffle after a resume: seeding with the step keeps runs reproducible
    # without replaying the examples seen before the interruption.
    dataset = strategy.distribute_datasets_from_function(
        _make_train_dataset(config, spec, checked.shard_sets, seed=config.seed + start_step))
    iterator = iter(dataset)

    full_step = make_train_step(strategy, classifier, optimizer, frontend, config)
    head_step = (make_train_step(strategy, classifier, optimizer, frontend, config,
                                 variables=classifier.head.trainable_variables)
                 if config.head_warmup_steps > start_step else None)
    if head_step is not None and chief:
        print(f"head warm-up: steps {start_step + 1}-{config.head_warmup_steps} train "
              "only the head", flush=True)
    # The run's writers, closed when it ends however it ends (event files complete, no
    # file handles left open in a process that goes on after `train`).
    writers = contextlib.ExitStack()
    writer = tf.summary.create_file_writer(os.path.join(manager.directory, "summaries")
                                           if not chief else
                                           os.path.join(config.model_dir, "train"))
    writers.callback(writer.close)
    validation_writer = None
    if config.data.validation_data and chief:
        # One writer for the whole run: one per validation would start an event file each.
        validation_writer = tf.summary.create_file_writer(
            os.path.join(config.model_dir, "validation"))
        writers.callback(validation_writer.close)
    with writers:
        global_batch = optim_config.batch_size
        margin_start, margin_end = optim_config.margin_warmup_steps
        stop = checkpointing.StopRequest()
        step = start_step
        window_loss, window_correct, window_steps = 0.0, 0.0, 0
        window_start = time.perf_counter()
        last = {"step": step}
        try:
            while step < optim_config.max_steps and not stop.requested:
                if margin_end > margin_start and spec.head != "softmax":
                    classifier.head.set_margin(linear_margin_schedule(
                        step, margin_start, margin_end, spec.margin))
                train_step = (head_step if step < config.head_warmup_steps
                              else full_step)
                loss, correct = train_step(iterator)
                if chief and config.record_graph and step == start_step:
                    # The step is traced now; its graph goes to TensorBoard's Graphs tab.
                    summaries.write_graph(writer, train_step.get_concrete_function(iterator),
                                          step=step)
                step += 1
                window_loss += float(loss)
                window_correct += float(correct)
                window_steps += 1
                if step % config.log_every == 0 or step == optim_config.max_steps:
                    elapsed = time.perf_counter() - window_start
                    last = {
                        "step": step,
                        "loss": window_loss / window_steps,
                        "accuracy": window_correct / (window_steps * global_batch),
                        "learning_rate": optim.current_learning_rate(optimizer),
                        "examples_per_second": window_steps * global_batch / max(elapsed, 1e-9),
                    }
                    with writer.as_default(step=step):
                        for key in summaries.TRAIN_SCALARS:
                            tf.summary.scalar(key, last[key])
                    writer.flush()
                    if chief:
                        print(f"step {step}/{optim_config.max_steps}  loss {last['loss']:.4f}  "
                              f"acc {last['accuracy']:.3f}  lr {last['learning_rate']:.3g}  "
                              f"{last['examples_per_second']:.1f} ex/s", flush=True)
                    window_loss, window_correct, window_steps = 0.0, 0.0, 0
                    window_start = time.perf_counter()
                if step % config.checkpoint_every == 0:
                    manager.save(checkpoint_number=step)
                if (config.data.validation_data and chief
                        and (step % config.validate_every == 0
                             or step == optim_config.max_steps)):
                    last.update(_run_validation(config, spec, frontend, classifier, step,
                                                validation_writer))
        finally:
            stop.restore()
        if stop.requested and chief:
            print(f"{stop.signal_name} received: checkpointing at step {step} and exiting",
                  flush=True)
        latest_saved = manager.latest_checkpoint
        if latest_saved is None or int(latest_saved.rsplit("-", 1)[-1]) != step:
            manager.save(checkpoint_number=step)
        writer.flush()
        last["step"] = step
        last["stopped_by_signal"] = stop.signal_name
        last["weights_sha256"] = weights_digest(classifier)
    if chief:
        # Atomic, as every file of the run dir: a kill leaves the old file or the new one.
        atomic_write_text(os.path.join(config.model_dir, "last_metrics.json"),
                          json.dumps(last, indent=2))
    return last


def _run_validation(config, spec, frontend, classifier, step, writer) -> dict:
    from tfspk import data
    from tfspk.training import validation

    dataset = data.eval_dataset(config.data.validation_data, batch_size=16,
                                sample_rate=spec.features.sample_rate)
    result = validation.validate(frontend, classifier.embedding_model, dataset,
                                 config.data.validation_trials, spec.embedding_layer)
    log_dir = os.path.join(config.model_dir, "validation")
    with writer.as_default(step=step):
        tf.summary.scalar("eer", result.eer)
        tf.summary.scalar("min_dcf_p0.01", result.min_dcf_p01)
        tf.summary.scalar("min_dcf_p0.001", result.min_dcf_p001)
    writer.flush()
    summaries.write_projector(log_dir, result.embeddings, result.speakers, result.ids)
    print(f"validation step {step}: EER {100 * result.eer:.2f}%  "
          f"minDCF(0.01) {result.min_dcf_p01:.3f}  minDCF(0.001) {result.min_dcf_p001:.3f}",
          flush=True)
    return {"validation_eer": result.eer, "validation_min_dcf_p0.01": result.min_dcf_p01,
            "validation_min_dcf_p0.001": result.min_dcf_p001}
