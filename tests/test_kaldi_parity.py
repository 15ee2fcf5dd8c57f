"""tfspk.features against kaldi-native-fbank on every file of librispeech-251, full length.

Option sets: the paper's front end and Kaldi egs/voxceleb/v2's, MFCC and fbank, with
snip_edges true and false, at 16 kHz; and Kaldi's 8 kHz telephone set (egs/sre*
mfcc.conf: 23 mel bins, 20 cepstra, 20-3700 Hz) on the same audio resampled with soxr
and rounded to int16.

The reference is kaldi-native-fbank with its double-precision FFT (releases <= 1.20;
`kaldi_reference.check_double_fft` fails the test otherwise, naming the fix). Later
releases transform in float32, whose rounding (relative to the frame's peak) alone
differs from exact arithmetic by up to 6.6e-3 on the MFCCs of these files.

Cost: kaldi-native-fbank runs once per (rate, frame options, mel options): its
log fbank with the raw log-energy (`use_energy=True`) is the fbank reference, and its
MFCC reference is that fbank through Kaldi's DCT and lifter with the energy as C0
(checked against kaldi-native-fbank's own MFCC on every 16th file). Our features come
a batch of files at a time (padded, with lengths), which also checks that batching
gives each row its own features.
"""
import math

import numpy as np
import pytest
import soundfile as sf

import kaldi_reference

from tfspk import features as F
from tfspk.frontend import ops

# Measured over all 251 files with kaldi-native-fbank 1.20.3 (see the notes).
MAX_MFCC_ERROR = 2e-3
MAX_FBANK_ERROR = 1e-3
# The derived MFCC reference against kaldi-native-fbank's own (float32 DCT and sums).
MAX_DERIVED_MFCC_ERROR = 1e-4
# Files per call: as many as fit in this much padded audio. Larger calls only add page
# faults (the float64 frames of a call are ~100 kB per second of audio).
BATCH_SECONDS = 40.0

TELEPHONE_8K_MFCC_OPTIONS = dict(num_mel_bins=23, num_ceps=20, low_freq=20.0,
                                 high_freq=3700.0, snip_edges=False)

# name: (rate, MFCC options, fbank options); each pair shares frame and mel options.
_SETS = {
    "paper": (16000, dict(F.PAPER_MFCC_OPTIONS), dict(num_mel_bins=40)),
    "voxceleb_v2": (16000, dict(F.VOXCELEB_V2_MFCC_OPTIONS),
                    dict(num_mel_bins=30, low_freq=20.0, high_freq=7600.0)),
    "telephone_8k": (8000, TELEPHONE_8K_MFCC_OPTIONS,
                     dict(num_mel_bins=23, low_freq=20.0, high_freq=3700.0)),
}
_PARAMS = [pytest.param(name, kind, snip, id=f"{name}-{kind}-snip_edges={snip}")
           for name in _SETS for kind in ("mfcc", "fbank") for snip in (True, False)]


@pytest.fixture(scope="module")
def corpus(librispeech_dir):
    """{rate: [float32 waveform]} for every file, 16 kHz and soxr-resampled 8 kHz."""
    import soxr

    kaldi_reference.check_double_fft()
    files = sorted(librispeech_dir.glob("*.flac"))
    assert len(files) >= 251, len(files)
    audio = {16000: [], 8000: []}
    for path in files:
        samples, rate = sf.read(path, dtype="int16")
        assert rate == 16000, path
        audio[16000].append(samples.astype(np.float32) / 32768.0)
        # Telephone data is int16 on disk too: round the resampled audio to it.
        low = soxr.resample(samples.astype(np.float64), 16000, 8000, quality="HQ")
        audio[8000].append(np.clip(np.round(low), -32768, 32767).astype(np.float32)
                           / 32768.0)
    return audio


def _derived_mfcc(fbank_with_energy, mfcc_options):
    """Kaldi's MFCC from its log fbank: DCT-II (orthonormal), lifter, energy as C0."""
    transform = (ops._dct_matrix(mfcc_options["num_mel_bins"], mfcc_options["num_ceps"])
                 * ops._lifter(mfcc_options["num_ceps"],
                               mfcc_options["cepstral_lifter"])[None, :])
    ceps = fbank_with_energy[:, 1:].astype(np.float64) @ transform
    ceps[:, 0] = fbank_with_energy[:, 0]
    return ceps


def _textbook_dct(num_bins, num_ceps, lifter):
    """The same transform from its definition, independent of ops' matrices."""
    out = np.empty((num_bins, num_ceps))
    for k in range(num_ceps):
        scale = math.sqrt((1.0 if k == 0 else 2.0) / num_bins)
        weight = 1.0 + 0.5 * lifter * math.sin(math.pi * k / lifter) if lifter else 1.0
        for n in range(num_bins):
            out[n, k] = weight * scale * math.cos(math.pi / num_bins * (n + 0.5) * k)
    return out


def _batches(lengths, max_padded):
    """Indices in order of length, cut into groups whose padded size <= max_padded."""
    order = np.argsort(lengths, kind="stable")  # similar lengths share a call
    group = []
    for i in order:
        if group and (len(group) + 1) * lengths[i] > max_padded:
            yield group
            group = []
        group.append(int(i))
    if group:
        yield group


@pytest.fixture(scope="module")
def results(corpus):
    """(name, snip_edges) -> {kind: (worst |ours - knf|, file index)}, computed once."""
    cache = {}

    def get(name, snip_edges):
        if (name, snip_edges) in cache:
            return cache[name, snip_edges]
        rate, mfcc_options, fbank_options = _SETS[name]
        mfcc_options = F.resolve_options("mfcc", rate,
                                         **dict(mfcc_options, snip_edges=snip_edges))
        fbank_options = dict(fbank_options, snip_edges=snip_edges)
        reference_options = F.resolve_options("fbank", rate, **fbank_options,
                                              use_energy=True)
        for key in ("frame_length_ms", "frame_shift_ms", "num_mel_bins", "low_freq",
                    "high_freq", "raw_energy", "energy_floor"):
            assert reference_options[key] == mfcc_options[key], key
        np.testing.assert_allclose(
            _textbook_dct(mfcc_options["num_mel_bins"], mfcc_options["num_ceps"],
                          mfcc_options["cepstral_lifter"]),
            ops._dct_matrix(mfcc_options["num_mel_bins"], mfcc_options["num_ceps"])
            * ops._lifter(mfcc_options["num_ceps"], mfcc_options["cepstral_lifter"]),
            atol=1e-12)
        waves = corpus[rate]
        worst = {"mfcc": (0.0, -1), "fbank": (0.0, -1)}
        for index in _batches([len(w) for w in waves], BATCH_SECONDS * rate):
            rows = [waves[i] for i in index]
            width = max(len(r) for r in rows)
            batch = np.stack([np.pad(r, (0, width - len(r))) for r in rows])
            lengths = [len(r) for r in rows]
            ours = {
                "mfcc": F.kaldi_mfcc_with_lengths(batch, lengths, rate, **mfcc_options),
                "fbank": F.kaldi_fbank_with_lengths(batch, lengths, rate,
                                                    **fbank_options)}
            ours = {k: (v[0].numpy(), v[1].numpy()) for k, v in ours.items()}
            for j, (i, row) in enumerate(zip(index, rows)):
                fbank = kaldi_reference.knf_features(row, rate, "fbank",
                                                     reference_options)
                expected = {"fbank": fbank[:, 1:],
                            "mfcc": _derived_mfcc(fbank, mfcc_options)}
                if i % 16 == 0:
                    own = kaldi_reference.knf_features(row, rate, "mfcc", mfcc_options)
                    assert np.abs(own - expected["mfcc"]).max() <= MAX_DERIVED_MFCC_ERROR
                for kind in ("mfcc", "fbank"):
                    features, frame_lengths = ours[kind]
                    count = frame_lengths[j]
                    assert count == len(expected[kind]), (i, kind, count)
                    error = float(np.abs(features[j, :count] - expected[kind]).max())
                    if error > worst[kind][0]:
                        worst[kind] = (error, int(i))
        cache[name, snip_edges] = worst
        return worst

    return get


@pytest.mark.parametrize("name, kind, snip_edges", _PARAMS)
def test_every_file_matches_kaldi_native_fbank(results, name, kind, snip_edges):
    worst, index = results(name, snip_edges)[kind]
    bound = MAX_MFCC_ERROR if kind == "mfcc" else MAX_FBANK_ERROR
    print(f"{name} {kind} snip_edges={snip_edges}: max |ours - knf| = {worst:.2e} "
          f"(file #{index})")
    assert worst <= bound, (worst, index)
