"""tfspk.export as a package: `python -m tfspk.export` and exporting without the optional
tensorflow-serving-api (the warm-up file is skipped with a one-line notice)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import export_fixtures as fx
from tfspk import export

# Makes `from tensorflow_serving.apis import ...` fail as it does when the package is
# not installed (a None entry in sys.modules raises ImportError on import).
_BLOCK_SERVING = ("import sys; sys.modules['tensorflow_serving'] = None; "
                  "sys.modules['tensorflow_serving.apis'] = None; ")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("export_package") / "run")
    fx.make_model_dir(directory, fx.tiny_spec())
    return directory


def test_export_without_serving_api_skips_warmup_with_one_line(model_dir, tmp_path,
                                                                monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    with pytest.raises(export.ServingApiMissingError, match=r"pip install tfspk\[serving\]"):
        export.write_warmup_requests(str(tmp_path / "x"), fx.tiny_spec(), "spk")

    path = export.export_saved_model(model_dir, str(tmp_path / "models" / "spk"))
    notice = capsys.readouterr().err.strip().splitlines()
    assert notice == [f"tfspk.export: no {export.WARMUP_FILENAME} written: "
                      "tensorflow-serving-api is not installed (pip install tfspk[serving])"]
    extra = os.path.join(path, export.EXTRA_DIR)
    assert not os.path.exists(os.path.join(extra, export.WARMUP_FILENAME))
    # Everything else is there and serves.
    with open(os.path.join(extra, export.GEOMETRY_FILENAME), encoding="utf-8") as f:
        geometry = json.load(f)
    assert list(geometry["layers"]) == ["mfcc", "conv1", "conv2", "conv3", "conv4"]
    assert geometry["first_frame_start"] == 0 and geometry["min_samples"] > 400
    loaded = tf.saved_model.load(path)
    waveform = fx.speech_like(16000)[None].astype(np.float32)
    embedding = loaded.signatures["serving_default"](
        waveform=tf.constant(waveform), lengths=tf.constant([16000]))["embedding"]
    assert embedding.shape == (1, 12)


def test_module_cli_without_serving_api(model_dir, tmp_path):
    """`python -m tfspk.export` with the same flags; a notice, no traceback, exit 0."""
    base = str(tmp_path / "models" / "spk")
    argv = ["tfspk.export", f"--model_dir={model_dir}", f"--export_dir={base}",
            "--version=3", "--checkpoint=7"]
    code = (_BLOCK_SERVING + f"sys.argv = {argv!r}; import runpy; "
            "runpy.run_module('tfspk.export', run_name='__main__', alter_sys=True)")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=os.path.dirname(os.path.dirname(__file__)),
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "pip install tfspk[serving]" in result.stderr
    assert result.stdout.strip() == f"exported {os.path.join(base, '3')}"
    with open(os.path.join(base, "3", export.EXTRA_DIR, "source.txt"), encoding="utf-8") as f:
        assert f.read().splitlines()[1].endswith("ckpt-7")
