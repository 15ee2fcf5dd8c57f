"""Tests for tfspk.augment: SNR mixing, babble, reverberation, speed, SpecAugment,
augmentation plans and source streams."""
import os
import pathlib

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from tfspk import augment, schema


def _speech(librispeech_dir, index=0, seconds=3.0):
    path = sorted(librispeech_dir.glob("*.flac"))[index]
    samples, rate = soundfile.read(path, dtype="float32")
    assert rate == 16000
    return samples[:int(seconds * rate)]


def _snr_db(speech, mixture):
    return 10 * np.log10(np.mean(speech ** 2) / np.mean((mixture - speech) ** 2))


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 5.0, 10.0, 15.0, 20.0])
def test_mix_at_snr_realises_requested_snr_on_real_speech(librispeech_dir, snr_db):
    speech = _speech(librispeech_dir, 0)
    babble_like = _speech(librispeech_dir, 1, seconds=1.3)  # shorter: must be tiled
    white = np.random.default_rng(0).standard_normal(50000).astype(np.float32)  # longer
    for noise in (babble_like, white):
        mixture = augment.mix_at_snr(speech, noise, snr_db).numpy()
        assert mixture.shape == speech.shape
        assert abs(_snr_db(speech, mixture) - snr_db) < 0.5


def test_mix_at_snr_tiles_short_noise_and_crops_long_noise():
    speech = np.ones(10, np.float32)
    noise = np.array([1.0, -1.0, 2.0], np.float32)
    added = augment.mix_at_snr(speech, noise, 0.0).numpy() - speech
    tiled = np.resize(noise, 10)
    gain = np.sqrt(1.0 / np.mean(tiled ** 2))  # textbook: P_s / (g^2 P_n) = 1 at 0 dB
    np.testing.assert_allclose(added, gain * tiled, rtol=1e-5)
    long_noise = np.arange(1, 31, dtype=np.float32)
    added = augment.mix_at_snr(speech, long_noise, 0.0).numpy() - speech
    np.testing.assert_allclose(added / added[0], np.arange(1, 11), rtol=1e-5)


def test_mix_at_snr_batched_with_one_snr_per_example():
    rng = np.random.default_rng(1)
    speech = rng.standard_normal([3, 4000]).astype(np.float32) * [[1.0], [0.1], [3.0]]
    noise = rng.standard_normal([3, 1000]).astype(np.float32)
    snrs = np.array([0.0, 7.5, 20.0], np.float32)
    mixture = augment.mix_at_snr(speech, noise, snrs).numpy()
    for row in range(3):
        assert abs(_snr_db(speech[row], mixture[row]) - snrs[row]) < 0.01


def test_silent_noise_adds_nothing_and_gives_no_nan():
    speech = np.random.default_rng(2).standard_normal(800).astype(np.float32)
    mixture = augment.mix_at_snr(speech, np.zeros(100, np.float32), 5.0).numpy()
    np.testing.assert_array_equal(mixture, speech)


@pytest.mark.parametrize("num_sources", [1, 3, 7])
def test_babble_adds_exactly_k_sources_each_at_its_snr(librispeech_dir, num_sources):
    speech = _speech(librispeech_dir, 2, seconds=2.0)
    sources = np.stack([_speech(librispeech_dir, 3 + k, seconds=2.5) for k in range(7)])
    snrs = np.array([13, 15, 17, 20, 13, 15, 17], np.float32)
    mixture = augment.mix_babble(speech, sources, snrs, num_sources).numpy()
    expected = speech.astype(np.float64).copy()
    p_speech = np.mean(speech.astype(np.float64) ** 2)
    for k in range(num_sources):
        source = sources[k, :speech.size].astype(np.float64)
        gain = np.sqrt(p_speech / (np.mean(source ** 2) * 10 ** (snrs[k] / 10)))
        expected += gain * source
        assert abs(10 * np.log10(p_speech / np.mean((gain * source) ** 2)) - snrs[k]) < 1e-6
    np.testing.assert_allclose(mixture, expected, atol=2e-5)
    # Sources past num_sources are ignored entirely.
    scrambled = sources.copy()
    scrambled[num_sources:] = 9.0
    np.testing.assert_array_equal(
        augment.mix_babble(speech, scrambled, snrs, num_sources).numpy(), mixture)
    # The babble as a whole is louder than any one speaker: its SNR is below the minimum.
    if num_sources > 1:
        assert _snr_db(speech, mixture) < snrs[:num_sources].min() - 1.0


def test_reverberating_with_a_delayed_impulse_returns_the_input(librispeech_dir):
    speech = _speech(librispeech_dir, 4, seconds=1.0)
    rir = np.zeros(4000, np.float32)
    rir[1234] = 0.3  # arbitrary delay and gain: alignment and energy normalisation undo them
    output = augment.reverberate(speech, rir).numpy()
    assert output.shape == speech.shape
    np.testing.assert_allclose(output, speech, atol=1e-5)


def _decaying_rir(length=4000, peak=40, seed=3):
    rng = np.random.default_rng(seed)
    t = np.arange(length - peak)
    tail = rng.standard_normal(length - peak) * np.exp(-t / 600.0) * 0.3
    tail[0] = 1.0
    return np.concatenate([0.05 * rng.standard_normal(peak), tail]).astype(np.float32)


def test_reverberation_matches_direct_convolution_and_preserves_energy(librispeech_dir):
    speech = _speech(librispeech_dir, 5, seconds=1.0)
    rir = _decaying_rir()
    output = augment.reverberate(speech, rir).numpy()
    full = np.convolve(speech.astype(np.float64), rir.astype(np.float64))
    reference = full[40:40 + speech.size]  # aligned to the direct path (peak index 40)
    reference *= np.sqrt(np.mean(speech.astype(np.float64) ** 2) / np.mean(reference ** 2))
    np.testing.assert_allclose(output, reference, atol=1e-4)
    np.testing.assert_allclose(np.mean(output ** 2), np.mean(speech ** 2), rtol=1e-4)


def test_decaying_rir_smears_energy_into_later_samples():
    burst = np.zeros(16000, np.float32)
    burst[8000:8160] = np.random.default_rng(4).standard_normal(160)  # a 10-ms burst
    output = augment.reverberate(burst, _decaying_rir()).numpy()
    energy = output.astype(np.float64) ** 2
    assert energy[:7990].sum() < 1e-3 * energy.sum()  # nothing before the direct sound
    after = energy[8160 + 160:].sum() / energy.sum()  # > 10 ms after the burst ended
    assert after > 0.2
    assert np.sum(burst[8320:] ** 2) == 0.0


def test_reverberate_batched_rows_are_independent():
    rng = np.random.default_rng(5)
    speech = rng.standard_normal([2, 3000]).astype(np.float32)
    rirs = np.stack([_decaying_rir(1000, 10, seed=6), _decaying_rir(1000, 200, seed=7)])
    batched = augment.reverberate(speech, rirs).numpy()
    for row in range(2):
        np.testing.assert_allclose(
            batched[row], augment.reverberate(speech[row], rirs[row]).numpy(), atol=1e-5)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_scales_length_and_frequency(factor):
    t = np.arange(16000) / 16000.0
    tone = np.sin(2 * np.pi * 500.0 * t).astype(np.float32)
    fast = augment.speed_perturb(tone, factor).numpy()
    assert fast.size == round(16000 / factor)
    spectrum = np.abs(np.fft.rfft(fast * np.hanning(fast.size)))
    peak_hz = np.argmax(spectrum) * 16000.0 / fast.size
    assert abs(peak_hz - 500.0 * factor) < 2.0
    # Band-limited resampling keeps the amplitude of an in-band tone.
    assert abs(np.sqrt(2 * np.mean(fast[500:-500] ** 2)) - 1.0) < 0.02


def test_speed_label_makes_perturbed_copies_new_speakers():
    assert augment.speed_label(7, 0, 100).numpy() == 7
    assert augment.speed_label(7, 2, 100).numpy() == 207
    assert augment.speed_label(7, 2, None).numpy() == 7
    config = augment.AugmentationConfig(speed=0.5, speed_label_offset=100)
    assert config.num_classes(100) == 300


def test_specaugment_masks_zero_the_drawn_bands():
    features = np.ones([2, 50, 40], np.float32)
    masks = {"time_mask_start": np.array([[5], [0]], np.int32),
             "time_mask_width": np.array([[10], [0]], np.int32),
             "freq_mask_start": np.array([[30], [3]], np.int32),
             "freq_mask_width": np.array([[4], [0]], np.int32)}
    masked = augment.apply_masks(features, masks).numpy()
    assert np.all(masked[0, 5:15] == 0) and np.all(masked[0, :, 30:34] == 0)
    assert masked[0].sum() == (50 - 10) * (40 - 4)
    np.testing.assert_array_equal(masked[1], features[1])  # zero widths: untouched
    drawn = augment.draw_masks(tf.constant([1, 2], tf.int64), num_frames=50, num_features=40,
                               num_time_masks=3, max_time_width=20, num_freq_masks=2,
                               max_freq_width=8)
    starts, widths = drawn["time_mask_start"].numpy(), drawn["time_mask_width"].numpy()
    assert np.all(widths <= 20) and np.all(starts + widths <= 50) and np.all(starts >= 0)


def _plans(config, count=2000, seed=11):
    seeds = tf.data.Dataset.range(count).map(lambda i: tf.stack([tf.constant(seed, tf.int64), i]))
    plans = seeds.map(lambda s: augment.draw_plan(config, s, num_frames=200, num_features=40))
    return next(iter(plans.batch(count)))


def test_plan_frequencies_follow_the_configured_probabilities():
    config = augment.AugmentationConfig(reverb=0.2, noise=0.3, music=0.1, babble=0.2,
                                        exclusive=True, speed=0.5)
    plans = {k: v.numpy() for k, v in _plans(config).items()}
    additive, reverb = plans["additive"], plans["reverb"]
    assert not np.any(reverb & (additive != augment.NONE))  # exclusive kinds
    for observed, expected in ((reverb.mean(), 0.2), ((additive == augment.NOISE).mean(), 0.3),
                               ((additive == augment.MUSIC).mean(), 0.1),
                               ((additive == augment.BABBLE).mean(), 0.2),
                               ((plans["speed_index"] > 0).mean(), 0.5)):
        assert abs(observed - expected) < 0.04  # 4.5 binomial std at n = 2000
    assert set(plans["snr_db"][additive == augment.NOISE]) == {0.0, 5.0, 10.0, 15.0}
    assert set(plans["snr_db"][additive == augment.MUSIC]) == {5.0, 8.0, 10.0, 15.0}
    assert set(plans["babble_snr_db"].ravel()) == {13.0, 15.0, 17.0, 20.0}
    assert set(plans["num_babble"]) == {3, 4, 5, 6, 7}
    assert set(np.round(plans["speed_factor"].astype(float), 3)) == {0.9, 1.0, 1.1}


def test_plan_uniform_snrs_and_independent_reverb():
    config = augment.AugmentationConfig(reverb=0.5, noise=0.5, music=0.5, exclusive=False,
                                        snr_sampling="uniform")
    plans = {k: v.numpy() for k, v in _plans(config).items()}
    both = plans["reverb"] & (plans["additive"] != augment.NONE)
    assert abs(both.mean() - 0.5) < 0.05  # reverb independent, additive always (0.5 + 0.5)
    noise_snrs = plans["snr_db"][plans["additive"] == augment.NOISE]
    assert noise_snrs.min() >= 0.0 and noise_snrs.max() <= 15.0
    assert len(np.unique(noise_snrs)) > 100  # continuous, not the 4 discrete values


def test_plans_are_deterministic_under_a_seed():
    config = augment.AugmentationConfig.uniform(0.8, specaugment=0.5)
    first, again, other = _plans(config, 50, 1), _plans(config, 50, 1), _plans(config, 50, 2)
    for key in first:
        np.testing.assert_array_equal(first[key].numpy(), again[key].numpy())
    assert not np.array_equal(first["additive"].numpy(), other["additive"].numpy())


def test_augment_waveforms_applies_each_example_plan(librispeech_dir):
    speech = np.stack([_speech(librispeech_dir, i, seconds=0.5) for i in range(4)])
    rng = np.random.default_rng(8)
    sources = {"noise": rng.standard_normal([4, 8000]).astype(np.float32),
               "rir": np.stack([_decaying_rir(2000, 25, seed=i) for i in range(4)]),
               "babble": rng.standard_normal([4, 7, 8000]).astype(np.float32)}
    plan = {"reverb": np.array([False, True, False, True]),
            "additive": np.array([augment.NONE, augment.NONE, augment.NOISE, augment.BABBLE],
                                 np.int32),
            "snr_db": np.array([0, 0, 5, 0], np.float32),
            "babble_snr_db": np.full([4, 7], 13.0, np.float32),
            "num_babble": np.array([3, 3, 3, 4], np.int32)}
    out = augment.augment_waveforms(speech, plan, sources).numpy()
    np.testing.assert_array_equal(out[0], speech[0])
    np.testing.assert_allclose(out[1], augment.reverberate(speech[1], sources["rir"][1]),
                               atol=1e-6)
    assert abs(_snr_db(speech[2], out[2]) - 5.0) < 0.01
    wet = augment.reverberate(speech[3], sources["rir"][3]).numpy()  # reverb, then babble
    np.testing.assert_allclose(
        out[3], augment.mix_babble(wet, sources["babble"][3], plan["babble_snr_db"][3], 4),
        atol=1e-5)


def test_config_rejects_inconsistent_settings():
    with pytest.raises(ValueError, match="exceeds 1"):
        augment.AugmentationConfig(reverb=0.5, noise=0.6)
    augment.AugmentationConfig(reverb=0.5, noise=0.6, exclusive=False)
    with pytest.raises(ValueError, match="babble_speakers"):
        augment.AugmentationConfig(babble_speakers=(5, 3))
    with pytest.raises(ValueError, match="snr_sampling"):
        augment.AugmentationConfig(snr_sampling="gaussian")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment.AugmentationConfig(speed=1.5)


def _write_shard(path, waveforms, speaker="src"):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i, waveform in enumerate(waveforms):
            pcm = np.clip(waveform * 32768, -32768, 32767).astype(np.int16)
            writer.write(schema.serialize_example(f"{speaker}{i}", speaker, -1, pcm, 16000))


def test_sources_from_tfrecord_tree_stream_fixed_length_crops(tmp_path):
    rng = np.random.default_rng(9)
    for kind, length in (("noise", 3000), ("speech", 5000), ("rirs", 700)):
        os.makedirs(tmp_path / kind)
        _write_shard(tmp_path / kind / "a.tfrecord",
                     [0.1 * rng.standard_normal(length + 100 * i) for i in range(3)], kind)
    sources = augment.AugmentationSources.from_tfrecords(str(tmp_path), crops_per_recording=2)
    assert sources.music is None and sources.babble is not None
    config = augment.AugmentationConfig(reverb=0.3, noise=0.3, babble=0.3,
                                        babble_speakers=(2, 4))
    streams = sources.crop_datasets(config, crop_samples=4000, seed=5)
    assert set(streams) == {"rir", "noise", "babble"}
    noise = [x.numpy() for x in streams["noise"].take(12)]
    assert all(x.shape == (4000,) for x in noise)
    assert all(np.std(x) > 0.05 for x in noise)  # real signal: shorter sources are tiled
    babble = next(iter(streams["babble"])).numpy()
    assert babble.shape == (4, 4000)
    rir = next(iter(streams["rir"])).numpy()
    assert rir.shape == (16000,) and np.all(rir[1000:] == 0)  # head kept, zero-padded
    again = sources.crop_datasets(config, crop_samples=4000, seed=5)["noise"]
    np.testing.assert_array_equal(np.stack(noise), np.stack([x.numpy() for x in again.take(12)]))
    with pytest.raises(augment.AugmentationSourceError, match="music"):
        sources.crop_datasets(augment.AugmentationConfig(music=0.5), 4000, 5)
    with pytest.raises(augment.AugmentationSourceError, match="no TFRecord shards match"):
        augment.AugmentationSources.from_tfrecords(noise=str(tmp_path / "nothing-*"))


def test_sources_from_musan_and_rirs_trees_read_audio_files(tmp_path):
    rng = np.random.default_rng(10)
    for category in ("noise", "music", "speech"):
        folder = tmp_path / "musan" / category / "src"
        os.makedirs(folder)
        for i in range(2):
            soundfile.write(folder / f"{category}-{i}.wav",
                            0.1 * rng.standard_normal(3000 + 500 * i), 16000)
    room = tmp_path / "RIRS_NOISES" / "simulated_rirs" / "smallroom" / "Room001"
    os.makedirs(room)
    rir = np.zeros(400)
    rir[10] = 0.5
    soundfile.write(room / "Room001-00001.wav", rir, 8000)  # resampled to 16 kHz
    sources = augment.AugmentationSources.from_path(str(tmp_path), crops_per_recording=1)
    assert isinstance(sources.rir, augment.AudioFileSet)
    config = augment.AugmentationConfig.uniform(1.0, babble_speakers=(2, 2))
    streams = sources.crop_datasets(config, crop_samples=2000, seed=1)
    assert next(iter(streams["music"])).shape == (2000,)
    assert next(iter(streams["babble"])).shape == (2, 2000)
    loaded_rir = next(iter(streams["rir"])).numpy()
    assert 15 <= np.argmax(np.abs(loaded_rir)) <= 25  # the 8-kHz impulse at 10 -> ~20
    assert np.sum(np.abs(loaded_rir[100:])) < 0.05


def test_audio_file_set_picks_one_channel_of_a_multichannel_rir(tmp_path):
    stereo = np.zeros([300, 2])
    stereo[5, 0], stereo[50, 1] = 0.5, 0.5
    soundfile.write(tmp_path / "rir.wav", stereo, 16000)
    from tfspk.corpora.records import Utterance
    utterances = [Utterance("r", str(tmp_path / "rir.wav"), "room", meta={"channel": 1})]
    recording = next(iter(augment.AudioFileSet.from_utterances(utterances).recordings(0)))
    assert recording.shape == (300,) and np.argmax(recording.numpy()) == 50


def test_rirs_default_to_kaldi_v2_rooms(tmp_path):
    # Kaldi's VoxCeleb v2 recipe reverberates with small and medium simulated rooms only.
    impulse = np.zeros(200)
    impulse[3] = 0.5
    for size in ("smallroom", "mediumroom", "largeroom"):
        room = tmp_path / "RIRS_NOISES" / "simulated_rirs" / size / "Room001"
        os.makedirs(room)
        soundfile.write(room / "Room001-00001.wav", impulse, 16000)
    real = tmp_path / "RIRS_NOISES" / "real_rirs_isotropic_noises"
    os.makedirs(real)
    soundfile.write(real / "RVB2014_type1_rir_largeroom1_far_angla.wav", impulse, 16000)

    def rooms(**options):
        sources = augment.AugmentationSources.from_corpora(
            None, str(tmp_path / "RIRS_NOISES"), **options)
        return sorted(pathlib.Path(path).parts[-3] for path in sources.rir.paths)

    assert rooms() == ["mediumroom", "smallroom"]
    everything = augment.AugmentationSources.from_corpora(
        None, str(tmp_path / "RIRS_NOISES"), rir_rooms=None).rir.paths
    assert len(everything) == 4 and any("real_rirs" in path for path in everything)
    with pytest.raises(augment.AugmentationSourceError, match="no simulated RIRs"):
        rooms(rir_rooms=("hugeroom",))


def test_long_sources_are_read_as_seeded_windows(tmp_path):
    # A minutes-long MUSAN file costs one window of decoding per draw, not the whole file.
    ramp = (np.arange(16000 * 60) / (16000 * 60)).astype(np.float32)  # 60 s
    soundfile.write(tmp_path / "long.wav", ramp, 16000, subtype="FLOAT")
    from tfspk.corpora.records import Utterance
    files = augment.AudioFileSet.from_utterances(
        [Utterance("long", str(tmp_path / "long.wav"), "n")])
    windows = [w.numpy() for w in files.recordings(seed=3, window_samples=32000).take(3)]
    again = [w.numpy() for w in files.recordings(seed=3, window_samples=32000).take(3)]
    assert all(w.shape == (32000,) for w in windows)
    for window, same in zip(windows, again):
        np.testing.assert_array_equal(window, same)
        # A contiguous part of the ramp: consecutive samples one step apart.
        np.testing.assert_allclose(np.diff(window), 1 / (16000 * 60), atol=1e-6)
    assert len({float(w[0]) for w in windows}) == 3  # three different offsets
    head = next(iter(files.recordings(seed=3, window_samples=800, head=True))).numpy()
    np.testing.assert_array_equal(head, ramp[:800])


def test_gated_streams_read_only_for_examples_that_apply_the_kind(tmp_path):
    rng = np.random.default_rng(0)
    for category in ("noise", "music", "speech"):
        folder = tmp_path / "musan" / category / "src"
        os.makedirs(folder)
        soundfile.write(folder / f"{category}-0.wav", 0.1 * rng.standard_normal(8000), 16000)
    sources = augment.AugmentationSources.from_corpora(str(tmp_path / "musan"),
                                                       crops_per_recording=1)
    applies = [True, False, False, True, False, False, False, True]
    selectors = {"noise": tf.data.Dataset.from_tensor_slices(applies).repeat()}
    stream = sources.crop_datasets(augment.AugmentationConfig(noise=0.5), 2000, seed=1,
                                   selectors=selectors)["noise"]
    crops = [c.numpy() for c in stream.take(len(applies))]
    assert [c.shape[0] > 0 for c in crops] == applies
    config = augment.AugmentationConfig(noise=0.5)
    expanded = sources.expand_source(tf.constant(crops[1]), "noise", config, 2000)
    assert expanded.shape == (2000,) and not np.any(expanded.numpy())
