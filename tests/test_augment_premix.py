"""The fast paths of the training input: crops cut from the raw PCM bytes, WAV windows by
one read, batched source reads, and additive sources premixed at unit speech power
(including Kaldi's foreground noise placement), each against the plain computation."""
import numpy as np
import pytest
import soundfile
import tensorflow as tf

import kaldi_augment_reference
from tfspk import audio, augment
from tfspk.augment import sources as sources_lib

RATE = 16000


def _speech(librispeech_dir, index, seconds):
    path = sorted(librispeech_dir.glob("*.flac"))[index]
    samples, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE
    return samples[:int(seconds * rate)]


def _pcm(samples):
    return np.round(np.asarray(samples) * 32767).astype(np.int16)


def test_crop_of_the_raw_bytes_equals_the_crop_of_the_decoded_waveform(librispeech_dir):
    long_one = _pcm(_speech(librispeech_dir, 0, 3.0))
    short_one = _pcm(_speech(librispeech_dir, 1, 0.3))  # shorter than the crop: tiled
    for pcm in (long_one, short_one):
        data = tf.constant(pcm.astype("<i2").tobytes())
        waveform = audio.int16_to_float(pcm)
        for index in range(6):
            seed = tf.constant([11, index], tf.int64)
            expected = augment.random_crop(waveform, 8000, seed).numpy()
            got = augment.random_crop_pcm16(data, 8000, seed).numpy()
            np.testing.assert_array_equal(got, expected)


def test_wav_window_by_one_read_is_bit_identical_to_load_audio(librispeech_dir, tmp_path):
    path = str(tmp_path / "speech.wav")
    soundfile.write(path, _speech(librispeech_dir, 2, 4.0), RATE, subtype="PCM_16")
    for start, end in ((0, None), (12345, 40000), (63000, 64000)):
        fast = sources_lib._read_wav_pcm16(path, start, end, RATE)
        expected, _ = audio.load_audio(path, RATE, start=start, end=end)
        assert fast.dtype == np.float32
        np.testing.assert_array_equal(fast, expected)
    # What it does not handle goes to load_audio: another rate, float WAV, stereo.
    assert sources_lib._read_wav_pcm16(path, 0, None, 8000) is None
    for name, data, subtype in (("float.wav", np.zeros(100), "FLOAT"),
                                ("stereo.wav", np.zeros([100, 2]), "PCM_16")):
        soundfile.write(str(tmp_path / name), data, RATE, subtype=subtype)
        assert sources_lib._read_wav_pcm16(str(tmp_path / name), 0, None, RATE) is None


def test_recording_batches_hold_the_recordings_of_the_stream(librispeech_dir, tmp_path):
    paths = []
    for index, seconds in enumerate((0.4, 2.5, 3.0, 1.2, 2.0)):
        paths.append(str(tmp_path / f"r{index}.wav"))
        soundfile.write(paths[-1], _speech(librispeech_dir, index, seconds), RATE,
                        subtype="PCM_16")
    files = augment.AudioFileSet(tuple(paths), (0,) * 5, (-1,) * 5, (-1,) * 5)
    one_by_one = [w.numpy() for w in files.recordings(3, 16000).take(10)]
    batches = list(files.recording_batches(3, 16000, 5, min_samples=8000).take(2))
    rows = [(row, length) for windows, lengths in batches
            for row, length in zip(windows.numpy(), lengths.numpy())]
    for expected, (row, length) in zip(one_by_one, rows):
        tiled = np.resize(expected, max(expected.size, 8000))
        assert length == tiled.size
        np.testing.assert_array_equal(row[:length], tiled)
        assert not row[length:].any()


def _plan(additive, snr=5.0, noise_snrs=(5.0, 0.0, 15.0), babble_snrs=None, num_babble=3):
    return {"additive": tf.constant(additive, tf.int32), "snr_db": tf.constant(snr),
            "noise_snr_db": tf.constant(noise_snrs, tf.float32),
            "babble_snr_db": tf.constant(babble_snrs if babble_snrs is not None
                                         else [13.0, 15.0, 17.0, 20.0, 13.0, 15.0, 17.0]),
            "num_babble": tf.constant(num_babble, tf.int32)}


def _with_premix(speech, plan, crops, lengths, interval=None):
    additive = augment.premix_additive(plan, crops, lengths, interval)
    batched = {key: value[tf.newaxis] for key, value in plan.items()}
    return augment.augment_waveforms(speech[np.newaxis], batched,
                                     {"additive": additive[tf.newaxis]}).numpy()[0]


def test_premixed_background_kinds_equal_the_per_kind_mixes(librispeech_dir):
    speech = _speech(librispeech_dir, 0, 2.0)
    length = speech.size
    rng = np.random.default_rng(1)
    noise = (0.1 * rng.standard_normal(length)).astype(np.float32)
    talkers = np.stack([_speech(librispeech_dir, 3 + k, 2.0) for k in range(7)])
    full = np.full([1], length, np.int32)
    for kind, snr in ((augment.NOISE, 0.0), (augment.MUSIC, 8.0)):
        np.testing.assert_allclose(
            _with_premix(speech, _plan(kind, snr, noise_snrs=[snr]), noise[None], full),
            augment.mix_at_snr(speech, noise, snr).numpy(), atol=2e-6)
    plan = _plan(augment.BABBLE, num_babble=5)
    np.testing.assert_allclose(
        _with_premix(speech, plan, talkers, np.full([7], length, np.int32)),
        augment.mix_babble(speech, talkers, plan["babble_snr_db"], 5).numpy(), atol=2e-6)
    # No additive kind: nothing is added.
    np.testing.assert_array_equal(
        _with_premix(speech, _plan(augment.NONE), np.zeros([0, length], np.float32),
                     np.zeros([0], np.int32)), speech)


def test_premixed_foreground_noise_follows_kaldis_placement(librispeech_dir):
    speech = _speech(librispeech_dir, 0, 2.015)
    length = speech.size
    rng = np.random.default_rng(2)
    interval = 16000  # --fg-interval 1
    config = augment.AugmentationConfig(noise=1.0)
    count = config.max_fg_noises(length)
    assert config.noise_placement == "foreground" and config.fg_interval == 1.0
    assert count == 3  # starts after k intervals of 1 s + k one-sample noises: k <= 2
    snrs = [5.0, 0.0, 15.0]
    cases = [[0.4, 0.3, 0.5],   # all three placed: 0, 0.4 + 1, 1.4 + 0.3 + 1 >= 2.015
             [0.2, 0.5, 0.1],   # third at 0.2 + 1 + 0.5 + 1 = 2.7 s: not placed
             [2.015, 0.5, 0.5]]  # a crop-long noise covers the crop alone
    for seconds in cases:
        noises = [(rng.uniform(0.05, 0.5) * rng.standard_normal(int(s * RATE)))
                  .astype(np.float32) for s in seconds]
        crops = np.stack([np.pad(n, (0, length - n.size)) for n in noises])
        lengths = np.array([n.size for n in noises], np.int32)
        got = _with_premix(speech, _plan(augment.NOISE, snrs[0], snrs), crops, lengths,
                           interval)
        np.testing.assert_allclose(got, kaldi_augment_reference.foreground_noise(speech, noises, snrs, interval)[0],
                                   atol=3e-5)
        # The same as the library's whole-noise foreground mix.
        np.testing.assert_allclose(
            got, augment.mix_foreground(speech, crops, lengths, snrs, interval).numpy(),
            atol=3e-5)


def test_training_pipeline_places_foreground_noise(librispeech_dir, tmp_path):
    """A short noise file through the real pipeline: its premixed source holds the noise
    at 0 and again after the interval (the next candidate), silence in between."""
    from tfspk import data, schema

    noise_dir = tmp_path
    noise = (0.3 * np.random.default_rng(3).standard_normal(4000)).astype(np.float32)
    soundfile.write(str(noise_dir / "noise-free-sound-0000.wav"), noise, RATE,
                    subtype="PCM_16")
    with tf.io.TFRecordWriter(str(tmp_path / "train-00000-of-00001.tfrecord")) as writer:
        for index in range(4):
            writer.write(schema.serialize_example(
                f"s/u{index}", "s", 0, _pcm(_speech(librispeech_dir, index, 3.0)), RATE))
    sources = augment.AugmentationSources(noise=augment.AudioFileSet(
        (str(noise_dir / "noise-free-sound-0000.wav"),), (0,), (-1,), (-1,)))
    config = augment.AugmentationConfig(noise=1.0, fg_interval=0.5)
    dataset = data.train_dataset(str(tmp_path / "train-*.tfrecord"), batch_size=2,
                                 num_frames=200, augmentation=config,
                                 augmentation_sources=sources, seed=0,
                                 features_on_device=True, shuffle_buffer=4)
    inputs, _ = next(iter(dataset))
    additive = inputs["sources"]["additive"].numpy()
    assert additive.shape == (2, 32240)
    # Placed at 0, 4000 + 8000 and 2 * 12000 samples; zero elsewhere.
    placed = np.zeros(32240, bool)
    for start in (0, 12000, 24000):
        placed[start:start + 4000] = True
    for row in additive:
        assert np.all(row[~placed] == 0) and np.all(np.abs(row[placed]).max() > 0)
        pcm_noise, _ = soundfile.read(str(noise_dir / "noise-free-sound-0000.wav"),
                                      dtype="float32")
        for start in (0, 12000, 24000):
            segment = row[start:start + 4000]
            np.testing.assert_allclose(segment / np.abs(segment).max(),
                                       pcm_noise / np.abs(pcm_noise).max(), atol=1e-5)


def test_config_rejects_bad_foreground_settings():
    with pytest.raises(ValueError, match="fg_interval"):
        augment.AugmentationConfig(fg_interval=0.0)
    with pytest.raises(ValueError, match="noise_placement"):
        augment.AugmentationConfig(noise_placement="middle")
    assert augment.AugmentationConfig(noise_placement="background").max_fg_noises(32240) == 1
