r"""Planner at VoxCeleb2 scale: time and peak memory of planning 1.1M utterances.

A VoxCeleb2-dev-shaped split (`--num_speakers` speakers, `--num_utterances` in all,
utterances per speaker drawn around the mean, listed speaker by speaker as
`tfspk.corpora.voxceleb` lists them; durations supplied, lognormal around 8 s as
VoxCeleb2's are) goes through what the build does before any audio is read:
`tfspk.shards.planning.make_plan` (speaker mixing, in-shard order), every shard's digest,
`<split>.plan.json` written and read back, and the resume check (the reloaded plan
compared with a fresh one). Reading 1.1M m4a headers is not included (`--durations`
supplied); `--header_sample` times PyAV on that many real AAC files written here, so the
header cost can be extrapolated.

Peak RSS is the process's high-water mark (`resource.getrusage`, Linux kB), which
includes the Python interpreter and numpy (about 40 MB).

    python benchmarks/planner_scale.py
    python benchmarks/planner_scale.py --num_utterances=148642 --num_speakers=1211
"""
from __future__ import annotations

import os
import resource
import tempfile
import time

import numpy as np
from absl import app, flags

flags.DEFINE_integer("num_utterances", 1_092_009, "Utterances (VoxCeleb2 dev).")
flags.DEFINE_integer("num_speakers", 5994, "Speakers (VoxCeleb2 dev).")
flags.DEFINE_integer("num_shards", 512, "Shards.")
flags.DEFINE_integer("header_sample", 200, "m4a files whose PyAV header read is timed "
                     "(0: skip).")
flags.DEFINE_string("work_dir", None, "Scratch directory (default: a temporary one).")
FLAGS = flags.FLAGS

SECONDS_LIMIT, RSS_LIMIT_GB = 60.0, 2.0


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 ** 2


def voxceleb2_shaped(num_utterances: int, num_speakers: int):
    """Speaker-sorted Utterances with VoxCeleb2-like ids and paths, and durations."""
    from tfspk.corpora.records import Utterance

    rng = np.random.default_rng(0)
    weights = rng.lognormal(0.0, 0.5, num_speakers)
    counts = np.maximum(1, np.round(weights / weights.sum() * num_utterances)).astype(int)
    counts[-1] += num_utterances - counts.sum()
    utterances = []
    for speaker, count in enumerate(counts.tolist()):
        name = f"id{speaker:05d}"
        for n in range(count):
            utt_id = f"{name}/v{n // 20:09d}x/{n % 20 + 1:05d}"
            utterances.append(Utterance(utt_id, f"/data/voxceleb2/dev/aac/{utt_id}.m4a",
                                        name))
    seconds = np.clip(rng.lognormal(np.log(7.0), 0.5, num_utterances), 4.0, 120.0)
    return utterances, seconds.tolist()


def time_headers(work_dir: str, count: int) -> tuple[float, float]:
    """Seconds per m4a header read by `planning.header_seconds` (PyAV): alone, and as
    part of `make_plan`."""
    import av

    from tfspk.shards import planning

    rng = np.random.default_rng(1)
    paths = []
    for index in range(count):
        path = os.path.join(work_dir, f"{index:05d}.m4a")
        samples = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
        with av.open(path, "w") as container:
            stream = container.add_stream("aac", rate=16000, layout="mono")
            frame = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
            frame.sample_rate = 16000
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                container.mux(packet)
        paths.append(path)
    from tfspk.corpora.records import Utterance

    start = time.perf_counter()
    for path in paths:
        planning.header_seconds(path)
    serial = (time.perf_counter() - start) / count
    utterances = [Utterance(f"u{i}", path, "s") for i, path in enumerate(paths)]
    start = time.perf_counter()
    plan = planning.make_plan(utterances, "train", 1, {"s": 0}, {})
    threaded = (time.perf_counter() - start) / count
    assert all(abs(item.seconds - 2.0) < 0.07 for item in plan.items)
    return serial, threaded


def main(argv):
    del argv
    from tfspk.shards import metadata as meta
    from tfspk.shards import planning

    baseline = peak_rss_gb()
    utterances, seconds = voxceleb2_shaped(FLAGS.num_utterances, FLAGS.num_speakers)
    labels = meta.assign_labels(u.speaker for u in utterances)
    inputs_gb = peak_rss_gb()
    print(f"inputs: {len(utterances)} utterances of {len(labels)} speakers "
          f"(peak RSS {inputs_gb:.2f} GB with the corpus listing, "
          f"{baseline:.2f} GB before)")
    with tempfile.TemporaryDirectory(dir=FLAGS.work_dir) as work_dir:
        steps = {}
        start = time.perf_counter()
        plan = planning.make_plan(utterances, "train", FLAGS.num_shards, labels,
                                  {"sample_rate": 16000}, seconds=seconds)
        steps["make_plan"] = time.perf_counter() - start
        mark = time.perf_counter()
        digests = [plan.shard_digest(s) for s in range(plan.num_shards)]
        steps["shard digests"] = time.perf_counter() - mark
        mark = time.perf_counter()
        path = os.path.join(work_dir, "train.plan.json")
        meta.save_plan(path, plan)
        steps["save plan.json"] = time.perf_counter() - mark
        mark = time.perf_counter()
        reloaded = meta.load_plan(path)
        steps["load plan.json"] = time.perf_counter() - mark
        mark = time.perf_counter()
        assert reloaded == plan, "plan does not round-trip"  # as prepare_plan compares
        steps["resume check"] = time.perf_counter() - mark
        total = time.perf_counter() - start
        size_mb = os.path.getsize(path) / 1e6
        loads = np.zeros(plan.num_shards)
        np.add.at(loads, [item.shard for item in plan.items], seconds)
        for name, value in steps.items():
            print(f"  {name:>15}: {value:6.1f} s")
        peak = peak_rss_gb()
        print(f"planned {len(plan.items)} utterances into {plan.num_shards} shards "
              f"({len(set(digests))} distinct digests, plan.json {size_mb:.0f} MB): "
              f"{total:.1f} s, peak RSS {peak:.2f} GB "
              f"({'meets' if total <= SECONDS_LIMIT and peak <= RSS_LIMIT_GB else 'misses'}"
              f" <= {SECONDS_LIMIT:.0f} s and <= {RSS_LIMIT_GB:.0f} GB)")
        print(f"shard hours: min {loads.min() / 3600:.2f}, max {loads.max() / 3600:.2f} "
              f"(spread {loads.max() - loads.min():.1f} s, longest item "
              f"{max(seconds):.1f} s)")
        if FLAGS.header_sample:
            serial, threaded = time_headers(work_dir, FLAGS.header_sample)
            print(f"m4a header via PyAV (page-cached): {serial * 1e3:.2f} ms per file one "
                  f"by one, {threaded * 1e3:.2f} ms through make_plan; "
                  f"{FLAGS.num_utterances} files: about {serial * FLAGS.num_utterances / 60:.0f}"
                  f" and {threaded * FLAGS.num_utterances / 60:.0f} min")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
