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
    assert "bf16 peak" in text
    assert not out.exists()
