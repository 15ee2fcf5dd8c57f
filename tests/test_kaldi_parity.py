"""tfspk.features against kaldi-native-fbank on every file of librispeech-251, full length.

Option sets: the paper's front end and Kaldi egs/voxceleb/v2's, MFCC and fbank, with
snip_edges true and false, at 16 kHz; and Kaldi's 8 kHz telephone set (egs/sre*
mfcc.conf: 23 mel bins, 20 cepstra, 20-3700 Hz) on the same audio resampled with soxr.
Our features are computed a batch of files at a time (padded, with lengths), which
also checks that batching gives each row its own features.
"""
import numpy as np
import pytest
import soundfile as sf

import kaldi_reference

from tfspk import features as F

# Measured over all 251 files (largest: paper MFCC, snip_edges=False, 1.0e-2; paper
# fbank 3.9e-3; telephone fbank 6.2e-4). The residual is kaldi-native-fbank's own
# rounding: its Rfft returns float32-accurate bins (error relative to the frame's
# peak, e.g. 3.6e-3 absolute on a bin of 0.3 in a frame of amplitude 6.6e3, where a
# float64 FFT is exact to 1e-12), so log mel bands 100+ dB below the frame's peak
# differ by ~1e-3, and the MFCC lifter multiplies that by up to 1 + Q/2.
MAX_MFCC_ERROR = 1.2e-2
MAX_FBANK_ERROR = 5e-3
BATCH = 16

TELEPHONE_8K_MFCC_OPTIONS = dict(num_mel_bins=23, num_ceps=20, low_freq=20.0,
                                 high_freq=3700.0, snip_edges=False)

_SETS = {
    "paper": (16000, dict(F.PAPER_MFCC_OPTIONS), dict(num_mel_bins=40)),
    "voxceleb_v2": (16000, dict(F.VOXCELEB_V2_MFCC_OPTIONS),
                    dict(num_mel_bins=30, low_freq=20.0, high_freq=7600.0)),
    "telephone_8k": (8000, TELEPHONE_8K_MFCC_OPTIONS,
                     dict(num_mel_bins=23, low_freq=20.0, high_freq=3700.0)),
}
_PARAMS = [pytest.param(name, kind, snip, id=f"{name}-{kind}-snip_edges={snip}")
           for name in _SETS for kind in ("mfcc", "fbank") for snip in (True, False)]

def reference(samples, rate, kind, options):
    full = F.resolve_options(kind, rate, **options)
    return kaldi_reference.knf_features(samples, rate, kind, full)


@pytest.fixture(scope="module")
def corpus(librispeech_dir):
    """{rate: [float32 waveform]} for every file, 16 kHz and soxr-resampled 8 kHz."""
    import soxr

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


@pytest.mark.parametrize("name, kind, snip_edges", _PARAMS)
def test_every_file_matches_kaldi_native_fbank(corpus, name, kind, snip_edges):
    rate, mfcc_options, fbank_options = _SETS[name]
    options = dict(mfcc_options if kind == "mfcc" else fbank_options, snip_edges=snip_edges)
    compute = F.kaldi_mfcc_with_lengths if kind == "mfcc" else F.kaldi_fbank_with_lengths
    waves = corpus[rate]
    order = np.argsort([len(w) for w in waves])  # similar lengths share a batch
    worst, worst_index = 0.0, -1
    for start in range(0, len(order), BATCH):
        rows = [waves[i] for i in order[start:start + BATCH]]
        width = max(len(r) for r in rows)
        batch = np.stack([np.pad(r, (0, width - len(r))) for r in rows])
        feats, frame_lengths = compute(batch, [len(r) for r in rows], rate, **options)
        feats, frame_lengths = feats.numpy(), frame_lengths.numpy()
        for row, index, ours, count in zip(rows, order[start:start + BATCH], feats,
                                           frame_lengths):
            expected = reference(row, rate, kind, options)
            assert count == len(expected), (index, count, len(expected))
            error = float(np.abs(ours[:count] - expected).max())
            if error > worst:
                worst, worst_index = error, int(index)
    bound = MAX_MFCC_ERROR if kind == "mfcc" else MAX_FBANK_ERROR
    print(f"{name} {kind} snip_edges={snip_edges}: max |ours - knf| = {worst:.2e} "
          f"(file #{worst_index})")
    assert worst <= bound, (worst, worst_index)
