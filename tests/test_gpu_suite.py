"""benchmarks/gpu_suite.sh --dry_run: prints the plan and exits 0 without a GPU."""
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_dry_run_prints_plan(tmp_path):
    out = tmp_path / "suite.json"
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_suite.sh"), "--dry_run",
                           f"--output_json={out}"], capture_output=True, text=True,
                          timeout=120, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
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


def test_refuses_to_run_without_a_gpu(tmp_path):
    out = tmp_path / "suite.json"
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_suite.sh"),
                           f"--output_json={out}"], capture_output=True, text=True,
                          timeout=120, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and "no GPU" in done.stderr, done.stderr
    assert not out.exists()


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
