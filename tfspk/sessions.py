"""Recording sessions: the channel a segment of speech went through.

A `SessionChannel` describes one recording session completely and is applied to a
waveform deterministically (`apply_session`), so a corpus can record each segment's
channel in `sessions.jsonl` and any segment can be re-rendered bit for bit. In signal
order:

1. reverb: a simulated shoebox room (`tfspk.synth.rir`), or none;
2. background noise at a per-session SNR (coloured or band-limited noise,
   `tfspk.synth.noise`), relative to the (reverberant) speech power over the segment;
3. microphone response: a smooth EQ, a cascade of RBJ-cookbook peaking and shelving
   biquads;
4. band limit: the telephone band, i.e. a round trip through 8 kHz with a 300-3400 Hz
   band-pass, or none;
5. recording level (RMS dBFS), then a lossy codec round trip (OGG Vorbis or MP3 through
   libsndfile), or none.

Why: when every session of a speaker shares one channel, an utterance-level MFCC mean
recognises the channel as well as the speaker. Trials whose enrollment and test come from
different sessions (see `tfrecords_tools.sessions`) take that shortcut away.

The stochastic parts (the late reverberation tail, the noise) are drawn from a generator
seeded by `SessionChannel.seed`, so the channel, not a global state, fixes the output.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
from typing import Optional, Sequence

import numpy as np
import scipy.signal
import soundfile

from tfspk import audio
from tfspk.synth import noise as noise_lib
from tfspk.synth import rir as rir_lib

NOISE_KINDS = ("white", "pink", "brown", "band")
_NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
BIQUAD_KINDS = ("peaking", "low_shelf", "high_shelf")
BANDS = ("telephone",)
TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
CODECS = {"ogg": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}
# Peak level after the recording gain; a louder session is turned down to this rather
# than clipped (a recordist sets the level so nothing clips).
MAX_PEAK = 0.99


class SessionError(ValueError):
    """A session description that cannot be applied (names the field and the reason)."""


@dataclasses.dataclass(frozen=True)
class Biquad:
    """One RBJ Audio-EQ-Cookbook section: `kind` in BIQUAD_KINDS, centre/corner
    frequency (Hz), gain (dB) and Q (peaking) or shelf slope S=1 shape via `q`."""
    kind: str
    frequency: float
    gain_db: float
    q: float = 0.707

    def __post_init__(self):
        if self.kind not in BIQUAD_KINDS:
            raise SessionError(f"biquad kind {self.kind!r} is not one of {BIQUAD_KINDS}")
        if not (self.frequency > 0 and self.q > 0):
            raise SessionError(f"biquad needs frequency > 0 and q > 0, got {self}")

    def sos(self, sample_rate: int) -> np.ndarray:
        """Second-order section [b0, b1, b2, 1, a1, a2] (RBJ cookbook, normalised)."""
        if self.frequency >= sample_rate / 2:
            raise SessionError(f"biquad frequency {self.frequency} Hz is not below Nyquist "
                               f"({sample_rate / 2} Hz)")
        a = 10.0 ** (self.gain_db / 40.0)
        w0 = 2.0 * math.pi * self.frequency / sample_rate
        cos_w0, alpha = math.cos(w0), math.sin(w0) / (2.0 * self.q)
        if self.kind == "peaking":
            b = [1 + alpha * a, -2 * cos_w0, 1 - alpha * a]
            den = [1 + alpha / a, -2 * cos_w0, 1 - alpha / a]
        else:
            root = 2.0 * math.sqrt(a) * alpha
            sign = 1.0 if self.kind == "low_shelf" else -1.0
            b = [a * ((a + 1) - sign * (a - 1) * cos_w0 + root),
                 sign * 2 * a * ((a - 1) - sign * (a + 1) * cos_w0),
                 a * ((a + 1) - sign * (a - 1) * cos_w0 - root)]
            den = [(a + 1) + sign * (a - 1) * cos_w0 + root,
                   -sign * 2 * ((a - 1) + sign * (a + 1) * cos_w0),
                   (a + 1) + sign * (a - 1) * cos_w0 - root]
        return np.array([*(c / den[0] for c in b), 1.0, den[1] / den[0], den[2] / den[0]])


@dataclasses.dataclass(frozen=True)
class RoomSetting:
    """A shoebox room (size in m, RT60 in s) and the talker/microphone positions (m)."""
    size: tuple[float, float, float]
    rt60: float
    source: tuple[float, float, float]
    receiver: tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class SessionChannel:
    """Everything that makes one recording session sound the way it does.

    `None` (or an empty `eq`) switches a stage off. `seed` seeds the stochastic parts.
    """
    session_id: str
    seed: int
    room: Optional[RoomSetting] = None
    noise_kind: Optional[str] = None
    snr_db: Optional[float] = None
    eq: tuple[Biquad, ...] = ()
    band: Optional[str] = None
    level_dbfs: Optional[float] = None
    codec: Optional[str] = None
    codec_compression: float = 0.5

    def __post_init__(self):
        if (self.noise_kind is None) != (self.snr_db is None):
            raise SessionError(f"session {self.session_id}: noise_kind and snr_db go "
                               f"together, got {self.noise_kind!r} and {self.snr_db!r}")
        if self.noise_kind is not None and self.noise_kind not in NOISE_KINDS:
            raise SessionError(f"session {self.session_id}: noise_kind {self.noise_kind!r} "
                               f"is not one of {NOISE_KINDS}")
        if self.band is not None and self.band not in BANDS:
            raise SessionError(f"session {self.session_id}: band {self.band!r} is not one "
                               f"of {BANDS}")
        if self.codec is not None and self.codec not in CODECS:
            raise SessionError(f"session {self.session_id}: codec {self.codec!r} is not one "
                               f"of {sorted(CODECS)}")
        if not 0.0 <= self.codec_compression <= 1.0:
            raise SessionError(f"session {self.session_id}: codec_compression must be in "
                               f"[0, 1], got {self.codec_compression}")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "SessionChannel":
        data = dict(data)
        room = data.get("room")
        if room is not None:
            data["room"] = RoomSetting(**{k: tuple(v) if isinstance(v, list) else v
                                          for k, v in room.items()})
        data["eq"] = tuple(Biquad(**section) for section in data.get("eq", ()))
        try:
            return cls(**data)
        except TypeError as error:
            raise SessionError(f"not a SessionChannel description: {error}") from None

    def dumps(self) -> str:
        """One JSON line (floats written with repr, so `loads` restores them exactly)."""
        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def loads(cls, line: str) -> "SessionChannel":
        return cls.from_json(json.loads(line))


def random_session(rng: np.random.Generator, session_id: str, *,
                   reverb_probability: float = 0.5, noise_probability: float = 0.7,
                   snr_range: Sequence[float] = (5.0, 25.0),
                   telephone_probability: float = 0.2, codec_probability: float = 0.4,
                   level_range: Sequence[float] = (-32.0, -18.0),
                   room_kinds: Sequence[str] = ("smallroom", "mediumroom")
                   ) -> SessionChannel:
    """Draws one session. Every session gets a microphone EQ (a low shelf, a high shelf
    and one or two peaks of up to +-8 dB: consumer microphones and laptop mics differ by
    that much) and a recording level; the other stages are drawn with their
    probabilities. Room, noise, SNR and codec are drawn uniformly."""
    seed = int(rng.integers(0, 2 ** 31 - 1))
    room = None
    if rng.random() < reverb_probability:
        shape = rir_lib.random_room(rng, str(rng.choice(list(room_kinds))))
        room = RoomSetting(shape.size, shape.rt60,
                           tuple(float(v) for v in rir_lib.random_position(rng, shape)),
                           tuple(float(v) for v in rir_lib.random_position(rng, shape)))
    noise_kind = snr_db = None
    if rng.random() < noise_probability:
        noise_kind = str(rng.choice(NOISE_KINDS))
        snr_db = float(rng.uniform(*snr_range))
    eq = [Biquad("low_shelf", float(rng.uniform(80.0, 400.0)), float(rng.uniform(-8, 6))),
          Biquad("high_shelf", float(rng.uniform(2000.0, 6000.0)),
                 float(rng.uniform(-10, 6)))]
    for _ in range(int(rng.integers(1, 3))):
        eq.append(Biquad("peaking", float(np.exp(rng.uniform(np.log(300), np.log(5000)))),
                         float(rng.uniform(-8, 8)), float(rng.uniform(0.7, 2.5))))
    band = "telephone" if rng.random() < telephone_probability else None
    codec = None
    compression = 0.5
    if rng.random() < codec_probability:
        codec = str(rng.choice(sorted(CODECS)))
        compression = float(rng.uniform(0.2, 0.95))
    return SessionChannel(session_id=session_id, seed=seed, room=room,
                          noise_kind=noise_kind, snr_db=snr_db, eq=tuple(eq), band=band,
                          level_dbfs=float(rng.uniform(*level_range)), codec=codec,
                          codec_compression=compression)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def add_noise(waveform: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`waveform + g * noise` with g such that 10 log10(P(waveform) / P(g noise)) = snr_db
    (powers are means over the whole segment)."""
    signal_power, noise_power = _power(waveform), _power(noise)
    if signal_power == 0.0 or noise_power == 0.0:
        return np.asarray(waveform, np.float64).copy()
    gain = math.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return np.asarray(waveform, np.float64) + gain * np.asarray(noise, np.float64)


def telephone_band(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Round trip through `TELEPHONE_RATE` with a 4th-order Butterworth 300-3400 Hz
    band-pass at the low rate: the resampler removes everything above 4 kHz, the
    band-pass the rest of what a telephone line does not carry."""
    low = audio.resample(np.asarray(waveform, np.float32), sample_rate, TELEPHONE_RATE)
    sos = scipy.signal.butter(4, TELEPHONE_BAND_HZ, btype="bandpass", fs=TELEPHONE_RATE,
                              output="sos")
    low = scipy.signal.sosfilt(sos, low).astype(np.float32)
    back = audio.resample(low, TELEPHONE_RATE, sample_rate).astype(np.float64)
    return _fit_length(back, len(waveform))


def codec_round_trip(waveform: np.ndarray, sample_rate: int, codec: str,
                     compression: float = 0.5) -> np.ndarray:
    """Encodes with libsndfile (OGG Vorbis or MP3, `compression` 0 best .. 1 smallest) and
    decodes again; the decoded length is fitted to the input's (libsndfile strips the
    encoder delay, so the samples stay aligned)."""
    if codec not in CODECS:
        raise SessionError(f"codec {codec!r} is not one of {sorted(CODECS)}")
    container, subtype = CODECS[codec]
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(np.asarray(waveform, np.float32), -1.0, 1.0),
                    sample_rate, format=container, subtype=subtype,
                    compression_level=compression)
    buffer.seek(0)
    decoded, _ = soundfile.read(buffer, dtype="float32")
    return _fit_length(decoded.astype(np.float64), len(waveform))


def _fit_length(x: np.ndarray, length: int) -> np.ndarray:
    if len(x) >= length:
        return x[:length]
    return np.pad(x, (0, length - len(x)))


def session_noise(channel: SessionChannel, num_samples: int, sample_rate: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Unit-power background noise of the session's kind."""
    if channel.noise_kind == "band":
        return noise_lib.band_noise(rng, num_samples, sample_rate)
    return noise_lib.coloured_noise(rng, num_samples, _NOISE_EXPONENTS[channel.noise_kind])


def apply_session(waveform: np.ndarray, sample_rate: int, channel: SessionChannel
                  ) -> np.ndarray:
    """The waveform as recorded in `channel`'s session (float32, same length).

    Deterministic given the channel: the same inputs give the same bytes.
    """
    x = np.asarray(waveform, np.float64)
    if x.ndim != 1 or not len(x):
        raise SessionError(f"session {channel.session_id}: expected a non-empty 1-D "
                           f"waveform, got shape {x.shape}")
    rng = np.random.default_rng(channel.seed)
    if channel.room is not None:
        room = rir_lib.make_room(channel.room.size, channel.room.rt60)
        response = rir_lib.simulate_rir(room, channel.room.source, channel.room.receiver,
                                        rng, sample_rate)
        reverberant = scipy.signal.fftconvolve(x, response.astype(np.float64))[:len(x)]
        # Keep the dry level: the room changes the spectrum and the tail, the recording
        # level is set later by `level_dbfs`.
        x = reverberant * math.sqrt(_power(x) / max(_power(reverberant), 1e-30))
    if channel.noise_kind is not None:
        x = add_noise(x, session_noise(channel, len(x), sample_rate, rng), channel.snr_db)
    if channel.eq:
        x = scipy.signal.sosfilt(np.stack([b.sos(sample_rate) for b in channel.eq]), x)
    if channel.band == "telephone":
        x = telephone_band(x, sample_rate)
    if channel.level_dbfs is not None:
        x = x * (10.0 ** (channel.level_dbfs / 20.0) / math.sqrt(max(_power(x), 1e-30)))
    peak = float(np.max(np.abs(x)))
    if peak > MAX_PEAK:
        x = x * (MAX_PEAK / peak)
    if channel.codec is not None:
        x = codec_round_trip(x, sample_rate, channel.codec, channel.codec_compression)
    return np.clip(x, -1.0, 1.0).astype(np.float32)
