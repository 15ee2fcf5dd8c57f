"""Simulated room impulse responses for shoebox rooms (16 kHz).

Hybrid model: the direct path and early reflections (up to `EARLY_MS` after the direct
sound) come from the image-source method; the late part is Gaussian noise whose envelope
follows the statistical energy decay of the same room, exp(-13.8 t / RT60), with the energy
density c / (4 pi V) that the image method itself predicts. Wall absorption follows Sabine's
formula for the target RT60, so early and late parts decay consistently.

The direct path arrives at sample `round(distance * sample_rate / SPEED_OF_SOUND)` (the
propagation delay, no extra pre-delay): it is the first non-zero sample of the response.
Room size ranges follow the simulated RIRs of Ko et al. (ICASSP 2017): small rooms 1-10 m,
medium 10-30 m, large 30-50 m (length and width), height 2-5 m.
"""
import dataclasses
import itertools

import numpy as np

SPEED_OF_SOUND = 343.0
EARLY_MS = 50.0
ROOM_KINDS = {"smallroom": (1.0, 10.0), "mediumroom": (10.0, 30.0), "largeroom": (30.0, 50.0)}
HEIGHT_RANGE = (2.0, 5.0)
RT60_RANGE = (0.2, 1.0)
_WALL_MARGIN = 0.5  # m between source/receiver and any wall


@dataclasses.dataclass(frozen=True)
class Room:
    size: tuple  # (length, width, height) in m
    rt60: float  # s
    absorption: float  # Sabine absorption coefficient of every wall

    @property
    def volume(self):
        return float(np.prod(self.size))

    @property
    def surface(self):
        length, width, height = self.size
        return 2.0 * (length * width + length * height + width * height)


def make_room(size, rt60):
    """A `Room` whose uniform wall absorption gives `rt60` by Sabine's formula."""
    size = tuple(float(side) for side in size)
    if min(size) <= 2 * _WALL_MARGIN or rt60 <= 0:
        raise ValueError(f"room {size} m with RT60 {rt60} s is not simulable")
    volume = float(np.prod(size))
    surface = 2.0 * (size[0] * size[1] + size[0] * size[2] + size[1] * size[2])
    absorption = float(np.clip(0.161 * volume / (surface * rt60), 0.01, 0.99))
    return Room(size, float(rt60), absorption)


def random_room(rng, kind):
    """A random room of `kind` ("smallroom", "mediumroom" or "largeroom")."""
    if kind not in ROOM_KINDS:
        raise ValueError(f"unknown room kind {kind!r}; known: {sorted(ROOM_KINDS)}")
    low, high = ROOM_KINDS[kind]
    length, width = rng.uniform(max(low, 2 * _WALL_MARGIN + 0.5), high, size=2)
    height = rng.uniform(*HEIGHT_RANGE)
    return make_room((length, width, height), rng.uniform(*RT60_RANGE))


def random_position(rng, room):
    """A point at least 0.5 m from every wall."""
    return tuple(rng.uniform(_WALL_MARGIN, side - _WALL_MARGIN) for side in room.size)


def direct_index(source, receiver, sample_rate=16000):
    """Sample index of the direct path in `simulate_rir`'s output."""
    distance = float(np.linalg.norm(np.subtract(source, receiver)))
    return int(round(distance * sample_rate / SPEED_OF_SOUND))


def simulate_rir(room, source, receiver, rng, sample_rate=16000):
    """Impulse response (float32, direct path amplitude 1) from `source` to `receiver`."""
    source, receiver = np.asarray(source, float), np.asarray(receiver, float)
    size = np.asarray(room.size)
    distance = float(np.linalg.norm(source - receiver))
    direct_time = distance / SPEED_OF_SOUND
    early_end = direct_time + EARLY_MS / 1000.0
    length = int(np.ceil((direct_time + 1.2 * room.rt60) * sample_rate)) + 1
    response = np.zeros(length)
    beta = np.sqrt(1.0 - room.absorption)

    # Image sources: mirror index n per axis and parity p; an image at 2 n L + (-1)^p s
    # reached the receiver after |2n - p| + |2n| ... wall reflections (|n - p| + |n| per axis).
    max_order = np.ceil(early_end * SPEED_OF_SOUND / (2 * size)).astype(int) + 1
    ranges = [np.arange(-order, order + 1) for order in max_order]
    n = np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, 3)
    for parity in itertools.product((0, 1), repeat=3):
        parity = np.asarray(parity)
        images = 2 * n * size + np.where(parity == 1, -source, source)
        reflections = np.sum(np.abs(n - parity) + np.abs(n), axis=1)
        distances = np.linalg.norm(images - receiver, axis=1)
        keep = distances / SPEED_OF_SOUND <= early_end
        delays = np.rint(distances[keep] * sample_rate / SPEED_OF_SOUND).astype(int)
        # Amplitudes relative to the direct path (which has 1 / distance spreading).
        np.add.at(response, delays,
                  beta ** reflections[keep] * distance / np.maximum(distances[keep], 1e-3))

    # Late reverberation: energy per second c / (4 pi V) exp(-13.8 t / RT60) of a 1/(4 pi r)
    # source, i.e. relative to the direct path (4 pi distance) ** 2 times that.
    times = np.arange(length) / sample_rate
    start = int(np.ceil(early_end * sample_rate))
    late_sd = (4 * np.pi * distance) * np.sqrt(SPEED_OF_SOUND / (4 * np.pi * room.volume)
                                              / sample_rate)
    envelope = late_sd * np.exp(-6.91 * times[start:] / room.rt60)  # -60 dB at RT60
    fade = np.minimum(1.0, np.arange(length - start) / (0.005 * sample_rate))
    response[start:] += rng.standard_normal(length - start) * envelope * fade
    return response.astype(np.float32)


def estimate_rt60(response, sample_rate=16000, start_db=-5.0, end_db=-25.0):
    """RT60 from the Schroeder energy decay curve (T20 extrapolated to 60 dB)."""
    energy = np.cumsum(np.asarray(response, float)[::-1] ** 2)[::-1]
    decay_db = 10 * np.log10(energy / energy[0] + 1e-30)
    fit = (decay_db <= start_db) & (decay_db >= end_db)
    if fit.sum() < 2:
        raise ValueError("impulse response too short to estimate RT60")
    slope = np.polyfit(np.flatnonzero(fit) / sample_rate, decay_db[fit], 1)[0]
    return -60.0 / slope
