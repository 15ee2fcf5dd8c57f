"""A training run's process-wide state: the dtype policy and the global seeds are set for
the run only, and its TensorBoard writers are closed when it ends (issue 14)."""
import os
import random

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context

from test_train import tiny_config
from tfspk.training import trainer


def _process_state():
    from keras.src.utils import rng_utils

    return {"policy": keras.mixed_precision.global_policy().name,
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "tf_seed": context.global_seed(),
            "keras_seed": rng_utils.get_random_seed()}


def _assert_same_state(before, after):
    assert after["policy"] == before["policy"]
    assert after["python"] == before["python"]
    for got, expected in zip(after["numpy"], before["numpy"]):
        np.testing.assert_array_equal(got, expected)
    assert after["tf_seed"] == before["tf_seed"]
    assert after["keras_seed"] == before["keras_seed"]


def _open_files_under(directory):
    directory = os.path.realpath(directory)
    names = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(os.path.join("/proc/self/fd", fd))
        except OSError:  # closed between listdir and readlink
            continue
        if target.startswith(directory + os.sep):
            names.append(target)
    return names


def test_run_state_sets_policy_and_seed_for_the_run_and_restores_them():
    keras.mixed_precision.set_global_policy("mixed_float16")
    random.seed(5)
    np.random.seed(6)
    tf.random.set_seed(7)
    try:
        before = _process_state()
        kernels = []
        for _ in range(2):
            with trainer.run_state(3, "none"):
                # "none" is float32 whatever the caller had set: the optimizer the run
                # builds has no loss scaling, so the model must not compute in float16.
                assert keras.mixed_precision.global_policy().name == "float32"
                layer = keras.layers.Dense(4)
                layer.build((None, 3))
                kernels.append(layer.kernel.numpy())
            _assert_same_state(before, _process_state())
        # The seed, not the caller's random state, decides the initial weights.
        np.testing.assert_array_equal(kernels[0], kernels[1])
        with trainer.run_state(3, "mixed_bfloat16"):
            layer = keras.layers.Dense(4)
            layer.build((None, 3))
            assert layer.compute_dtype == "bfloat16"
            np.testing.assert_array_equal(layer.kernel.numpy(), kernels[0])
        _assert_same_state(before, _process_state())
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_training_restores_process_state_and_closes_its_writers(voxceleb_shards, tmp_path):
    keras.mixed_precision.set_global_policy("float32")
    random.seed(11)
    np.random.seed(12)
    tf.random.set_seed(13)
    before = _process_state()
    expected_draws = (random.random(), np.random.random_sample())
    random.seed(11)
    np.random.seed(12)
    tf.random.set_seed(13)
    result = trainer.train(tiny_config(voxceleb_shards, tmp_path, max_steps=2, log_every=1,
                                       batch_size=8, mixed_precision="mixed_bfloat16",
                                       validation_data=voxceleb_shards["test"],
                                       validation_trials=voxceleb_shards["trials"],
                                       validate_every=2))
    assert result["step"] == 2 and "validation_eer" in result
    _assert_same_state(before, _process_state())
    assert (random.random(), np.random.random_sample()) == expected_draws
    # The train and validation event files were written and are no longer held open.
    assert os.listdir(tmp_path / "train") and os.listdir(tmp_path / "validation")
    assert _open_files_under(tmp_path) == []
    assert not hasattr(trainer, "_VALIDATION_WRITERS")
