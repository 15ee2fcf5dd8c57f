"""Source reuse: babble from a pool of windows (the talkers of one example are distinct
windows, each crop a contiguous part of its recording), crops sliced exactly where drawn,
and each read RIR serving several examples."""
import numpy as np
import soundfile
import tensorflow as tf

from tfspk import augment
from tfspk.augment.cropping import crops_at, random_crops
from tfspk.corpora.records import Utterance

RATE = 16000


def test_crops_at_equals_indexing():
    signal = np.arange(1000, dtype=np.float32)
    offsets = np.array([0, 17, 900], np.int32)
    crops = crops_at(tf.constant(signal), tf.constant(offsets), 100).numpy()
    np.testing.assert_array_equal(crops, np.stack([signal[o:o + 100] for o in offsets]))
    drawn = random_crops(signal, 64, 5, tf.constant([3, 4], tf.int64)).numpy()
    assert drawn.shape == (5, 64)
    np.testing.assert_array_equal(np.diff(drawn, axis=1), 1.0)  # contiguous pieces


def test_babble_talkers_of_an_example_are_distinct_windows(tmp_path):
    # 40 recordings of 3 s: recording i holds (i + sample / length) / 64 (within full
    # scale), so 64 x a crop's value names its recording and consecutive samples differ
    # by 1 / (64 length).
    length = 3 * RATE
    utterances = []
    for index in range(40):
        path = tmp_path / f"speech-{index:02d}.wav"
        ramp = (index + np.arange(length, dtype=np.float64) / length) / 64
        soundfile.write(path, ramp.astype(np.float32), RATE, subtype="FLOAT")
        utterances.append(Utterance(f"s{index}", str(path), f"s{index}"))
    files = augment.AudioFileSet.from_utterances(utterances)
    # A pool of 8 windows serves ceil(8 * 2 / 4) = 4 examples of 4 talkers; 40 files
    # make 5 whole pools per shuffled pass, so a pool never holds one file twice.
    sources = augment.AugmentationSources(babble=files, babble_pool=8, crops_per_recording=2,
                                          window_seconds=2.0)
    config = augment.AugmentationConfig(babble=1.0, babble_speakers=(4, 4))
    stream = sources.crop_datasets(config, crop_samples=RATE, seed=7)["babble"]
    examples = [x.numpy() for x in stream.take(40)]
    again = [x.numpy() for x in sources.crop_datasets(config, RATE, seed=7)["babble"].take(40)]
    np.testing.assert_array_equal(np.stack(examples), np.stack(again))
    used = set()
    for example in examples:
        assert example.shape == (4, RATE)
        recordings = np.floor(64 * example[:, 0] + 1e-4).astype(int)
        assert len(set(recordings.tolist())) == 4, recordings
        np.testing.assert_allclose(np.diff(example, axis=1), 1 / (64 * length),
                                   atol=1.5e-7)
        used.update(recordings.tolist())
    assert len(used) == 40  # every recording is drawn within 40 examples


def test_each_read_rir_serves_rir_uses_per_read_examples(tmp_path):
    utterances = []
    for index in range(6):
        rir = np.zeros(800, np.float32)
        rir[10 + 7 * index] = 0.5  # the direct path names the RIR
        path = tmp_path / f"rir-{index}.wav"
        soundfile.write(path, rir, RATE, subtype="FLOAT")
        utterances.append(Utterance(f"r{index}", str(path), "rir"))
    sources = augment.AugmentationSources(rir=augment.AudioFileSet.from_utterances(utterances),
                                          rir_uses_per_read=3, shuffle_buffer=1)
    stream = sources.crop_datasets(augment.AugmentationConfig(reverb=1.0), RATE, seed=2)
    peaks = [int(np.argmax(x.numpy())) for x in stream["rir"].take(18)]
    runs = [peaks[i:i + 3] for i in range(0, 18, 3)]
    assert all(len(set(run)) == 1 for run in runs), peaks  # three uses per read
    assert sorted(run[0] for run in runs) == [10 + 7 * i for i in range(6)]  # one pass
