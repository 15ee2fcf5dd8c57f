"""LibriSpeech flat folders: `SPEAKER-CHAPTER-UTTERANCE.flac` files and `SPEAKERS.TXT`.

The layout of `../shared/data/librispeech-251` (one recording per speaker); any folder of
LibriSpeech FLAC files with the corpus's `SPEAKERS.TXT` beside them reads the same way.
"""
from __future__ import annotations

import os
import pathlib
import re

from tfspk.corpora.records import CorpusFormatError, Utterance

FILE_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)\.flac$")


def read_speaker_sexes(path: os.PathLike | str) -> dict[str, str]:
    """Speaker id -> 'F' or 'M' from LibriSpeech's pipe-separated `SPEAKERS.TXT`.

    Lines starting with ';' are comments. Raises CorpusFormatError naming file and line.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CorpusFormatError("file not found", path)
    sexes = {}
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip() or line.lstrip().startswith(";"):
                continue
            fields = [field.strip() for field in line.split("|")]
            if len(fields) < 2 or not fields[0].isdigit():
                raise CorpusFormatError(f"expected 'ID | SEX | ...', got {line.strip()!r}",
                                        path, number)
            if fields[1] not in ("F", "M"):
                raise CorpusFormatError(f"sex must be F or M, got {fields[1]!r}", path, number)
            sexes[fields[0]] = fields[1]
    return sexes


def read_librispeech_folder(directory: os.PathLike | str, max_files: int = 0
                            ) -> list[Utterance]:
    """The folder's FLAC files (sorted by name) as utterances with `meta={"sex": ...}`;
    `utt_id` is the file stem (`103-1240-0000`). `max_files` > 0 keeps the first that many.

    Raises:
      CorpusFormatError naming the folder or file: no FLAC files, a name not in
      LibriSpeech's pattern, or a speaker missing from SPEAKERS.TXT.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise CorpusFormatError("not a directory", directory)
    paths = sorted(directory.glob("*.flac"))
    if not paths:
        raise CorpusFormatError("no .flac files", directory)
    if max_files > 0:
        paths = paths[:max_files]
    sexes = read_speaker_sexes(directory / "SPEAKERS.TXT")
    utterances = []
    for path in paths:
        match = FILE_NAME.match(path.name)
        if not match:
            raise CorpusFormatError("name is not SPEAKER-CHAPTER-UTTERANCE.flac", path)
        speaker = match.group(1)
        if speaker not in sexes:
            raise CorpusFormatError(f"speaker {speaker} is not in SPEAKERS.TXT", path)
        utterances.append(Utterance(utt_id=path.stem, path=str(path), speaker=speaker,
                                    meta={"sex": sexes[speaker]}))
    return utterances
