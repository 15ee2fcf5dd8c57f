"""Synthetic background noises for a MUSAN-like `noise` category (float32, 16 kHz).

Kinds: coloured noise (power spectrum 1/f^k: white, pink, brown), band-limited noise
(fans, traffic-like rumble, hiss), mains hum with harmonics, and click trains (keyboard /
ticking-like impulses through short resonances).
"""
import numpy as np
import scipy.signal

NOISE_KINDS = ("coloured", "band", "hum", "clicks")


def coloured_noise(rng, num_samples, exponent):
    """Gaussian noise whose power spectrum falls as 1 / f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequencies = np.arange(len(spectrum), dtype=float)
    frequencies[0] = 1.0
    noise = np.fft.irfft(spectrum / frequencies ** (exponent / 2.0), n=num_samples)
    return noise / (np.std(noise) + 1e-12)


def band_noise(rng, num_samples, sample_rate):
    """White noise through a 4th-order Butterworth band-pass at a random band."""
    low = rng.uniform(40.0, 2000.0)
    high = min(low * rng.uniform(1.5, 8.0), 0.45 * sample_rate)
    sos = scipy.signal.butter(4, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    noise = scipy.signal.sosfilt(sos, rng.standard_normal(num_samples))
    return noise / (np.std(noise) + 1e-12)


def hum(rng, num_samples, sample_rate):
    """Mains hum: 50 or 60 Hz and harmonics with random levels, slight drift, a little hiss."""
    fundamental = rng.choice([50.0, 60.0]) * (1 + rng.uniform(-0.003, 0.003))
    time = np.arange(num_samples) / sample_rate
    signal = np.zeros(num_samples)
    for harmonic in range(1, 9):
        signal += (rng.uniform(0.0, 1.0) / harmonic) * np.sin(
            2 * np.pi * fundamental * harmonic * time + rng.uniform(0, 2 * np.pi))
    signal += 0.05 * rng.standard_normal(num_samples)
    return signal / (np.std(signal) + 1e-12)


def clicks(rng, num_samples, sample_rate):
    """Poisson click train (2-20 per s), each click a short decaying resonance."""
    rate = rng.uniform(2.0, 20.0)
    positions = np.flatnonzero(rng.random(num_samples) < rate / sample_rate)
    impulses = np.zeros(num_samples)
    impulses[positions] = rng.uniform(0.3, 1.0, len(positions)) * rng.choice([-1, 1],
                                                                              len(positions))
    resonance = rng.uniform(800.0, 5000.0)
    decay = np.exp(-np.arange(int(0.01 * sample_rate)) / (rng.uniform(0.0005, 0.003)
                                                          * sample_rate))
    kernel = decay * np.sin(2 * np.pi * resonance * np.arange(len(decay)) / sample_rate)
    signal = scipy.signal.fftconvolve(impulses, kernel)[:num_samples]
    signal += 0.01 * rng.standard_normal(num_samples)
    return signal / (np.std(signal) + 1e-12)


def random_noise(rng, seconds, sample_rate=16000):
    """(kind, float32 noise) of a random kind at an RMS level between -35 and -15 dBFS."""
    num_samples = int(round(seconds * sample_rate))
    kind = NOISE_KINDS[rng.integers(len(NOISE_KINDS))]
    if kind == "coloured":
        signal = coloured_noise(rng, num_samples, rng.choice([0.0, 1.0, 2.0]))
    elif kind == "band":
        signal = band_noise(rng, num_samples, sample_rate)
    elif kind == "hum":
        signal = hum(rng, num_samples, sample_rate)
    else:
        signal = clicks(rng, num_samples, sample_rate)
    level = 10 ** (rng.uniform(-35.0, -15.0) / 20)
    return kind, np.clip(signal * level, -1.0, 1.0).astype(np.float32)
