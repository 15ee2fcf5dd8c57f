"""End-to-end training: learning, resumption, and agreement across strategies."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import dataclasses

from tfspk import model_spec as spec_lib
from tfspk.training import config as config_lib
from tfspk.training import trainer

TINY = dict(conv_filters=(64, 64, 64, 128), fc_units=(128, 64))


def tiny_config(shards, model_dir, spec=None, **overrides):
    """A TrainConfig from flag names (`batch_size=8`); `spec` replaces the model."""
    values = dict(model_dir=str(model_dir), train_data=shards["train"],
                  conv_filters=TINY["conv_filters"], fc_units=TINY["fc_units"],
                  batch_size=16, max_steps=10, log_every=5, checkpoint_every=5,
                  shuffle_buffer=64, optimizer="adam", learning_rate=0.001,
                  record_graph=False, seed=1)
    values.update(overrides)
    config = config_lib.from_values(**values)
    return dataclasses.replace(config, model=spec) if spec is not None else config


def test_loss_falls_and_validation_eer_drops(voxceleb_shards, tmp_path):
    validation = dict(validation_data=voxceleb_shards["test"],
                      validation_trials=voxceleb_shards["trials"], validate_every=1000)
    first = trainer.train(tiny_config(voxceleb_shards, tmp_path, max_steps=1, log_every=1,
                                      **validation))
    last = trainer.train(tiny_config(voxceleb_shards, tmp_path, max_steps=150, log_every=25,
                                     **validation))
    assert last["step"] == 150
    assert last["loss"] < 0.5 * first["loss"]
    assert last["validation_eer"] < first["validation_eer"] - 0.05
    assert last["validation_eer"] < 0.3
    # TensorBoard: scalars and the projector were written.
    assert os.listdir(tmp_path / "train")
    assert (tmp_path / "validation" / "projector_config.pbtxt").exists()
    saved = json.loads((tmp_path / "run_config.json").read_text())
    assert saved["versions"]["tensorflow"].startswith("2.")


def test_resume_refuses_a_different_model(voxceleb_shards, tmp_path):
    trainer.train(tiny_config(voxceleb_shards, tmp_path, max_steps=1))
    other = tiny_config(voxceleb_shards, tmp_path, max_steps=2,
                        spec=spec_lib.ModelSpec(conv_filters=(16, 16, 16, 16),
                                                fc_units=(16, 8)))
    with pytest.raises(ValueError, match="different model"):
        trainer.train(other)


RUN_WITH_DEVICES = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import tensorflow as tf
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, {tests_dir!r})
    from test_train import tiny_config
    from tfspk.training import trainer
    shards = json.loads({shards!r})
    config = tiny_config(shards, sys.argv[1], strategy=sys.argv[2], max_steps=2,
                         optimizer="sgd", learning_rate=0.05, shuffle_buffer=1)
    print("RESULT " + json.dumps(trainer.train(config)))
""")


def _run_script(script, *args, env=None, timeout=300):
    result = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    line = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_mirrored_matches_one_device(voxceleb_shards, tmp_path):
    import numpy as np
    import tensorflow as tf

    script = RUN_WITH_DEVICES.format(tests_dir=os.path.dirname(__file__),
                                     shards=json.dumps(voxceleb_shards))
    _run_script(script, tmp_path / "one", "one_device")
    mirrored = _run_script(script, tmp_path / "mirrored", "mirrored")
    assert mirrored["step"] == 2
    one = tf.train.load_checkpoint(str(tmp_path / "one" / "checkpoints"))
    two = tf.train.load_checkpoint(str(tmp_path / "mirrored" / "checkpoints"))
    names = [n for n in one.get_variable_to_shape_map() if n.startswith("model/")]
    assert names
    for name in names:
        np.testing.assert_allclose(one.get_tensor(name), two.get_tensor(name),
                                   rtol=1e-4, atol=1e-5, err_msg=name)


MULTI_WORKER = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    sys.path.insert(0, {tests_dir!r})
    from test_train import tiny_config
    from tfspk.training import trainer
    shards = json.loads({shards!r})
    config = tiny_config(shards, sys.argv[1], strategy="multi_worker", max_steps=3,
                         batch_size=8, optimizer="sgd", learning_rate=0.05)
    print("RESULT " + json.dumps(trainer.train(config)))
""")


def _free_ports(count):
    import socket
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_trains_with_identical_weights(voxceleb_shards, tmp_path):
    script = MULTI_WORKER.format(tests_dir=os.path.dirname(__file__),
                                 shards=json.dumps(voxceleb_shards))
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "run")], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads([l for l in out.splitlines()
                                   if l.startswith("RESULT ")][-1][len("RESULT "):]))
    assert [r["step"] for r in results] == [3, 3]
    assert results[0]["weights_sha256"] == results[1]["weights_sha256"]
    assert (tmp_path / "run" / "checkpoints" / "ckpt-3.index").exists()


def _train_cli(shards, model_dir, max_steps, extra=()):
    return [sys.executable, "-m", "tfspk.train", f"--model_dir={model_dir}",
            f"--train_data={shards['train']}", "--conv_filters=32,32,32,48",
            "--fc_units=48,24", "--batch_size=8", f"--max_steps={max_steps}",
            "--checkpoint_every=5", "--log_every=5", "--shuffle_buffer=32",
            "--learning_rate=0.01", "--lr_decay_steps=10", "--lr_decay_rate=0.5", *extra]


def _wait_for(path, process, timeout=240):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def _second_writer_is_refused(shards, model_dir, holder_pid):
    """A second run on a model_dir in use is refused, naming the running one."""
    from absl import flags

    from tfspk import train
    values = flags.FlagValues()
    train.define_flags(values)
    values(["train"] + _train_cli(shards, model_dir, 100000)[3:])
    flags_txt = (model_dir / "flags.txt").read_text()
    with pytest.raises(SystemExit) as exit_:
        train.main(["train"], flag_values=values)
    assert exit_.value.code == 2
    holder = json.loads((model_dir / "tfspk.lock").read_text())
    assert holder["pid"] == holder_pid and "tfspk.train" in holder["command"]
    assert (model_dir / "flags.txt").read_text() == flags_txt


def _random_sigkills(shards, model_dir, env, kills):
    """SIGKILLs the training CLI `kills` more times at random moments (start-up, steps,
    checkpoint saves); after each, the latest checkpoint must load."""
    import random

    import tensorflow as tf

    rng = random.Random(77)
    for _ in range(kills):
        process = subprocess.Popen(_train_cli(shards, model_dir, 100000), env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        try:
            _, err = process.communicate(timeout=rng.uniform(2.0, 14.0))
            raise AssertionError(f"training ended before the kill: {err[-2000:]}")
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
        assert latest is not None
        tf.train.load_checkpoint(latest).get_variable_to_shape_map()


@pytest.mark.parametrize("kill_signal", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_at_the_right_step_and_learning_rate(voxceleb_shards, tmp_path,
                                                                kill_signal):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(_train_cli(voxceleb_shards, tmp_path, 100000), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path / "checkpoints" / "ckpt-10.index", process)
    if kill_signal == signal.SIGKILL:
        _second_writer_is_refused(voxceleb_shards, tmp_path, process.pid)
    process.send_signal(kill_signal)
    out, _ = process.communicate(timeout=120)
    import tensorflow as tf

    if kill_signal == signal.SIGKILL:
        _random_sigkills(voxceleb_shards, tmp_path, env, kills=4)  # 5 SIGKILLs in all
        out = ""

    # The `checkpoint` state file is the commit point: a SIGKILL can land after a
    # checkpoint's files are written but before the state file names it.
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    saved_step = int(latest.rsplit("-", 1)[-1])
    if kill_signal == signal.SIGTERM:
        assert "SIGTERM received" in out
    assert saved_step >= 10
    final = saved_step + 3
    rerun = subprocess.run(_train_cli(voxceleb_shards, tmp_path, final), env=env,
                           capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"at step {saved_step}" in rerun.stdout
    assert not [n for n in os.listdir(tmp_path / "checkpoints") if "_temp" in n]
    assert not (tmp_path / "tfspk.lock").exists()
    metrics = json.loads((tmp_path / "last_metrics.json").read_text())
    assert metrics["step"] == final
    # Staircase: 0.01 * 0.5 ** floor(step / 10), evaluated at the optimiser's iteration.
    assert metrics["learning_rate"] == pytest.approx(0.01 * 0.5 ** (final // 10))


@pytest.mark.parametrize("options", [
    dict(features_on_device=True, augment_probability=0.5),
    dict(augment_noise=0.3, augment_babble=0.3, augment_exclusive=False, augment_reverb=0.5,
         augment_speed=0.5, augment_specaugment=0.5, babble_speakers=(1, 2),
         noise_snrs=(3.0, 9.0), snr_sampling="uniform"),
    dict(mixed_precision="mixed_bfloat16"),
    dict(mixed_precision="mixed_float16"),
    dict(xla=True),
    dict(spec=spec_lib.ModelSpec(pooling="attentive", batch_norm=True, head="aam_softmax",
                                 margin=0.2, **TINY), margin_warmup_steps=(1, 3)),
    dict(spec=spec_lib.ModelSpec(architecture="xvector", conv_filters=(32, 32, 32, 32, 64),
                                 fc_units=(32, 32))),
    dict(spec=spec_lib.ModelSpec(architecture="frame_level_cnn", **TINY),
         optimizer="sgd", momentum=0.9, lr_schedule="cosine", warmup_steps=2),
], ids=["features_on_device", "every_augmentation", "bfloat16", "float16", "xla", "aam_attentive_bn", "xvector",
        "frame_level_sgd_cosine"])
def test_training_options_run_and_stay_finite(voxceleb_shards, tmp_path, options):
    import math

    import keras

    augmentation = os.path.join(os.path.dirname(voxceleb_shards["corpus"]), "aug")
    if options.get("augment_probability") or options.get("augment_noise"):
        from tfspk.synth import corpus
        if not os.path.exists(os.path.join(augmentation, "summary.json")):
            corpus.generate_augmentation(augmentation, num_speakers=2, utts_per_speaker=2,
                                         num_noise=2, num_music=2, rooms_per_size=1,
                                         rirs_per_room=1)
        options = dict(options, augmentation_data=augmentation)
    result = trainer.train(tiny_config(voxceleb_shards, tmp_path, max_steps=4, log_every=2,
                                       batch_size=8, **options))
    # The run's dtype policy was its own (tests/test_train_state.py checks all of it).
    assert keras.mixed_precision.global_policy().name == "float32"
    assert result["step"] == 4
    assert math.isfinite(result["loss"])


def test_tensorboard_holds_every_promised_scalar_and_the_graph(voxceleb_shards, tmp_path):
    from tfspk.training import summaries

    trainer.train(tiny_config(voxceleb_shards, tmp_path, max_steps=2, log_every=1,
                              record_graph=True,
                              validation_data=voxceleb_shards["test"],
                              validation_trials=voxceleb_shards["trials"],
                              validate_every=2))
    train_events = summaries.read_events(str(tmp_path / "train"))
    assert train_events["graphs"] == 1
    for tag in summaries.TRAIN_SCALARS:
        assert [step for step, _ in train_events["scalars"][tag]] == [1, 2], tag
    validation_events = summaries.read_events(str(tmp_path / "validation"))
    for tag in summaries.VALIDATION_SCALARS:
        steps_values = validation_events["scalars"][tag]
        assert [step for step, _ in steps_values] == [2], tag
        assert 0.0 <= steps_values[0][1] <= 1.0 or tag.startswith("min_dcf")


def test_incomplete_checkpoint_of_a_killed_save_is_removed_at_start(voxceleb_shards,
                                                                    tmp_path, capsys):
    trainer.train(tiny_config(voxceleb_shards, tmp_path, max_steps=5))
    temp = tmp_path / "checkpoints" / "ckpt-10_temp"
    temp.mkdir()
    (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    (tmp_path / "checkpoints" / "checkpoint.tmp0123abcd").write_text("half")
    result = trainer.train(tiny_config(voxceleb_shards, tmp_path, max_steps=6))
    assert result["step"] == 6
    assert not temp.exists()
    assert not (tmp_path / "checkpoints" / "checkpoint.tmp0123abcd").exists()
    assert "removed incomplete checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "tfspk.lock").exists()  # released after the run
