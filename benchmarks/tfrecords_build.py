r"""Throughput of the local TFRecord build, in hours of audio per minute.

    python benchmarks/tfrecords_build.py                       # synthetic VoxCeleb
    python benchmarks/tfrecords_build.py --source=librispeech  # 251 real FLAC files

Generates (or lists) a corpus once, then times `tfspk.shards.build.build_split` from
plan to metadata with each --workers value, each into a fresh directory. The time
includes starting the worker processes (each imports TensorFlow), which dominates
on small corpora.
"""
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from tfspk.shards.build import BuildConfig, build_split, read_corpus  # noqa: E402

LIBRISPEECH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                           "shared", "data", "librispeech-251")

flags.DEFINE_enum("source", "auto", ["auto", "synth", "librispeech"], "synth: tfspk.synth "
                  "VoxCeleb-layout corpus (WAV); librispeech: the shared FLAC files; auto: "
                  "synth, or librispeech if synthesis fails.")
flags.DEFINE_integer("num_speakers", 12, "Synthetic speakers.")
flags.DEFINE_integer("utts_per_speaker", 15, "Synthetic utterances per speaker.")
flags.DEFINE_integer("num_files", 251, "LibriSpeech files to use.")
flags.DEFINE_integer("num_shards", 8, "Shards per build.")
flags.DEFINE_list("workers", ["1", "2"], "Worker counts to time.")
flags.DEFINE_string("work_dir", None, "Scratch directory (default: a temporary one).")
FLAGS = flags.FLAGS


def _synthetic_corpus(work_dir):
    from tfspk.synth.corpus import generate_voxceleb

    root = os.path.join(work_dir, "synth_vox")
    start = time.perf_counter()
    generate_voxceleb(root, FLAGS.num_speakers, FLAGS.utts_per_speaker, seed=0,
                      num_workers=2)
    print(f"generated synthetic corpus in {time.perf_counter() - start:.1f} s")
    return read_corpus("voxceleb", root)


def _corpus(work_dir):
    """(source used, utterances)."""
    if FLAGS.source in ("synth", "auto"):
        try:
            return "synth", _synthetic_corpus(work_dir)
        except Exception as error:  # noqa: BLE001 - auto falls back to real speech
            if FLAGS.source == "synth":
                raise
            print(f"synthetic corpus failed ({type(error).__name__}: {error}); "
                  "using LibriSpeech")
    names = sorted(n for n in os.listdir(LIBRISPEECH) if n.endswith(".flac"))
    manifest = os.path.join(work_dir, "librispeech.tsv")
    with open(manifest, "w", encoding="utf-8") as handle:
        for name in names[: FLAGS.num_files]:
            handle.write(f"{os.path.abspath(os.path.join(LIBRISPEECH, name))}\t"
                         f"{name.split('-')[0]}\n")
    return "librispeech", read_corpus("manifest", manifest)


def main(argv):
    del argv
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="tfrecords_bench_")
    source, utterances = _corpus(work_dir)
    rows = []
    for workers in (int(w) for w in FLAGS.workers):
        out = os.path.join(work_dir, f"out_{workers}")
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        result = build_split(utterances, BuildConfig(out, "train", FLAGS.num_shards,
                                                     num_workers=workers))
        minutes = (time.perf_counter() - start) / 60.0
        hours = result.metadata["total_hours"]
        rows.append((workers, result.metadata["num_examples"], hours, minutes * 60,
                     hours / minutes))
    print(f"\nsource={source} shards={FLAGS.num_shards} cpus={os.cpu_count()}")
    print(f"{'workers':>7} {'examples':>8} {'audio h':>8} {'wall s':>7} {'h audio/min':>12}")
    for workers, examples, hours, seconds, rate in rows:
        print(f"{workers:7d} {examples:8d} {hours:8.3f} {seconds:7.1f} {rate:12.3f}")
    if not FLAGS.work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
