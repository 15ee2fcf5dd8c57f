"""Throughput of `tfspk.features.kaldi_mfcc` against kaldi-native-fbank.

Both compute the paper's MFCCs (40 bins, 40 cepstra, 25/10 ms, dither 0) on the
same batch of utterances: tfspk as one `tf.function` call per batch, traced with
unknown batch and length; kaldi-native-fbank one utterance at a time, as it is
used. Reports seconds of audio processed per second of wall time, and the ratio,
for each batch size in `--batch_sizes` (one run, so the ratios share the machine's
load).

    python benchmarks/feature_speed.py --batch_sizes=1,32 --seconds=8 --repeats=5
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from tfspk import features  # noqa: E402

SAMPLE_RATE = 16000
DEFAULT_SPEECH_DIR = (pathlib.Path(__file__).resolve().parents[2]
                      / "shared" / "data" / "librispeech-251")

_BATCH = flags.DEFINE_integer("batch_size", 8, "Utterances per batch (input_pipeline.py "
                              "uses this one).", lower_bound=1)
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes this script "
                                 "times, in one run.")
_SECONDS = flags.DEFINE_float("seconds", 8.0, "Length of each utterance.", lower_bound=0.1)
_REPEATS = flags.DEFINE_integer("repeats", 9, "Timed repetitions, each one tfspk call "
                                "and one kaldi-native-fbank pass (medians are reported).",
                                lower_bound=1)
_SPEECH_DIR = flags.DEFINE_string(
    "speech_dir", str(DEFAULT_SPEECH_DIR),
    "Folder of 16 kHz FLAC files to cut utterances from; a chirp in noise is used "
    "when it does not exist.")
_COMPUTE_DTYPE = flags.DEFINE_enum("compute_dtype", "float32", ["float32", "float64"],
                                   "Arithmetic inside kaldi_mfcc.")


def load_batch(speech_dir: str, batch_size: int, seconds: float) -> np.ndarray:
    """[batch_size, seconds * 16000] float32: real speech if available, else a chirp."""
    num_samples = int(seconds * SAMPLE_RATE)
    files = sorted(pathlib.Path(speech_dir).glob("*.flac"))
    if not files:
        rng = np.random.default_rng(0)
        t = np.arange(num_samples) / SAMPLE_RATE
        chirp = 0.3 * np.sin(2 * np.pi * (100 * t + 300 * t**2))
        return np.stack([chirp + 0.01 * rng.standard_normal(num_samples)
                         for _ in range(batch_size)]).astype(np.float32)
    rows = []
    for path in files[:batch_size * 4]:
        samples, rate = sf.read(path, dtype="float32")
        if rate != SAMPLE_RATE:
            raise ValueError(f"{path}: sample rate {rate}, expected {SAMPLE_RATE}")
        rows.append(np.resize(samples, num_samples))  # repeats short files
        if len(rows) == batch_size:
            break
    while len(rows) < batch_size:
        rows.append(rows[len(rows) % len(files)])
    return np.stack(rows)


def measure_feature_speed(batch: np.ndarray, repeats: int = 9,
                          compute_dtype: str = "float32") -> dict:
    """Audio seconds per wall second of tfspk and kaldi-native-fbank, timed in turn.

    Returns medians over `repeats` of each rate and of the per-repeat ratio
    tfspk / kaldi-native-fbank, plus the kaldi-native-fbank version."""
    from importlib import metadata

    import kaldi_native_fbank as knf

    options = dict(features.PAPER_MFCC_OPTIONS)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def tf_mfcc(waveform):
        return features.kaldi_mfcc(waveform, compute_dtype=compute_dtype, **options)

    knf_options = knf.MfccOptions()
    knf_options.frame_opts.dither = 0.0
    knf_options.mel_opts.num_bins = options["num_mel_bins"]
    knf_options.num_ceps = options["num_ceps"]
    as_int16_lists = [(row * features.INT16_SCALE).tolist() for row in batch]

    def run_knf():
        for samples in as_int16_lists:
            computer = knf.OnlineMfcc(knf_options)
            computer.accept_waveform(SAMPLE_RATE, samples)
            computer.input_finished()
            np.stack([computer.get_frame(i) for i in range(computer.num_frames_ready)])

    audio_seconds = batch.size / SAMPLE_RATE
    tensor = tf.constant(batch)
    tf_mfcc(tensor).numpy()  # trace and warm up
    run_knf()
    tf_times, knf_times, tf_cpu, knf_cpu = [], [], [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        tf_mfcc(tensor).numpy()
        tf_times.append(time.perf_counter() - start)
        tf_cpu.append(time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        run_knf()
        knf_times.append(time.perf_counter() - start)
        knf_cpu.append(time.process_time() - cpu)
    tf_times, knf_times = np.array(tf_times), np.array(knf_times)
    return {"audio_seconds": audio_seconds,
            "tfspk": audio_seconds / float(np.median(tf_times)),
            "kaldi_native_fbank": audio_seconds / float(np.median(knf_times)),
            "ratio": float(np.median(knf_times / tf_times)),
            "ratio_min": float(np.min(knf_times / tf_times)),
            "ratio_max": float(np.max(knf_times / tf_times)),
            # CPU seconds (all of tfspk's threads): what a loaded machine distorts least.
            "cpu_ratio": float(np.median(np.array(knf_cpu) / np.array(tf_cpu))),
            "knf_version": metadata.version("kaldi-native-fbank")}


def main(argv):
    del argv
    sizes = [int(b) for b in _BATCH_SIZES.value]
    print(f"paper MFCC ({_COMPUTE_DTYPE.value}), {_SECONDS.value:g}-s utterances, "
          f"medians of {_REPEATS.value} interleaved repeats; {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'batch':>5} {'tfspk s/s':>10} {'knf s/s':>10} {'ratio':>6} "
          f"{'(min-max)':>11} {'cpu ratio':>9} knf")
    for size in sizes:
        batch = load_batch(_SPEECH_DIR.value, size, _SECONDS.value)
        result = measure_feature_speed(batch, _REPEATS.value, _COMPUTE_DTYPE.value)
        print(f"{size:>5} {result['tfspk']:>10.1f} {result['kaldi_native_fbank']:>10.1f} "
              f"{result['ratio']:>6.2f} {result['ratio_min']:>5.2f}-{result['ratio_max']:<5.2f}"
              f" {result['cpu_ratio']:>9.2f} {result['knf_version']}", flush=True)
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
