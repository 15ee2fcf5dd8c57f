"""The nested TrainConfig and the tfspk.train flags generated from it."""
import dataclasses
import glob
import os

import pytest
from absl import flags

from tfspk import model_spec as spec_lib
from tfspk import train
from tfspk.augment.config import AugmentationConfig
from tfspk.training import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIRED = ["--model_dir=/tmp/run", "--train_data=d/train-*.tfrecord"]


def parsed(*args):
    values = flags.FlagValues()
    train.define_flags(values)
    values(["train", *args])
    return values


def leaf_paths(cls, prefix=()):
    """Every leaf field of a (nested) dataclass, found independently of flagspec."""
    import typing

    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        tp = hints[field.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            yield from leaf_paths(tp, prefix + (field.name,))
        else:
            yield prefix + (field.name,)


def field_default(cls, path):
    import typing

    for name in path[:-1]:
        cls = typing.get_type_hints(cls)[name]
    field = {f.name: f for f in dataclasses.fields(cls)}[path[-1]]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def test_every_flag_maps_to_exactly_one_field_with_one_default():
    values = flags.FlagValues()
    train.define_flags(values)
    module_flags = {flag.name for flag in values.get_flags_for_module("tfspk.train")}
    specs = config_lib.flag_specs()
    by_name = {spec.name: spec for spec in specs}
    # Every flag the CLI defines is a generated one, and vice versa.
    assert module_flags == set(by_name)
    assert len(by_name) == len(specs)
    # Each flag sets one leaf field; each leaf field has exactly one flag.
    paths = [spec.path for spec in specs]
    assert sorted(paths) == sorted(leaf_paths(config_lib.TrainConfig))
    assert len(set(paths)) == len(paths)
    # The flag's default is the dataclass field's default (required flags have none).
    for spec in specs:
        default = field_default(config_lib.TrainConfig, spec.path)
        flag_default = values[spec.name].default
        assert spec.to_field(flag_default) == default, spec.name
    # Parsing only the required flags gives the dataclasses' defaults.
    config = train.config_from_flags(parsed(*REQUIRED))
    assert config.model == spec_lib.ModelSpec()
    assert config.optim == config_lib.OptimConfig()
    assert config.data == config_lib.DataConfig(train_data=("d/train-*.tfrecord",))
    assert config.data.augmentation == AugmentationConfig()


def test_existing_flag_names_keep_working():
    names = {spec.name for spec in config_lib.flag_specs()}
    old = {"model_dir", "train_data", "speakers_tsv", "validation_data", "validation_trials",
           "architecture", "variant", "pooling", "conv_filters", "fc_units", "batch_norm",
           "head", "margin", "scale", "margin_warmup_steps", "embedding_layer",
           "num_mel_bins", "num_ceps", "low_freq", "high_freq", "cmn", "num_frames",
           "batch_size", "max_steps", "optimizer", "learning_rate", "lr_schedule",
           "lr_decay_steps", "lr_decay_rate", "warmup_steps", "momentum", "weight_decay",
           "mixed_precision", "xla", "augmentation_data", "augment_probability",
           "features_on_device", "shuffle_buffer", "seed", "strategy", "tpu",
           "checkpoint_every", "keep_checkpoints", "log_every", "verify_shards",
           "validate_every"}
    assert old <= names
    augmentation = {"augment_reverb", "augment_noise", "augment_music", "augment_babble",
                    "augment_exclusive", "augment_speed", "augment_specaugment",
                    "noise_snrs", "music_snrs", "babble_snrs", "snr_sampling",
                    "babble_speakers", "speed_factors", "speed_label_offset",
                    "num_time_masks", "max_time_mask_frames", "num_freq_masks",
                    "max_freq_mask_bins"}
    assert augmentation <= names


def _unusual_config():
    """A config where every kind of field is off its default."""
    config = train.config_from_flags(parsed(
        "--model_dir=/tmp/r", "--train_data=a/train-*.tfrecord, b/x-*.tfrecord.gz",
        "--speakers_tsv=a/train.speakers.tsv,b/x.speakers.tsv", "--architecture=xvector",
        "--conv_filters=8,8,8,8,16", "--fc_units=8,4", "--batch_norm", "--head=aam_softmax",
        "--margin=0.25", "--scale=32.5", "--margin_warmup_steps=3,9", "--num_ceps=20",
        "--num_mel_bins=24", "--high_freq=-400", "--cmn=sliding", "--nosnip_edges",
        "--sample_rate=8000", "--batch_size=6", "--optimizer=adamw", "--learning_rate=3e-4",
        "--lr_schedule=cosine", "--warmup_steps=10", "--max_steps=20", "--weight_decay=0.01",
        "--augmentation_data=aug", "--augment_probability=0.3", "--augment_speed=0.2",
        "--augment_specaugment=0.5", "--noise_snrs=-5,0.5", "--babble_speakers=2,4",
        "--speed_factors=0.95,1.05", "--speed_label_offset=1000", "--snr_sampling=uniform",
        "--max_freq_mask_bins=4", "--noaugment_exclusive", "--seed=7", "--norecord_graph",
        "--init_from=runs/base", "--freeze_until=frame2", "--tpu=grpc://x:8470",
        "--num_speakers=77"))
    return config


def test_flag_file_written_from_a_resolved_config_reproduces_it(tmp_path):
    config = _unusual_config()
    assert config.data.train_data == ("a/train-*.tfrecord", "b/x-*.tfrecord.gz")
    # --augment_probability resolved into the four kinds.
    assert config.data.augment_probability == 0.0
    assert config.data.augmentation.reverb == pytest.approx(0.075)
    assert config.data.augmentation.speed_label_offset == 1000
    assert config.model.features.snip_edges is False
    assert config_lib.resolve(config) == config
    config_path, flags_path = config.save(str(tmp_path))
    assert config_lib.TrainConfig.load(str(tmp_path)) == config
    again = train.config_from_flags(parsed(f"--flagfile={flags_path}"))
    assert again == config
    # A defaults-only config also round-trips (empty lists, None offset, booleans on).
    plain = train.config_from_flags(parsed(*REQUIRED))
    os.makedirs(tmp_path / "p")
    plain.save(str(tmp_path / "p"))
    assert train.config_from_flags(parsed(f"--flagfile={tmp_path / 'p' / 'flags.txt'}")) \
        == plain


def test_softmax_head_ignores_margin_and_scale():
    config = train.config_from_flags(parsed(*REQUIRED, "--margin=0.3", "--scale=10"))
    assert (config.model.margin, config.model.scale) == (spec_lib.ModelSpec().margin,
                                                         spec_lib.ModelSpec().scale)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.flags"))),
                         ids=os.path.basename)
def test_every_shipped_flag_file_parses(path):
    config = train.config_from_flags(parsed(f"--flagfile={path}", *REQUIRED))
    config_lib.validate_config(dataclasses.replace(
        config, data=dataclasses.replace(config.data, augmentation_data="aug")))
    if "aam" in path:
        assert config.model.head == "aam_softmax" and config.model.margin == 0.2
    if os.path.basename(path) == "demo.flags":  # demo_real.flags: sessions augment instead
        assert config.data.augmentation.noise == pytest.approx(0.3 / 4)


@pytest.mark.parametrize("change,named", [
    (dict(learning_rate=0.0), "optim.learning_rate (--learning_rate) must be a finite "
                              "number > 0"),
    (dict(batch_size=0), "optim.batch_size (--batch_size) must be >= 1"),
    (dict(momentum=1.0), "--momentum) must be in [0, 1)"),
    (dict(augment_probability=0.4, augment_noise=0.2, augmentation_data="a"),
     "give it or --augment_reverb/noise/music/babble, not both"),
    (dict(augment_music=0.2), "--augment_music needs --augmentation_data"),
    (dict(conv_filters=(8, 0, 8, 8)), "--conv_filters) must be a comma-separated list of "
                                      "integers >= 1"),
    (dict(head="aam_softmax", margin=1.5), "--margin) must be in [0, 1)"),
    (dict(freeze_until="conv2"), "(--freeze_until) needs --init_from"),
    (dict(speakers_tsv=("a", "b")), "gives 2 maps for 1 --train_data globs"),
    (dict(validation_data="x"), "--validation_data and --validation_trials go together"),
    (dict(optimizer="lion"), "optim.optimizer (--optimizer) must be one of"),
    (dict(optimizer="adam", weight_decay=1e-4), "(--weight_decay) 0.0001 needs "
                                                "--optimizer=adamw"),
    (dict(optimizer="sgd", weight_decay=1e-4), "--optimizer=sgd would ignore it"),
])
def test_validate_config_names_field_and_flag(change, named):
    config = config_lib.from_values(model_dir="m", train_data="d/*", **change)
    with pytest.raises(config_lib.TrainConfigError) as error:
        config_lib.validate_config(config)
    assert named in str(error.value)


def test_flags_refuse_impossible_augmentation_values():
    for flag, named in [("--augment_noise=1.5", "--augment_noise must be in [0, 1]"),
                        ("--babble_speakers=5,2", "--babble_speakers must be two integers"),
                        ("--speed_factors=0.9,0", "--speed_factors must be a comma"),
                        ("--speed_label_offset=0", "--speed_label_offset must be unset or"),
                        ("--snr_sampling=gauss", "snr_sampling"),
                        ("--noise_snrs=a", "--noise_snrs must be")]:
        with pytest.raises(flags.IllegalFlagValueError) as error:
            parsed(*REQUIRED, flag)
        assert named in str(error.value), flag


def test_unknown_architecture_lists_the_registered_ones_and_registering_is_one_decorator():
    from tfspk.models import registry

    with pytest.raises(registry.UnknownArchitectureError, match="paper_cnn, frame_level_cnn"):
        spec_lib.ModelSpec(architecture="resnet34")

    @registry.register("test_tiny_dense")
    def build(spec):
        import keras

        from tfspk.models.blocks import dense_block, model_inputs, pooling_layer
        inputs = model_inputs(spec.features.num_ceps)
        pooled = pooling_layer("stats")(inputs["features"], inputs["lengths"])
        fc1 = dense_block(pooled, spec.fc_units[0], name="fc1")
        return keras.Model(inputs, {"fc1": fc1, "fc2": dense_block(fc1, spec.fc_units[1],
                                                                   name="fc2")})
    try:
        spec = spec_lib.ModelSpec(architecture="test_tiny_dense", fc_units=(6, 4),
                                  num_speakers=3)
        assert "test_tiny_dense" in registry.names()
        assert spec_lib.build_classifier_model(spec).head.units == 3
        values = flags.FlagValues()
        train.define_flags(values)
        values(["train", *REQUIRED, "--architecture=test_tiny_dense"])
    finally:
        registry._BUILDERS.pop("test_tiny_dense")


def test_preflight_names_trial_ids_missing_from_the_validation_shards(voxceleb_shards,
                                                                      tmp_path):
    from tfspk.training import trainer

    trials = tmp_path / "trials.txt"
    lines = open(voxceleb_shards["trials"]).read().splitlines()[:4]
    lines.append("0 " + lines[0].split()[1] + " id99999/nosuch/00001.wav")
    trials.write_text("\n".join(lines) + "\n")
    config = config_lib.from_values(model_dir=str(tmp_path / "m"),
                                    train_data=voxceleb_shards["train"],
                                    validation_data=voxceleb_shards["test"],
                                    validation_trials=str(trials))
    with pytest.raises(ValueError, match=r"names 1 utterance id\(s\) not in "
                                         r"--validation_data=.*: id99999/nosuch/00001"):
        trainer.preflight(config)
    assert not os.path.exists(tmp_path / "m")


def test_shipped_flag_files_are_found_through_the_package():
    from tfspk import configs

    shipped = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "configs",
                                                                         "*.flags")))
    assert configs.names() == shipped
    assert open(configs.path("demo")).read() == open(os.path.join(REPO, "configs",
                                                                  "demo.flags")).read()
    with pytest.raises(FileNotFoundError, match="shipped: aam_voxceleb1.flags"):
        configs.path("nonexistent")


def test_preflight_offsets_labels_of_shard_sets_with_their_own_speaker_maps(
        voxceleb_shards, tmp_path):
    from tfspk.training import trainer

    both = f"{voxceleb_shards['train']},{voxceleb_shards['test']}"
    checked = trainer.preflight(config_lib.from_values(model_dir=str(tmp_path / "m"),
                                                       train_data=both))
    assert checked.shard_sets.label_offsets == (0, 12)
    assert checked.shard_sets.speakers == (12, 6)
    assert checked.spec.num_speakers == checked.config.model.num_speakers == 18
    # The same glob twice shares one speaker map: no offset, no extra classes.
    twice = f"{voxceleb_shards['train']},{voxceleb_shards['train']}"
    checked = trainer.preflight(config_lib.from_values(model_dir=str(tmp_path / "m"),
                                                       train_data=twice))
    assert checked.shard_sets.label_offsets == (0, 0) and checked.spec.num_speakers == 12
