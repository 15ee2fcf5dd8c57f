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
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time

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


def plan(python: str, work: str, args) -> list[tuple[str, list[str]]]:
    steps = [("shards", [python, str(HERE / "gpu_suite.py"), "--build_shards", work,
                         f"--num_files={args.num_files}"])]
    for batch in TRAIN_BATCHES:
        steps.append((f"train_batch_{batch}", [
            python, str(HERE / "gpu_suite.py"), f"--train_batch={batch}",
            f"--train_data={work}/shards/train-*.tfrecord", f"--model_dir={work}/model{batch}",
            f"--warmup_steps={args.warmup_steps}", f"--timed_steps={args.timed_steps}",
            f"--result_json={work}/train{batch}.json"]))
    steps.append(("input_pipeline", [python, str(HERE / "input_pipeline.py"),
                                     "--skip_feature_speed", "--pipeline_batches=20",
                                     "--train_steps=5"]))
    steps.append(("serving", [python, str(HERE / "serving_latency.py"), "--seconds=8,2",
                              "--batch_sizes=" + ",".join(map(str, SERVING_BATCHES)),
                              "--max_calls=100", "--seconds_per_batch_size=10"]))
    return steps


def run_training(args) -> None:
    """Child process: one training measurement, written to --result_json."""
    sys.path.insert(0, str(HERE))
    import train_throughput as tt
    import dataclasses

    from tfspk.training import config as config_lib
    from tfspk.training import trainer

    spec = tt.paper_spec(1211)
    flops = tt.forward_flops_per_example(spec, 200)
    windows = 1 + -(-args.warmup_steps // args.timed_steps)
    config = dataclasses.replace(config_lib.from_values(
        model_dir=args.model_dir, train_data=args.train_data,
        batch_size=args.train_batch, num_frames=200, max_steps=windows * args.timed_steps,
        log_every=args.timed_steps, checkpoint_every=10**9, keep_checkpoints=1,
        optimizer="sgd", learning_rate=0.001, shuffle_buffer=256, record_graph=False,
        seed=0, mixed_precision="mixed_bfloat16", xla=True, features_on_device=True),
        model=spec)
    last = trainer.train(config)
    train_flop = 3 * flops["forward"]
    peak = bf16_peak(gpu_name()) * 1e12
    result = {"batch_size": args.train_batch, "examples_per_s": last["examples_per_second"],
              "timed_steps": args.timed_steps, "train_gflop_per_example": train_flop / 1e9,
              "achieved_tflops": last["examples_per_second"] * train_flop / 1e12,
              "bf16_peak_tflops": peak / 1e12,
              "mfu": last["examples_per_second"] * train_flop / peak,
              "features_on_device": True, "mixed_precision": "mixed_bfloat16", "xla": True}
    pathlib.Path(args.result_json).write_text(json.dumps(result, indent=2))


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_json", default=str(REPO / "gpu_suite_results.json"))
    parser.add_argument("--dry_run", action="store_true")
    parser.add_argument("--num_files", type=int, default=64)
    parser.add_argument("--warmup_steps", type=int, default=10)
    parser.add_argument("--timed_steps", type=int, default=20)
    parser.add_argument("--time_limit_s", type=float, default=480.0,
                        help="Whole-suite budget: a step still running when it is spent "
                        "is stopped and recorded as timed out.")
    parser.add_argument("--allow_no_gpu", action="store_true",
                        help="Run the steps even when nvidia-smi finds no GPU.")
    # Internal (child processes).
    parser.add_argument("--build_shards", default="")
    parser.add_argument("--train_batch", type=int, default=0)
    parser.add_argument("--train_data", default="")
    parser.add_argument("--model_dir", default="")
    parser.add_argument("--result_json", default="")
    args = parser.parse_args(argv)

    if args.build_shards:
        sys.path.insert(0, str(HERE))
        import train_throughput as tt
        root = pathlib.Path(args.build_shards)
        root.mkdir(parents=True, exist_ok=True)
        tt.build_shards(root, "librispeech", str(tt.DEFAULT_SPEECH_DIR), args.num_files)
        return 0
    if args.train_batch:
        run_training(args)
        return 0

    name = gpu_name()
    work = tempfile.mkdtemp(prefix="tfspk_gpu_suite_") if not args.dry_run else \
        "<temporary folder>"
    steps = plan(sys.executable, work, args)
    print(f"GPU: {name or 'none detected'}; bf16 peak {bf16_peak(name):g} TFLOP/s dense")
    print(f"output JSON: {args.output_json}")
    for label, command in steps:
        print(f"[{label}] {shlex.join(command)}")
    print(f"time limit: {args.time_limit_s:g} s for the whole suite")
    if args.dry_run:
        return 0
    if not name and not args.allow_no_gpu:
        print("gpu_suite: nvidia-smi finds no GPU; use --dry_run to see the plan, or "
              "--allow_no_gpu to run it anyway", file=sys.stderr)
        return 2
    suite_start = time.perf_counter()
    result = {"gpu": name, "bf16_peak_tflops": bf16_peak(name), "steps": {}}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    for label, command in steps:
        start = time.perf_counter()
        remaining = args.time_limit_s - (start - suite_start)
        try:
            done = subprocess.run(command, capture_output=True, text=True, cwd=str(REPO),
                                  env=env, timeout=max(remaining, 1.0))
        except subprocess.TimeoutExpired as expired:
            done = subprocess.CompletedProcess(
                command, 124, stdout=(expired.stdout or b"").decode(errors="replace")
                if isinstance(expired.stdout, bytes) else (expired.stdout or ""),
                stderr=f"timed out: the suite's {args.time_limit_s:g} s were spent")
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
        pathlib.Path(args.output_json).write_text(json.dumps(result, indent=2))
        summary = {k: record[k] for k in ("examples_per_s", "mfu") if k in record}
        print(f"[{label}] rc={done.returncode} {record['seconds']:.0f} s {summary}", flush=True)
    if "input_pipeline" in result["steps"] and "result" in result["steps"]["input_pipeline"]:
        r = result["steps"]["input_pipeline"]["result"]
        print(f"input pipeline host-side ceiling (features on device): "
              f"{r.get('host_side_examples_per_s_features_on_device', float('nan')):.1f} ex/s")
    for row in result["steps"].get("serving", {}).get("rows", []):
        print(f"serving {row['seconds']:g} s batch {row['batch']}: median "
              f"{row['median_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms")
    print(f"wrote {args.output_json}")
    return 0 if all(s["returncode"] == 0 for s in result["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
