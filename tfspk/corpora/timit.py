"""TIMIT reader: ``<TRAIN|TEST>/DR<n>/<SPEAKER>/<UTT>.WAV`` with ``.PHN``, ``.WRD``, ``.TXT``.

The audio is NIST SPHERE (16 kHz, 16-bit), which ``tfspk.audio.load_audio`` reads. Copies of
TIMIT differ in case (LDC discs are upper case, many mirrors lower case) and some add
RIFF conversions named ``SA1.WAV.wav``; names are matched case-insensitively and the
original ``<UTT>.WAV`` is used. Alignments are in samples at 16 kHz.

``.PHN`` files tile the utterance: each phone starts where the previous one ends, the first
at sample 0, with labels from TIMIT-61; anything else is a CorpusFormatError. ``.WRD`` files
leave gaps (pauses carry no word), and their order must not go backwards, but two words may
overlap, since TIMIT's transcribers let neighbouring words share a phone.
"""
from __future__ import annotations

import os
import re
from typing import Optional, Sequence

from tfspk import phones as phone_sets
from tfspk.corpora.records import (CorpusFormatError, PhoneSegment, Utterance,
                                   WordSegment, check_unique_ids, read_table)

SPLITS = ("TRAIN", "TEST")
_DIALECT = re.compile(r"^dr[1-8]$", re.IGNORECASE)
# Speaker folders: sex (F/M), three initials, a digit (e.g. FCJF0, mdab0).
_SPEAKER = re.compile(r"^[fm][a-z]{3}[0-9]$", re.IGNORECASE)


def read_timit(root: os.PathLike | str, split: Optional[str] = None) -> list[Utterance]:
    """Reads every utterance of TIMIT (or of one split), sorted by utterance id.

    Args:
      root: folder that holds ``TRAIN`` and ``TEST`` (any case), or a folder with exactly one
        such folder inside (LDC's ``TIMIT/TIMIT/``, or ``data/``).
      split: ``"TRAIN"``, ``"TEST"`` or None for both (case-insensitive).

    Returns:
      Utterances with ``utt_id = "<SPEAKER>_<UTT>"`` (upper case, e.g. ``FCJF0_SA1``),
      ``speaker`` the speaker folder name in upper case, phones/words/text from the
      ``.PHN``/``.WRD``/``.TXT`` files where present, and
      ``meta = {"split": "TRAIN", "dialect": "DR1", "sex": "F"}``.
    """
    wanted = SPLITS if split is None else (split.upper(),)
    if wanted[0] not in SPLITS:
        raise ValueError(f"split must be None, 'TRAIN' or 'TEST', got {split!r}")
    base = _find_timit_base(os.fspath(root))
    split_dirs = _children_by_upper_name(base)
    utterances = []
    for split_name in wanted:
        if split_name not in split_dirs:
            raise CorpusFormatError(f"no {split_name} folder", base)
        for dialect_dir in sorted(_subdirs(split_dirs[split_name])):
            dialect = os.path.basename(dialect_dir)
            if not _DIALECT.match(dialect):
                raise CorpusFormatError("expected dialect folders DR1 to DR8", dialect_dir)
            for speaker_dir in sorted(_subdirs(dialect_dir)):
                speaker = os.path.basename(speaker_dir)
                if not _SPEAKER.match(speaker):
                    raise CorpusFormatError("not a TIMIT speaker folder (e.g. FCJF0)",
                                            speaker_dir)
                meta = {"split": split_name, "dialect": dialect.upper(),
                        "sex": speaker[0].upper()}
                utterances.extend(_read_speaker(speaker_dir, speaker.upper(), meta))
    if not utterances:
        raise CorpusFormatError("no TIMIT utterances found", base)
    utterances.sort(key=lambda utt: utt.utt_id)
    check_unique_ids(utterances, base)
    return utterances


def read_phn(path: os.PathLike | str) -> tuple[PhoneSegment, ...]:
    """Reads a TIMIT ``.PHN`` file (``start end label`` per line, samples at 16 kHz).

    Raises CorpusFormatError naming file and line for a non-integer position, start >= end,
    a gap or overlap with the previous phone, a first phone not at sample 0, or a label
    outside TIMIT-61; and for an empty file.
    """
    segments = []
    for number, (start, end, label) in _read_segments(path):
        if label.lower() not in phone_sets.FOLD_61_TO_39:
            raise CorpusFormatError(f"unknown phone label {label!r} (not TIMIT-61)",
                                    path, number)
        expected_start = segments[-1].end if segments else 0
        if start != expected_start:
            kind = "overlaps" if start < expected_start else "leaves a gap after"
            what = "the previous phone" if segments else "sample 0"
            raise CorpusFormatError(f"phone {label!r} at {start} {kind} {what} "
                                    f"(expected start {expected_start})", path, number)
        segments.append(PhoneSegment(start, end, label.lower()))
    if not segments:
        raise CorpusFormatError("no phones", path)
    return tuple(segments)


def check_phones_end(wav_path: os.PathLike | str, phones: Sequence, num_samples: int) -> None:
    """Raises CorpusFormatError naming the .PHN file beside `wav_path` (and its last line)
    when the last of `phones` (`PhoneSegment`s or `(start, end, label)` rows, in samples
    of the audio file from its start) ends after the audio's `num_samples`.

    ``read_phn`` cannot see this (it does not read the audio); the probes
    (``probes.data.load_split``) refuse such a corpus and the shard build rejects the
    utterance, rather than clip the alignment or store phones past the audio.
    """
    if not phones:
        return
    last = phones[-1]  # .PHN phones tile the utterance (read_phn): the last one ends it
    end, label = ((last.end, last.label) if isinstance(last, PhoneSegment)
                  else (int(last[1]), str(last[2])))
    if end > num_samples:
        raise CorpusFormatError(
            f"phone {label!r} ends at sample {end}, past the end of the audio "
            f"({num_samples} samples in {os.fspath(wav_path)})", alignment_path(wav_path),
            len(phones))


def alignment_path(wav_path: os.PathLike | str) -> str:
    """The .PHN file beside `wav_path`, its name matched case-insensitively as
    `read_timit` does (`wav_path` itself when there is none)."""
    folder, name = os.path.split(os.fspath(wav_path))
    wanted = name.partition(".")[0].upper() + ".PHN"
    try:
        others = sorted(os.listdir(folder or "."))
    except OSError:
        return os.fspath(wav_path)
    return next((os.path.join(folder, other) for other in others if other.upper() == wanted),
                os.fspath(wav_path))


def read_wrd(path: os.PathLike | str) -> tuple[WordSegment, ...]:
    """Reads a TIMIT ``.WRD`` file (``start end word`` per line, samples at 16 kHz).

    Gaps between words are normal and neighbouring words may overlap; a word starting
    before the previous word's start, a non-integer position or start >= end raises
    CorpusFormatError naming file and line.
    """
    segments = []
    for number, (start, end, word) in _read_segments(path):
        if segments and start < segments[-1].start:
            raise CorpusFormatError(f"word {word!r} starts at {start}, before the previous "
                                    f"word ({segments[-1].start})", path, number)
        segments.append(WordSegment(start, end, word))
    return tuple(segments)


def read_txt(path: os.PathLike | str) -> str:
    """Reads the prompt of a TIMIT ``.TXT`` file (``start end text``) as a string."""
    lines = list(read_table(path, 3, 3, max_split=2))
    if len(lines) != 1:
        raise CorpusFormatError(f"expected one line, found {len(lines)}", path)
    number, (start, end, text) = lines[0]
    _parse_span(start, end, path, number)
    return text.strip()


def _read_segments(path):
    for number, (start, end, label) in read_table(path, 3):
        yield number, (*_parse_span(start, end, path, number), label)


def _parse_span(start: str, end: str, path, number: int) -> tuple[int, int]:
    try:
        first, last = int(start), int(end)
    except ValueError:
        raise CorpusFormatError(f"positions must be integers, got {start!r} {end!r}",
                                path, number) from None
    if not 0 <= first < last:
        raise CorpusFormatError(f"need 0 <= start < end, got start {first} end {last}",
                                path, number)
    return first, last


def _read_speaker(speaker_dir: str, speaker: str, meta: dict) -> list[Utterance]:
    # Group the speaker's files by utterance name and extension, both upper-cased, keeping
    # only the primary extension ("SA1.WAV", not the "SA1.WAV.wav" conversions).
    files: dict[str, dict[str, str]] = {}
    for name in os.listdir(speaker_dir):
        stem, dot, extension = name.partition(".")
        if dot and "." not in extension:
            files.setdefault(stem.upper(), {})[extension.upper()] = os.path.join(
                speaker_dir, name)
    utterances = []
    for utt_name, by_extension in sorted(files.items()):
        if "WAV" not in by_extension:
            if {"PHN", "WRD", "TXT"} & set(by_extension):
                raise CorpusFormatError(f"utterance {utt_name} has transcriptions but no "
                                        ".WAV file", speaker_dir)
            continue
        phn, wrd, txt = (by_extension.get(key) for key in ("PHN", "WRD", "TXT"))
        utterances.append(Utterance(
            utt_id=f"{speaker}_{utt_name}",
            path=by_extension["WAV"],
            speaker=speaker,
            phones=read_phn(phn) if phn else None,
            words=read_wrd(wrd) if wrd else None,
            text=read_txt(txt) if txt else None,
            meta=dict(meta)))
    return utterances


def _find_timit_base(root: str) -> str:
    if not os.path.isdir(root):
        raise CorpusFormatError("TIMIT folder not found", root)
    if set(SPLITS) & set(_children_by_upper_name(root)):
        return root
    inner = [path for path in _subdirs(root)
             if set(SPLITS) & set(_children_by_upper_name(path))]
    if len(inner) != 1:
        raise CorpusFormatError("expected TRAIN/ and TEST/ folders here or in exactly one "
                                "subfolder", root)
    return inner[0]


def _subdirs(folder: str) -> Sequence[str]:
    return [entry.path for entry in os.scandir(folder) if entry.is_dir()]


def _children_by_upper_name(folder: str) -> dict[str, str]:
    return {os.path.basename(path).upper(): path for path in _subdirs(folder)}
