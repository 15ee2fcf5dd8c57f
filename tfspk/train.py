"""Trains a speaker-embedding network: `python -m tfspk.train --flagfile=configs/X.flags`.

Defaults follow Shon, Tang & Glass (SLT 2018): 40-dim MFCC, the 1-D CNN with
statistics pooling and a linear fc1, softmax over training speakers, SGD at 0.001
decayed x0.98 every 50k updates, 2-s (200-frame) crops. Rerunning the same command
resumes from the latest checkpoint in --model_dir.
"""
from __future__ import annotations

import os
import sys

import tensorflow as tf
from absl import app, flags, logging

from tfspk import model_spec as spec_lib
from tfspk.models import registry
from tfspk.shards.cli import user_errors
from tfspk.training import optim, strategies, trainer

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """CLI flags; defined when run as a program, so importing this module defines none.

    Every numeric flag has its range checked where it is defined: a value outside it
    stops the program at parse time with a message naming the flag."""
    fv = dict(flag_values=flag_values)
    # Where
    flags.DEFINE_string("model_dir", None, "Directory for checkpoints, TensorBoard logs and the model spec.", **fv)
    flags.DEFINE_string("train_data", None, "Glob of training TFRecord shards (tfrecords_tools.build).", **fv)
    flags.DEFINE_string("speakers_tsv", "", "Speaker label map; default: speakers.tsv beside the shards.", **fv)
    flags.DEFINE_string("validation_data", "", "Glob of validation shards (utterances named in the trials).", **fv)
    flags.DEFINE_string("validation_trials", "", "VoxCeleb- or Kaldi-format trial list for validation EER.", **fv)
    # Model
    flags.DEFINE_enum("architecture", "paper_cnn", list(registry.names()), "Network.", **fv)
    flags.DEFINE_enum("variant", "linear_fc1", ["linear_fc1", "relu_all"], "Paper CNN variant (Tables 2/4 vs Table 1).", **fv)
    flags.DEFINE_enum("pooling", "stats", ["stats", "attentive"], "Utterance pooling of paper_cnn.", **fv)
    flags.DEFINE_list("conv_filters", ["1000", "1000", "1000", "1500"], "Widths of the frame-level layers.", **fv)
    flags.DEFINE_list("fc_units", ["1500", "600"], "Widths of fc1 and fc2 (fc2 is the embedding).", **fv)
    flags.DEFINE_bool("batch_norm", False, "Batch normalisation after each hidden layer.", **fv)
    flags.DEFINE_enum("head", "softmax", list(spec_lib.HEADS), "Classification head.", **fv)
    flags.DEFINE_float("margin", 0.2, "Margin of am_softmax / aam_softmax.", **fv)
    flags.DEFINE_float("scale", 30.0, "Scale of am_softmax / aam_softmax.", **fv)
    flags.DEFINE_list("margin_warmup_steps", ["0", "0"], "Ramp the margin linearly from 0 between these steps.", **fv)
    flags.DEFINE_enum("embedding_layer", "fc2", ["fc1", "fc2"], "Embedding the head and validation use.", **fv)
    # Features
    flags.DEFINE_integer("num_mel_bins", 40, "Mel bins.", lower_bound=1, **fv)
    flags.DEFINE_integer("num_ceps", 40, "Cepstra (network input width).", lower_bound=1, **fv)
    flags.DEFINE_float("low_freq", 20.0, "Lowest mel-bank frequency (Hz).", lower_bound=0.0, **fv)
    flags.DEFINE_float("high_freq", 0.0, "Highest mel-bank frequency (Hz); <= 0 is an offset from Nyquist.", **fv)
    flags.DEFINE_enum("cmn", "utterance", ["utterance", "sliding", "none"], "Cepstral mean normalisation.", **fv)
    flags.DEFINE_integer("num_frames", 200, "Frames per training crop (200 = 2 s).", lower_bound=1, **fv)
    # Optimisation
    flags.DEFINE_integer("batch_size", 32, "Global batch size (split across replicas).", lower_bound=1, **fv)
    flags.DEFINE_integer("max_steps", 1000, "Total training steps.", lower_bound=1, **fv)
    flags.DEFINE_enum("optimizer", "sgd", list(optim.OPTIMIZERS), "Optimiser.", **fv)
    flags.DEFINE_float("learning_rate", 0.001, "Initial learning rate.", **fv)
    flags.DEFINE_enum("lr_schedule", "exponential", list(optim.SCHEDULES), "Learning-rate schedule.", **fv)
    flags.DEFINE_integer("lr_decay_steps", 50000, "Staircase decay period of the exponential schedule.", lower_bound=1, **fv)
    flags.DEFINE_float("lr_decay_rate", 0.98, "Decay factor per period.", **fv)
    flags.DEFINE_integer("warmup_steps", 0, "Linear warm-up steps (cosine schedule).", lower_bound=0, **fv)
    flags.DEFINE_float("momentum", 0.0, "SGD momentum.", **fv)
    flags.DEFINE_float("weight_decay", 0.0, "AdamW weight decay.", lower_bound=0.0, **fv)
    flags.DEFINE_enum("mixed_precision", "none", list(trainer.MIXED_PRECISION), "Keras mixed-precision policy.", **fv)
    flags.DEFINE_bool("xla", False, "Compile the replica step with XLA.", **fv)
    # Data
    flags.DEFINE_string("augmentation_data", "", "Directory of augmentation sources (MUSAN/RIR TFRecords or trees).", **fv)
    flags.DEFINE_float("augment_probability", 0.0, "Probability of each augmentation type per example.", lower_bound=0.0, upper_bound=1.0, **fv)
    flags.DEFINE_bool("features_on_device", False, "Run augmentation and MFCC in the train step (accelerator).", **fv)
    flags.DEFINE_integer("shuffle_buffer", 2048, "Examples in the shuffle buffer.", lower_bound=1, **fv)
    flags.DEFINE_integer("seed", 0, "Seed for shuffling, cropping and augmentation.", lower_bound=0, **fv)
    # Distribution and bookkeeping
    flags.DEFINE_enum("strategy", "one_device", list(strategies.STRATEGIES), "tf.distribute strategy.", **fv)
    flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.", **fv)
    flags.DEFINE_integer("checkpoint_every", 1000, "Steps between checkpoints.", lower_bound=1, **fv)
    flags.DEFINE_integer("keep_checkpoints", 5, "Checkpoints to keep (probes.over_training reads them all).", lower_bound=1, **fv)
    flags.DEFINE_integer("log_every", 100, "Steps between console/TensorBoard logs.", lower_bound=1, **fv)
    flags.DEFINE_enum("verify_shards", "size", ["size", "full"], "Check at start that every "
                      "training shard is whole: its size (instant) or sha256 (reads it all) "
                      "against the split's metadata.json.", **fv)
    flags.DEFINE_integer("validate_every", 1000, "Steps between validation EER computations.", lower_bound=1, **fv)

    flags.mark_flags_as_required(["model_dir", "train_data"], **fv)
    _register_validators(flag_values)


def _register_validators(flag_values) -> None:
    """Ranges absl's lower_bound/upper_bound cannot express (open intervals, lists)."""
    def check(name, predicate, rule):
        flags.register_validator(name, predicate, message=f"--{name} must be {rule}",
                                 flag_values=flag_values)

    def positive_ints(values):
        try:
            return all(int(v) >= 1 for v in values)
        except ValueError:
            return False

    def start_end(values):
        try:
            start, end = (int(v) for v in values)
        except ValueError:
            return False
        return 0 <= start <= end

    check("learning_rate", lambda v: v is not None and 0 < v < float("inf"),
          "a finite number > 0")
    check("lr_decay_rate", lambda v: v is not None and 0 < v <= 1, "in (0, 1]")
    check("momentum", lambda v: v is not None and 0 <= v < 1, "in [0, 1)")
    check("margin", lambda v: v is not None and 0 <= v < 1, "in [0, 1)")
    check("scale", lambda v: v is not None and v > 0, "> 0")
    check("conv_filters", positive_ints, "a comma-separated list of integers >= 1")
    check("fc_units", positive_ints, "a comma-separated list of integers >= 1")
    check("margin_warmup_steps", start_end, "two integers start,end with 0 <= start <= end")
    flags.register_multi_flags_validator(
        ["num_ceps", "num_mel_bins"],
        lambda v: v["num_ceps"] is None or v["num_mel_bins"] is None
        or v["num_ceps"] <= v["num_mel_bins"],
        message="--num_ceps must not exceed --num_mel_bins", flag_values=flag_values)
    flags.register_multi_flags_validator(
        ["validation_data", "validation_trials"],
        lambda v: bool(v["validation_data"]) == bool(v["validation_trials"]),
        message="--validation_data and --validation_trials go together",
        flag_values=flag_values)


def _ints(values) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in values)
    except ValueError as error:
        raise app.UsageError(f"expected a comma-separated list of integers, got {values}") from error


def config_from_flags(flag_values=FLAGS) -> trainer.TrainConfig:
    """The TrainConfig the current flags describe (callable from Python after parsing)."""
    FLAGS = flag_values  # noqa: N806 - the flags this call reads
    features = spec_lib.FeatureSpec(
        num_mel_bins=FLAGS.num_mel_bins, num_ceps=FLAGS.num_ceps, low_freq=FLAGS.low_freq,
        high_freq=FLAGS.high_freq, cmn=FLAGS.cmn)
    spec = spec_lib.ModelSpec(
        architecture=FLAGS.architecture, variant=FLAGS.variant, pooling=FLAGS.pooling,
        conv_filters=_ints(FLAGS.conv_filters), fc_units=_ints(FLAGS.fc_units),
        batch_norm=FLAGS.batch_norm, head=FLAGS.head,
        margin=FLAGS.margin if FLAGS.head != "softmax" else 0.0,
        scale=FLAGS.scale if FLAGS.head != "softmax" else 30.0,
        embedding_layer=FLAGS.embedding_layer, features=features)
    warmup = _ints(FLAGS.margin_warmup_steps)
    if len(warmup) != 2:
        raise app.UsageError("--margin_warmup_steps takes two steps: start,end")
    return trainer.TrainConfig(
        model_dir=FLAGS.model_dir, train_data=FLAGS.train_data, spec=spec,
        speakers_tsv=FLAGS.speakers_tsv, validation_data=FLAGS.validation_data,
        validation_trials=FLAGS.validation_trials, batch_size=FLAGS.batch_size,
        num_frames=FLAGS.num_frames, max_steps=FLAGS.max_steps, strategy=FLAGS.strategy,
        tpu_address=FLAGS.tpu, checkpoint_every=FLAGS.checkpoint_every,
        keep_checkpoints=FLAGS.keep_checkpoints, log_every=FLAGS.log_every,
        validate_every=FLAGS.validate_every, optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate, lr_schedule=FLAGS.lr_schedule,
        lr_decay_steps=FLAGS.lr_decay_steps, lr_decay_rate=FLAGS.lr_decay_rate,
        warmup_steps=FLAGS.warmup_steps, momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay, margin_warmup_steps=warmup,
        mixed_precision=FLAGS.mixed_precision, xla=FLAGS.xla,
        augmentation_data=FLAGS.augmentation_data,
        augment_probability=FLAGS.augment_probability,
        features_on_device=FLAGS.features_on_device, shuffle_buffer=FLAGS.shuffle_buffer,
        seed=FLAGS.seed, verify_shards=FLAGS.verify_shards)


def write_flagfile(path: str, flag_values=FLAGS) -> None:
    """This run's flags in --flagfile form, so `--flagfile=<path>` repeats it exactly."""
    from tfspk.shards.writer import atomic_write_text

    lines = [flag.serialize() for flag in
             flag_values.get_flags_for_module(sys.modules[__name__])]
    atomic_write_text(path, "\n".join(line for line in lines if line) + "\n")


@user_errors
def main(argv, flag_values=FLAGS):
    """Validates everything (flags, data, model_dir) before writing anything, then holds
    model_dir's lock for the run: flags.txt of a refused run is never overwritten."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("WARNING")
    config = config_from_flags(flag_values)
    checked = trainer.preflight(config)
    chief = strategies.chief_from_tf_config(config.strategy)
    with trainer.run_lock(config, chief, strategies.task_index_from_tf_config()):
        if chief:
            write_flagfile(os.path.join(config.model_dir, "flags.txt"), flag_values)
        trainer.train(config, checked)


if __name__ == "__main__":
    define_flags()
    app.run(main)
