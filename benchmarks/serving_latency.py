"""Latency and throughput of the exported waveform-to-embedding SavedModel.

Exports the full-size paper CNN (random weights: timing does not depend on them)
with `tfspk.export.build_export_archive`, loads it back with `tf.saved_model.load`
as TF Serving would, and times `serving_default` on utterances of each length in
`--seconds` at each batch size. Reports per length and batch size:

* median, 90th- and 99th-percentile latency of one call, and p99 / median;
* real-time factor RTF = latency / seconds of audio in the batch (lower is better;
  1 / RTF is "x real time");
* achieved GFLOP/s of the network (analytic FLOPs of the convolutions and fc
  layers from `tfspk.models.count_flops_per_frame`, MFCC front end not counted) and
  its fraction of the matmul ceiling: the GFLOP/s of a large float32 matmul measured
  in the same run, on the same threads, right before each (length, batch) row, so a
  shared machine's load changes both alike.

    python benchmarks/serving_latency.py --seconds=8,2 --batch_sizes=1,8,32
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from tfspk import export, features, models  # noqa: E402
from tfspk import model_spec as spec_lib  # noqa: E402

_SECONDS = flags.DEFINE_list("seconds", ["8"], "Utterance lengths to time, in seconds "
                             "(each >= 0.2).")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["1", "8", "32"], "Batch sizes to time.")
_MIN_CALLS = flags.DEFINE_integer("min_calls", 3, "Timed calls per batch size, at least.",
                                  lower_bound=1)
_MAX_CALLS = flags.DEFINE_integer("max_calls", 100, "Timed calls per batch size, at most "
                                  "(a p99 needs about 100).", lower_bound=1)
_BUDGET = flags.DEFINE_float("seconds_per_batch_size", 20.0,
                             "Stop timing a batch size after this long (once min_calls "
                             "are done).", lower_bound=0.0)
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 2048, "n of the n x n x n ceiling matmul.",
                                    lower_bound=64)


def matmul_ceiling(n: int, calls: int = 8) -> float:
    """GFLOP/s of an n x n by n x n float32 matmul (best of `calls`, after a warm-up)."""
    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((n, n)), tf.float32)
    b = tf.constant(rng.standard_normal((n, n)), tf.float32)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def time_calls(function, waveform, lengths, min_calls, max_calls, budget) -> np.ndarray:
    """Wall-clock seconds of each call, after one untimed warm-up call."""
    function(waveform=waveform, lengths=lengths)["embedding"].numpy()
    durations = []
    started = time.perf_counter()
    while len(durations) < max_calls and (len(durations) < min_calls
                                          or time.perf_counter() - started < budget):
        start = time.perf_counter()
        function(waveform=waveform, lengths=lengths)["embedding"].numpy()
        durations.append(time.perf_counter() - start)
    return np.array(durations)


def benchmark(seconds, batch_sizes, min_calls, max_calls, budget, matmul_size):
    """Rows of measurements (dicts), plus the model's FLOPs and the ceilings.

    `seconds` is a list of utterance lengths (a float is one length)."""
    lengths_s = [float(seconds)] if isinstance(seconds, (int, float)) else list(seconds)
    spec = spec_lib.ModelSpec(num_speakers=1211)  # the paper's widths and front end
    embedding_model = spec_lib.build_embedding_model(spec)
    cost = models.count_flops_per_frame(embedding_model)
    frames_for = {}
    for length_s in lengths_s:
        frames_for[length_s] = features.num_frames(
            int(length_s * spec.features.sample_rate), spec.features.frame_length_ms,
            spec.features.frame_shift_ms, spec.features.snip_edges,
            spec.features.sample_rate)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "1")
        export.build_export_archive(spec, embedding_model).write_out(path, verbose=False)
        serve = tf.saved_model.load(path).signatures["serving_default"]
        rng = np.random.default_rng(0)
        rows = []
        for length_s in lengths_s:
            num_samples = int(length_s * spec.features.sample_rate)
            flops_per_utterance = cost.per_frame * frames_for[length_s] + cost.per_utterance
            for batch in batch_sizes:
                ceiling = matmul_ceiling(matmul_size)
                waveform = tf.constant(0.1 * rng.standard_normal((batch, num_samples)),
                                       tf.float32)
                lengths = tf.fill([batch], num_samples)
                durations = time_calls(serve, waveform, lengths, min_calls, max_calls,
                                       budget)
                median = float(np.median(durations))
                achieved = batch * flops_per_utterance / median / 1e9
                rows.append({"seconds": length_s, "batch": batch, "calls": len(durations),
                             "median_s": median,
                             "p90_s": float(np.percentile(durations, 90)),
                             "p99_s": float(np.percentile(durations, 99)),
                             "rtf": median / (batch * length_s),
                             "gflop_per_utterance": flops_per_utterance / 1e9,
                             "gflops": achieved, "ceiling_gflops": ceiling,
                             "fraction_of_ceiling": achieved / ceiling})
    return {"rows": rows, "num_frames": frames_for,
            "parameters": models.count_parameters(embedding_model)["total"],
            "flops_per_frame": cost.per_frame, "flops_per_utterance_fixed": cost.per_utterance}


def format_table(rows) -> list[str]:
    """The header and one line per row (benchmarks/gpu_suite.py parses these)."""
    lines = [f"{'sec':>4} {'batch':>5} {'calls':>5} {'median ms':>10} {'p90 ms':>9} "
             f"{'p99 ms':>9} {'p99/med':>7} {'GFLOP':>6} {'GFLOP/s':>8} {'ceiling':>8} "
             f"{'of ceiling':>10} {'x real time':>11}"]
    for row in rows:
        lines.append(
            f"{row['seconds']:>4g} {row['batch']:>5} {row['calls']:>5} "
            f"{1e3 * row['median_s']:>10.1f} {1e3 * row['p90_s']:>9.1f} "
            f"{1e3 * row['p99_s']:>9.1f} {row['p99_s'] / row['median_s']:>7.2f} "
            f"{row['gflop_per_utterance'] * row['batch']:>6.2f} {row['gflops']:>8.1f} "
            f"{row['ceiling_gflops']:>8.1f} {row['fraction_of_ceiling']:>10.2f} "
            f"{1 / row['rtf']:>11.1f}")
    return lines


def _numbers(flag, kind, lowest, what):
    """A list flag's values as `kind`, each at least `lowest`, or a usage error naming it."""
    try:
        values = [kind(v) for v in flag.value]
    except ValueError as error:
        raise app.UsageError(f"--{flag.name} must be {what}: {error}") from error
    if min(values) < lowest:
        raise app.UsageError(f"--{flag.name} must be >= {lowest}")
    return values


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # SavedModel writing logs every step at INFO
    batch_sizes = _numbers(_BATCH_SIZES, int, 1, "integers")
    lengths_s = _numbers(_SECONDS, float, 0.2, "numbers")
    result = benchmark(lengths_s, batch_sizes, _MIN_CALLS.value, _MAX_CALLS.value,
                       _BUDGET.value, _MATMUL_SIZE.value)
    print(f"paper CNN, {result['parameters']:,} parameters, "
          f"{result['flops_per_frame'] / 1e6:.2f} MFLOP per MFCC frame + "
          f"{result['flops_per_utterance_fixed'] / 1e6:.2f} per utterance; "
          f"threads: intra {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"ceiling: {_MATMUL_SIZE.value}^3 float32 matmul, measured before each row")
    for line in format_table(result["rows"]):
        print(line)
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
