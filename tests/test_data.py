"""Tests for tfspk.data: training batches (shapes, labels, crops, augmentation on CPU or
on the device, determinism, speaker balance, sharding, MirroredStrategy) and evaluation
batches."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfspk import augment, data, schema

NUM_FRAMES = 20
CROP = 400 + (NUM_FRAMES - 1) * 160  # 25-ms window, 10-ms shift, snip_edges


def _pcm(rng, length, speaker):
    t = np.arange(length) / 16000.0
    tone = np.sin(2 * np.pi * (200 + 150 * speaker) * t)  # a speaker-specific pitch
    return np.round(8000 * (tone + 0.3 * rng.standard_normal(length))).astype(np.int16)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """4 shards, one speaker each (label = shard index), 3 utterances of 0.06-0.6 s."""
    root = tmp_path_factory.mktemp("data_shards")
    rng = np.random.default_rng(0)
    utterances = []
    for speaker in range(4):
        with tf.io.TFRecordWriter(str(root / f"train-{speaker:05d}.tfrecord")) as writer:
            for index, length in enumerate((1000, 6000, 9600)):
                pcm = _pcm(rng, length, speaker)
                utt_id = f"spk{speaker}/u{index}"
                writer.write(schema.serialize_example(utt_id, f"spk{speaker}", speaker, pcm,
                                                      16000))
                utterances.append((utt_id, pcm))
    aug = root / "augmentation"
    for kind, length in (("noise", 5000), ("music", 7000), ("babble", 6000), ("rirs", 800)):
        os.makedirs(aug / kind)
        with tf.io.TFRecordWriter(str(aug / kind / "a.tfrecord")) as writer:
            for index in range(3):
                signal = rng.standard_normal(length)
                if kind == "rirs":
                    signal *= np.exp(-np.arange(length) / 150.0)
                pcm = np.round(3000 * signal).astype(np.int16)
                writer.write(schema.serialize_example(f"{kind}{index}", kind, -1, pcm, 16000))
    return {"pattern": str(root / "train-*.tfrecord"), "root": root,
            "augmentation": str(aug), "utterances": utterances}


FULL = augment.AugmentationConfig.uniform(1.0, specaugment=0.5)


def _take(dataset, count):
    return [tf.nest.map_structure(lambda t: t.numpy(), batch) for batch in dataset.take(count)]


def test_samples_for_frames_is_the_exact_crop_length():
    assert data.samples_for_frames(NUM_FRAMES) == CROP
    assert data.samples_for_frames(200) == 32240
    centred = data.samples_for_frames(200, {"snip_edges": False})
    assert centred == 200 * 160 - 80


def test_train_batches_have_features_lengths_and_labels(shards):
    dataset = data.train_dataset(shards["pattern"], batch_size=4, num_frames=NUM_FRAMES,
                                 seed=1)
    for inputs, labels in _take(dataset, 3):
        assert inputs["features"].shape == (4, NUM_FRAMES, 40)
        assert inputs["features"].dtype == np.float32
        np.testing.assert_array_equal(inputs["lengths"], [NUM_FRAMES] * 4)
        assert labels.dtype == np.int32 and set(labels) <= {0, 1, 2, 3}
        assert np.all(np.isfinite(inputs["features"]))
        # CMN: every coefficient has zero mean over the crop's frames.
        np.testing.assert_allclose(inputs["features"].mean(axis=1), 0.0, atol=1e-3)


def test_short_utterances_are_tiled_to_the_crop_length(tmp_path):
    pcm = _pcm(np.random.default_rng(1), 1000, 0)
    with tf.io.TFRecordWriter(str(tmp_path / "short.tfrecord")) as writer:
        writer.write(schema.serialize_example("short", "s", 0, pcm, 16000))
    dataset = data.train_dataset(str(tmp_path / "*.tfrecord"), batch_size=2,
                                 num_frames=NUM_FRAMES, seed=2, features_on_device=True)
    inputs, labels = _take(dataset, 1)[0]
    assert inputs["waveform"].shape == (2, CROP)
    np.testing.assert_array_equal(inputs["lengths"], [CROP, CROP])
    for row in inputs["waveform"]:
        np.testing.assert_array_equal(row[:-1000], row[1000:])  # period of the utterance
        assert set(np.round(row * 32768).astype(int)) <= set(pcm.astype(int))


def test_crops_of_long_utterances_are_contiguous_slices(shards):
    dataset = data.train_dataset(shards["pattern"], batch_size=8, num_frames=NUM_FRAMES,
                                 seed=3, features_on_device=True)
    waveforms = {utt: pcm.astype(np.float32) / 32768 for utt, pcm in shards["utterances"]}
    long_ones = [w for w in waveforms.values() if w.size > CROP]
    inputs, _ = _take(dataset, 1)[0]
    for row in inputs["waveform"]:
        is_slice = any(np.array_equal(row, w[o:o + CROP])
                       for w in long_ones for o in range(w.size - CROP + 1))
        is_tiled_short = np.array_equal(row[:-1000], row[1000:])  # the 1000-sample ones
        assert is_slice or is_tiled_short


def test_augmented_batches_are_reproducible_and_equal_on_host_and_device(shards):
    """One seed: the same batches twice on the host; the device path (waveforms, plans and
    sources from tf.data, `device_augment_and_features` afterwards) gives the same
    features; another seed gives other batches."""
    sources = augment.AugmentationSources.from_tfrecords(shards["augmentation"])
    kwargs = dict(batch_size=4, num_frames=NUM_FRAMES, augmentation=FULL,
                  augmentation_sources=sources)
    on_host = _take(data.train_dataset(shards["pattern"], seed=4, **kwargs), 2)
    again = _take(data.train_dataset(shards["pattern"], seed=4, **kwargs), 2)
    for (x, y), (x2, y2) in zip(on_host, again):
        np.testing.assert_array_equal(x["features"], x2["features"])
        np.testing.assert_array_equal(y, y2)

    frontend = data.make_frontend()
    raw = data.train_dataset(shards["pattern"], seed=4, features_on_device=True, **kwargs)
    for (inputs, labels), (expected, expected_labels) in zip(raw.take(2), on_host):
        # The additive kinds travel premixed at unit speech power (premix_additive).
        assert set(inputs["sources"]) == {"rir", "additive"}
        assert inputs["sources"]["additive"].shape == (4, CROP)
        assert inputs["sources"]["rir"].shape == (4, 16000)
        # Probability 1: every example is changed by exactly its planned kind.
        augmented = augment.augment_waveforms(inputs["waveform"], inputs["plan"],
                                              inputs["sources"]).numpy()
        changed = np.any(np.abs(augmented - inputs["waveform"].numpy()) > 1e-4, axis=1)
        assert changed.all()
        assert np.all(inputs["plan"]["reverb"].numpy() != (inputs["plan"]["additive"].numpy() > 0))
        features = data.device_augment_and_features(inputs, frontend)
        np.testing.assert_array_equal(labels.numpy(), expected_labels)
        np.testing.assert_allclose(features["features"].numpy(), expected["features"],
                                   atol=2e-3)
        np.testing.assert_array_equal(features["lengths"].numpy(), expected["lengths"])

    other = _take(data.train_dataset(shards["pattern"], seed=8, features_on_device=True,
                                     **kwargs), 2)
    first = _take(raw, 2)
    assert not all(np.array_equal(a[0]["waveform"], b[0]["waveform"])
                   for a, b in zip(first, other))


def test_speaker_balanced_batches_hold_n_speakers_by_m_utterances(shards):
    dataset = data.train_dataset(shards["pattern"], batch_size=6, num_frames=NUM_FRAMES,
                                 speaker_balanced=(2, 3), seed=9, shuffle_buffer=12)
    for _, labels in _take(dataset, 4):
        groups = labels.reshape(2, 3)
        assert np.all(groups == groups[:, :1])  # each group of 3 is one speaker
    with pytest.raises(ValueError, match="batch_size 6"):
        data.train_dataset(shards["pattern"], batch_size=4, speaker_balanced=(2, 3))


def test_speed_perturbed_copies_get_new_speaker_labels(shards):
    config = augment.AugmentationConfig(speed=1.0, speed_label_offset=10)
    dataset = data.train_dataset(shards["pattern"], batch_size=8, num_frames=NUM_FRAMES,
                                 augmentation=config, seed=10, features_on_device=True)
    (inputs, labels), = _take(dataset, 1)
    assert inputs["waveform"].shape == (8, CROP)
    assert set(labels) <= {10, 11, 12, 13, 20, 21, 22, 23}
    assert config.num_classes(4) == 24


def test_input_context_gives_each_pipeline_its_own_shards(shards):
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2,
                                             input_pipeline_id=pipeline,
                                             num_replicas_in_sync=2)
        dataset = data.train_dataset(shards["pattern"], batch_size=4, num_frames=NUM_FRAMES,
                                     seed=11, input_context=context)
        seen.append({int(label) for _, labels in _take(dataset, 4) for label in labels})
    assert seen == [{0, 2}, {1, 3}]


def test_mirrored_strategy_with_two_logical_cpus(shards, tmp_path):
    script = textwrap.dedent(f"""
        import json, os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import tensorflow as tf
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
        from tfspk import augment, data
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        sources = augment.AugmentationSources.from_tfrecords({shards["augmentation"]!r})
        config = augment.AugmentationConfig(reverb=0.5, noise=0.5)
        result = {{"replicas": strategy.num_replicas_in_sync}}
        for on_device in (False, True):
            def dataset_fn(context):
                return data.train_dataset(
                    {shards["pattern"]!r}, batch_size=context.get_per_replica_batch_size(8),
                    num_frames={NUM_FRAMES}, augmentation=config,
                    augmentation_sources=sources, seed=1, input_context=context,
                    features_on_device=on_device)
            inputs, labels = next(iter(strategy.distribute_datasets_from_function(dataset_fn)))
            if on_device:
                frontend = data.make_frontend()
                inputs = strategy.run(tf.function(
                    lambda x: data.device_augment_and_features(x, frontend)), args=(inputs,))
            result[str(on_device)] = {{
                "features": [list(t.shape) for t in
                             strategy.experimental_local_results(inputs["features"])],
                "labels": [list(t.shape) for t in strategy.experimental_local_results(labels)],
                "devices": [t.device for t in
                            strategy.experimental_local_results(inputs["features"])]}}
        print(json.dumps(result))
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    for mode in ("False", "True"):
        assert result[mode]["features"] == [[4, NUM_FRAMES, 40]] * 2
        assert result[mode]["labels"] == [[4], [4]]
    # Each replica's batch from the distributed dataset sits on its own device.
    assert [device[-5:] for device in result["False"]["devices"]] == ["CPU:0", "CPU:1"]


def test_eval_dataset_yields_whole_padded_utterances_in_order(shards):
    batches = _take(data.eval_dataset(shards["pattern"], batch_size=5), 10)
    ids = [u.decode() for batch in batches for u in batch["utt_id"]]
    assert ids == [utt for utt, _ in shards["utterances"]]
    expected = dict(shards["utterances"])
    for batch in batches:
        assert batch["waveform"].shape[1] == batch["lengths"].max()
        for row, length, utt, speaker, label in zip(batch["waveform"], batch["lengths"],
                                                    batch["utt_id"], batch["speaker"],
                                                    batch["label"]):
            pcm = expected[utt.decode()]
            assert length == pcm.size
            np.testing.assert_array_equal(row[:length], pcm / 32768.0)
            assert np.all(row[length:] == 0)
            assert speaker.decode() == utt.decode().split("/")[0] and label == int(speaker[3:])
    clipped = _take(data.eval_dataset(shards["pattern"], batch_size=12, max_seconds=0.1), 1)[0]
    assert clipped["lengths"].tolist() == [1000, 1600, 1600] * 4


def test_bad_input_gives_clear_errors(shards, tmp_path):
    with pytest.raises(ValueError, match="nothing-here"):
        data.train_dataset(str(tmp_path / "nothing-here*"), batch_size=2)
    with pytest.raises(ValueError, match="augmentation_sources is None"):
        data.train_dataset(shards["pattern"], batch_size=2, augmentation=FULL)
    pcm = np.zeros(4000, np.int16) + 100
    with tf.io.TFRecordWriter(str(tmp_path / "rate.tfrecord")) as writer:
        writer.write(schema.serialize_example("u8k", "s", 0, pcm, 8000))
    with tf.io.TFRecordWriter(str(tmp_path / "nolabel.tfrecord")) as writer:
        writer.write(schema.serialize_example("anon", "s", -1, pcm, 16000))
    with pytest.raises(tf.errors.InvalidArgumentError, match="rate.tfrecord"):
        _take(data.eval_dataset(str(tmp_path / "rate.tfrecord"), batch_size=1), 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="without a speaker label"):
        _take(data.train_dataset(str(tmp_path / "nolabel.tfrecord"), batch_size=1,
                                 num_frames=NUM_FRAMES, seed=0), 1)


def test_several_shard_sets_are_offset_and_drawn_in_proportion_to_their_speakers(
        voxceleb_shards):
    """Two shard sets with their own speaker maps (12 and 6 speakers, labels 0..11 and
    0..5): the second set's labels move to 12..17 and it makes up 6/18 of the draws."""
    def labels(seed):
        dataset = data.train_dataset(
            [voxceleb_shards["train"], voxceleb_shards["test"]], batch_size=16,
            num_frames=20, seed=seed, shuffle_buffer=16, label_offsets=(0, 12),
            set_speakers=(12, 6))
        return np.concatenate([y.numpy() for _, y in dataset.take(30)])

    drawn = labels(seed=3)
    assert set(drawn) == set(range(18))
    second = np.mean(drawn >= 12)
    # 480 draws: the binomial standard deviation of the share is about 0.02.
    assert abs(second - 6 / 18) < 0.08, second
    np.testing.assert_array_equal(drawn, labels(seed=3))
    with pytest.raises(ValueError, match="label_offsets has 1 entries for 2 shard sets"):
        data.train_dataset([voxceleb_shards["train"], voxceleb_shards["test"]],
                           batch_size=2, label_offsets=(0,))
