"""tfspk.features against kaldi-native-fbank and Kaldi's definitions."""
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

import keras
import kaldi_reference

from tfspk import features as F

SR = 16000
# Largest |ours - kaldi-native-fbank| allowed on any coefficient (the reference is
# kaldi-native-fbank <= 1.20, whose FFT is double: see kaldi_reference.py). Over all
# of librispeech-251 the largest is 3.3e-4 (tests/test_kaldi_parity.py).
MAX_ABS_ERROR = 2e-3

def knf_features(waveform, kind, **options):
    """Reference features from kaldi-native-fbank for a float waveform in [-1, 1]."""
    full = dict(F.MFCC_DEFAULTS if kind == "mfcc" else F.FBANK_DEFAULTS, **options)
    return kaldi_reference.knf_features(waveform, SR, kind, full)


def chirp_with_noise(seconds=2.3, seed=0):
    """A 100 Hz -> 7 kHz chirp in noise with a stretch of digital silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * (100 * t + 0.5 * (6900 / seconds) * t**2))
    x += 0.01 * rng.standard_normal(t.size)
    x[12000:20000] = 0.0
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def speech(librispeech_dir):
    """Two real utterances, cut to 4 s to keep the test quick."""
    files = sorted(librispeech_dir.glob("*.flac"))[:2]
    clips = []
    for path in files:
        samples, rate = sf.read(path, dtype="float32")
        assert rate == SR
        clips.append(samples[: 4 * SR])
    return clips


def _compare(waveform, kind, **options):
    reference = knf_features(waveform, kind, **options)
    compute = F.kaldi_mfcc if kind == "mfcc" else F.kaldi_fbank
    ours = compute(waveform, **options).numpy()
    assert ours.shape == reference.shape
    error = np.abs(ours - reference).max()
    assert error <= MAX_ABS_ERROR, error
    return error


PAPER = dict(F.PAPER_MFCC_OPTIONS)
VOXCELEB = dict(F.VOXCELEB_V2_MFCC_OPTIONS)


@pytest.mark.parametrize("options", [PAPER, VOXCELEB], ids=["paper", "voxceleb_v2"])
def test_mfcc_matches_kaldi_native_fbank_on_speech(speech, options):
    for clip in speech:
        assert _compare(clip, "mfcc", **options) < 2e-3


@pytest.mark.parametrize("options", [PAPER, VOXCELEB], ids=["paper", "voxceleb_v2"])
def test_mfcc_matches_kaldi_native_fbank_on_chirp(options):
    _compare(chirp_with_noise(), "mfcc", **options)


def test_fbank_matches_kaldi_native_fbank_on_speech(speech):
    for clip in speech:
        _compare(clip, "fbank", num_mel_bins=40, use_energy=True)
        _compare(clip, "fbank", num_mel_bins=30, low_freq=20, high_freq=7600,
                 snip_edges=False)


@pytest.mark.parametrize("kind, options", [
    ("mfcc", dict(num_mel_bins=23, num_ceps=13, window_type="hamming",
                  raw_energy=False, energy_floor=1.0)),
    ("mfcc", dict(num_mel_bins=23, num_ceps=13, window_type="hanning",
                  cepstral_lifter=0.0, use_energy=False)),
    ("mfcc", dict(num_mel_bins=23, num_ceps=13, window_type="blackman",
                  preemph_coeff=0.0, remove_dc_offset=False, frame_length_ms=20,
                  frame_shift_ms=7)),
    ("fbank", dict(window_type="sine", use_power=False, use_energy=True,
                   snip_edges=False)),
    ("fbank", dict(window_type="rectangular", high_freq=-400, low_freq=60)),
])
def test_other_options_match_kaldi_native_fbank(kind, options):
    _compare(chirp_with_noise(seconds=1.0, seed=1), kind, **options)


@pytest.mark.parametrize("options", [
    dict(num_mel_bins=23, num_ceps=13, window_type="hanning", cepstral_lifter=0.0,
         use_energy=False),
    dict(num_mel_bins=30, num_ceps=20, window_type="hamming", raw_energy=False),
    dict(PAPER),
])
def test_fft_size_not_a_power_of_two_matches_the_definition(options):
    # kaldi-native-fbank <= 1.20 (the tests' reference) cannot do round_to_power_of_two
    # False, so the reference is Kaldi's formula in float64, frame by frame.
    x = chirp_with_noise(seconds=1.0, seed=3)
    options = dict(options, round_to_power_of_two=False)
    full = F.resolve_options("mfcc", SR, **options)
    reference = kaldi_reference.textbook_mfcc(x, SR, full)
    ours = F.kaldi_mfcc(x, **options).numpy()
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < MAX_ABS_ERROR


def test_linear_fbank_matches_in_relative_terms():
    x = chirp_with_noise(seconds=1.0, seed=2)
    reference = knf_features(x, "fbank", use_log_fbank=False)
    ours = F.kaldi_fbank(x, use_log_fbank=False).numpy()
    # FFT rounding is relative to the frame's total power, not to each band.
    frame_scale = np.maximum(reference.max(axis=1, keepdims=True), 1.0)
    assert (np.abs(ours - reference) / frame_scale).max() < 1e-4


@pytest.mark.parametrize("snip_edges", [True, False])
def test_num_frames_matches_kaldi(snip_edges):
    x = chirp_with_noise(seconds=0.2)
    for n in (0, 1, 80, 159, 160, 240, 399, 400, 401, 559, 560, 561, 3199):
        expected = knf_features(x[:n], "fbank", snip_edges=snip_edges).shape[0] if n else 0
        assert F.num_frames(n, snip_edges=snip_edges) == expected, n
        as_tensor = F.num_frames(tf.constant([n], tf.int64), snip_edges=snip_edges)
        assert as_tensor.dtype == tf.int64 and int(as_tensor[0]) == expected
        if n:
            assert F.kaldi_fbank(x[:n], snip_edges=snip_edges).shape[0] == expected


def test_short_signal_reflection_matches_kaldi():
    # Shorter than half a frame: Kaldi reflects repeatedly.
    _compare(chirp_with_noise(seconds=0.2)[:150], "mfcc", snip_edges=False)


@pytest.mark.parametrize("snip_edges", [True, False])
def test_padded_batch_equals_rows(snip_edges):
    rows = [chirp_with_noise(seconds=s, seed=i) for i, s in enumerate((1.0, 0.43, 0.7))]
    width = max(len(r) for r in rows)
    # Loud padding: any frame that read it would differ visibly.
    batch = np.stack([np.pad(r, (0, width - len(r)), constant_values=0.9) for r in rows])
    lengths = np.array([len(r) for r in rows])
    feats, frame_lengths = F.kaldi_mfcc_with_lengths(
        batch, lengths, snip_edges=snip_edges)
    for b, row in enumerate(rows):
        single = F.kaldi_mfcc(row, snip_edges=snip_edges).numpy()
        assert int(frame_lengths[b]) == single.shape[0]
        np.testing.assert_allclose(feats[b, : single.shape[0]], single, atol=1e-4)
        assert not np.any(feats[b, single.shape[0]:].numpy())


def test_traces_with_unknown_shapes_and_exports(tmp_path):
    layer = F.MfccFeatures(cmn="none", **VOXCELEB)

    class Extractor(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32),
                                      tf.TensorSpec([None], tf.int32)])
        def mfcc(self, waveform, lengths):
            feats, frame_lengths = F.kaldi_mfcc_with_lengths(waveform, lengths, **VOXCELEB)
            return {"features": feats, "frame_lengths": frame_lengths}

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
        def fbank(self, waveform):
            return F.kaldi_fbank(waveform)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32),
                                      tf.TensorSpec([None], tf.int32)])
        def layer_call(self, waveform, lengths):
            return layer(waveform, lengths)

    x = np.stack([chirp_with_noise(0.5, 3), chirp_with_noise(0.5, 4)])
    lengths = np.array([8000, 6000], np.int32)
    tf.saved_model.save(Extractor(), str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    out = loaded.mfcc(tf.constant(x), tf.constant(lengths))
    eager, eager_lengths = F.kaldi_mfcc_with_lengths(x, lengths, **VOXCELEB)
    # Graph and eager kernels round float32 differently (up to ~2e-6 relative).
    np.testing.assert_allclose(out["features"], eager, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out["frame_lengths"], eager_lengths)
    np.testing.assert_allclose(loaded.fbank(tf.constant(x)), F.kaldi_fbank(x), rtol=1e-5,
                               atol=1e-5)
    layer_feats, _ = loaded.layer_call(tf.constant(x), tf.constant(lengths))
    np.testing.assert_allclose(layer_feats, eager, rtol=1e-5, atol=1e-5)


def test_runs_in_tf_data():
    x = chirp_with_noise(0.5, 5)
    dataset = tf.data.Dataset.from_tensors(x).map(lambda w: F.kaldi_mfcc(w, **PAPER))
    np.testing.assert_allclose(next(iter(dataset)), F.kaldi_mfcc(x, **PAPER), atol=1e-5)


def test_dither_is_seeded_and_small():
    x = chirp_with_noise(1.5, 6)
    a = F.kaldi_fbank(x, dither=1.0, seed=7).numpy()
    b = F.kaldi_fbank(x, dither=1.0, seed=7).numpy()
    c = F.kaldi_fbank(x, dither=1.0, seed=8).numpy()
    clean = F.kaldi_fbank(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0
    # Dither of 1 (16-bit units) lifts digitally silent frames off the log floor.
    silent = clean[:, 0] < -15
    assert silent.any() and np.all(a[silent, 0] > -10)
    assert np.abs(a[~silent] - clean[~silent]).mean() < 0.05

    # The layer draws a fresh stateless seed per call from its seed generator.
    first, second = (F.FbankFeatures(cmn="none", dither=1.0, seed=3) for _ in range(2))
    one, _ = first(x[None])
    np.testing.assert_array_equal(one, second(x[None])[0])
    assert np.abs(one - first(x[None])[0]).max() > 0


@pytest.mark.parametrize("bad, message", [
    (dict(num_filters=40), "unknown mfcc option"),
    (dict(window_type="kaiser"), "window_type"),
    (dict(num_ceps=41), "num_ceps"),
    (dict(high_freq=9000), "high_freq"),
    (dict(low_freq=7000, high_freq=6000), "low_freq"),
    (dict(num_mel_bins=200, num_ceps=13), "num_mel_bins is too large"),
    (dict(snip_edges="no"), "snip_edges must be a bool"),
    (dict(frame_length_ms=0), "frame_length_ms"),
    (dict(dither=-1.0), "dither"),
])
def test_bad_options_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        F.kaldi_mfcc(np.zeros(800, np.float32), **bad)


def test_bad_input_rank_raises():
    with pytest.raises(ValueError, match="shape"):
        F.kaldi_fbank(np.zeros((1, 2, 800), np.float32))


# --------------------------------------------------------------------------- #
# Normalisation and VAD
# --------------------------------------------------------------------------- #
def _padded_rows(rng, lengths, dim=5):
    rows = [rng.normal(3.0, 2.0, size=(n, dim)).astype(np.float32) for n in lengths]
    width = max(lengths)
    batch = np.full((len(rows), width, dim), 100.0, np.float32)
    for b, row in enumerate(rows):
        batch[b, : len(row)] = row
    return rows, batch


@pytest.mark.parametrize("norm_vars", [False, True])
def test_apply_cmn_uses_valid_frames_only(norm_vars):
    rows, batch = _padded_rows(np.random.default_rng(0), [40, 17, 3])
    out = F.apply_cmn(batch, [40, 17, 3], norm_vars=norm_vars).numpy()
    for b, row in enumerate(rows):
        expected = row - row.mean(0)
        if norm_vars:
            expected /= row.std(0)
        np.testing.assert_allclose(out[b, : len(row)], expected, atol=1e-4)
        assert not np.any(out[b, len(row):])


def kaldi_sliding_cmn(x, cmn_window, min_window, center, norm_vars):
    """Kaldi's SlidingWindowCmnInternal, frame by frame, in numpy."""
    x = x.astype(np.float64)
    n = len(x)
    out = np.empty_like(x)
    for t in range(n):
        if center:
            start = t - cmn_window // 2
            end = start + cmn_window
        else:
            start, end = t - cmn_window, t + 1
        if start < 0:
            end -= start
            start = 0
        if not center and end > t:
            end = max(t + 1, min_window)
        if end > n:
            start -= end - n
            end = n
            start = max(start, 0)
        window = x[start:end]
        out[t] = x[t] - window.mean(0)
        if norm_vars:
            if len(window) == 1:
                out[t] = 0.0
            else:
                variance = np.maximum(window.var(0), 1e-10)
                out[t] /= np.sqrt(variance)
    return out


@pytest.mark.parametrize("center, norm_vars", [(True, False), (False, False),
                                               (True, True), (False, True)])
def test_sliding_cmn_matches_kaldi_definition(center, norm_vars):
    lengths = [700, 250, 120, 1]
    rows, batch = _padded_rows(np.random.default_rng(1), lengths)
    out = F.sliding_cmn(batch, lengths, cmn_window=300, min_window=100,
                        center=center, norm_vars=norm_vars).numpy()
    for b, row in enumerate(rows):
        expected = kaldi_sliding_cmn(row, 300, 100, center, norm_vars)
        np.testing.assert_allclose(out[b, : len(row)], expected, atol=1e-4)
        assert not np.any(out[b, len(row):])


def kaldi_vad(log_energy, threshold, mean_scale, context, proportion):
    """Kaldi's ComputeVadEnergy in numpy."""
    total = len(log_energy)
    limit = threshold + mean_scale * log_energy.sum() / total
    voiced = np.zeros(total, bool)
    for t in range(total):
        window = log_energy[max(0, t - context): t + context + 1]
        voiced[t] = (window > limit).sum() >= len(window) * proportion
    return voiced


@pytest.mark.parametrize("vad_options", [F.KALDI_VAD_OPTIONS, F.VOXCELEB_V2_VAD_OPTIONS],
                         ids=["kaldi", "voxceleb_v2"])
def test_energy_vad_on_speech_and_silence(speech, vad_options):
    rng = np.random.default_rng(2)
    clip = speech[0][: 2 * SR]
    quiet = (1e-4 * rng.standard_normal(SR)).astype(np.float32)
    signal = np.concatenate([quiet, clip, quiet])
    mfcc = F.kaldi_mfcc(signal, **VOXCELEB).numpy()
    voiced = F.energy_vad(mfcc, **vad_options).numpy()
    np.testing.assert_array_equal(
        voiced, kaldi_vad(mfcc[:, 0].astype(np.float64), *vad_options.values()))
    assert not voiced[:90].any() and not voiced[-90:].any()
    assert voiced[100:300].mean() > 0.5

    # Batched with padding: each row as if alone, padding never voiced.
    batch = np.zeros((2, len(mfcc), mfcc.shape[1]), np.float32)
    batch[0], batch[1, :150] = mfcc, mfcc[:150]
    batch[1, 150:] = 50.0
    batched = F.energy_vad(batch, [len(mfcc), 150], **vad_options).numpy()
    np.testing.assert_array_equal(batched[0], voiced)
    np.testing.assert_array_equal(batched[1, :150], F.energy_vad(mfcc[:150], **vad_options))
    assert not batched[1, 150:].any()


# --------------------------------------------------------------------------- #
# Keras layers
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("layer_class, cmn", [(F.MfccFeatures, "utterance"),
                                              (F.MfccFeatures, "sliding"),
                                              (F.FbankFeatures, "none")])
def test_layer_config_round_trip_and_model(layer_class, cmn):
    options = dict(num_mel_bins=30, low_freq=20, high_freq=7600, snip_edges=False)
    if layer_class is F.MfccFeatures:
        options["num_ceps"] = 30
    layer = layer_class(cmn=cmn, name="feats", **options)
    config = layer.get_config()
    assert config["num_mel_bins"] == 30 and config["cmn"] == cmn
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is layer_class and clone.get_config() == config

    x = np.stack([chirp_with_noise(0.6, 9), chirp_with_noise(0.6, 10)])
    lengths = np.array([9600, 5000], np.int32)
    feats, frame_lengths = layer(x, lengths)
    clone_feats, _ = clone(x, lengths)
    np.testing.assert_allclose(clone_feats, feats, atol=1e-6)
    assert feats.shape[-1] == layer.feature_dim

    raw, raw_lengths = (F.kaldi_mfcc_with_lengths if layer_class is F.MfccFeatures
                        else F.kaldi_fbank_with_lengths)(
        x, lengths, **options)
    np.testing.assert_array_equal(frame_lengths, raw_lengths)
    if cmn == "utterance":
        np.testing.assert_allclose(feats, F.apply_cmn(raw, raw_lengths), atol=1e-5)
    elif cmn == "sliding":
        np.testing.assert_allclose(feats, F.sliding_cmn(raw, raw_lengths), atol=1e-5)
    else:
        np.testing.assert_allclose(feats, raw, atol=1e-6)

    waveform = keras.Input(shape=(None,))
    valid = keras.Input(shape=(), dtype="int32")
    outputs = layer_class.from_config(config)(waveform, valid)
    model = keras.Model([waveform, valid], outputs)
    model_feats, model_lengths = model([x, lengths])
    np.testing.assert_allclose(model_feats, feats, atol=1e-5)
    np.testing.assert_array_equal(model_lengths, frame_lengths)
