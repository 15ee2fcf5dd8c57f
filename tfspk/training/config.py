"""The training configuration: one nested dataclass, the `tfspk.train` flags generated
from it, and its resolved form written to the model dir.

    TrainConfig(model_dir, data=DataConfig(train_data, ..., augmentation=AugmentationConfig),
                model=ModelSpec(..., features=FeatureSpec), optim=OptimConfig, ...)

Every leaf field is exactly one flag (`tfspk.flagspec`): its name, type, default, help
and range come from the field, so each default exists once. `ModelSpec`/`FeatureSpec`
are saved as `model_spec.json` and keep no flag metadata; their flags are declared in
`MODEL_FLAGS` below, defaults still read from the dataclasses. Flag names are those the
CLI always had (`--tpu` sets `tpu_address`); `configs/*.flags` keep working.

`resolve(config)` is the canonical form a run records, a fixed point of flags ->
config -> flags: `--augment_probability=p` becomes its four per-kind probabilities
(reverb = noise = music = babble = p/4, as Kaldi's recipe mixes them), and a softmax
head's unused margin and scale take their defaults. `trainer.preflight` adds what only
the data can say (`num_speakers`). The chief writes the result as `config.json`
(`TrainConfig.load`) and `flags.txt` (`--flagfile=flags.txt` repeats the run).
"""
from __future__ import annotations

import dataclasses
import json
import os

from tfspk import flagspec
from tfspk import model_spec as spec_lib
from tfspk.augment.config import AugmentationConfig
from tfspk.flagspec import Each, FlagInfo, Range, Rule, field
from tfspk.training.optim import OPTIMIZERS, SCHEDULES
from tfspk.training.strategies import STRATEGIES

MIXED_PRECISION = ("none", "mixed_bfloat16", "mixed_float16")
CONFIG_FILENAME = "config.json"
FLAGS_FILENAME = "flags.txt"

_POSITIVE = Range(1)
_POSITIVE_INTS = Each(Range(1), "integers")


class TrainConfigError(ValueError):
    """A TrainConfig value is out of range; the message names the field and its flag."""


@dataclasses.dataclass
class OptimConfig:
    """What an update does: batch, steps, optimiser, learning-rate schedule and the
    margin ramp. Defaults are the paper's (SGD at 0.001 decayed x0.98 every 50k
    updates); it gives no batch size or step count."""

    batch_size: int = field(32, "Global batch size (split across replicas).", rule=_POSITIVE)
    max_steps: int = field(1000, "Total training steps.", rule=_POSITIVE)
    optimizer: str = field("sgd", "Optimiser.", choices=OPTIMIZERS)
    learning_rate: float = field(0.001, "Initial (peak, with warm-up) learning rate.",
                                 rule=Range(0, low_open=True, finite=True))
    lr_schedule: str = field("exponential", "Learning-rate schedule.", choices=SCHEDULES)
    lr_decay_steps: int = field(50000, "Staircase decay period of the exponential "
                                "schedule.", rule=_POSITIVE)
    lr_decay_rate: float = field(0.98, "Decay factor per period.",
                                 rule=Range(0, 1, low_open=True))
    warmup_steps: int = field(0, "Linear warm-up steps (cosine schedule).", rule=Range(0))
    momentum: float = field(0.0, "SGD momentum.", rule=Range(0, 1, high_open=True))
    weight_decay: float = field(0.0, "AdamW (--optimizer=adamw) decoupled weight decay, "
                                 "applied as lr * weight_decay * w per step.", rule=Range(0))
    margin_warmup_steps: tuple[int, int] = field(
        (0, 0), "Ramp the margin of a margin head linearly from 0 between these steps.",
        rule=Rule(lambda v: len(v) == 2 and 0 <= v[0] <= v[1],
                  "two integers start,end with 0 <= start <= end"))


@dataclasses.dataclass
class DataConfig:
    """Where examples come from and what is done to them before the network.

    `train_data` is one or more shard globs, each a shard set with its own speaker map
    (`speakers_tsv`, default `<split>.speakers.tsv` beside the shards). Labels of
    different maps are offset so they never collide, and with several sets each set is
    drawn in proportion to its speakers, so every speaker is about equally likely
    whichever set holds it."""

    train_data: tuple[str, ...] = field(
        help="Comma-separated globs of training TFRecord shards (tfrecords_tools.build); "
        "each glob is one shard set.",
        rule=Rule(lambda v: len(v) > 0 and all(v), "one or more comma-separated globs"))
    speakers_tsv: tuple[str, ...] = field(
        (), "Speaker label maps, one per --train_data glob (or one for all); default: "
        "<split>.speakers.tsv beside each set's shards.")
    validation_data: str = field("", "Glob of validation shards (utterances named in the "
                                 "trials).")
    validation_trials: str = field("", "VoxCeleb- or Kaldi-format trial list for "
                                   "validation EER.")
    num_frames: int = field(200, "Frames per training crop (200 = 2 s).", rule=_POSITIVE)
    shuffle_buffer: int = field(2048, "Utterances in the shuffle buffer.", rule=_POSITIVE)
    features_on_device: bool = field(False, "Run augmentation and MFCC in the train step "
                                     "(accelerator).")
    verify_shards: str = field("size", "Check at start that every training shard is "
                               "whole: its size (instant) or sha256 (reads it all) against "
                               "the split's metadata.json.", choices=("size", "full"))
    augmentation_data: str = field("", "Directory of augmentation sources (MUSAN/RIR "
                                   "TFRecords or trees).")
    augment_probability: float = field(
        0.0, "Shortcut: probability that an example gets one of reverb, noise, music or "
        "babble, each equally likely (sets --augment_reverb/noise/music/babble to a "
        "quarter of it).", rule=Range(0, 1))
    augmentation: AugmentationConfig = dataclasses.field(default_factory=AugmentationConfig)


def _architectures():
    from tfspk.models import registry

    return registry.names()


#: Flags of the fields of ModelSpec / FeatureSpec, which carry no flag metadata.
MODEL_FLAGS: dict[tuple[str, ...], FlagInfo] = {
    ("model", "architecture"): FlagInfo("Network (tfspk.models.registry).",
                                        choices=_architectures),
    ("model", "num_speakers"): FlagInfo("Classes of the head; 0: the speakers of "
                                        "--train_data's speaker maps.", rule=Range(0)),
    ("model", "variant"): FlagInfo("Paper CNN variant (Tables 2/4 vs Table 1).",
                                   choices=("linear_fc1", "relu_all")),
    ("model", "pooling"): FlagInfo("Utterance pooling of paper_cnn.",
                                   choices=("stats", "attentive")),
    ("model", "conv_filters"): FlagInfo("Widths of the frame-level layers.",
                                        rule=_POSITIVE_INTS),
    ("model", "fc_units"): FlagInfo("Widths of fc1 and fc2 (fc2 is the embedding).",
                                    rule=_POSITIVE_INTS),
    ("model", "batch_norm"): FlagInfo("Batch normalisation after each hidden layer."),
    ("model", "head"): FlagInfo("Classification head.", choices=spec_lib.HEADS),
    ("model", "margin"): FlagInfo("Margin of am_softmax / aam_softmax (0 makes them a "
                                  "scaled cosine softmax; ArcFace/CosFace use 0.2).",
                                  rule=Range(0, 1, high_open=True)),
    ("model", "scale"): FlagInfo("Scale of am_softmax / aam_softmax.",
                                 rule=Range(0, low_open=True)),
    ("model", "embedding_layer"): FlagInfo("Embedding the head and validation use.",
                                           choices=("fc1", "fc2")),
    ("model", "features", "sample_rate"): FlagInfo("Sample rate (Hz) of the shards and of "
                                                   "the front end.", rule=_POSITIVE),
    ("model", "features", "num_mel_bins"): FlagInfo("Mel bins.", rule=_POSITIVE),
    ("model", "features", "num_ceps"): FlagInfo("Cepstra (network input width).",
                                                rule=_POSITIVE),
    ("model", "features", "frame_length_ms"): FlagInfo(
        "Analysis window (ms).", rule=Range(0, low_open=True)),
    ("model", "features", "frame_shift_ms"): FlagInfo(
        "Frame shift (ms).", rule=Range(0, low_open=True)),
    ("model", "features", "low_freq"): FlagInfo("Lowest mel-bank frequency (Hz).",
                                                rule=Range(0)),
    ("model", "features", "high_freq"): FlagInfo("Highest mel-bank frequency (Hz); <= 0 "
                                                 "is an offset from Nyquist."),
    ("model", "features", "snip_edges"): FlagInfo("Kaldi snip-edges framing (frames only "
                                                  "where the window fits)."),
    ("model", "features", "cmn"): FlagInfo("Cepstral mean normalisation.",
                                           choices=("utterance", "sliding", "none")),
}


@dataclasses.dataclass
class TrainConfig:
    """One training run: where it writes (`model_dir`), its data, model and
    optimisation, and how it is distributed and checkpointed.

    Fine-tuning: `init_from` (a tfspk training dir, one of its checkpoint prefixes, or
    a tfspk SavedModel export) gives every layer up to the embedding; the head is new
    and sized for this run's speakers. `freeze_until` keeps the layers from the input
    up to and including that layer (e.g. `conv4`) at their loaded values;
    `head_warmup_steps` trains only the new head for that many steps first."""

    model_dir: str = field(help="Directory for checkpoints, TensorBoard logs, the model "
                           "spec and the resolved config.", rule=Rule(bool, "non-empty"))
    data: DataConfig = None  # required; a default here would hide a missing train_data
    model: spec_lib.ModelSpec = dataclasses.field(default_factory=spec_lib.ModelSpec)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    seed: int = field(0, "Seed for initial weights, shuffling, cropping and augmentation.",
                      rule=Range(0))
    strategy: str = field("one_device", "tf.distribute strategy.", choices=STRATEGIES)
    tpu_address: str = field("", "TPU name or address for --strategy=tpu.", flag="tpu")
    mixed_precision: str = field("none", "Keras mixed-precision policy.",
                                 choices=MIXED_PRECISION)
    xla: bool = field(False, "Compile the replica step with XLA.")
    checkpoint_every: int = field(1000, "Steps between checkpoints.", rule=_POSITIVE)
    keep_checkpoints: int = field(5, "Checkpoints to keep (probes.over_training reads "
                                  "them all).", rule=_POSITIVE)
    log_every: int = field(100, "Steps between console/TensorBoard logs.", rule=_POSITIVE)
    validate_every: int = field(1000, "Steps between validation EER computations.",
                                rule=_POSITIVE)
    record_graph: bool = field(True, "Write the train step's graph to TensorBoard.")
    init_from: str = field("", "Fine-tune: a tfspk training dir, checkpoint prefix or "
                           "SavedModel export whose layers up to the embedding start this "
                           "run (same architecture and features); the head is new.")
    freeze_until: str = field("", "Fine-tune: keep the layers from the input up to and "
                              "including this one (e.g. conv4, fc1) frozen; needs "
                              "--init_from.")
    head_warmup_steps: int = field(0, "Fine-tune: for the first N steps only the new "
                                   "head trains, then every trainable layer (keeps the "
                                   "random head's first gradients out of the loaded "
                                   "layers); needs --init_from.", rule=Range(0))

    def __post_init__(self):
        if self.data is None:
            raise TypeError("TrainConfig needs data=DataConfig(train_data=...)")
        if isinstance(self.data.train_data, str):
            self.data.train_data = split_globs(self.data.train_data)

    def save(self, model_dir: str | None = None) -> tuple[str, str]:
        """Writes `config.json` and `flags.txt` (atomically) to `model_dir`."""
        from tfspk.shards.writer import atomic_write_text

        model_dir = model_dir or self.model_dir
        config_path = os.path.join(model_dir, CONFIG_FILENAME)
        flags_path = os.path.join(model_dir, FLAGS_FILENAME)
        atomic_write_text(config_path, json.dumps(flagspec.to_dict(self), indent=2) + "\n")
        atomic_write_text(flags_path, "\n".join(flag_lines(self)) + "\n")
        return config_path, flags_path

    @classmethod
    def load(cls, model_dir: str) -> "TrainConfig":
        """The config a run wrote to `model_dir/config.json`."""
        path = os.path.join(model_dir, CONFIG_FILENAME)
        with open(path, encoding="utf-8") as f:
            return from_dict(json.load(f))


def split_globs(text: str) -> tuple[str, ...]:
    """`"a/*.tfrecord,b/*.tfrecord"` -> the globs, blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def from_dict(data: dict) -> TrainConfig:
    return flagspec.from_dict(TrainConfig, data)


def flag_specs() -> list[flagspec.FlagSpec]:
    """The `tfspk.train` flags, one per leaf field of TrainConfig."""
    return flagspec.flag_specs(TrainConfig, MODEL_FLAGS)


def define_flags(flag_values, module_name: str | None = None) -> None:
    """Defines every TrainConfig flag on `flag_values`, with range checks and the
    cross-field checks a single flag cannot express."""
    from absl import flags

    flagspec.define_flags(flag_specs(), flag_values, module_name=module_name)
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


def from_flags(flag_values) -> TrainConfig:
    """The TrainConfig the parsed flags describe (not resolved)."""
    return flagspec.from_flags(TrainConfig, flag_specs(), flag_values)


def from_values(**values) -> TrainConfig:
    """A TrainConfig from flag names and values: `from_values(model_dir=..., train_data=
    "a/*.tfrecord", batch_size=8)`; everything else at its default."""
    if isinstance(values.get("train_data"), str):
        values["train_data"] = split_globs(values["train_data"])
    return flagspec.from_values(TrainConfig, flag_specs(), values)


def flag_lines(config: TrainConfig) -> list[str]:
    """`--flag=value` lines that parse back to `config`."""
    return flagspec.flag_lines(config, flag_specs())


def resolve(config: TrainConfig) -> TrainConfig:
    """The canonical config (module docstring); `resolve(resolve(c)) == resolve(c)`."""
    data, model = config.data, config.model
    if data.augment_probability > 0:
        data = dataclasses.replace(
            data, augment_probability=0.0,
            augmentation=dataclasses.replace(
                data.augmentation, **{kind: data.augment_probability / 4.0
                                      for kind in ("reverb", "noise", "music", "babble")}))
    if model.head == "softmax":
        defaults = spec_lib.ModelSpec()
        model = dataclasses.replace(model, margin=defaults.margin, scale=defaults.scale)
    return dataclasses.replace(config, data=data, model=model)


_SOURCE_KINDS = ("reverb", "noise", "music", "babble")


def validate_config(config: TrainConfig) -> None:
    """Raises TrainConfigError listing every out-of-range value as `field (--flag)`."""
    problems = flagspec.problems(config, flag_specs())
    optim, data, model = config.optim, config.data, config.model
    if optim.lr_schedule == "cosine" and optim.warmup_steps >= optim.max_steps:
        problems.append(f"optim.warmup_steps (--warmup_steps) {optim.warmup_steps} must be "
                        f"below optim.max_steps (--max_steps) {optim.max_steps}")
    if optim.weight_decay > 0 and optim.optimizer != "adamw":
        problems.append(f"optim.weight_decay (--weight_decay) {optim.weight_decay} needs "
                        f"--optimizer=adamw (decoupled decay); --optimizer="
                        f"{optim.optimizer} would ignore it")
    augmentation = data.augmentation
    if data.augment_probability > 0 and any(getattr(augmentation, k) for k in _SOURCE_KINDS):
        problems.append("data.augment_probability (--augment_probability) sets the four "
                        "per-kind probabilities: give it or --augment_reverb/noise/music/"
                        "babble, not both")
    needs_sources = data.augment_probability > 0 or augmentation.source_kinds
    if needs_sources and not data.augmentation_data:
        named = "augment_probability (--augment_probability) > 0" if \
            data.augment_probability > 0 else \
            f"--augment_{'/'.join(k for k in _SOURCE_KINDS if getattr(augmentation, k))}"
        problems.append(f"{named} needs --augmentation_data")
    if bool(data.validation_data) != bool(data.validation_trials):
        problems.append("--validation_data and --validation_trials go together, got "
                        f"{data.validation_data!r} and {data.validation_trials!r}")
    if model.features.num_ceps > model.features.num_mel_bins:
        problems.append(f"model.features.num_ceps (--num_ceps) {model.features.num_ceps} "
                        "must not exceed --num_mel_bins "
                        f"{model.features.num_mel_bins}")
    if len(data.speakers_tsv) > 1 and len(data.speakers_tsv) != len(data.train_data):
        problems.append(f"data.speakers_tsv (--speakers_tsv) gives {len(data.speakers_tsv)} "
                        f"maps for {len(data.train_data)} --train_data globs: give one per "
                        "glob, one for all, or none")
    if config.freeze_until and not config.init_from:
        problems.append("freeze_until (--freeze_until) needs --init_from: freezing "
                        "randomly initialised layers trains nothing there")
    if config.head_warmup_steps and not config.init_from:
        problems.append("head_warmup_steps (--head_warmup_steps) needs --init_from: with "
                        "random layers below it the head has nothing to warm up on")
    if config.head_warmup_steps >= config.optim.max_steps:
        problems.append(f"head_warmup_steps (--head_warmup_steps) "
                        f"{config.head_warmup_steps} must be below --max_steps "
                        f"{config.optim.max_steps}, or only the head would ever train")
    if problems:
        raise TrainConfigError("; ".join(problems))
