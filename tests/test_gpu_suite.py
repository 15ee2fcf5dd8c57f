"""benchmarks/gpu_suite.sh --dry_run: prints the plan and exits 0 without a GPU; its
absl flags (bad values are one-line flag errors) and the steps that re-invoke it."""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SUITE_ENV = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}


def _suite(*args):
    return subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_suite.sh"), *args],
                          capture_output=True, text=True, timeout=120, env=SUITE_ENV)


def test_dry_run_prints_plan(tmp_path):
    out = tmp_path / "suite.json"
    done = _suite("--dry_run", f"--output_json={out}")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert f"output JSON: {out}" in text
    for label in ("shards", "train_batch_32", "train_batch_128", "train_batch_512",
                  "input_pipeline", "serving"):
        assert f"[{label}]" in text, text
    assert "--batch_sizes=1,8,64" in text and "input_pipeline.py" in text
    assert "bf16 peak" in text and "time limit: 480 s" in text
    assert "--seconds=8,2" in text
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], ["--dry_run", "--nodry_run"]])
def test_refuses_to_run_without_a_gpu(tmp_path, extra):
    out = tmp_path / "suite.json"
    done = _suite(*extra, f"--output_json={out}")
    assert done.returncode == 2 and "no GPU" in done.stderr, done.stderr
    assert not out.exists()


@pytest.mark.parametrize("bad", ["--timed_steps=0", "--warmup_steps=-1", "--num_files=0",
                                 "--time_limit_s=0", "--train_batch=-32"])
def test_a_bad_value_is_a_one_line_flag_error(tmp_path, bad):
    out = tmp_path / "suite.json"
    done = _suite("--dry_run", bad, f"--output_json={out}")
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if "Flags parsing error" in line]
    assert len(errors) == 1 and bad in errors[0], done.stderr
    assert "Traceback" not in done.stderr and "[shards]" not in done.stdout
    assert not out.exists()


def test_run_suite_from_python_prints_the_plan(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_suite

    out = tmp_path / "suite.json"
    assert gpu_suite.run_suite(output_json=str(out), dry_run=True, timed_steps=7,
                               time_limit_s=60) == 0
    text = capsys.readouterr().out
    assert "--timed_steps=7" in text and "--warmup_steps=10" in text
    assert "time limit: 60 s" in text and not out.exists()


# The child steps re-invoke gpu_suite.py (--build_shards, --train_batch, ...) and then
# import benchmarks/train_throughput.py, which defines --num_files, --warmup_steps and
# --timed_steps too: that import must not be a DuplicateFlagError, and the values parsed
# from the step's command line must be the ones the child uses. Each step's command line
# is parsed in a child forked after TensorFlow is imported once.
CHILD_STEPS = textwrap.dedent("""
    import json, os, sys, traceback
    sys.path.insert(0, sys.argv[1])
    import tensorflow  # noqa: F401  (once, before the forks)
    from absl import flags
    import gpu_suite
    NAMES = ("build_shards", "num_files", "train_batch", "train_data", "model_dir",
             "warmup_steps", "timed_steps", "result_json")
    steps = dict(gpu_suite.plan(sys.executable, "/tmp/work", num_files=5, warmup_steps=3,
                                timed_steps=4))
    seen = {}
    for label in ("shards", "train_batch_128"):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                assert steps[label][1].endswith("gpu_suite.py"), steps[label]
                gpu_suite.define_flags()
                argv = flags.FLAGS(steps[label][1:])
                assert argv == steps[label][1:2], argv
                parsed = {name: flags.FLAGS[name].value for name in NAMES}
                gpu_suite._train_throughput()
                kept = {name: flags.FLAGS[name].value for name in NAMES
                        if flags.FLAGS[name].present}
                os.write(write, json.dumps([parsed, kept]).encode())
                code = 0
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stderr.flush()
            os._exit(code)
        os.close(write)
        with os.fdopen(read) as stream:
            text = stream.read()
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0, label
        seen[label] = json.loads(text)
    print("SEEN " + json.dumps(seen))
""")


def test_child_steps_parse_and_import_train_throughput():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [
                   os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run([sys.executable, "-c", CHILD_STEPS, str(REPO / "benchmarks")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads([line for line in done.stdout.splitlines()
                       if line.startswith("SEEN ")][-1][len("SEEN "):])
    shards, kept = seen["shards"]
    assert shards["build_shards"] == "/tmp/work" and shards["num_files"] == 5
    assert shards["train_batch"] == 0
    assert kept == {"build_shards": "/tmp/work", "num_files": 5}
    train, kept = seen["train_batch_128"]
    assert train["train_batch"] == 128 and train["build_shards"] == ""
    assert train["train_data"] == "/tmp/work/shards/train-*.tfrecord"
    assert train["model_dir"] == "/tmp/work/model128"
    assert train["result_json"] == "/tmp/work/train128.json"
    assert (train["warmup_steps"], train["timed_steps"]) == (3, 4)
    assert kept == {name: train[name] for name in (
        "train_batch", "train_data", "model_dir", "warmup_steps", "timed_steps",
        "result_json")}


def test_serving_rows_parse_back():
    # gpu_suite.parse_serving reads the table serving_latency.format_table prints.
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_suite
    import serving_latency

    rows = [dict(seconds=8.0, batch=1, calls=100, median_s=0.0248, p90_s=0.0261,
                 p99_s=0.0290, rtf=0.0248 / 8, gflop_per_utterance=7.91, gflops=319.0,
                 ceiling_gflops=375.0, fraction_of_ceiling=0.85),
            dict(seconds=2.0, batch=64, calls=12, median_s=0.5, p90_s=0.55, p99_s=0.6,
                 rtf=0.5 / 128, gflop_per_utterance=1.9, gflops=243.2,
                 ceiling_gflops=380.0, fraction_of_ceiling=0.64)]
    text = "noise line\n" + "\n".join(serving_latency.format_table(rows)) + "\nload 3.0\n"
    parsed = gpu_suite.parse_serving(text)
    assert [(r["seconds"], r["batch"], r["calls"]) for r in parsed] == [
        (8.0, 1, 100), (2.0, 64, 12)]
    assert parsed[0]["median_ms"] == 24.8 and parsed[0]["p99_ms"] == 29.0
    assert parsed[1]["fraction_of_ceiling"] == 0.64 and parsed[1]["gflop"] == 121.6
