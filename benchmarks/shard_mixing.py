r"""Speaker mixing of the training stream: distinct speakers per 3,200 consecutive examples.

Two measurements, each against the expectation under a uniform shuffle of the split
(`tfspk.shards.mixing.uniform_distinct`), reporting the fewest distinct speakers in any
window of the stream (every start position, not a sample of windows):

* planner: a VoxCeleb1-dev-shaped plan (`--num_speakers` x `--utts_per_speaker`, listed
  speaker by speaker as the corpus reader does, durations supplied) in `--num_shards`
  shards, written as one-sample stand-in shards (`write_label_shards`) and read by the
  real `tfspk.data.train_dataset` (`--cycle_length` shards interleaved, a
  `--shuffle_buffer` shuffle, as the trainer's defaults). The same plan laid out as the
  planner did before speaker mixing (longest-first assignment, reader order inside each
  shard) is measured alongside as the baseline.
* build: a real `tfspk.shards.build.build_split` of `--build_speakers` speakers of short
  synthetic WAV files, read by `train_dataset`.

    python benchmarks/shard_mixing.py
    python benchmarks/shard_mixing.py --skip_build --num_shards=256
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

flags.DEFINE_integer("num_speakers", 1211, "Speakers of the planned split (VoxCeleb1 dev).")
flags.DEFINE_integer("utts_per_speaker", 123, "Utterances per planned speaker.")
flags.DEFINE_integer("num_shards", 64, "Shards of the planned split (the recipe's default).")
flags.DEFINE_integer("window", 3200, "Consecutive training examples per window.")
flags.DEFINE_integer("num_windows", 6, "Stream length read, in windows.")
flags.DEFINE_integer("shuffle_buffer", 2048, "train_dataset shuffle buffer (trainer default).")
flags.DEFINE_integer("cycle_length", 8, "Shards interleaved (train_dataset default).")
flags.DEFINE_integer("build_speakers", 200, "Speakers of the real build.")
flags.DEFINE_integer("build_utts_per_speaker", 50, "Utterances per speaker of the build.")
flags.DEFINE_integer("build_shards", 16, "Shards of the real build.")
flags.DEFINE_boolean("skip_build", False, "Only measure the planner.")
flags.DEFINE_boolean("skip_baseline", False, "Do not measure the pre-mixing layout.")
flags.DEFINE_string("work_dir", None, "Scratch directory (default: a temporary one).")
FLAGS = flags.FLAGS

BATCH = 32


def speaker_sorted_utterances(num_speakers: int, per_speaker: int, root: str = "/nonexistent"):
    """Utterances as a corpus reader lists them (speaker by speaker) and their durations
    (VoxCeleb-like: 4-20 s, lognormal around 8 s)."""
    from tfspk.corpora.records import Utterance

    rng = np.random.default_rng(0)
    utterances = [Utterance(f"id{s:05d}/v/{n:05d}", f"{root}/id{s:05d}/{n:05d}.wav",
                            f"id{s:05d}")
                  for s in range(num_speakers) for n in range(per_speaker)]
    seconds = np.clip(rng.lognormal(np.log(8.0), 0.4, len(utterances)), 4.0, 20.0)
    return utterances, seconds.tolist()


def pre_mixing_layout(plan):
    """The plan as the planner laid it out before speaker mixing: longest-first shards,
    reader (speaker-sorted) order inside each."""
    from tfspk.shards import planning

    shards = planning.assign_shards([item.seconds for item in plan.items], plan.num_shards)
    items = tuple(item._replace(shard=shard, order=item.position)
                  for item, shard in zip(plan.items, shards))
    return dataclasses.replace(plan, items=items)


def training_labels(pattern, num_examples: int, num_frames: int = 2) -> np.ndarray:
    """The first `num_examples` labels `tfspk.data.train_dataset` yields (seed 0)."""
    from tfspk.data import train_dataset

    dataset = train_dataset(pattern, batch_size=BATCH, num_frames=num_frames, seed=0,
                            features_on_device=True, shuffle_buffer=FLAGS.shuffle_buffer,
                            cycle_length=FLAGS.cycle_length)
    labels = [batch[1].numpy() for batch in dataset.take(-(-num_examples // BATCH))]
    return np.concatenate(labels)[:num_examples]


def report(name, labels, counts):
    from tfspk.shards.mixing import mixing_ratio

    worst, expected, ratio = mixing_ratio(labels, counts, FLAGS.window)
    print(f"{name}: fewest distinct speakers in any {FLAGS.window} consecutive examples "
          f"(of {len(labels)}) = {worst}; uniform shuffle expects {expected:.1f}; "
          f"ratio {ratio:.3f} ({'meets' if ratio >= 0.9 else 'misses'} >= 0.90)")
    return ratio


def measure_planner(work_dir):
    from tfspk.shards import planning
    from tfspk.shards.mixing import write_label_shards

    utterances, seconds = speaker_sorted_utterances(FLAGS.num_speakers, FLAGS.utts_per_speaker)
    labels = {u.speaker: i for i, u in enumerate(utterances[::FLAGS.utts_per_speaker])}
    start = time.perf_counter()
    plan = planning.make_plan(utterances, "train", FLAGS.num_shards, labels, {},
                              seconds=seconds)
    print(f"planned {len(plan.items)} utterances of {len(labels)} speakers into "
          f"{plan.num_shards} shards in {time.perf_counter() - start:.1f} s")
    counts = [FLAGS.utts_per_speaker] * FLAGS.num_speakers
    layouts = [("planner (speaker-mixed)", plan)]
    if not FLAGS.skip_baseline:
        layouts.append(("planner (before: longest-first, reader order)",
                        pre_mixing_layout(plan)))
    ratios = {}
    for name, layout in layouts:
        directory = os.path.join(work_dir, name.split()[0] + str(len(ratios)))
        write_label_shards(layout, directory)
        stream = training_labels(os.path.join(directory, "*.tfrecord"),
                                 FLAGS.window * FLAGS.num_windows)
        ratios[name] = report(name, stream, counts)
    return ratios


def measure_build(work_dir):
    import soundfile

    from tfspk.corpora.records import Utterance
    from tfspk.shards.build import BuildConfig, build_split
    from tfspk.shards.encode import EncodeOptions

    rng = np.random.default_rng(1)
    root = os.path.join(work_dir, "audio")
    utterances = []
    start = time.perf_counter()
    for s in range(FLAGS.build_speakers):
        os.makedirs(os.path.join(root, f"spk{s:03d}"), exist_ok=True)
        for n in range(FLAGS.build_utts_per_speaker):
            path = os.path.join(root, f"spk{s:03d}", f"{n:03d}.wav")
            samples = 0.1 * rng.standard_normal(int(rng.integers(800, 2400)))
            soundfile.write(path, samples.astype(np.float32), 16000, subtype="PCM_16")
            utterances.append(Utterance(f"spk{s:03d}/{n:03d}", path, f"spk{s:03d}"))
    config = BuildConfig(os.path.join(work_dir, "built"), "train", FLAGS.build_shards,
                         encode=EncodeOptions(min_seconds=0.01))
    result = build_split(utterances, config)
    print(f"built {result.metadata['num_examples']} utterances of {FLAGS.build_speakers} "
          f"speakers into {FLAGS.build_shards} shards in {time.perf_counter() - start:.1f} s")
    stream = training_labels(os.path.join(config.output_dir, "train-*.tfrecord"),
                             FLAGS.window * FLAGS.num_windows)
    counts = [FLAGS.build_utts_per_speaker] * FLAGS.build_speakers
    return report("real build", stream, counts)


def main(argv):
    del argv
    with tempfile.TemporaryDirectory(dir=FLAGS.work_dir) as work_dir:
        measure_planner(work_dir)
        if not FLAGS.skip_build:
            measure_build(work_dir)


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
