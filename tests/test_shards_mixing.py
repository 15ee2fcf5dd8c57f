"""Speaker-mixed shards: the planner spreads speakers and shuffles inside shards, and the
training reader then sees about as many speakers per window as a uniform shuffle."""
import dataclasses
import itertools
import os

import numpy as np
import pytest
import soundfile

from tfspk.corpora.records import Utterance
from tfspk.shards import planning
from tfspk.shards.mixing import (distinct_per_window, mixing_ratio, uniform_distinct,
                                 write_label_shards)


def test_distinct_per_window_matches_brute_force():
    labels = np.random.default_rng(0).integers(0, 7, size=60)
    for window in (1, 5, 13, 60):
        expected = [len(set(labels[i:i + window].tolist()))
                    for i in range(len(labels) - window + 1)]
        assert distinct_per_window(labels, window).tolist() == expected
    with pytest.raises(ValueError, match="window"):
        distinct_per_window(labels, 61)


@pytest.mark.parametrize("counts,window", [([1, 2], 2), ([3, 1, 2, 4], 3), ([2, 2, 5], 6)])
def test_uniform_distinct_equals_the_mean_over_every_draw(counts, window):
    # Enumerate every window a uniform shuffle can put in front: all W-subsets.
    population = [s for s, n in enumerate(counts) for _ in range(n)]
    draws = list(itertools.combinations(range(len(population)), window))
    mean = np.mean([len({population[i] for i in draw}) for draw in draws])
    assert uniform_distinct(counts, window) == pytest.approx(mean, rel=1e-12)
    assert uniform_distinct([1, 2], 2) == pytest.approx(5 / 3)


def _speaker_sorted(num_speakers, per_speaker, seed=0):
    rng = np.random.default_rng(seed)
    speakers = [f"s{s:04d}" for s in range(num_speakers) for _ in range(per_speaker)]
    seconds = rng.uniform(2.0, 15.0, len(speakers))
    return speakers, seconds


def test_assign_mixed_shards_spreads_speakers_and_balances_duration():
    speakers, seconds = _speaker_sorted(40, 25)
    num_shards = 8
    shards = np.array(planning.assign_mixed_shards(seconds, speakers, num_shards, seed=3))
    loads = np.bincount(shards, weights=seconds, minlength=num_shards)
    # List scheduling: the emptiest shard was the target of the fullest's last item.
    assert loads.max() - loads.min() <= seconds.max() + 1e-9
    per_speaker = np.array([np.bincount(shards[np.array(speakers) == s],
                                        minlength=num_shards)
                            for s in sorted(set(speakers))])
    # 25 utterances over 8 shards: each speaker covers about as many shards as 25
    # independent uniform draws would (8 * (1 - (7/8)^25) = 7.7), none fewer than 5.
    coverage = (per_speaker > 0).sum(axis=1)
    assert coverage.mean() >= 0.95 * 8 * (1 - (7 / 8) ** 25), coverage
    assert coverage.min() >= 5, coverage
    again = planning.assign_mixed_shards(seconds, speakers, num_shards, seed=3)
    assert again == shards.tolist()
    assert planning.assign_mixed_shards(seconds, speakers, num_shards, seed=4) != again


def test_assign_mixed_shards_gives_every_shard_an_item_even_when_durations_are_zero():
    shards = planning.assign_mixed_shards([0.0] * 7 + [3.0], ["a"] * 8, 4)
    # The 3-s item first; the seven empty ones then fill the three empty shards by count.
    counts = np.bincount(shards, minlength=4)
    assert counts[shards[-1]] == 1 and sorted(counts.tolist()) == [1, 2, 2, 3]
    assert planning.assign_mixed_shards([], [], 3) == []
    with pytest.raises(ValueError, match="num_shards"):
        planning.assign_mixed_shards([1.0], ["a"], 0)


def test_order_within_shards_is_a_seeded_permutation_of_each_shard():
    shards = np.random.default_rng(1).integers(0, 5, 200)
    order = np.array(planning.order_within_shards(shards, seed=2))
    for shard in range(5):
        assert sorted(order[shards == shard].tolist()) == list(range((shards == shard).sum()))
    assert order.tolist() == planning.order_within_shards(shards, seed=2)
    assert order.tolist() != planning.order_within_shards(shards, seed=3)


def test_shard_items_follow_the_plan_order():
    speakers, seconds = _speaker_sorted(10, 12)
    utts = [Utterance(f"u{i}", f"/x/{i}.wav", spk) for i, spk in enumerate(speakers)]
    labels = {s: i for i, s in enumerate(sorted(set(speakers)))}
    plan = planning.make_plan(utts, "train", 3, labels, {}, seconds=seconds.tolist())
    for shard in range(3):
        items = plan.shard_items(shard)
        assert [item.order for item in items] == list(range(len(items)))
        positions = [item.position for item in items]
        assert positions != sorted(positions)  # not reader order
    assert planning.ShardPlan.from_json(plan.to_json()) == plan
    with pytest.raises(planning.PlanningError, match="3 durations given for 120"):
        planning.make_plan(utts, "train", 3, labels, {}, seconds=[1.0, 2.0, 3.0])
    old = dict(plan.to_json(), plan_version=1)
    with pytest.raises(ValueError, match="older tfspk.*--overwrite"):
        planning.ShardPlan.from_json(old)


def _stream_labels(pattern, num_examples, shuffle_buffer=256):
    from tfspk.data import train_dataset

    dataset = train_dataset(pattern, batch_size=32, num_frames=2, seed=0,
                            features_on_device=True, shuffle_buffer=shuffle_buffer,
                            cycle_length=4)
    batches = [labels.numpy() for _, labels in dataset.take(-(-num_examples // 32))]
    return np.concatenate(batches)[:num_examples]


def test_planner_mixes_where_the_speaker_sorted_layout_did_not(tmp_path):
    # VoxCeleb-dev-like proportions scaled down: 300 speakers x 30 utterances, 16 shards,
    # read 4 at a time through a 256-example buffer, windows of 640 examples.
    speakers, seconds = _speaker_sorted(300, 30)
    utts = [Utterance(f"u{i}", f"/x/{i}.wav", spk) for i, spk in enumerate(speakers)]
    labels = {s: i for i, s in enumerate(sorted(set(speakers)))}
    plan = planning.make_plan(utts, "train", 16, labels, {}, seconds=seconds.tolist())
    old_shards = planning.assign_shards(seconds.tolist(), 16)
    old = dataclasses.replace(plan, items=tuple(
        item._replace(shard=shard, order=item.position)
        for item, shard in zip(plan.items, old_shards)))
    ratios = {}
    for name, layout in (("mixed", plan), ("old", old)):
        write_label_shards(layout, str(tmp_path / name))
        stream = _stream_labels(str(tmp_path / name / "*.tfrecord"), 2560)
        ratios[name] = mixing_ratio(stream, [30] * 300, 640)[2]
    assert ratios["mixed"] >= 0.9, ratios
    assert ratios["old"] < 0.6, ratios  # the measure tells the two apart


def test_real_build_of_200_speakers_mixes_like_a_uniform_shuffle(tmp_path):
    from tfspk.shards.build import BuildConfig, build_split
    from tfspk.shards.encode import EncodeOptions

    rng = np.random.default_rng(5)
    utts = []
    for s in range(200):
        os.makedirs(tmp_path / "audio" / f"spk{s:03d}")
        for n in range(16):
            path = str(tmp_path / "audio" / f"spk{s:03d}" / f"{n:02d}.wav")
            soundfile.write(path, 0.1 * rng.standard_normal(int(rng.integers(400, 1200))),
                            16000, subtype="PCM_16")
            utts.append(Utterance(f"spk{s:03d}/{n:02d}", path, f"spk{s:03d}"))
    config = BuildConfig(str(tmp_path / "built"), "train", 8,
                         encode=EncodeOptions(min_seconds=0.01))
    assert build_split(utts, config).metadata["num_examples"] == 3200
    stream = _stream_labels(str(tmp_path / "built" / "train-*.tfrecord"), 1024)
    worst, expected, ratio = mixing_ratio(stream, [16] * 200, 256)
    assert expected == pytest.approx(200 * (1 - np.prod(1 - 256 / np.arange(3185, 3201))),
                                     rel=1e-9)
    assert ratio >= 0.9, (worst, expected)
