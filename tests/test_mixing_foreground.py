"""Kaldi's foreground noise placement (augment_data_dir.py --fg-interval/--fg-snrs)."""
import numpy as np
import pytest
import soundfile

import kaldi_augment_reference
from tfspk.augment import mixing

RATE = 16000


def _speech(librispeech_dir, seconds):
    path = sorted(librispeech_dir.glob("*.flac"))[0]
    samples, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE
    return samples[:int(seconds * rate)]


def _padded(noises):
    width = max(len(n) for n in noises)
    return (np.stack([np.pad(n, (0, width - len(n))) for n in noises]).astype(np.float32),
            np.array([len(n) for n in noises], np.int32))


def test_foreground_starts_follow_the_interval_rule():
    starts, used = mixing.foreground_starts([700, 1200, 3000, 500], 1000, 5000)
    # 0; 700 + 1000; 1700 + 1200 + 1000; 3900 + 3000 + 1000 >= 5000: not placed.
    assert starts.numpy().tolist() == [0, 1700, 3900, 7900]
    assert used.numpy().tolist() == [True, True, True, False]
    starts, used = mixing.foreground_starts([[6000, 10], [100, 100]], 0, [5000])
    assert used.numpy().tolist() == [[True, False], [True, True]]


def test_each_placed_noise_sits_at_its_snr_and_start(librispeech_dir):
    speech = _speech(librispeech_dir, 5.0)
    rng = np.random.default_rng(0)
    seconds = [0.7, 1.2, 3.0, 0.5]
    noises = [rng.standard_normal(int(s * RATE)).astype(np.float32)
              * rng.uniform(0.01, 1.0) for s in seconds]
    snrs = np.array([15.0, 0.0, 5.0, 10.0], np.float32)
    interval = RATE  # --fg-interval 1
    padded, lengths = _padded(noises)
    mixture = mixing.mix_foreground(speech, padded, lengths, snrs, interval).numpy()
    reference, placed = kaldi_augment_reference.foreground_noise(speech, noises, snrs, interval)
    np.testing.assert_allclose(mixture, reference, atol=2e-6)
    assert [start for start, _, _ in placed] == [0, int(1.7 * RATE), int(3.9 * RATE)]

    residual = mixture.astype(np.float64) - speech
    speech_power = np.mean(speech.astype(np.float64) ** 2)
    covered = np.zeros(len(speech), bool)
    for k, (start, length, _) in enumerate(placed):
        stop = min(start + length, len(speech))
        covered[start:stop] = True
        segment = residual[start:stop]
        # The gain from the closed form, and the SNR over the noise's whole length.
        gain = np.sqrt(10 ** (-snrs[k] / 10) * speech_power / np.mean(noises[k] ** 2.0))
        np.testing.assert_allclose(segment, gain * noises[k][:stop - start],
                                   rtol=1e-4, atol=1e-7)
        if stop - start == length:  # whole noise inside the speech
            realised = 10 * np.log10(speech_power / np.mean(segment ** 2))
            assert realised == pytest.approx(float(snrs[k]), abs=1e-3)
    # The intervals between noises (and the unplaced fourth noise) add nothing.
    assert not covered[int(0.7 * RATE):int(1.7 * RATE)].any()
    np.testing.assert_array_equal(residual[~covered], 0.0)


def test_batched_rows_are_placed_independently_and_silence_adds_nothing():
    rng = np.random.default_rng(1)
    speech = rng.standard_normal([3, 4000]).astype(np.float32)
    noises = rng.standard_normal([3, 3, 2500]).astype(np.float32)
    lengths = np.array([[2500, 2500, 2500], [300, 400, 500], [1000, 0, 900]], np.int32)
    noises[2, 1] = 0.0
    snrs = rng.uniform(0, 15, [3, 3]).astype(np.float32)
    batched = mixing.mix_foreground(speech, noises, lengths, snrs, 800).numpy()
    for row in (0, 1):
        expected, _ = kaldi_augment_reference.foreground_noise(
            speech[row], [noises[row, k, :lengths[row, k]] for k in range(3)], snrs[row], 800)
        np.testing.assert_allclose(batched[row], expected, atol=2e-5)
    # Row 2: an empty noise (length 0) occupies only its interval and adds nothing.
    starts, used = mixing.foreground_starts(lengths[2], 800, 4000)
    assert starts.numpy().tolist() == [0, 1800, 2600] and used.numpy().all()
    residual = batched[2] - speech[2]
    assert np.isfinite(residual).all()
    np.testing.assert_array_equal(residual[1000:2600], 0.0)
    np.testing.assert_array_equal(residual[3500:], 0.0)
    assert np.abs(residual[:1000]).min() > 0 and np.abs(residual[2600:3500]).min() > 0
