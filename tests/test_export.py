"""SavedModel export: CLI, isolation from tfspk, padding invariance, bad inputs,
saved_model_cli, warm-up requests and frame geometry."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from absl import flags
import tensorflow as tf

import export_fixtures as fx
from tfspk import export
from tfspk.serving import pad_batch

TOLERANCE = 1e-4
STEPS = (3, 7)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory with checkpoints 3 and 7, exported through the CLI as version 2."""
    root = tmp_path_factory.mktemp("export")
    model_dir = str(root / "run")
    spec = fx.tiny_spec()
    weights, classifier = fx.make_model_dir(model_dir, spec, steps=STEPS)
    export_base = str(root / "models" / "spk")
    argv = ["export", f"--model_dir={model_dir}", f"--export_dir={export_base}",
            "--version=2"]
    flag_values = flags.FlagValues()
    export.define_flags(flag_values)
    flag_values(argv)
    export.export_from_flags(flag_values)
    path = os.path.join(export_base, "2")
    return {"root": root, "model_dir": model_dir, "spec": spec, "weights": weights,
            "classifier": classifier, "base": export_base, "path": path,
            "loaded": tf.saved_model.load(path)}


def _embed(run, waveform, lengths, signature="serving_default"):
    outputs = run["loaded"].signatures[signature](
        waveform=tf.constant(waveform, tf.float32), lengths=tf.constant(lengths, tf.int32))
    return {name: value.numpy() for name, value in outputs.items()}


def _clips(seconds, seed=0):
    return [fx.speech_like(int(s * fx.SAMPLE_RATE), seed=seed + i)
            for i, s in enumerate(seconds)]


# The SavedModel loaded by a process that never imports tfspk (TF Serving's view).
ISOLATED_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf

    export_path, inputs, outputs = sys.argv[1:]
    batch = np.load(inputs)
    model = tf.saved_model.load(export_path)
    result = model.signatures["serving_default"](
        waveform=tf.constant(batch["waveform"]), lengths=tf.constant(batch["lengths"]))
    frames = model.signatures["frame_embeddings"](
        waveform=tf.constant(batch["waveform"]), lengths=tf.constant(batch["lengths"]))
    assert "tfspk" not in sys.modules, "the SavedModel pulled in tfspk"
    np.savez(outputs, embedding=result["embedding"].numpy(),
             conv4_lengths=frames["conv4_lengths"].numpy(),
             tfspk_imported=np.array("tfspk" in sys.modules))
""")


def test_isolated_process_matches_keras_model(run, tmp_path):
    clips = _clips([0.4, 1.3, 2.2])
    waveform, lengths = pad_batch(clips)
    np.savez(tmp_path / "inputs.npz", waveform=waveform, lengths=lengths)
    script = tmp_path / "load_export.py"
    script.write_text(ISOLATED_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), run["path"], str(tmp_path / "inputs.npz"),
         str(tmp_path / "outputs.npz")], capture_output=True, text=True, timeout=180,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "outputs.npz")
    assert not outputs["tfspk_imported"]
    reference = fx.keras_embeddings(run["classifier"], run["spec"], clips)
    assert outputs["embedding"].shape == (3, 12)
    assert np.abs(reference).max() > 0.05  # a real, non-degenerate embedding
    np.testing.assert_allclose(outputs["embedding"], reference, rtol=0, atol=TOLERANCE)
    # conv1 k=5, conv2 k=7 stride 2: frames = ((n_mfcc - 4) - 7) // 2 + 1.
    mfcc_frames = 1 + (lengths - 400) // 160
    np.testing.assert_array_equal(outputs["conv4_lengths"], (mfcc_frames - 11) // 2 + 1)


def test_padding_invariance_on_real_speech(run, librispeech_dir):
    clips = fx.librispeech_clips(librispeech_dir, [2.9, 0.6, 1.7, 1.1])
    width = max(len(c) for c in clips) + 1234
    waveform = np.full((len(clips), width), np.nan, np.float32)  # padding must not matter
    for row, clip in enumerate(clips):
        waveform[row, :len(clip)] = clip
    lengths = np.array([len(c) for c in clips], np.int32)
    batched = _embed(run, waveform, lengths)["embedding"]
    alone = np.concatenate([_embed(run, c[None], [len(c)])["embedding"] for c in clips])
    np.testing.assert_allclose(batched, alone, rtol=0, atol=TOLERANCE)
    reference = fx.keras_embeddings(run["classifier"], run["spec"], clips)
    np.testing.assert_allclose(batched, reference, rtol=0, atol=TOLERANCE)
    # Different speakers give different embeddings: the test is not vacuous.
    assert np.abs(batched[0] - batched[1]).max() > 10 * TOLERANCE


def test_frame_embeddings_match_each_row_alone(run):
    clips = _clips([1.5, 0.5])
    waveform, lengths = pad_batch(clips)
    batched = _embed(run, waveform, lengths, "frame_embeddings")
    names = ["mfcc", "conv1", "conv2", "conv3", "conv4"]
    assert sorted(batched) == sorted(names + [n + "_lengths" for n in names])
    assert batched["mfcc"].shape[-1] == 20 and batched["conv4"].shape[-1] == 24
    for row, clip in enumerate(clips):
        alone = _embed(run, clip[None], [len(clip)], "frame_embeddings")
        for name in names:
            n = alone[name + "_lengths"][0]
            assert batched[name + "_lengths"][row] == n
            np.testing.assert_allclose(batched[name][row, :n], alone[name][0, :n],
                                       rtol=0, atol=TOLERANCE, err_msg=name)
            assert not batched[name][row, n:].any(), f"{name} not zero past the length"
    # Utterance CMN: every MFCC coefficient has zero mean over the valid frames.
    n = batched["mfcc_lengths"][1]
    np.testing.assert_allclose(batched["mfcc"][1, :n].mean(axis=0), 0, atol=1e-3)


def test_batch_of_one_and_empty_batch(run):
    clip = _clips([0.7])[0]
    one = _embed(run, clip[None], [len(clip)])["embedding"]
    assert one.shape == (1, 12)
    np.testing.assert_allclose(
        one, fx.keras_embeddings(run["classifier"], run["spec"], [clip]), atol=TOLERANCE)
    for width in (0, 5, 16000):
        empty = _embed(run, np.zeros((0, width), np.float32), np.zeros([0], np.int32))
        assert empty["embedding"].shape == (0, 12)
        frames = _embed(run, np.zeros((0, width), np.float32), np.zeros([0], np.int32),
                        "frame_embeddings")
        assert frames["conv4"].shape[0] == 0 and frames["conv4"].shape[-1] == 24
        assert frames["mfcc_lengths"].shape == (0,)


def _min_samples(run):
    with open(os.path.join(run["path"], "assets.extra", "frame_geometry.json")) as f:
        return json.load(f)["min_samples"]


BAD_INPUTS = {
    # name: (lengths for 3 rows of 8000 samples, error pattern, rows named)
    "negative length": ([8000, -1, 4000], r"lengths must be >= 0; rows:\] \[1\]"),
    "length beyond the row": ([8000, 8001, 4000],
                              r"lengths exceed the waveform width.*rows:\] \[1\]"),
    "shorter than a window": ([8000, 399, 0],
                              r"shorter than one analysis window \(400 samples\); "
                              r"rows:\] \[1 2\]"),
    "shorter than the receptive field": ([8000, 4000, 1999],
                                         r"shorter than the model minimum of 2000 samples "
                                         r"\(receptive field of 11 MFCC frames\); rows:\] \[2\]"),
    "fewer lengths than rows": ([8000, 8000], r"one entry per waveform row"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_lengths_are_invalid_argument(run, case):
    lengths, pattern = BAD_INPUTS[case]
    waveform = np.stack(_clips([0.5, 0.5, 0.5]))
    for signature in ("serving_default", "frame_embeddings"):
        with pytest.raises(tf.errors.InvalidArgumentError, match=pattern):
            _embed(run, waveform, np.array(lengths, np.int32), signature)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_audio_is_invalid_argument(run, bad_value):
    waveform = np.stack(_clips([0.5, 0.5, 0.5]))
    waveform[2, 3000] = bad_value
    waveform[1, 7000] = bad_value  # in row 1's padding: ignored
    lengths = np.array([8000, 5000, 8000], np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"waveform contains NaN or Inf; rows:\] \[2\]"):
        _embed(run, waveform, lengths)
    waveform[2, 3000] = 0.0
    assert np.isfinite(_embed(run, waveform, lengths)["embedding"]).all()


def test_min_samples_is_the_shortest_accepted_utterance(run):
    minimum = _min_samples(run)
    # 11 MFCC frames (the receptive field of conv1 k=5 + conv2 k=7 stride 2) at 25/10 ms.
    assert minimum == 400 + 10 * 160
    clip = _clips([1.0])[0][:minimum]
    frames = _embed(run, clip[None], [minimum], "frame_embeddings")
    assert frames["conv4_lengths"].tolist() == [1]
    with pytest.raises(tf.errors.InvalidArgumentError, match="model minimum"):
        _embed(run, clip[None], [minimum - 1])


def test_frame_geometry_file(run):
    with open(os.path.join(run["path"], "assets.extra", "frame_geometry.json")) as f:
        geometry = json.load(f)
    assert geometry["frame_length_samples"] == 400
    assert geometry["frame_shift_samples"] == 160
    assert geometry["first_frame_start"] == 0
    # conv1: 5 frames centred on frame 2; conv2 (k=7, stride 2) centred on 2 + 3 = 5.
    assert geometry["layers"]["conv1"] == {"offset": 2, "stride": 1, "receptive_field": 5}
    assert geometry["layers"]["conv2"] == {"offset": 5, "stride": 2, "receptive_field": 11}
    assert geometry["layers"]["conv4"] == geometry["layers"]["conv2"]


def test_warmup_requests_replay_through_the_saved_model(run):
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(run["path"], "assets.extra", export.WARMUP_FILENAME)
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(path)]
    assert [log.WhichOneof("log_type") for log in logs] == ["predict_log"] * 2
    batch_sizes = []
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "spk"
        assert request.model_spec.signature_name == "serving_default"
        waveform = tf.make_ndarray(request.inputs["waveform"])
        lengths = tf.make_ndarray(request.inputs["lengths"])
        embedding = _embed(run, waveform, lengths)["embedding"]
        assert embedding.shape == (len(lengths), 12) and np.isfinite(embedding).all()
        batch_sizes.append(len(lengths))
    assert batch_sizes == [1, 8]


def test_export_layout_and_configs(run):
    assert os.path.exists(os.path.join(run["path"], "saved_model.pb"))
    with open(os.path.join(run["path"], "assets.extra", "source.txt")) as f:
        assert "ckpt-7" in f.read()  # the latest checkpoint by default
    base_parent = os.path.dirname(run["base"])
    with open(os.path.join(base_parent, "models.config")) as f:
        models_config = f.read()
    assert 'name: "spk"' in models_config and 'base_path: "/models/spk"' in models_config
    with open(os.path.join(base_parent, "batching.config")) as f:
        assert "max_batch_size { value: 32 }" in f.read()
    assert export.next_version(run["base"]) == 3
    with pytest.raises(FileExistsError, match="immutable"):
        export.export_saved_model(run["model_dir"], run["base"], version=2)


def test_resolve_checkpoint_and_restore(run):
    model_dir = run["model_dir"]
    directory = os.path.join(model_dir, "checkpoints")
    assert export.resolve_checkpoint(model_dir, None) == os.path.join(directory, "ckpt-7")
    assert export.resolve_checkpoint(model_dir, "3") == os.path.join(directory, "ckpt-3")
    assert export.resolve_checkpoint(model_dir, "ckpt-3") == os.path.join(directory, "ckpt-3")
    with pytest.raises(FileNotFoundError, match=r"no checkpoint for step 5; available: \[3, 7\]"):
        export.resolve_checkpoint(model_dir, "5")
    with pytest.raises(FileNotFoundError, match="not a checkpoint prefix"):
        export.resolve_checkpoint(model_dir, "/nonexistent/ckpt-1")
    empty = run["root"] / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="model_spec.json"):
        export.restore_embedding_model(str(empty))
    shutil.copy(os.path.join(model_dir, "model_spec.json"), empty)
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        export.restore_embedding_model(str(empty))
    # Step 3 restores step 3's weights, not the latest ones.
    _, embedding_model, path = export.restore_embedding_model(model_dir, "3")
    assert path.endswith("ckpt-3")
    paths = [v.path for v in run["classifier"].weights]
    assert embedding_model.weights
    for variable in embedding_model.weights:
        step3 = run["weights"][3][paths.index(variable.path)]
        np.testing.assert_array_equal(variable.numpy(), step3)
        assert np.abs(step3 - run["weights"][7][paths.index(variable.path)]).max() > 0


def test_saved_model_cli_show_and_run(run, tmp_path):
    saved_model_cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    waveform, lengths = pad_batch(_clips([0.6, 0.3]))
    np.save(tmp_path / "waveform.npy", waveform)
    np.save(tmp_path / "lengths.npy", lengths)
    inputs = f"waveform={tmp_path / 'waveform.npy'};lengths={tmp_path / 'lengths.npy'}"
    commands = {"show": [saved_model_cli, "show", "--all", "--dir", run["path"]]}
    for signature in ("serving_default", "frame_embeddings"):
        os.makedirs(tmp_path / signature)
        commands[signature] = [saved_model_cli, "run", "--dir", run["path"],
                               "--tag_set", "serve", "--signature_def", signature,
                               "--inputs", inputs, "--outdir", str(tmp_path / signature)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # Concurrently: each command spends most of its time importing TensorFlow.
    processes = {name: subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env)
                 for name, command in commands.items()}
    results = {name: (p.communicate(timeout=240), p.returncode)
               for name, p in processes.items()}
    for name, ((_, stderr), code) in results.items():
        assert code == 0, f"saved_model_cli {name} failed:\n{stderr[-3000:]}"
    shown = results["show"][0][0]
    for expected in ("signature_def['serving_default']", "signature_def['frame_embeddings']",
                     "outputs['embedding']", "outputs['conv4_lengths']",
                     "inputs['waveform'] tensor_info", "dtype: DT_INT32"):
        assert expected in shown, expected
    direct = _embed(run, waveform, lengths)["embedding"]
    np.testing.assert_allclose(np.load(tmp_path / "serving_default" / "embedding.npy"),
                               direct, atol=1e-6)
    frames = _embed(run, waveform, lengths, "frame_embeddings")
    np.testing.assert_allclose(np.load(tmp_path / "frame_embeddings" / "conv2.npy"),
                               frames["conv2"], atol=1e-6)
    np.testing.assert_array_equal(
        np.load(tmp_path / "frame_embeddings" / "mfcc_lengths.npy"), [58, 28])


def test_frame_level_cnn_frames_average_to_the_embedding(tmp_path):
    """Average pooling commutes with the affine fc layers: the mean of the valid fc2
    frames is the utterance embedding, for every row of a padded batch."""
    from tfspk import model_spec as spec_lib

    spec = fx.tiny_spec("frame_level_cnn")
    embedding_model = spec_lib.build_embedding_model(spec)
    path = str(tmp_path / "1")
    export.build_export_archive(spec, embedding_model).write_out(path, verbose=False)
    loaded = tf.saved_model.load(path)
    waveform, lengths = pad_batch(_clips([1.0, 0.45]))
    embedding = loaded.signatures["serving_default"](
        waveform=waveform, lengths=lengths)["embedding"].numpy()
    frames = loaded.signatures["frame_embeddings"](waveform=waveform, lengths=lengths)
    assert frames["fc2"].shape[-1] == 12 and frames["fc1"].shape[-1] == 24
    for row in range(2):
        n = int(frames["fc2_lengths"][row])
        assert n == frames["conv4_lengths"][row] > 0
        np.testing.assert_allclose(frames["fc2"][row, :n].numpy().mean(axis=0),
                                   embedding[row], rtol=0, atol=TOLERANCE)
