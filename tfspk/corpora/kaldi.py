"""Kaldi data directory reader: ``wav.scp``, ``utt2spk``, ``spk2utt``, ``segments``, ``text``.

Only plain file paths are supported in ``wav.scp``; Kaldi's piped commands
(``<rec> sox in.flac -t wav - |``) and ark offsets are rejected with a CorpusFormatError
saying so: convert such audio to files first. Relative paths are resolved against
``base_dir`` (Kaldi resolves them against the working directory of the recipe, usually the
folder two levels above the data directory, which is the default here).

``segments`` lines (``<utt> <rec> <start-s> <end-s>``, end ``-1`` meaning the end of the
recording) are converted from seconds to sample positions at ``sample_rate`` (16 kHz by
default): ``start = round(start_s * rate)``, ``end = round(end_s * rate)``, giving the
half-open span ``[start, end)`` that ``tfspk.audio.load_audio(..., start=, end=)`` reads.
"""
from __future__ import annotations

import math
import os
from typing import Optional

from tfspk.corpora.records import CorpusFormatError, Utterance, read_table


def read_data_dir(data_dir: os.PathLike | str, sample_rate: int = 16000,
                  base_dir: Optional[os.PathLike | str] = None) -> list[Utterance]:
    """Reads a Kaldi data directory into utterances, in ``utt2spk`` order.

    Args:
      data_dir: folder with ``wav.scp`` and ``utt2spk``; ``spk2utt``, ``segments`` and
        ``text`` are read when present.
      sample_rate: rate (Hz) at which ``segments`` times become sample positions.
      base_dir: folder that relative ``wav.scp`` paths are relative to; default: the
        parent of the data directory's parent (the recipe folder for ``data/train``).

    Returns:
      Utterances; with ``segments`` each carries ``start``/``end`` in samples and
      ``meta={"recording": <rec-id>}``; ``text`` holds the ``text`` file's transcript.

    Raises:
      CorpusFormatError naming file and line for a piped or missing ``wav.scp`` entry,
      duplicate keys, an utterance without audio or speaker, ``spk2utt`` disagreeing with
      ``utt2spk``, or a bad ``segments`` time.
    """
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise CorpusFormatError("Kaldi data directory not found", data_dir)
    if base_dir is None:
        base_dir = os.path.dirname(os.path.dirname(os.path.abspath(data_dir)))
    join = lambda name: os.path.join(data_dir, name)  # noqa: E731

    recordings = _read_wav_scp(join("wav.scp"), os.fspath(base_dir))
    utt2spk = _read_mapping(join("utt2spk"))
    if os.path.exists(join("spk2utt")):
        _check_spk2utt(join("spk2utt"), join("utt2spk"), utt2spk)
    text = _read_mapping(join("text"), rest_of_line=True) if os.path.exists(
        join("text")) else {}

    if os.path.exists(join("segments")):
        spans = _read_segments(join("segments"), recordings, sample_rate)
    else:
        spans = {rec: (rec, 0, None) for rec in recordings}
    source = "segments" if os.path.exists(join("segments")) else "wav.scp"
    for utt_id, (number, _) in utt2spk.items():
        if utt_id not in spans:
            raise CorpusFormatError(f"utterance {utt_id!r} has no entry in {source}",
                                    join("utt2spk"), number)
    for utt_id, (number, _) in text.items():
        if utt_id not in utt2spk:
            raise CorpusFormatError(f"utterance {utt_id!r} is not in utt2spk", join("text"),
                                    number)

    utterances = []
    for utt_id, (_, speaker) in utt2spk.items():
        recording, start, end = spans[utt_id]
        utterances.append(Utterance(
            utt_id=utt_id, path=recordings[recording][1], speaker=speaker, start=start,
            end=end, text=text[utt_id][1] if utt_id in text else None,
            meta={"recording": recording} if source == "segments" else {}))
    if not utterances:
        raise CorpusFormatError("no utterances", join("utt2spk"))
    return utterances


def _read_mapping(path: str, rest_of_line: bool = False) -> dict[str, tuple[int, str]]:
    """``key value`` file -> {key: (line number, value)}; duplicate keys are errors."""
    mapping: dict[str, tuple[int, str]] = {}
    rows = (read_table(path, 1, 2, max_split=1) if rest_of_line else read_table(path, 2))
    for number, fields in rows:
        key, value = fields[0], (fields[1].strip() if len(fields) > 1 else "")
        if key in mapping:
            raise CorpusFormatError(f"{key!r} already appears on line {mapping[key][0]}",
                                    path, number)
        mapping[key] = (number, value)
    return mapping


def _read_wav_scp(path: str, base_dir: str) -> dict[str, tuple[int, str]]:
    if not os.path.exists(path):
        raise CorpusFormatError("wav.scp not found (every Kaldi data directory needs one)",
                                path)
    recordings = {}
    for key, (number, location) in _read_mapping(path, rest_of_line=True).items():
        if not location:
            raise CorpusFormatError(f"recording {key!r} has no path", path, number)
        if location.endswith("|") or location == "-":
            raise CorpusFormatError(
                f"recording {key!r} is a piped command ({location!r}); only plain paths "
                "are supported: write the audio to files and list their paths", path, number)
        full_path = os.path.normpath(os.path.join(base_dir, location))
        if not os.path.isfile(full_path):
            raise CorpusFormatError(f"audio of recording {key!r} not found: {full_path} "
                                    "(only plain paths are supported, not ark offsets)",
                                    path, number)
        recordings[key] = (number, full_path)
    return recordings


def _check_spk2utt(path: str, utt2spk_path: str,
                   utt2spk: dict[str, tuple[int, str]]) -> None:
    listed: dict[str, str] = {}
    for number, fields in read_table(path, 2, math.inf):
        speaker = fields[0]
        for utt_id in fields[1:]:
            if utt_id in listed:
                raise CorpusFormatError(f"utterance {utt_id!r} is listed twice", path, number)
            if utt_id not in utt2spk:
                raise CorpusFormatError(f"utterance {utt_id!r} is not in utt2spk", path,
                                        number)
            if utt2spk[utt_id][1] != speaker:
                raise CorpusFormatError(
                    f"utterance {utt_id!r} belongs to speaker {speaker!r} here but to "
                    f"{utt2spk[utt_id][1]!r} in utt2spk", path, number)
            listed[utt_id] = speaker
    for utt_id, (number, _) in utt2spk.items():
        if utt_id not in listed:
            raise CorpusFormatError(f"utterance {utt_id!r} is missing from spk2utt",
                                    utt2spk_path, number)


def _read_segments(path: str, recordings: dict, sample_rate: int
                   ) -> dict[str, tuple[str, int, Optional[int]]]:
    spans: dict[str, tuple[str, int, Optional[int]]] = {}
    lines: dict[str, int] = {}
    for number, (utt_id, recording, start_s, end_s) in read_table(path, 4):
        if utt_id in lines:
            raise CorpusFormatError(f"{utt_id!r} already appears on line {lines[utt_id]}",
                                    path, number)
        if recording not in recordings:
            raise CorpusFormatError(f"recording {recording!r} is not in wav.scp", path,
                                    number)
        try:
            start_seconds, end_seconds = float(start_s), float(end_s)
        except ValueError:
            raise CorpusFormatError(f"times must be numbers, got {start_s!r} {end_s!r}",
                                    path, number) from None
        finite = math.isfinite(start_seconds) and math.isfinite(end_seconds)
        start = round(start_seconds * sample_rate) if finite else -1
        end = None if end_seconds == -1 or not finite else round(end_seconds * sample_rate)
        if not (start >= 0 and (end is None or end > start)):
            raise CorpusFormatError(f"need 0 <= start < end (or end -1), got {start_s} "
                                    f"{end_s}", path, number)
        spans[utt_id] = (recording, start, end)
        lines[utt_id] = number
    return spans
