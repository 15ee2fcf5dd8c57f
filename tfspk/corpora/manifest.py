"""Manifest reader: a TSV of ``path<TAB>speaker[<TAB>utt_id]``, one utterance a line.

The simplest way to bring any corpus to tfspk. Relative paths are resolved against the
manifest's own folder, so a manifest travels with its audio. Without a third column the
utterance id is the path as written, extension removed (``spk1/a.wav`` -> ``spk1/a``).
Blank lines and lines starting with ``#`` are skipped, and so is a first line that is the
header ``path<TAB>speaker[<TAB>utt_id]``.
"""
from __future__ import annotations

import os

from tfspk.corpora.records import CorpusFormatError, Utterance

HEADER = ("path", "speaker", "utt_id")


def read_manifest(tsv: os.PathLike | str, check_exists: bool = True) -> list[Utterance]:
    """Reads a manifest into utterances, in file order.

    Raises CorpusFormatError naming file and line for a line without exactly 2 or 3
    tab-separated non-empty fields, a repeated utterance id, or (with ``check_exists``) an
    audio file that does not exist.
    """
    tsv = os.fspath(tsv)
    if not os.path.isfile(tsv):
        raise CorpusFormatError("file not found", tsv)
    folder = os.path.dirname(os.path.abspath(tsv))
    utterances = []
    lines: dict[str, int] = {}
    with open(tsv, encoding="utf-8", newline="") as stream:
        try:
            text_lines = stream.read().splitlines()
        except UnicodeDecodeError as error:
            raise CorpusFormatError(f"not valid UTF-8 text ({error.reason})", tsv) from None
    for number, line in enumerate(text_lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [field.strip() for field in line.split("\t")]
        if number == 1 and tuple(fields) == HEADER[:len(fields)]:
            continue
        if len(fields) not in (2, 3) or not all(fields):
            raise CorpusFormatError(
                f"expected path<TAB>speaker[<TAB>utt_id], got {line!r}", tsv, number)
        written_path, speaker = fields[:2]
        utt_id = fields[2] if len(fields) == 3 else os.path.splitext(written_path)[0]
        if utt_id in lines:
            raise CorpusFormatError(f"utterance id {utt_id!r} already appears on line "
                                    f"{lines[utt_id]}", tsv, number)
        path = os.path.normpath(os.path.join(folder, written_path))
        if check_exists and not os.path.isfile(path):
            raise CorpusFormatError(f"audio file not found: {path}", tsv, number)
        lines[utt_id] = number
        utterances.append(Utterance(utt_id=utt_id, path=path, speaker=speaker))
    if not utterances:
        raise CorpusFormatError("no utterances", tsv)
    return utterances
