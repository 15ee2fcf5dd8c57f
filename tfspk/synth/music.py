"""Synthetic music for a MUSAN-like `music` category (float32, 16 kHz).

A piece is a chord progression in a random key and tempo played by an additive-synthesis
instrument (harmonics with a random spectral tilt, attack/decay envelope), a melody on a
second instrument, and optionally a drum pattern (kick: falling sine; hi-hat: high-passed
noise burst; snare: noise plus tone).
"""
import numpy as np
import scipy.signal

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


def _tone(rng, frequency, seconds, sample_rate, brightness):
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = np.zeros_like(time)
    for harmonic in range(1, 9):
        if frequency * harmonic >= 0.45 * sample_rate:
            break
        tone += harmonic ** -brightness * np.sin(2 * np.pi * frequency * harmonic * time
                                                 + rng.uniform(0, 2 * np.pi))
    attack = np.minimum(1.0, time / 0.01)
    return tone * attack * np.exp(-time / max(0.3 * seconds, 0.05))


def _drums(rng, num_samples, sample_rate, beat_samples):
    drums = np.zeros(num_samples)
    kick_time = np.arange(int(0.15 * sample_rate)) / sample_rate
    kick = np.sin(2 * np.pi * (50 * kick_time + 70 * 0.03 * (1 - np.exp(-kick_time / 0.03))))
    kick *= np.exp(-kick_time / 0.05)
    sos = scipy.signal.butter(4, 5000, btype="highpass", fs=sample_rate, output="sos")
    hat = scipy.signal.sosfilt(sos, rng.standard_normal(int(0.05 * sample_rate)))
    hat *= np.exp(-np.arange(len(hat)) / (0.01 * sample_rate)) * 0.3
    snare_time = np.arange(int(0.12 * sample_rate)) / sample_rate
    snare = (rng.standard_normal(len(snare_time)) * 0.5 + np.sin(2 * np.pi * 190 * snare_time))
    snare *= np.exp(-snare_time / 0.04) * 0.6
    half = beat_samples // 2
    for step, position in enumerate(range(0, num_samples, half)):
        for sound, hit in ((hat, True), (kick, step % 4 == 0), (snare, step % 4 == 2)):
            if hit:
                end = min(num_samples, position + len(sound))
                drums[position:end] += sound[:end - position]
    return drums


def random_music(rng, seconds, sample_rate=16000):
    """A random piece of `seconds` seconds, RMS between -30 and -15 dBFS."""
    num_samples = int(round(seconds * sample_rate))
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    root = 110.0 * 2 ** (rng.integers(12) / 12)
    beat_samples = int(sample_rate * 60.0 / rng.uniform(70.0, 160.0))
    beats_per_chord = int(rng.choice([2, 4]))
    chord_brightness, melody_brightness = rng.uniform(0.5, 2.5, size=2)
    music = np.zeros(num_samples + 4 * sample_rate)

    def note(degree, octave=0):
        semitones = scale[degree % 7] + 12 * (degree // 7 + octave)
        return root * 2 ** (semitones / 12)

    chords = rng.choice([0, 3, 4, 5], size=num_samples // (beat_samples * beats_per_chord) + 1)
    for index, degree in enumerate(chords):
        start = index * beats_per_chord * beat_samples
        for offset in (0, 2, 4):
            tone = _tone(rng, note(degree + offset), beats_per_chord * beat_samples / sample_rate,
                         sample_rate, chord_brightness)
            music[start:start + len(tone)] += 0.3 * tone
    for start in range(0, num_samples, beat_samples):
        if rng.random() < 0.7:
            tone = _tone(rng, note(int(rng.integers(0, 8)), octave=1),
                         beat_samples * rng.choice([1, 2]) / sample_rate, sample_rate,
                         melody_brightness)
            music[start:start + len(tone)] += 0.4 * tone
    music = music[:num_samples]
    if rng.random() < 0.6:
        music += _drums(rng, num_samples, sample_rate, beat_samples)
    music /= np.sqrt(np.mean(music ** 2)) + 1e-12
    level = 10 ** (rng.uniform(-30.0, -15.0) / 20)
    return np.clip(music * level, -1.0, 1.0).astype(np.float32)
