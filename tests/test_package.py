"""Packaging: what a user without TensorFlow, or with a typo in a flag, sees."""
import subprocess
import sys


def test_import_without_tensorflow_names_the_extra():
    # A None entry in sys.modules makes find_spec report the package as absent.
    result = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['tensorflow'] = None; import tfspk"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "tfspk[cpu]" in result.stderr and "tfspk[gpu]" in result.stderr


def test_train_cli_rejects_unknown_flags_and_missing_data(tmp_path):
    flagfile = tmp_path / "bad.flags"
    flagfile.write_text("--model_dir=/tmp/x\n--no_such_flag=1\n")
    result = subprocess.run([sys.executable, "-m", "tfspk.train", f"--flagfile={flagfile}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "no_such_flag" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "tfspk.train", f"--model_dir={tmp_path / 'run'}",
         f"--train_data={tmp_path / 'nothing-*.tfrecord'}"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "no files match" in result.stderr
