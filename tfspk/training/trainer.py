"""The custom training loop shared by every tf.distribute strategy.

Before anything is written to `model_dir`, `preflight` checks the whole run: every
setting in range (`validate_config`, naming the field and its flag), the model spec
against the one already in `model_dir`, the training shards (`tfspk.shards.verify.
check_shard_set`: only shard files, each whole as its metadata records, at least one
example) and the validation shards and trials. Then the chief holds `model_dir`'s lock
(`tfspk.locking.DirectoryLock`; a second run is refused naming the holder, a killed
run's lock is taken over), deletes the `ckpt-N_temp` leftovers of a run killed while
saving, and trains.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfspk import model_spec as spec_lib
from tfspk.layers.margin import linear_margin_schedule
from tfspk.training import checkpointing, optim, strategies, summaries

MIXED_PRECISION = ("none", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass
class TrainConfig:
    model_dir: str
    train_data: str
    spec: spec_lib.ModelSpec = dataclasses.field(default_factory=spec_lib.ModelSpec)
    validation_data: str = ""
    validation_trials: str = ""
    speakers_tsv: str = ""
    batch_size: int = 32
    num_frames: int = 200
    max_steps: int = 1000
    strategy: str = "one_device"
    tpu_address: str = ""
    checkpoint_every: int = 1000
    keep_checkpoints: int = 5
    log_every: int = 100
    validate_every: int = 1000
    optimizer: str = "sgd"
    learning_rate: float = 0.001
    lr_schedule: str = "exponential"
    lr_decay_steps: int = 50000
    lr_decay_rate: float = 0.98
    warmup_steps: int = 0
    momentum: float = 0.0
    weight_decay: float = 0.0
    margin_warmup_steps: tuple[int, int] = (0, 0)
    mixed_precision: str = "none"
    xla: bool = False
    augmentation_data: str = ""
    augment_probability: float = 0.0
    features_on_device: bool = False
    shuffle_buffer: int = 2048
    seed: int = 0
    record_graph: bool = True
    verify_shards: str = "size"


class TrainConfigError(ValueError):
    """A TrainConfig value is out of range; the message names the field and its flag."""


_POSITIVE_INTS = ("batch_size", "num_frames", "max_steps", "checkpoint_every",
                  "keep_checkpoints", "log_every", "validate_every", "lr_decay_steps",
                  "shuffle_buffer")


def validate_config(config: TrainConfig) -> None:
    """Raises TrainConfigError listing every out-of-range value as `field (--flag)`."""
    problems = []

    def need(ok, name, rule):
        if not ok:
            problems.append(f"{name} (--{name}) must be {rule}, got {getattr(config, name)!r}")

    for name in _POSITIVE_INTS:
        value = getattr(config, name)
        need(isinstance(value, int) and value >= 1, name, "an integer >= 1")
    lr = config.learning_rate
    need(isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0, "learning_rate", "> 0")
    need(0 < config.lr_decay_rate <= 1, "lr_decay_rate", "in (0, 1]")
    need(isinstance(config.warmup_steps, int) and 0 <= config.warmup_steps,
         "warmup_steps", ">= 0")
    if config.lr_schedule == "cosine" and config.warmup_steps >= config.max_steps:
        problems.append(f"warmup_steps (--warmup_steps) {config.warmup_steps} must be below "
                        f"max_steps (--max_steps) {config.max_steps}")
    need(0 <= config.momentum < 1, "momentum", "in [0, 1)")
    need(config.weight_decay >= 0, "weight_decay", ">= 0")
    need(0 <= config.augment_probability <= 1, "augment_probability", "in [0, 1]")
    if config.augment_probability > 0 and not config.augmentation_data:
        problems.append("augment_probability (--augment_probability) > 0 needs "
                        "--augmentation_data")
    need(config.mixed_precision in MIXED_PRECISION, "mixed_precision",
         f"one of {MIXED_PRECISION}")
    need(config.verify_shards in ("size", "full"), "verify_shards", "'size' or 'full'")
    need(isinstance(config.seed, int) and config.seed >= 0, "seed", ">= 0")
    warmup = tuple(config.margin_warmup_steps)
    if len(warmup) != 2 or warmup[0] < 0 or warmup[1] < warmup[0]:
        problems.append("margin_warmup_steps (--margin_warmup_steps) must be start,end with "
                        f"0 <= start <= end, got {config.margin_warmup_steps!r}")
    if bool(config.validation_data) != bool(config.validation_trials):
        problems.append("--validation_data and --validation_trials go together, got "
                        f"{config.validation_data!r} and {config.validation_trials!r}")
    spec = config.spec
    if any(int(n) < 1 for n in spec.conv_filters):
        problems.append(f"conv_filters (--conv_filters) must all be >= 1, got "
                        f"{list(spec.conv_filters)}")
    if any(int(n) < 1 for n in spec.fc_units):
        problems.append(f"fc_units (--fc_units) must all be >= 1, got {list(spec.fc_units)}")
    if spec.head != "softmax":
        if not 0 <= spec.margin < 1:
            problems.append(f"margin (--margin) must be in [0, 1), got {spec.margin}")
        if not spec.scale > 0:
            problems.append(f"scale (--scale) must be > 0, got {spec.scale}")
    if problems:
        raise TrainConfigError("; ".join(problems))


@dataclasses.dataclass(frozen=True)
class Preflight:
    """What `preflight` established: the model spec and the training shards."""

    spec: spec_lib.ModelSpec
    shards: Any


def preflight(config: TrainConfig) -> Preflight:
    """Every check that can refuse a run, before it writes anything (see module doc)."""
    from tfspk import trials as trials_lib
    from tfspk.shards import verify

    validate_config(config)
    shards = verify.check_shard_set(config.train_data, "--train_data", config.verify_shards)
    spec = _resolve_spec(config)
    if config.validation_data:
        verify.check_shard_set(config.validation_data, "--validation_data",
                               config.verify_shards)
        trials_lib.read_trials(config.validation_trials, self_trials="error")
    return Preflight(spec, shards)


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


def _resolve_spec(config: TrainConfig) -> spec_lib.ModelSpec:
    spec = config.spec
    if spec.num_speakers <= 0:
        spec = dataclasses.replace(spec, num_speakers=read_speaker_count(
            config.speakers_tsv or default_speakers_tsv(config.train_data)))
    existing = os.path.join(config.model_dir, spec_lib.SPEC_FILENAME)
    if os.path.exists(existing):
        saved = spec_lib.ModelSpec.load(config.model_dir)
        if saved != spec:
            raise ValueError(
                f"{existing} describes a different model than these flags; resume with the "
                f"original flags or use a new --model_dir.\nsaved: {saved}\nnow:   {spec}")
    return spec


def _make_train_dataset(config, spec, seed):
    from tfspk import data

    augmentation, sources = None, None
    if config.augmentation_data and config.augment_probability > 0:
        from tfspk import augment
        augmentation = augment.AugmentationConfig.uniform(config.augment_probability)
        sources = augment.AugmentationSources.from_path(config.augmentation_data,
                                                        sample_rate=spec.features.sample_rate)

    def dataset_fn(input_context):
        return data.train_dataset(
            config.train_data,
            batch_size=input_context.get_per_replica_batch_size(config.batch_size),
            num_frames=config.num_frames,
            feature_options=spec.features.mfcc_options(), cmn=spec.features.cmn,
            augmentation=augmentation, augmentation_sources=sources,
            seed=seed, input_context=input_context,
            features_on_device=config.features_on_device,
            shuffle_buffer=config.shuffle_buffer)

    return dataset_fn


def make_train_step(strategy, classifier, optimizer, frontend, config: TrainConfig):
    """One distributed optimisation step: `train_step(iterator) -> (loss, correct)`.

    The loss is averaged over the *global* batch on each replica and the gradients are
    summed across replicas, so any number of replicas gives the one-device update.
    """
    global_batch = config.batch_size

    def step_fn(inputs, labels):
        labels = tf.cast(labels, tf.int32)
        with tf.GradientTape() as tape:
            if config.features_on_device:
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
        variables = classifier.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
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
    has just run with this config.
    """
    checked = checked or preflight(config)
    strategy = strategies.create_strategy(config.strategy, config.tpu_address)
    chief = strategies.is_chief(strategy)
    with run_lock(config, chief, strategies.worker_index(strategy)):
        return _train_locked(config, checked.spec, strategy, chief)


def _train_locked(config: TrainConfig, spec, strategy, chief: bool) -> dict:
    if config.mixed_precision != "none":
        keras.mixed_precision.set_global_policy(config.mixed_precision)
    # Same seed -> same initial weights on every worker and under every strategy.
    keras.utils.set_random_seed(config.seed)
    checkpointing.remove_incomplete_checkpoints(checkpointing.checkpoint_directory(
        config.model_dir, chief, strategies.worker_index(strategy)))
    if chief:
        os.makedirs(config.model_dir, exist_ok=True)
        spec.save(config.model_dir)
        with open(os.path.join(config.model_dir, "run_config.json"), "w") as f:
            json.dump({"config": dataclasses.asdict(config) | {"spec": dataclasses.asdict(spec)},
                       "versions": versions(),
                       "num_replicas": strategy.num_replicas_in_sync}, f, indent=2, default=str)

    with strategy.scope():
        classifier = spec_lib.build_classifier_model(spec)
        learning_rate = optim.build_learning_rate(
            config.lr_schedule, config.learning_rate, config.lr_decay_steps,
            config.lr_decay_rate, config.max_steps, config.warmup_steps)
        optimizer = optim.build_optimizer(config.optimizer, learning_rate, config.momentum,
                                          config.weight_decay, config.mixed_precision)
        optimizer.build(classifier.trainable_variables)
        frontend = spec_lib.build_frontend(spec) if (
            config.features_on_device or config.validation_data) else None

    checkpoint = tf.train.Checkpoint(model=classifier, optimizer=optimizer)
    manager = checkpointing.make_manager(
        checkpoint, checkpointing.checkpoint_directory(
            config.model_dir, chief, strategies.worker_index(strategy)),
        config.keep_checkpoints)
    chief_manager_dir = os.path.join(config.model_dir, "checkpoints")
    latest = tf.train.latest_checkpoint(chief_manager_dir)
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        print(f"resumed from {latest} at step {int(optimizer.iterations.numpy())}", flush=True)
    start_step = int(optimizer.iterations.numpy())

    # A fresh shuffle after a resume: seeding with the step keeps runs reproducible
    # without replaying the examples seen before the interruption.
    dataset = strategy.distribute_datasets_from_function(
        _make_train_dataset(config, spec, seed=config.seed + start_step))
    iterator = iter(dataset)

    global_batch = config.batch_size
    train_step = make_train_step(strategy, classifier, optimizer, frontend, config)
    writer = tf.summary.create_file_writer(os.path.join(manager.directory, "summaries")
                                           if not chief else
                                           os.path.join(config.model_dir, "train"))
    margin_start, margin_end = config.margin_warmup_steps
    stop = checkpointing.StopRequest()
    step = start_step
    window_loss, window_correct, window_steps = 0.0, 0.0, 0
    window_start = time.perf_counter()
    last = {"step": step}
    try:
        while step < config.max_steps and not stop.requested:
            if margin_end > margin_start and spec.head != "softmax":
                classifier.head.set_margin(linear_margin_schedule(
                    step, margin_start, margin_end, spec.margin))
            loss, correct = train_step(iterator)
            if chief and config.record_graph and step == start_step:
                # The step is traced now; its graph goes to TensorBoard's Graphs tab.
                summaries.write_graph(writer, train_step.get_concrete_function(iterator),
                                      step=step)
            step += 1
            window_loss += float(loss)
            window_correct += float(correct)
            window_steps += 1
            if step % config.log_every == 0 or step == config.max_steps:
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
                    print(f"step {step}/{config.max_steps}  loss {last['loss']:.4f}  "
                          f"acc {last['accuracy']:.3f}  lr {last['learning_rate']:.3g}  "
                          f"{last['examples_per_second']:.1f} ex/s", flush=True)
                window_loss, window_correct, window_steps = 0.0, 0.0, 0
                window_start = time.perf_counter()
            if step % config.checkpoint_every == 0:
                manager.save(checkpoint_number=step)
            if (config.validation_data and config.validation_trials and chief
                    and (step % config.validate_every == 0 or step == config.max_steps)):
                last.update(_run_validation(config, spec, frontend, classifier, step))
    finally:
        stop.restore()
    if stop.requested and chief:
        print(f"{stop.signal_name} received: checkpointing at step {step} and exiting", flush=True)
    if manager.latest_checkpoint is None or int(manager.latest_checkpoint.rsplit("-", 1)[-1]) != step:
        manager.save(checkpoint_number=step)
    writer.flush()
    last["step"] = step
    last["stopped_by_signal"] = stop.signal_name
    last["weights_sha256"] = weights_digest(classifier)
    if chief:
        with open(os.path.join(config.model_dir, "last_metrics.json"), "w") as f:
            json.dump(last, f, indent=2)
    return last


_VALIDATION_WRITERS: dict = {}


def _run_validation(config, spec, frontend, classifier, step) -> dict:
    from tfspk import data
    from tfspk.training import validation

    dataset = data.eval_dataset(config.validation_data, batch_size=16,
                                sample_rate=spec.features.sample_rate)
    result = validation.validate(frontend, classifier.embedding_model, dataset,
                                 config.validation_trials, spec.embedding_layer)
    log_dir = os.path.join(config.model_dir, "validation")
    # One writer per process: a new writer per call would start a new event file each time.
    writer = _VALIDATION_WRITERS.setdefault(log_dir, tf.summary.create_file_writer(log_dir))
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
