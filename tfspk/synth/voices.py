"""Random synthetic speakers: each one is an espeak-ng voice file.

A `Voice` combines an English accent (the language file espeak-ng ships, copied into the
voice file) with voice-quality settings: pitch base and range, per-formant frequency /
strength / width scaling, flutter, roughness, breathiness, voicing and consonant levels and
speaking speed. `random_voice(rng, spread)` draws them around a neutral male or female voice;
`spread` (0 = every speaker of one sex identical, 1 = the default ranges, >1 wider) scales
every continuous deviation and how often a non-US accent is used. Sex is always drawn 50/50.

`random_jitter` gives the small per-utterance rate / pitch variation of one speaker.

`engine` picks the voice-production method: "espeak" (espeak-ng's own formant engine) or
"klatt1".."klatt4" (espeak-ng's Klatt cascade/parallel synthesizer, variant N, written as
`klatt N` in the voice file). It is not drawn, so a voice's other values, and every
random stream, are the same whatever the engine.
"""
import dataclasses
import os

import numpy as np

from tfspk.synth.espeak import data_path

# Accent name -> (language file under espeak-ng-data/lang, rhotic?).
ACCENTS = {
    "en-us": ("gmw/en-US", True),
    "en-gb": ("gmw/en", False),
    "en-gb-x-rp": ("gmw/en-GB-x-rp", False),
    "en-gb-scotland": ("gmw/en-GB-scotland", True),
    "en-gb-x-gbclan": ("gmw/en-GB-x-gbclan", False),
    "en-gb-x-gbcwmd": ("gmw/en-GB-x-gbcwmd", False),
    "en-029": ("gmw/en-029", False),
    "en-us-nyc": ("gmw/en-US-nyc", False),
}
NEUTRAL_ACCENT = "en-us"
ENGINES = ("espeak", "klatt1", "klatt2", "klatt3", "klatt4")
NUM_FORMANTS = 9  # espeak-ng formants 0..8; 0..5 are varied, 6..8 follow formant 5

# Neutral voices (close to espeak-ng's own male/female variants); pitch in Hz.
_NEUTRAL = {
    "M": {"pitch_base": 82.0, "pitch_range": 36.0, "formant_scale": 100.0},
    "F": {"pitch_base": 150.0, "pitch_range": 70.0, "formant_scale": 110.0},
}
# Standard deviations at spread 1.
_SD = {"pitch_base_fraction": 0.12, "pitch_range_fraction": 0.3, "formant_freq": 6.0,
       "formant_strength": 15.0, "formant_width": 25.0, "flutter": 8.0, "roughness": 1.5,
       "breath": 3.0, "voicing": 12.0, "consonants": 15.0, "speed": 8.0}


def check_engine(engine):
    """Raises ValueError unless `engine` is one of `ENGINES`."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known: {list(ENGINES)}")


@dataclasses.dataclass(frozen=True)
class Voice:
    """One synthetic speaker's voice (values as written into the espeak-ng voice file)."""
    accent: str
    sex: str  # "M" or "F"
    pitch_base: int  # Hz
    pitch_top: int  # Hz
    formants: tuple  # NUM_FORMANTS x (frequency %, strength %, width %)
    flutter: int
    roughness: int
    breath: int
    voicing: int  # %
    consonants: int  # %
    speed: int  # %
    engine: str = "espeak"  # one of ENGINES

    def __post_init__(self):
        check_engine(self.engine)

    @property
    def rhotic(self):
        return ACCENTS[self.accent][1]

    def voice_file_text(self):
        """espeak-ng voice file: the accent's language file, then this voice's settings."""
        language_file = os.path.join(data_path(), "lang", ACCENTS[self.accent][0])
        with open(language_file, encoding="utf-8") as handle:
            lines = [handle.read().rstrip("\n"), ""]
        lines.append(f"gender {'male' if self.sex == 'M' else 'female'}")
        lines.append(f"pitch {self.pitch_base} {self.pitch_top}")
        lines += [f"formant {number} {freq} {strength} {width}"
                  for number, (freq, strength, width) in enumerate(self.formants)]
        lines.append(f"flutter {self.flutter}")
        lines.append(f"roughness {self.roughness}")
        if self.breath:
            lines.append("breath 0 " + " ".join([str(self.breath)] * 7))
        lines.append(f"voicing {self.voicing}")
        lines.append(f"consonants {self.consonants} {self.consonants}")
        lines.append(f"speed {self.speed}")
        if self.engine != "espeak":  # absent for espeak: its voice files stay byte-identical
            lines.append(f"klatt {self.engine[len('klatt'):]}")
        return "\n".join(lines) + "\n"

    def write(self, path):
        """Write the voice file to `path` (espeak-ng wants an absolute path to load it)."""
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.voice_file_text())
        return os.path.abspath(path)


@dataclasses.dataclass(frozen=True)
class Jitter:
    """Per-utterance synthesis parameters (espeak_SetParameter units)."""
    rate_wpm: int
    pitch: int  # 0..100, 50 = the voice's own pitch
    pitch_range: int  # 0..100, 50 = the voice's own range


def random_voice(rng, spread=1.0, accent=None, sex=None, engine="espeak"):
    """Draw a `Voice` with `rng` (numpy Generator); `spread` >= 0 scales the deviations;
    `engine` (one of `ENGINES`, checked by `Voice`) draws nothing."""
    if spread < 0:
        raise ValueError(f"spread must be >= 0, got {spread}")
    if accent is not None and accent not in ACCENTS:
        raise ValueError(f"unknown accent {accent!r}; known: {sorted(ACCENTS)}")
    # Draw everything unconditionally so that one speaker's values do not shift the stream.
    draws = rng.standard_normal(32)
    accent_draw, sex_draw = rng.random(2)
    accent_index = rng.integers(len(ACCENTS))
    if sex is None:
        sex = "M" if sex_draw < 0.5 else "F"
    if accent is None:
        accent = (list(ACCENTS)[accent_index] if accent_draw < min(1.0, 0.5 * spread)
                  else NEUTRAL_ACCENT)
    neutral = _NEUTRAL[sex]
    deviation = iter(draws * spread)

    pitch_base = neutral["pitch_base"] * np.exp(_SD["pitch_base_fraction"] * next(deviation))
    pitch_range = neutral["pitch_range"] * np.exp(_SD["pitch_range_fraction"] * next(deviation))
    formants = []
    for _ in range(6):
        formants.append((
            int(round(neutral["formant_scale"] + _SD["formant_freq"] * next(deviation))),
            int(round(np.clip(100 + _SD["formant_strength"] * next(deviation), 40, 200))),
            int(round(np.clip(100 + _SD["formant_width"] * next(deviation), 40, 250)))))
    formants += [(formants[5][0], 100, 100)] * (NUM_FORMANTS - 6)
    return Voice(
        accent=accent, sex=sex,
        pitch_base=int(round(pitch_base)), pitch_top=int(round(pitch_base + pitch_range)),
        formants=tuple(formants),
        flutter=int(round(np.clip(8 + _SD["flutter"] * next(deviation), 0, 40))),
        roughness=int(round(np.clip(2 + _SD["roughness"] * next(deviation), 0, 7))),
        breath=int(round(np.clip(abs(_SD["breath"] * next(deviation)), 0, 12))),
        voicing=int(round(np.clip(100 + _SD["voicing"] * next(deviation), 50, 150))),
        consonants=int(round(np.clip(100 + _SD["consonants"] * next(deviation), 50, 160))),
        speed=int(round(np.clip(100 + _SD["speed"] * next(deviation), 75, 130))),
        engine=engine,
    )


def random_jitter(rng, scale=1.0):
    """Small per-utterance variation: rate +-4%, pitch +-4 and range +-6 (of 100), 1 sd."""
    rate, pitch, pitch_range = rng.standard_normal(3) * scale
    return Jitter(rate_wpm=int(round(175 * np.exp(0.04 * rate))),
                  pitch=int(round(np.clip(50 + 4 * pitch, 0, 100))),
                  pitch_range=int(round(np.clip(50 + 6 * pitch_range, 0, 100))))
