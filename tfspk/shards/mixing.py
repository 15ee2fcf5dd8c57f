"""How well a training stream mixes speakers: distinct speakers per window of examples.

A training batch should see as many different speakers as a uniform shuffle of the
split would give; a reader that walks speaker-sorted shards sees far fewer. The measure
(`distinct_per_window`) counts the distinct labels in every run of `window` consecutive
examples; its reference (`uniform_distinct`) is the expected count when the window is a
uniform random draw without replacement from the split:

    E[distinct] = sum over speakers s of 1 - C(N - n_s, W) / C(N, W)

(N examples in the split, n_s of speaker s, W the window): speaker s is missing from the
window exactly when all W draws come from the other N - n_s examples.

`write_label_shards` writes a plan's shards with a one-sample stand-in waveform per
utterance, so the real training reader (`tfspk.data.train_dataset`) can be run on a
1M-utterance plan without its audio.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np


def distinct_per_window(labels: Sequence[int], window: int) -> np.ndarray:
    """Distinct labels in each of the len(labels) - window + 1 windows of `window`
    consecutive labels (a sliding count, O(len(labels)))."""
    labels = np.asarray(labels, np.int64)
    if window < 1 or window > len(labels):
        raise ValueError(f"window must be in [1, {len(labels)}], got {window}")
    _, codes = np.unique(labels, return_inverse=True)
    counts = np.zeros(int(codes.max()) + 1, np.int64)
    distinct = 0
    for code in codes[:window].tolist():
        distinct += counts[code] == 0
        counts[code] += 1
    result = np.empty(len(codes) - window + 1, np.int64)
    result[0] = distinct
    leaving, entering = codes[:-window].tolist(), codes[window:].tolist()
    for step, (old, new) in enumerate(zip(leaving, entering), start=1):
        counts[old] -= 1
        distinct -= counts[old] == 0
        distinct += counts[new] == 0
        counts[new] += 1
        result[step] = distinct
    return result


def _log_choose(n: float, k: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def uniform_distinct(counts_per_speaker: Sequence[int], window: int) -> float:
    """Expected distinct speakers in `window` examples drawn uniformly without
    replacement from a split with these per-speaker example counts."""
    counts = [int(c) for c in counts_per_speaker if int(c) > 0]
    total = sum(counts)
    if window < 0 or window > total:
        raise ValueError(f"window must be in [0, {total}], got {window}")
    log_all = _log_choose(total, window)
    expected = 0.0
    for count in counts:
        rest = total - count
        missing = 0.0 if rest < window else math.exp(_log_choose(rest, window) - log_all)
        expected += 1.0 - missing
    return expected


def mixing_ratio(labels: Sequence[int], counts_per_speaker: Sequence[int],
                 window: int) -> tuple[int, float, float]:
    """(fewest distinct speakers in any window of the stream, uniform expectation,
    their ratio)."""
    worst = int(distinct_per_window(labels, window).min())
    expected = uniform_distinct(counts_per_speaker, window)
    return worst, expected, worst / expected


def write_label_shards(plan, directory: str, sample_rate: int = 16000) -> list[str]:
    """Writes `plan`'s shards, in plan order, with a one-sample waveform for every
    utterance that is not a planned reject; returns the shard paths.

    The records are real `tfspk.schema` examples, so `tfspk.data.train_dataset` reads
    them like a built split: what the reader does with the plan's order can be measured
    on a plan of any size in seconds.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from tfspk import schema  # pylint: disable=import-outside-toplevel

    os.makedirs(directory, exist_ok=True)
    one_sample = np.ones([1], np.int16)
    paths = []
    for shard in range(plan.num_shards):
        path = os.path.join(directory,
                            f"{plan.split}-{shard:05d}-of-{plan.num_shards:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for item in plan.shard_items(shard):
                if item.reject is None:
                    writer.write(schema.serialize_example(item.utt_id, item.speaker,
                                                          item.label, one_sample,
                                                          sample_rate))
        paths.append(path)
    return paths
