"""Training throughput of the full-size paper model, against this machine's GEMM rate.

Builds `tfspk.schema` shards on the fly with the `tfrecords_tools.build` library
(`tfspk.shards.build.build_from_corpus`): from the LibriSpeech files in
`--librispeech_dir` (one speaker each; a manifest is written for them) or, with
`--corpus=synthetic`, from a small espeak-ng VoxCeleb1 (its dev speakers). Then trains
the paper CNN (conv 1000-1000-1000-1500, fc 1500-600, softmax over `--num_speakers`,
SGD) with `tfspk.training.trainer.train`, i.e. the real `tfspk.data.train_dataset`
input pipeline (2-s crops, MFCC + CMN) and the real training step, and reads the
examples/s the trainer logs for its last window (the steps after the first
`--warmup_steps`, so graph tracing is excluded).

Reported:
* examples/s and the achieved GFLOP/s from the analytic count
  (`tfspk.models.count_flops_per_frame`: forward FLOPs per input frame x frames, plus the
  utterance-level layers and the softmax head; one training step ~ 3x forward);
* the sustained GFLOP/s of a large float32 matmul, measured before and after training in
  this run, and the ratio training / matmul (target >= 0.7 on 2 cores);
* an ESTIMATE (not a measurement) of the time of one VoxCeleb1 epoch and of the
  paper's schedule on one GPU: training FLOPs / (`--gpu_tflops` x `--gpu_utilization`).

    python benchmarks/train_throughput.py --timed_steps=10 --warmup_steps=5
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from tfspk import data  # noqa: E402
from tfspk import model_spec as spec_lib  # noqa: E402
from tfspk.models import count_flops_per_frame  # noqa: E402
from tfspk.shards.build import BuildConfig, build_from_corpus  # noqa: E402
from tfspk.training import config as config_lib  # noqa: E402
from tfspk.training import trainer  # noqa: E402

DEFAULT_SPEECH_DIR = (pathlib.Path(__file__).resolve().parents[2]
                      / "shared" / "data" / "librispeech-251")
# VoxCeleb1 (Nagrani et al. 2017): 148,642 dev utterances of 1,211 speakers; about
# 352 h of audio in all (dev + test).
VOX1_DEV_UTTERANCES = 148_642
VOX1_HOURS = 352.0
# The paper's schedule (configs/paper_voxceleb1.flags): 1.5M steps of 32 crops.
PAPER_STEPS, PAPER_BATCH = 1_500_000, 32
# Nominal dense peaks of an H100/H200 SXM (same compute): FP32 on CUDA cores, and TF32 on
# tensor cores (TensorFlow's default for float32 matmuls and convolutions on Ampere+).
DEFAULT_GPU_TFLOPS = ("FP32=67", "TF32=495")

_CORPUS = flags.DEFINE_enum("corpus", "librispeech", ["librispeech", "synthetic"],
                            "Speech the shards are built from.")
_SPEECH_DIR = flags.DEFINE_string("librispeech_dir", str(DEFAULT_SPEECH_DIR),
                                  "Folder of 16 kHz LibriSpeech FLAC files.")
_NUM_FILES = flags.DEFINE_integer("num_files", 64, "LibriSpeech files (speakers) in the "
                                  "shards, or synthetic speakers.", lower_bound=3)
_NUM_SPEAKERS = flags.DEFINE_integer("num_speakers", 1211, "Softmax classes (VoxCeleb1 dev: "
                                     "1,211).", lower_bound=2)
_BATCH = flags.DEFINE_integer("batch_size", 32, "Examples per step.", lower_bound=1)
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 200, "Frames per crop (200 = 2 s).",
                                   lower_bound=1)
_WARMUP = flags.DEFINE_integer("warmup_steps", 5, "Untimed steps first (tracing, buffers); "
                               "rounded up to a multiple of --timed_steps.", lower_bound=1)
_TIMED = flags.DEFINE_integer("timed_steps", 10, "Timed training steps.", lower_bound=1)
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 2048, "n of the n x n x n float32 matmul.",
                                    lower_bound=64)
_MATMUL_REPEATS = flags.DEFINE_integer("matmul_repeats", 20, "Timed matmul repetitions "
                                       "(before and after training).", lower_bound=1)
_GPU_TFLOPS = flags.DEFINE_list("gpu_tflops", list(DEFAULT_GPU_TFLOPS), "name=peak TFLOP/s "
                                "of the GPU the epoch estimate assumes.")
_GPU_UTILIZATION = flags.DEFINE_float("gpu_utilization", 0.4, "Assumed fraction of the GPU "
                                      "peak the training step achieves.", lower_bound=0.01,
                                      upper_bound=1.0)
_OUTPUT = flags.DEFINE_string("output_json", None, "Also write the results here.")


def matmul_gflops(size: int, repeats: int) -> float:
    """Sustained GFLOP/s of `repeats` n x n x n float32 matmuls (2 n^3 FLOPs each).

    Sustained (total FLOPs / total time) rather than the best single run, so that it is
    comparable with the training rate, a mean over many steps on a possibly shared machine.
    """
    a = tf.random.stateless_normal([size, size], seed=[1, 2])
    b = tf.random.stateless_normal([size, size], seed=[3, 4])
    matmul = tf.function(tf.linalg.matmul)
    matmul(a, b).numpy()  # trace and warm the caches
    start = time.perf_counter()
    for _ in range(repeats):
        matmul(a, b).numpy()
    return repeats * 2.0 * size**3 / (time.perf_counter() - start) / 1e9


def write_manifest(speech_dir: str, num_files: int, path: pathlib.Path) -> None:
    """`path<TAB>speaker<TAB>utt_id` for the first `num_files` FLACs (one speaker each)."""
    files = sorted(pathlib.Path(speech_dir).glob("*.flac"))[:num_files]
    if len(files) < num_files:
        raise app.UsageError(f"{speech_dir}: {len(files)} FLAC files, --num_files={num_files}")
    path.write_text("".join(f"{f}\t{f.stem.split('-')[0]}\t{f.stem}\n" for f in files),
                    encoding="utf-8")


def build_shards(root: pathlib.Path, corpus: str, speech_dir: str, num_files: int) -> str:
    """Training shards under `root` via the tfrecords_tools build library; their glob."""
    config = BuildConfig(str(root / "shards"), "train", num_shards=4)
    if corpus == "librispeech":
        write_manifest(speech_dir, num_files, root / "manifest.tsv")
        build_from_corpus("manifest", str(root / "manifest.tsv"), config)
    else:
        from tfspk.synth import corpus as synth

        synth.generate_voxceleb(str(root / "vox"), num_speakers=num_files, utts_per_speaker=4,
                                num_workers=os.cpu_count() or 1)
        build_from_corpus("voxceleb", str(root / "vox"), config, voxceleb_subset="dev")
    return str(root / "shards" / "train-*.tfrecord")


def paper_spec(num_speakers: int) -> spec_lib.ModelSpec:
    """The full-size paper model (ModelSpec defaults) with a fixed softmax size."""
    return spec_lib.ModelSpec(num_speakers=num_speakers)


def forward_flops_per_example(spec: spec_lib.ModelSpec, num_frames: int) -> dict:
    """Analytic forward FLOPs of one crop: frame layers x frames + utterance layers + head."""
    classifier = spec_lib.build_classifier_model(spec)
    count = count_flops_per_frame(classifier)
    head = sum(2.0 * math.prod(w.shape) for w in classifier.head.weights if len(w.shape) == 2)
    return {"per_frame": count.per_frame, "per_utterance": count.per_utterance,
            "head": head, "forward": count.per_frame * num_frames + count.per_utterance + head,
            "parameters": int(classifier.count_params())}


def measure_training(train_data: str, model_dir: str, spec: spec_lib.ModelSpec,
                     batch_size: int, num_frames: int, warmup_steps: int,
                     timed_steps: int) -> dict:
    """`trainer.train` for warmup + timed steps; the last log window is the timed part."""
    windows = 1 + -(-warmup_steps // timed_steps)  # warm-up windows, rounded up, + 1
    config = dataclasses.replace(config_lib.from_values(
        model_dir=model_dir, train_data=train_data, batch_size=batch_size,
        num_frames=num_frames, max_steps=windows * timed_steps, log_every=timed_steps,
        checkpoint_every=10**9, keep_checkpoints=1, optimizer="sgd", learning_rate=0.001,
        shuffle_buffer=256, record_graph=False, seed=0), model=spec)
    last = trainer.train(config)
    return {"examples_per_s": last["examples_per_second"], "steps": last["step"],
            "untimed_steps": (windows - 1) * timed_steps, "loss": last["loss"]}


def gpu_estimates(train_flops_per_example: float, crop_seconds: float,
                  peaks: dict[str, float], utilization: float) -> list[dict]:
    """Hours for an epoch / the paper schedule at `utilization` of each peak (estimates)."""
    workloads = {
        "one VoxCeleb1 epoch: one crop per dev utterance": VOX1_DEV_UTTERANCES,
        f"one VoxCeleb1 epoch: all {VOX1_HOURS:.0f} h in {crop_seconds:.3f}-s crops":
            VOX1_HOURS * 3600 / crop_seconds,
        f"paper schedule: {PAPER_STEPS:,} steps x {PAPER_BATCH}": PAPER_STEPS * PAPER_BATCH,
    }
    rows = []
    for workload, examples in workloads.items():
        for name, tflops in peaks.items():
            examples_per_s = tflops * 1e12 * utilization / train_flops_per_example
            rows.append({"workload": workload, "examples": examples, "gpu_peak": name,
                         "gpu_tflops": tflops, "utilization": utilization,
                         "examples_per_s": examples_per_s,
                         "estimated_hours": examples / examples_per_s / 3600})
    return rows


def parse_peaks(items) -> dict[str, float]:
    peaks = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            peaks[name] = float(value)
        except ValueError:
            raise app.UsageError(f"--gpu_tflops item {item!r} is not name=TFLOP/s") from None
    return peaks


def run_benchmark(corpus: str, speech_dir: str, num_files: int, num_speakers: int,
                  batch_size: int, num_frames: int, warmup_steps: int, timed_steps: int,
                  matmul_size: int, matmul_repeats: int, peaks: dict[str, float],
                  utilization: float) -> dict:
    """Every measurement and estimate of this benchmark as a dict."""
    spec = paper_spec(num_speakers)
    flops = forward_flops_per_example(spec, num_frames)
    result = {"corpus": corpus, "batch_size": batch_size, "num_frames": num_frames,
              "crop_seconds": data.samples_for_frames(num_frames) / 16000,
              "num_speakers": num_speakers, "parameters": flops["parameters"],
              "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg()[0],
              "tensorflow": tf.__version__, "matmul_size": matmul_size,
              "forward_gflop_per_example": flops["forward"] / 1e9,
              "forward_mflop_per_frame": flops["per_frame"] / 1e6,
              "train_gflop_per_example": 3 * flops["forward"] / 1e9}
    matmul_before = matmul_gflops(matmul_size, matmul_repeats)
    with tempfile.TemporaryDirectory(prefix="tfspk_train_bench_") as folder:
        root = pathlib.Path(folder)
        train_data = build_shards(root, corpus, speech_dir, num_files)
        training = measure_training(train_data, str(root / "model"), spec, batch_size,
                                    num_frames, warmup_steps, timed_steps)
    matmul_after = matmul_gflops(matmul_size, matmul_repeats)
    result.update(training)
    result["train_gflops"] = training["examples_per_s"] * result["train_gflop_per_example"]
    result["matmul_gflops"] = {"before": matmul_before, "after": matmul_after}
    result["ratio_to_matmul"] = result["train_gflops"] / ((matmul_before + matmul_after) / 2)
    result["gpu_estimates"] = gpu_estimates(3 * flops["forward"], result["crop_seconds"],
                                            peaks, utilization)
    result["cpu_hours_per_crop_epoch"] = (VOX1_DEV_UTTERANCES / training["examples_per_s"]
                                          / 3600)
    return result


def format_table(result: dict) -> str:
    lines = [
        f"paper CNN, {result['parameters']:,} parameters, {result['num_speakers']} classes, "
        f"batch {result['batch_size']} x {result['num_frames']} frames "
        f"({result['crop_seconds']:.3f} s), {result['corpus']} shards, "
        f"TF {result['tensorflow']}, {result['cpu_count']} CPUs "
        f"(load {result['load_average_before']:.1f} before)",
        "",
        "| measured (this machine) | value |",
        "| --- | ---: |",
        f"| training examples/s ({result['steps'] - result['untimed_steps']} timed steps "
        f"after {result['untimed_steps']}) | {result['examples_per_s']:.1f} |",
        f"| forward MFLOP per input frame (analytic) | {result['forward_mflop_per_frame']:.2f} |",
        f"| training GFLOP per example (3 x forward) | {result['train_gflop_per_example']:.2f} |",
        f"| training GFLOP/s | {result['train_gflops']:.1f} |",
        f"| float32 {result['matmul_size']}^3 matmul GFLOP/s, sustained (before / after) | "
        f"{result['matmul_gflops']['before']:.1f} / {result['matmul_gflops']['after']:.1f} |",
        f"| training / matmul (mean of before and after) | "
        f"{result['ratio_to_matmul']:.2f} |",
        f"| one crop-per-utterance VoxCeleb1 epoch here (h) | "
        f"{result['cpu_hours_per_crop_epoch']:.1f} |",
        "",
        "| ESTIMATE, one GPU (not measured) | examples | assumed rate | examples/s | time |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for row in result["gpu_estimates"]:
        lines.append(f"| {row['workload']} | {row['examples']:,.0f} | {row['gpu_peak']} "
                     f"{row['gpu_tflops']:g} TFLOP/s x {row['utilization']:.0%} | "
                     f"{row['examples_per_s']:,.0f} | "
                     f"{_duration(row['estimated_hours'] * 3600)} |")
    lines.append("(assumes the input pipeline keeps up with the examples/s shown)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    tf.get_logger().setLevel("ERROR")
    result = run_benchmark(_CORPUS.value, _SPEECH_DIR.value, _NUM_FILES.value,
                           _NUM_SPEAKERS.value, _BATCH.value, _NUM_FRAMES.value,
                           _WARMUP.value, _TIMED.value, _MATMUL_SIZE.value,
                           _MATMUL_REPEATS.value, parse_peaks(_GPU_TFLOPS.value),
                           _GPU_UTILIZATION.value)
    print(format_table(result))
    if _OUTPUT.value:
        with open(_OUTPUT.value, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
