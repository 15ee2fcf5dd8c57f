"""ONNX / TFLite conversion of the serving graph: the SavedModel's embeddings on real
speech (ONNX Runtime, ai_edge_litert), dynamic and fixed shapes, the metadata JSON,
input checks of ConvertedModel, and errors naming the op that cannot convert."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from absl import app, flags

import export_fixtures as fx
from tfspk import convert, export

TOLERANCE = 1e-4
SECONDS = [2.0, 1.3, 2.6]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("convert")
    model_dir = str(root / "run")
    fx.make_model_dir(model_dir, fx.tiny_spec())
    base = str(root / "models" / "spk")
    path = export.export_saved_model(model_dir, base, version=1, warmup=False)
    return {"root": root, "base": base, "path": path,
            "serve": tf.saved_model.load(path).signatures["serving_default"]}


@pytest.fixture(scope="module")
def onnx_file(exported):
    """Converted through the CLI's flags, from BASE/NAME (its highest version)."""
    output = str(exported["root"] / "spk.onnx")
    flag_values = flags.FlagValues()
    convert.define_flags(flag_values)
    flag_values(["convert", f"--model={exported['base']}", "--format=onnx",
                 f"--output={output}"])
    convert.convert_from_flags(flag_values)
    return output


@pytest.fixture(scope="module")
def tflite_file(exported):
    output = str(exported["root"] / "spk.tflite")
    convert.convert(exported["path"], "tflite", output)
    return output


@pytest.fixture(scope="module")
def speech(librispeech_dir):
    return fx.librispeech_clips(librispeech_dir, SECONDS)


def _reference(exported, clips):
    """The SavedModel's serving_default, each clip alone."""
    return np.concatenate([
        exported["serve"](waveform=tf.constant(c[None]),
                          lengths=tf.constant([len(c)], tf.int32))["embedding"].numpy()
        for c in clips])


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_converted_model_matches_saved_model_on_real_speech(
        exported, onnx_file, tflite_file, speech, fmt):
    model = convert.ConvertedModel.load(onnx_file if fmt == "onnx" else tflite_file)
    reference = _reference(exported, speech)
    assert np.abs(reference).max() > 0.05
    # Different speakers, different embeddings: the comparison is not vacuous.
    assert np.abs(reference[0] - reference[1]).max() > 100 * TOLERANCE
    batched = model.embed(speech)  # one padded batch of three lengths
    np.testing.assert_allclose(batched, reference, rtol=0, atol=TOLERANCE)
    for row, clip in enumerate(speech):  # a batch of one, other widths (dynamic shapes)
        alone = model.embed(clip[None])
        np.testing.assert_allclose(alone[0], reference[row], rtol=0, atol=TOLERANCE)


def test_metadata_beside_the_file(exported, onnx_file, tflite_file):
    with open(os.path.join(exported["path"], "assets.extra", "frame_geometry.json")) as f:
        geometry = json.load(f)
    for path, fmt in ((onnx_file, "onnx"), (tflite_file, "tflite")):
        with open(path + ".json") as f:
            metadata = json.load(f)
        assert metadata["format"] == fmt
        assert metadata["source"] == os.path.abspath(exported["path"])
        assert metadata["inputs"]["waveform"] == {
            "dtype": "float32", "shape": [None, None],
            "description": "[batch, samples] in [-1, 1], rows right-padded"}
        assert metadata["inputs"]["lengths"]["shape"] == [None]
        assert metadata["outputs"]["embedding"] == {"dtype": "float32", "shape": [None, 12]}
        assert metadata["geometry"] == geometry and geometry["min_samples"] == 2000
        assert any("RFFT" in r and "DFT matmuls" in r for r in metadata["rewrites"])
        assert metadata["check"]["max_abs_diff"] <= TOLERANCE
    with open(tflite_file + ".json") as f:
        assert any("float64 -> float32" in r for r in json.load(f)["rewrites"])
    # The graphs' own tensor names are the signature's.
    import onnxruntime
    session = onnxruntime.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    assert sorted(i.name for i in session.get_inputs()) == ["lengths", "waveform"]
    assert [o.name for o in session.get_outputs()] == ["embedding"]
    from ai_edge_litert import interpreter
    signatures = interpreter.Interpreter(model_path=tflite_file).get_signature_list()
    assert signatures == {"serving_default": {"inputs": ["lengths", "waveform"],
                                              "outputs": ["embedding"]}}


def test_tflite_fixed_shape(exported, speech, tmp_path):
    output = str(tmp_path / "fixed.tflite")
    num_samples = 48000
    metadata = convert.convert(exported["base"], "tflite", output, num_samples=num_samples)
    assert metadata["inputs"]["waveform"]["shape"] == [1, num_samples]
    from ai_edge_litert import interpreter
    details = interpreter.Interpreter(model_path=output).get_input_details()
    assert sorted(tuple(d["shape_signature"]) for d in details) == [(1,), (1, num_samples)]
    model = convert.ConvertedModel.load(output)
    # Rows shorter than num_samples are zero-padded to it; batches run row by row.
    np.testing.assert_allclose(model.embed(speech), _reference(exported, speech),
                               rtol=0, atol=TOLERANCE)
    with pytest.raises(ValueError, match=r"longer than the 48000 samples.*rows \[0\]"):
        model.embed([np.zeros(num_samples + 1, np.float32)])


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_converted_model_refuses_what_the_saved_model_refuses(onnx_file, tflite_file,
                                                               speech, fmt):
    model = convert.ConvertedModel.load(onnx_file if fmt == "onnx" else tflite_file)
    waveform = np.zeros((2, 8000), np.float32)
    waveform[:, :] = speech[0][:8000]
    with pytest.raises(ValueError, match=r"model minimum of 2000 samples; rows \[1\]"):
        model.embed(waveform, [8000, 1999])
    with pytest.raises(ValueError, match=r"exceed the waveform width of the batch; rows \[0\]"):
        model.embed(waveform, [8001, 8000])
    waveform[1, 7000] = np.nan
    with pytest.raises(ValueError, match=r"NaN or Inf; rows \[1\]"):
        model.embed(waveform, [8000, 8000])
    # NaN in the padding does not matter (the raw graph, no Python checks).
    clean = waveform.copy()
    clean[1, 6000:] = 0.0
    np.testing.assert_allclose(model.run(waveform, np.array([8000, 6000], np.int32)),
                               model.run(clean, np.array([8000, 6000], np.int32)),
                               rtol=0, atol=1e-6)


def _toy_export(path, body):
    """A SavedModel with a serving_default (waveform, lengths) -> embedding of `body`."""
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform"),
                                  tf.TensorSpec([None], tf.int32, name="lengths")])
    def serve(waveform, lengths):
        return {"embedding": body(waveform, lengths)}

    module.serve = serve
    tf.saved_model.save(module, path, signatures={"serving_default": serve})
    os.makedirs(os.path.join(path, "assets.extra"))
    with open(os.path.join(path, "assets.extra", "frame_geometry.json"), "w") as f:
        json.dump({"sample_rate": 16000, "min_samples": 512}, f)
    return path


def _frames(waveform):
    return tf.reshape(waveform[:, :1024], [-1, 2, 512])


UNCONVERTIBLE = {
    # An op with neither a TFLite builtin nor a tf2onnx handler.
    "Igamma": (lambda w, n: tf.math.igamma(tf.abs(w[:, :8]) + 1.0, tf.abs(w[:, 8:16])),
               {"onnx": ["Igamma"], "tflite": ["Igamma"]}),
    # RFFT whose complex output is used other than through Real / Imag: the DFT-matmul
    # rewrite does not apply, and neither format takes the complex value.
    "ComplexAbs": (lambda w, n: tf.reduce_mean(tf.abs(tf.signal.rfft(_frames(w))), axis=1),
                   {"onnx": ["ComplexAbs", "RFFT"], "tflite": ["ComplexAbs", "RFFT"]}),
}


@pytest.mark.parametrize("case", sorted(UNCONVERTIBLE))
def test_unconvertible_op_is_named(tmp_path, case):
    body, expected = UNCONVERTIBLE[case]
    path = _toy_export(str(tmp_path / "toy"), body)
    for fmt in ("onnx", "tflite"):
        output = str(tmp_path / f"toy.{fmt}")
        with pytest.raises(convert.UnsupportedOpError) as raised:
            convert.convert(path, fmt, output)
        assert isinstance(raised.value, ValueError)
        assert all(op in raised.value.ops for op in expected[fmt]), (fmt, raised.value.ops)
        message = str(raised.value)
        assert "unsupported op(s)" in message and expected[fmt][0] in message
        assert not os.path.exists(output)


def test_rfft_with_real_and_imag_converts(tmp_path):
    """The rewrite itself: an RFFT power spectrum, exact against TensorFlow in ONNX
    (float64 kept: float32 output rounding only) and in TFLite (float32)."""
    def power(w, n):
        spectrum = tf.signal.rfft(tf.cast(_frames(w), tf.float64))
        value = tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))
        return tf.cast(tf.math.log(tf.reduce_mean(value, axis=1) + 1e-3), tf.float32)

    path = _toy_export(str(tmp_path / "toy"), power)
    waveform = np.stack([convert.check_signal(1200, seed=s) for s in (0, 1)])
    lengths = np.array([1200, 1200], np.int32)
    reference = power(tf.constant(waveform), None).numpy()
    for fmt in ("onnx", "tflite"):
        output = str(tmp_path / f"toy.{fmt}")
        metadata = convert.convert(path, fmt, output)
        assert metadata["rewrites"][0].endswith("RFFT(512 samples, fft_length 512) -> "
                                                "DFT matmuls")
        got = convert.ConvertedModel.load(output).run(waveform, lengths)
        np.testing.assert_allclose(got, reference, rtol=0,
                                   atol=1e-6 if fmt == "onnx" else 1e-4)


def test_dft_basis_is_rfft():
    x = np.random.default_rng(0).standard_normal((3, 400))
    real, imag = convert.dft_basis(400, 512)
    np.testing.assert_allclose(x @ real + 1j * (x @ imag), np.fft.rfft(x, 512), atol=1e-10)
    x = np.random.default_rng(1).standard_normal((3, 600))
    real, imag = convert.dft_basis(600, 512)  # longer frames are cut, as RFFT does
    np.testing.assert_allclose(x @ real + 1j * (x @ imag), np.fft.rfft(x, 512), atol=1e-10)


def test_cli_flags(exported, tmp_path):
    flag_values = flags.FlagValues()
    convert.define_flags(flag_values)
    flag_values(["convert", f"--model={exported['base']}", "--format=onnx",
                 f"--output={tmp_path / 'x.onnx'}", "--num_samples=16000"])
    with pytest.raises(app.UsageError, match="tflite only"):
        convert.convert_from_flags(flag_values)
    with pytest.raises(flags.IllegalFlagValueError):
        flag_values(["convert", "--format=coreml"])
    with pytest.raises(FileNotFoundError, match="neither a SavedModel"):
        convert.convert(str(tmp_path), "onnx", str(tmp_path / "x.onnx"))
