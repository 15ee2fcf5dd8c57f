"""Synthetic-corpus speed: voxceleb-kind utterances per second on one core.

Times `generate_voxceleb` with one worker process end to end (espeak-ng synthesis, channel,
soxr resampling to 16 kHz, WAV writing, per-speaker process start), after one warm-up call
that starts the worker server. Target: >= 100 utterances/s.

    python benchmarks/synth_speed.py --num_speakers=20 --utts_per_speaker=20
"""
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from tfspk.synth import corpus  # noqa: E402

flags.DEFINE_integer("num_speakers", 20, "Speakers to generate.", lower_bound=3)
flags.DEFINE_integer("utts_per_speaker", 20, "Utterances per speaker.", lower_bound=2)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as root:
        corpus.generate_voxceleb(os.path.join(root, "warmup"), 3, 3, num_workers=1)
        start = time.perf_counter()
        summary = corpus.generate_voxceleb(os.path.join(root, "timed"), FLAGS.num_speakers,
                                           FLAGS.utts_per_speaker, num_workers=1)
        seconds = time.perf_counter() - start
    rate = summary["utterances"] / seconds
    print(f"{summary['utterances']} utterances ({3600 * summary['hours']:.0f} s of audio) in "
          f"{seconds:.2f} s on one worker: {rate:.0f} utterances/s, "
          f"{3600 * summary['hours'] / seconds:.0f}x real time")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
