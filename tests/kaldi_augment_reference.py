"""Kaldi's augmentation in closed form (numpy, float64), the reference for the mixing tests."""
import numpy as np


def foreground_noise(speech, noises, snrs, interval):
    """augment_data_dir.py's AugmentWav loop + wav-reverberate's AddNoise: noise k starts at
    `sum_{j<k} (len_j + interval)` and is used iff that start is inside the speech; it is
    scaled by sqrt(10^(-snr_k/10) * P_speech / P_noise_k) and cut at the end of the speech
    (AddVectorsWithOffset). Returns (mixed, [(start, noise length, scale) per placed noise])."""
    out = speech.astype(np.float64).copy()
    speech_power = np.mean(speech.astype(np.float64) ** 2)
    total, placed = 0, []
    for noise, snr in zip(noises, snrs):
        if total >= len(speech):
            break
        noise = noise.astype(np.float64)
        scale = np.sqrt(10 ** (-snr / 10) * speech_power / np.mean(noise ** 2))
        stop = min(total + len(noise), len(speech))
        out[total:stop] += scale * noise[:stop - total]
        placed.append((total, len(noise), scale))
        total += len(noise) + interval
    return out, placed
