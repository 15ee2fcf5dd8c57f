"""The per-utterance step shared by the local build and the Beam pipeline.

`encode_utterance` loads one planned utterance (`tfspk.audio.load_audio`, which also
catches truncated and header-lying files), checks it (`check_audio`) and serialises
it with `tfspk.schema`, or returns the reason it is rejected. It never raises for
bad audio (a build must finish and account for every input), and never turns a bug
into a reject.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import soundfile

from tfspk.shards.planning import PlanItem


@dataclasses.dataclass(frozen=True)
class EncodeOptions:
    """How audio is turned into stored PCM.

    `resample=False` rejects files whose rate differs from `sample_rate`;
    `downmix=False` rejects multi-channel files.
    """

    sample_rate: int = 16000
    resample: bool = True
    downmix: bool = False
    min_seconds: float = 0.5


@dataclasses.dataclass(frozen=True)
class EncodedUtterance:
    """The outcome for one PlanItem: `serialized` set, or `reason` set. `order` is the
    item's place in its shard (`PlanItem.order`), so a runner that regroups outcomes can
    write them in plan order."""

    position: int
    shard: int
    utt_id: str
    path: str
    speaker: str
    label: int
    num_samples: int = 0
    serialized: bytes | None = None
    reason: str | None = None
    order: int = 0

    @property
    def rejected(self) -> bool:
        return self.serialized is None


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16. Exact inverse of soundfile's int16 -> float
    scaling (x / 32768), so 16-bit input round-trips bit for bit."""
    from tfspk import audio

    return audio.float_to_int16(samples)


def _reason(error: Exception) -> str:
    """`<code>: <detail>` for rejects.tsv (which has its own path column); the code
    is AudioError's machine-readable reason, or the exception type."""
    from tfspk import audio

    return audio.reject_reason(error)


def encode_utterance(item: PlanItem, options: EncodeOptions) -> EncodedUtterance:
    """Loads, checks and serialises one utterance; bad input yields a reason."""
    from tfspk import audio, schema

    base = dict(position=item.position, shard=item.shard, utt_id=item.utt_id,
                path=item.path, speaker=item.speaker, label=item.label, order=item.order)
    if item.reject:
        return EncodedUtterance(**base, reason=item.reject)
    try:
        samples, rate = audio.load_audio(
            item.path, options.sample_rate, resample=options.resample,
            downmix=options.downmix, start=item.start, end=item.end)
        audio.check_audio(samples, rate, item.path, min_seconds=options.min_seconds)
        native_rate = rate
        if item.phones:
            info = soundfile.info(item.path)
            native_rate = int(info.samplerate)
            past_end = _phones_past_end(item, int(info.frames))
            if past_end:
                return EncodedUtterance(**base, reason=past_end)
        phones = _phones_at_rate(item, native_rate, rate)
        pcm16 = to_pcm16(samples)
        serialized = schema.serialize_example(
            item.utt_id, item.speaker, item.label, pcm16, rate, phones)
    except (ValueError, OSError, soundfile.SoundFileError) as error:
        # Bad input only (AudioError and the schema's checks are ValueErrors, unreadable
        # files OSError or soundfile's): a programming error (TypeError, KeyError, ...)
        # propagates and stops the build instead of turning every file into a reject.
        return EncodedUtterance(**base, reason=_reason(error))
    return EncodedUtterance(**base, num_samples=int(pcm16.shape[0]), serialized=serialized)


def _phones_past_end(item: PlanItem, num_frames: int) -> str | None:
    """The reject reason (`phones_past_end: <.PHN file>:<line>: ... <both lengths>`) when
    the alignment's last phone ends after the `num_frames` samples of the audio file, which
    would otherwise be stored as is; None when it fits."""
    from tfspk.corpora import timit
    from tfspk.corpora.records import CorpusFormatError

    try:
        timit.check_phones_end(item.path, item.phones, num_frames)
    except CorpusFormatError as error:
        return "phones_past_end: " + " ".join(str(error).split())
    return None


def _phones_at_rate(item: PlanItem, from_rate: int, to_rate: int):
    """Phones moved to the output rate (as `start`/`end` already are, see
    `tfspk.audio.load_audio`) and made relative to the utterance start."""
    phones = []
    for start, end, label in item.phones:
        if from_rate != to_rate:
            start = int(round(start * to_rate / from_rate))
            end = int(round(end * to_rate / from_rate))
        phones.append((start - item.start, end - item.start, label))
    return phones
