"""One-command GPU benchmark suite (H100/H200 class); every figure goes to one JSON file.

Steps, each a subprocess so that one step's mixed-precision policy, XLA caches and GPU
memory never leak into the next:
  1. training examples/s and MFU of the full paper CNN at batch 32, 128 and 512 with
     features (augmentation + MFCC) on device, mixed_bfloat16 and XLA, through the real
     trainer (`tfspk.training.trainer.train`, as benchmarks/train_throughput.py runs it)
     on LibriSpeech shards built once; MFU = examples/s x training FLOPs per example
     (3 x analytic forward) / the GPU's dense bf16 peak;
  2. the input pipeline's host-side ceiling (benchmarks/input_pipeline.py);
  3. serving latency at batch 1, 8 and 64 (benchmarks/serving_latency.py).

    bash benchmarks/gpu_suite.sh [--output_json=PATH] [--dry_run]

`--dry_run` prints the plan (each command and the output path) and exits 0 (no GPU needed).
The steps re-invoke this script with its internal flags (`--build_shards`,
`--train_batch`, ...). From Python: `run_suite(output_json=..., dry_run=True, ...)`
returns the exit status.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time

from absl import app, flags

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
TRAIN_BATCHES = (32, 128, 512)
SERVING_BATCHES = (1, 8, 64)
# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, by a substring of the GPU name.
BF16_PEAK_TFLOPS = (("H200", 989.0), ("H100 PCIE", 756.0), ("H100", 989.0),
                    ("H800", 989.0), ("A100", 312.0), ("L40S", 362.0))
DEFAULT_PEAK = 989.0


def gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True)
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return ""


def bf16_peak(name: str) -> float:
    upper = name.upper()
    for key, peak in BF16_PEAK_TFLOPS:
        if key in upper:
            return peak
    return DEFAULT_PEAK


def plan(python: str, work: str, *, num_files: int = 64, warmup_steps: int = 10,
         timed_steps: int = 20) -> list[tuple[str, list[str]]]:
    """(label, command) of each step; the first four re-invoke this script."""
    steps = [("shards", [python, str(HERE / "gpu_suite.py"), f"--build_shards={work}",
                         f"--num_files={num_files}"])]
    for batch in TRAIN_BATCHES:
        steps.append((f"train_batch_{batch}", [
            python, str(HERE / "gpu_suite.py"), f"--train_batch={batch}",
            f"--train_data={work}/shards/train-*.tfrecord", f"--model_dir={work}/model{batch}",
            f"--warmup_steps={warmup_steps}", f"--timed_steps={timed_steps}",
            f"--result_json={work}/train{batch}.json"]))
    steps.append(("input_pipeline", [python, str(HERE / "input_pipeline.py"),
                                     "--skip_feature_speed", "--pipeline_batches=20",
                                     "--train_steps=5"]))
    steps.append(("serving", [python, str(HERE / "serving_latency.py"), "--seconds=8,2",
                              "--batch_sizes=" + ",".join(map(str, SERVING_BATCHES)),
                              "--max_calls=100", "--seconds_per_batch_size=10"]))
    return steps


def _train_throughput():
    """benchmarks/train_throughput.py as a module (for the child steps).

    It defines its flags at import, --output_json, --num_files, --warmup_steps and
    --timed_steps among them; this script's flags of those names are defined with
    allow_override, so that importing it after they are parsed is no DuplicateFlagError
    (a flag set on the command line keeps its parsed value; the values are read before
    the import anyway)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import train_throughput

    return train_throughput


def build_shards(work: str, num_files: int = 64) -> None:
    """Child process: the LibriSpeech training shards under `work`/shards."""
    tt = _train_throughput()
    root = pathlib.Path(work)
    root.mkdir(parents=True, exist_ok=True)
    tt.build_shards(root, "librispeech", str(tt.DEFAULT_SPEECH_DIR), num_files)


def run_training(*, train_batch: int, train_data: str, model_dir: str, result_json: str,
                 warmup_steps: int = 10, timed_steps: int = 20) -> dict:
    """Child process: one training measurement, written to `result_json` and returned."""
    import dataclasses

    tt = _train_throughput()

    from tfspk.training import config as config_lib
    from tfspk.training import trainer

    spec = tt.paper_spec(1211)
    flops = tt.forward_flops_per_example(spec, 200)
    windows = 1 + -(-warmup_steps // timed_steps)
    config = dataclasses.replace(config_lib.from_values(
        model_dir=model_dir, train_data=train_data,
        batch_size=train_batch, num_frames=200, max_steps=windows * timed_steps,
        log_every=timed_steps, checkpoint_every=10**9, keep_checkpoints=1,
        optimizer="sgd", learning_rate=0.001, shuffle_buffer=256, record_graph=False,
        seed=0, mixed_precision="mixed_bfloat16", xla=True, features_on_device=True),
        model=spec)
    last = trainer.train(config)
    train_flop = 3 * flops["forward"]
    peak = bf16_peak(gpu_name()) * 1e12
    result = {"batch_size": train_batch, "examples_per_s": last["examples_per_second"],
              "timed_steps": timed_steps, "train_gflop_per_example": train_flop / 1e9,
              "achieved_tflops": last["examples_per_second"] * train_flop / 1e12,
              "bf16_peak_tflops": peak / 1e12,
              "mfu": last["examples_per_second"] * train_flop / peak,
              "features_on_device": True, "mixed_precision": "mixed_bfloat16", "xla": True}
    pathlib.Path(result_json).write_text(json.dumps(result, indent=2))
    return result


def parse_pipeline(stdout: str) -> dict:
    start = stdout.index("\n{") + 1 if not stdout.startswith("{") else 0
    end = stdout.index("\n}", start) + 2
    return json.loads(stdout[start:end])


def parse_serving(stdout: str) -> list[dict]:
    """The rows of serving_latency.py's table (sec, batch, calls, median ms, ...)."""
    names = ("seconds", "batch", "calls", "median_ms", "p90_ms", "p99_ms", "p99_over_median",
             "gflop", "gflops", "ceiling_gflops", "fraction_of_ceiling", "x_real_time")
    rows = []
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == len(names) and re.fullmatch(r"\d+", fields[1]):
            try:
                values = [float(f) for f in fields]
            except ValueError:
                continue
            row = dict(zip(names, values))
            row["batch"], row["calls"] = int(row["batch"]), int(row["calls"])
            rows.append(row)
    return rows


def run_suite(*, output_json: str = str(REPO / "gpu_suite_results.json"),
              dry_run: bool = False, num_files: int = 64, warmup_steps: int = 10,
              timed_steps: int = 20, time_limit_s: float = 480.0,
              allow_no_gpu: bool = False) -> int:
    """Prints the plan and (unless `dry_run`) runs every step, writing `output_json`;
    returns the exit status (0: every step succeeded, 1: one failed, 2: no GPU)."""
    name = gpu_name()
    work = tempfile.mkdtemp(prefix="tfspk_gpu_suite_") if not dry_run else \
        "<temporary folder>"
    steps = plan(sys.executable, work, num_files=num_files,
                 warmup_steps=warmup_steps, timed_steps=timed_steps)
    print(f"GPU: {name or 'none detected'}; bf16 peak {bf16_peak(name):g} TFLOP/s dense")
    print(f"output JSON: {output_json}")
    for label, command in steps:
        print(f"[{label}] {shlex.join(command)}")
    print(f"time limit: {time_limit_s:g} s for the whole suite")
    if dry_run:
        return 0
    if not name and not allow_no_gpu:
        print("gpu_suite: nvidia-smi finds no GPU; use --dry_run to see the plan, or "
              "--allow_no_gpu to run it anyway", file=sys.stderr)
        os.rmdir(work)  # still empty
        return 2
    suite_start = time.perf_counter()
    result = {"gpu": name, "bf16_peak_tflops": bf16_peak(name), "steps": {}}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    for label, command in steps:
        start = time.perf_counter()
        remaining = time_limit_s - (start - suite_start)
        try:
            done = subprocess.run(command, capture_output=True, text=True, cwd=str(REPO),
                                  env=env, timeout=max(remaining, 1.0))
        except subprocess.TimeoutExpired as expired:
            done = subprocess.CompletedProcess(
                command, 124, stdout=(expired.stdout or b"").decode(errors="replace")
                if isinstance(expired.stdout, bytes) else (expired.stdout or ""),
                stderr=f"timed out: the suite's {time_limit_s:g} s were spent")
        record = {"command": shlex.join(command), "returncode": done.returncode,
                  "seconds": time.perf_counter() - start}
        if done.returncode != 0:
            record["stderr_tail"] = done.stderr[-3000:]
        try:
            if label.startswith("train_batch_") and done.returncode == 0:
                record.update(json.loads(pathlib.Path(
                    f"{work}/train{label.rsplit('_', 1)[1]}.json").read_text()))
            elif label == "input_pipeline" and done.returncode == 0:
                record["result"] = parse_pipeline(done.stdout)
            elif label == "serving" and done.returncode == 0:
                record["rows"] = parse_serving(done.stdout)
                record["stdout"] = done.stdout[-3000:]
        except (ValueError, OSError) as error:
            record["parse_error"] = repr(error)
            record["stdout_tail"] = done.stdout[-3000:]
        result["steps"][label] = record
        pathlib.Path(output_json).write_text(json.dumps(result, indent=2))
        summary = {k: record[k] for k in ("examples_per_s", "mfu") if k in record}
        print(f"[{label}] rc={done.returncode} {record['seconds']:.0f} s {summary}", flush=True)
    if "input_pipeline" in result["steps"] and "result" in result["steps"]["input_pipeline"]:
        r = result["steps"]["input_pipeline"]["result"]
        print(f"input pipeline host-side ceiling (features on device): "
              f"{r.get('host_side_examples_per_s_features_on_device', float('nan')):.1f} ex/s")
    for row in result["steps"].get("serving", {}).get("rows", []):
        print(f"serving {row['seconds']:g} s batch {row['batch']}: median "
              f"{row['median_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms")
    print(f"wrote {output_json}")
    return 0 if all(s["returncode"] == 0 for s in result["steps"].values()) else 1


FLAGS = flags.FLAGS
# Also defined by benchmarks/train_throughput.py, which the child steps import.
_SHARED = dict(allow_override=True)


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """CLI flags; defined only when run as a program, so tests can import the module."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("output_json", str(REPO / "gpu_suite_results.json"),
                        "Where every figure goes (rewritten after each step).", **_SHARED,
                        **define)
    flags.DEFINE_boolean("dry_run", False, "Print the plan (each command and the output "
                         "path) and exit 0; no GPU needed.", **define)
    flags.DEFINE_integer("num_files", 64, "LibriSpeech files (speakers) in the training "
                         "shards.", lower_bound=1, **_SHARED, **define)
    flags.DEFINE_integer("warmup_steps", 10, "Untimed training steps first (tracing, XLA "
                         "compilation); rounded up to a multiple of --timed_steps.",
                         lower_bound=0, **_SHARED, **define)
    flags.DEFINE_integer("timed_steps", 20, "Timed training steps per batch size.",
                         lower_bound=1, **_SHARED, **define)
    flags.DEFINE_float("time_limit_s", 480.0, "Whole-suite budget: a step still running "
                       "when it is spent is stopped and recorded as timed out.",
                       lower_bound=1.0, **define)
    flags.DEFINE_boolean("allow_no_gpu", False, "Run the steps even when nvidia-smi finds "
                         "no GPU.", **define)
    # Internal (child processes).
    flags.DEFINE_string("build_shards", "", "Internal: build the training shards under "
                        "this folder and exit.", **define)
    flags.DEFINE_integer("train_batch", 0, "Internal: run one training measurement at "
                         "this batch size (0: run the suite).", lower_bound=0, **define)
    flags.DEFINE_string("train_data", "", "Internal: shard glob of --train_batch.",
                        **define)
    flags.DEFINE_string("model_dir", "", "Internal: model folder of --train_batch.",
                        **define)
    flags.DEFINE_string("result_json", "", "Internal: where --train_batch writes its "
                        "result.", **define)


def main(argv) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.build_shards:
        build_shards(FLAGS.build_shards, FLAGS.num_files)
        return 0
    if FLAGS.train_batch:
        run_training(train_batch=FLAGS.train_batch, train_data=FLAGS.train_data,
                     model_dir=FLAGS.model_dir, result_json=FLAGS.result_json,
                     warmup_steps=FLAGS.warmup_steps, timed_steps=FLAGS.timed_steps)
        return 0
    return run_suite(output_json=FLAGS.output_json, dry_run=FLAGS.dry_run,
                     num_files=FLAGS.num_files, warmup_steps=FLAGS.warmup_steps,
                     timed_steps=FLAGS.timed_steps, time_limit_s=FLAGS.time_limit_s,
                     allow_no_gpu=FLAGS.allow_no_gpu)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # tfspk from this checkout, as the steps get it
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
