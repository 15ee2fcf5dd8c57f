"""Fine-tuning (`--init_from`, `--freeze_until`): layers up to the embedding come from a
training run or an export, frozen layers stay put, the head is new."""
import os

import numpy as np
import pytest

from test_train import tiny_config
from tfspk import model_spec as spec_lib
from tfspk.training import config as config_lib
from tfspk.training import finetune, trainer


def _restore(model_dir):
    import tensorflow as tf

    spec = spec_lib.ModelSpec.load(str(model_dir))
    classifier = spec_lib.build_classifier_model(spec)
    latest = tf.train.latest_checkpoint(os.path.join(str(model_dir), "checkpoints"))
    tf.train.Checkpoint(model=classifier).restore(latest).expect_partial() \
        .assert_existing_objects_matched()
    return spec, classifier


def _by_layer(model):
    return {layer.name: [w.numpy() for w in layer.weights] for layer in model.layers
            if layer.weights}


@pytest.fixture(scope="module")
def source_run(voxceleb_shards, tmp_path_factory):
    """A 3-step run on the 12 training speakers, with batch norm, and its export."""
    from tfspk import export

    root = tmp_path_factory.mktemp("finetune")
    trainer.train(tiny_config(voxceleb_shards, root / "source", max_steps=3,
                              batch_norm=True))
    base = root / "exported"
    path = export.export_saved_model(str(root / "source"), str(base), version=1,
                                     warmup=False)
    return {"dir": root / "source", "export": path}


@pytest.mark.parametrize("kind", ["run_dir", "checkpoint", "saved_model"])
def test_loaded_weights_equal_the_source_up_to_the_embedding(source_run, kind):
    _, source = _restore(source_run["dir"])
    path = {"run_dir": str(source_run["dir"]),
            "checkpoint": os.path.join(str(source_run["dir"]), "checkpoints", "ckpt-3"),
            "saved_model": source_run["export"]}[kind]
    resolved = finetune.resolve_source(path)
    target_spec = spec_lib.ModelSpec(**{**vars(resolved.spec), "num_speakers": 5})
    target = spec_lib.build_classifier_model(target_spec)
    count = finetune.load_embedding_weights(target.embedding_model, resolved)
    assert count == len(source.embedding_model.weights) > 0
    for mine, theirs in zip(target.embedding_model.weights, source.embedding_model.weights):
        assert mine.path == theirs.path
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)
    assert target.head.units == 5 and source.head.units == 12


def test_finetuning_trains_a_new_head_and_keeps_frozen_layers(voxceleb_shards, source_run,
                                                              tmp_path, capsys):
    _, source = _restore(source_run["dir"])
    config = tiny_config(voxceleb_shards, tmp_path, max_steps=4, batch_norm=True,
                         train_data=voxceleb_shards["test"],
                         init_from=str(source_run["dir"]), freeze_until="conv2")
    result = trainer.train(config)
    assert result["step"] == 4 and np.isfinite(result["loss"])
    assert "initialised" in capsys.readouterr().out
    spec, tuned = _restore(tmp_path)
    assert spec.num_speakers == 6 and tuned.head.units == 6  # the 6 test speakers
    before, after = _by_layer(source.embedding_model), _by_layer(tuned.embedding_model)
    frozen = ["conv1", "conv1_bn", "conv2", "conv2_bn"]
    for name in frozen:  # kernels, biases and batch-norm moving statistics
        for old, new in zip(before[name], after[name]):
            np.testing.assert_array_equal(old, new, err_msg=name)
    for name in ["conv3", "conv4", "fc1", "fc2"]:
        assert any(not np.array_equal(old, new) for old, new in
                   zip(before[name], after[name])), f"{name} did not train"
    # The run recorded where it started from.
    saved = config_lib.TrainConfig.load(str(tmp_path))
    assert saved.init_from == str(source_run["dir"]) and saved.freeze_until == "conv2"


def _trainable_by_layer(model):
    return {layer.name: [w.numpy() for w in layer.trainable_weights]
            for layer in model.layers if layer.trainable_weights}


def _checkpoint_weights(model_dir, step):
    import tensorflow as tf

    spec = spec_lib.ModelSpec.load(str(model_dir))
    classifier = spec_lib.build_classifier_model(spec)
    tf.train.Checkpoint(model=classifier).restore(
        os.path.join(str(model_dir), "checkpoints", f"ckpt-{step}")).expect_partial()
    return classifier


def test_head_warmup_trains_only_the_head_then_everything(voxceleb_shards, source_run,
                                                         tmp_path, capsys):
    _, source = _restore(source_run["dir"])
    config = tiny_config(voxceleb_shards, tmp_path, max_steps=3, batch_norm=True,
                         train_data=voxceleb_shards["test"], checkpoint_every=1,
                         init_from=str(source_run["dir"]), head_warmup_steps=2)
    trainer.train(config)
    assert "head warm-up: steps 1-2 train only the head" in capsys.readouterr().out
    loaded = _trainable_by_layer(source.embedding_model)
    heads = []
    for step in (1, 2, 3):
        classifier = _checkpoint_weights(tmp_path, step)
        heads.append([w.numpy() for w in classifier.head.trainable_weights])
        tuned = _trainable_by_layer(classifier.embedding_model)
        same = all(np.array_equal(old, new) for name in loaded
                   for old, new in zip(loaded[name], tuned[name]))
        # Steps 1-2 leave every loaded trainable weight as it was; step 3 trains them.
        assert same == (step <= 2), step
    assert not np.array_equal(heads[0][0], heads[1][0])  # the head trained in warm-up


def test_head_warmup_needs_init_from_and_fewer_steps_than_the_run(voxceleb_shards,
                                                                  tmp_path):
    with pytest.raises(config_lib.TrainConfigError,
                       match=r"head_warmup_steps \(--head_warmup_steps\) needs --init_from"):
        config_lib.validate_config(tiny_config(voxceleb_shards, tmp_path,
                                               head_warmup_steps=2))
    with pytest.raises(config_lib.TrainConfigError,
                       match="head_warmup_steps.* 10 must be below --max_steps 10"):
        config_lib.validate_config(tiny_config(voxceleb_shards, tmp_path, max_steps=10,
                                               head_warmup_steps=10, init_from="x"))


def test_a_different_architecture_is_refused_naming_the_flags(voxceleb_shards, source_run,
                                                              tmp_path):
    config = tiny_config(voxceleb_shards, tmp_path, conv_filters=(32, 32, 32, 64),
                         init_from=source_run["export"])
    with pytest.raises(finetune.InitFromError) as error:
        trainer.preflight(config)
    message = str(error.value)
    assert "conv_filters: source (64, 64, 64, 128) vs this run (32, 32, 32, 64)" in message
    assert "pass --conv_filters=64,64,64,128 --batch_norm" in message
    assert not os.path.exists(tmp_path / "config.json")


def test_unknown_freeze_layer_lists_the_valid_ones(voxceleb_shards, source_run, tmp_path):
    config = tiny_config(voxceleb_shards, tmp_path, batch_norm=True, freeze_until="conv9",
                         init_from=str(source_run["dir"]))
    with pytest.raises(finetune.InitFromError,
                       match="--freeze_until=conv9: not a layer with weights of paper_cnn; "
                             "valid: conv1, conv1_bn, conv2"):
        trainer.preflight(config)


def test_init_from_something_else_is_refused(tmp_path):
    with pytest.raises(finetune.InitFromError, match="not a tfspk training directory"):
        finetune.resolve_source(str(tmp_path))
