"""CPU real-time factor of one export as SavedModel, ONNX Runtime and TFLite.

For `--model` (an export directory, or by default the full-size paper CNN with random
weights exported with `tfspk.export.build_export_archive`: timing does not depend on
the weights), converts `serving_default` with `tfspk.convert` to ONNX and to TFLite
(dynamic shapes, plus with `--tflite_fixed` a TFLite model fixed to [1, samples]),
then times one `--seconds`-long utterance at batch 1 in each runtime, all on the same
number of threads, and reports per runtime:

* median and 90th-percentile latency of one call (after one untimed warm-up call);
* real-time factor RTF = latency / seconds of audio (lower is better) and its ratio to
  the SavedModel's (< 1: faster than the SavedModel);
* the largest difference of its embedding from the SavedModel's on that utterance.

    python benchmarks/export_formats_rtf.py --seconds=8
    python benchmarks/export_formats_rtf.py --model=models/spk --num_threads=4
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

_MODEL = flags.DEFINE_string("model", None, "Export (version dir or BASE/NAME); default: "
                             "the full-size paper CNN with random weights.")
_SECONDS = flags.DEFINE_float("seconds", 8.0, "Utterance length.", lower_bound=0.5)
_NUM_THREADS = flags.DEFINE_integer("num_threads", None, "Threads for every runtime "
                                    "(default: all CPUs).", lower_bound=1)
_MIN_CALLS = flags.DEFINE_integer("min_calls", 3, "Timed calls per runtime, at least.",
                                  lower_bound=1)
_MAX_CALLS = flags.DEFINE_integer("max_calls", 20, "Timed calls per runtime, at most.",
                                  lower_bound=1)
_BUDGET = flags.DEFINE_float("seconds_per_runtime", 20.0, "Stop timing a runtime after "
                             "this long (once min_calls are done).", lower_bound=0.0)
_TFLITE_FIXED = flags.DEFINE_bool("tflite_fixed", True, "Also time a TFLite model "
                                  "converted for exactly [1, samples].")


def _full_size_export(directory: str) -> str:
    from tfspk import export
    from tfspk import model_spec as spec_lib

    spec = spec_lib.ModelSpec(num_speakers=1211)  # the paper's widths and front end
    embedding_model = spec_lib.build_embedding_model(spec)
    path = os.path.join(directory, "paper_cnn", "1")
    export.build_export_archive(spec, embedding_model).write_out(path, verbose=False)
    export.write_frame_geometry(path, spec, embedding_model)
    return path


def time_calls(call, min_calls, max_calls, budget) -> np.ndarray:
    """Wall-clock seconds of each call, after one untimed warm-up call."""
    call()
    durations = []
    started = time.perf_counter()
    while len(durations) < max_calls and (len(durations) < min_calls
                                          or time.perf_counter() - started < budget):
        start = time.perf_counter()
        call()
        durations.append(time.perf_counter() - start)
    return np.array(durations)


def benchmark(model, seconds, num_threads, min_calls, max_calls, budget, tflite_fixed):
    import tensorflow as tf

    from tfspk import convert

    tf.config.threading.set_intra_op_parallelism_threads(num_threads)
    tf.config.threading.set_inter_op_parallelism_threads(num_threads)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        export_path = convert.resolve_export(model) if model else _full_size_export(directory)
        build_seconds = time.perf_counter() - started
        geometry = convert.read_geometry(export_path)
        num_samples = int(seconds * geometry["sample_rate"])
        waveform = convert.check_signal(num_samples)[None]
        lengths = np.array([num_samples], np.int32)

        serve = tf.saved_model.load(export_path).signatures[convert.SIGNATURE]
        tf_waveform, tf_lengths = tf.constant(waveform), tf.constant(lengths)
        reference = serve(waveform=tf_waveform, lengths=tf_lengths)["embedding"].numpy()
        runtimes = [("SavedModel (TF)", None,
                     lambda: serve(waveform=tf_waveform, lengths=tf_lengths)
                     ["embedding"].numpy())]
        conversions = [("ONNX Runtime", "onnx", {}), ("TFLite", "tflite", {})]
        if tflite_fixed:
            conversions.append((f"TFLite [1, {num_samples}]", "tflite",
                                {"num_samples": num_samples}))
        convert_seconds = {}
        for name, fmt, options in conversions:
            output = os.path.join(directory, f"{fmt}{len(convert_seconds)}.{fmt}")
            started = time.perf_counter()
            convert.convert(export_path, fmt, output, num_threads=num_threads,
                            tolerance=None, **options)  # the diff is reported below
            convert_seconds[name] = time.perf_counter() - started
            model_ = convert.ConvertedModel.load(output, num_threads=num_threads)
            runtimes.append((name, model_, lambda m=model_: m.run(waveform, lengths)))
        for name, model_, call in runtimes:
            embedding = call()
            durations = time_calls(call, min_calls, max_calls, budget)
            median = float(np.median(durations))
            rows.append({"runtime": name, "calls": len(durations), "median_s": median,
                         "p90_s": float(np.percentile(durations, 90)),
                         "rtf": median / seconds,
                         "max_abs_diff": float(np.abs(embedding - reference).max()),
                         "convert_s": convert_seconds.get(name)})
    base = rows[0]["rtf"]
    for row in rows:
        row["ratio"] = row["rtf"] / base
    return {"rows": rows, "export": model or "full-size paper CNN (random weights)",
            "build_s": build_seconds, "num_samples": num_samples,
            "dimension": int(reference.shape[1])}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # SavedModel writing and tf2onnx log at INFO
    threads = _NUM_THREADS.value or os.cpu_count()
    result = benchmark(_MODEL.value, _SECONDS.value, threads, _MIN_CALLS.value,
                       _MAX_CALLS.value, _BUDGET.value, _TFLITE_FIXED.value)
    import onnxruntime
    import tensorflow as tf
    print(f"{result['export']}: {_SECONDS.value:g}-s utterance ({result['num_samples']} "
          f"samples) at batch 1, embedding dim {result['dimension']}; {threads} threads "
          f"per runtime, {os.cpu_count()} CPUs; TF {tf.__version__}, onnxruntime "
          f"{onnxruntime.__version__}")
    print(f"{'runtime':<24} {'calls':>5} {'median ms':>10} {'p90 ms':>9} {'RTF':>8} "
          f"{'x real time':>11} {'vs SavedModel':>13} {'max |diff|':>10} {'convert s':>9}")
    for row in result["rows"]:
        convert_s = f"{row['convert_s']:.1f}" if row["convert_s"] is not None else "-"
        print(f"{row['runtime']:<24} {row['calls']:>5} {1e3 * row['median_s']:>10.1f} "
              f"{1e3 * row['p90_s']:>9.1f} {row['rtf']:>8.4f} {1 / row['rtf']:>11.1f} "
              f"{row['ratio']:>12.2f}x {row['max_abs_diff']:>10.2g} {convert_s:>9}")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
