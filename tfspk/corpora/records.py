"""Records shared by the corpus readers: utterances, time-aligned labels and format errors.

All positions are integer sample indices at the utterance's sample rate (16 kHz for every
corpus tfspk reads) and segments are half-open ``[start, end)``.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator, Optional, Sequence


class LocatedError(ValueError):
    """A ValueError about one file (and optionally one line of it).

    The message reads ``<path>:<line>: <reason>`` so that editors and terminals can jump to
    the offending line; ``path``, ``line`` and ``reason`` stay available as attributes.
    """

    def __init__(self, reason: str, path: Optional[os.PathLike | str] = None,
                 line: Optional[int] = None):
        self.reason = reason
        self.path = None if path is None else os.fspath(path)
        self.line = line
        location = ""
        if self.path is not None:
            location = self.path if line is None else f"{self.path}:{line}"
            location += ": "
        super().__init__(location + reason)


class CorpusFormatError(LocatedError):
    """A corpus file or folder does not have the layout or format its reader expects."""


@dataclasses.dataclass(frozen=True)
class Segment:
    """A labelled half-open span ``[start, end)`` of samples."""

    start: int
    end: int
    label: str

    def __post_init__(self):
        if not 0 <= self.start < self.end:
            raise ValueError(
                f"segment {self.label!r} needs 0 <= start < end, got [{self.start}, {self.end})")

    @property
    def num_samples(self) -> int:
        return self.end - self.start


@dataclasses.dataclass(frozen=True)
class PhoneSegment(Segment):
    """One phone of a time alignment (a line of a TIMIT ``.PHN`` file)."""


@dataclasses.dataclass(frozen=True)
class WordSegment(Segment):
    """One word of a time alignment (a line of a TIMIT ``.WRD`` file)."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One utterance of a corpus: where its audio is, who speaks and what is known about it.

    ``start``/``end`` select a half-open span of the audio file in samples (``end=None``: to
    the end of the file), as Kaldi ``segments`` do; ``phones``/``words`` are alignments in
    samples relative to the start of the file; ``meta`` holds corpus-specific fields.
    """

    utt_id: str
    path: str
    speaker: str
    start: int = 0
    end: Optional[int] = None
    phones: Optional[tuple[PhoneSegment, ...]] = None
    words: Optional[tuple[WordSegment, ...]] = None
    text: Optional[str] = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.start < 0 or (self.end is not None and self.end <= self.start):
            raise ValueError(f"utterance {self.utt_id!r} has an empty or negative span "
                             f"[{self.start}, {self.end})")


def check_unique_ids(utterances: Sequence[Utterance], where: os.PathLike | str) -> None:
    """Raises CorpusFormatError naming ``where`` and the id if two utterances share an id."""
    seen: dict[str, str] = {}
    for utt in utterances:
        if utt.utt_id in seen:
            raise CorpusFormatError(
                f"utterance id {utt.utt_id!r} occurs twice ({seen[utt.utt_id]} and {utt.path})",
                where)
        seen[utt.utt_id] = utt.path


def read_table(path: os.PathLike | str, min_fields: int, max_fields: Optional[int] = None, *,
               error: type[LocatedError] = CorpusFormatError,
               max_split: Optional[int] = None) -> Iterator[tuple[int, list[str]]]:
    """Yields ``(line_number, fields)`` for each non-blank line of a whitespace-separated file.

    Line numbers start at 1. ``max_fields`` defaults to ``min_fields`` (pass ``math.inf`` for
    no upper limit). ``max_split`` keeps the rest of a line as the last field (Kaldi
    ``text`` and ``wav.scp`` values may contain spaces). A missing or undecodable file, or a
    line with too few or too many fields, raises ``error`` naming the file and line.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise error("file not found", path)
    with open(path, "rb") as stream:
        raw_lines = stream.read().splitlines()
    for number, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            raise error(f"not valid UTF-8 text ({decode_error.reason})", path, number) from None
        fields = line.split(None, max_split) if max_split else line.split()
        if not fields:
            continue
        upper = max_fields if max_fields is not None else min_fields
        if not min_fields <= len(fields) <= upper:
            expected = (str(min_fields) if upper == min_fields
                        else f"{min_fields} to {upper}")
            raise error(f"expected {expected} fields, found {len(fields)}: {line.strip()!r}",
                        path, number)
        yield number, fields
