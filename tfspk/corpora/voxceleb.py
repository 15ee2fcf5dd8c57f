"""VoxCeleb1/2 reader and the VoxCeleb1 identification split.

VoxCeleb1 unpacks to ``wav/<speaker>/<session>/<n>.wav`` (16 kHz WAV); VoxCeleb2 to
``aac/<speaker>/<session>/<n>.m4a`` (test) or ``dev/aac/...`` (dev), decoded with PyAV. An
utterance's id is its path below the ``wav``/``aac`` folder without extension, e.g.
``id10270/5r0dWxy17C8/00001``: the form the trial lists use once their extension is
stripped (``tfspk.trials``).
"""
from __future__ import annotations

import os
from typing import Iterable

from tfspk.corpora.records import CorpusFormatError, Utterance, check_unique_ids, read_table

#: Audio folders looked for below the root, with the extension of their files.
AUDIO_FOLDERS = (("wav", ".wav"), ("aac", ".m4a"), ("dev/wav", ".wav"), ("test/wav", ".wav"),
                 ("dev/aac", ".m4a"), ("test/aac", ".m4a"))

#: Codes of the first column of ``iden_split.txt``.
IDEN_SUBSETS = {"1": "train", "2": "dev", "3": "test"}


def read_voxceleb(root: os.PathLike | str) -> list[Utterance]:
    """Reads the VoxCeleb1 or VoxCeleb2 utterances under ``root``, sorted by id.

    ``root`` holds ``wav/`` (VoxCeleb1), ``aac/`` or ``dev/aac/`` (VoxCeleb2), or several
    of them (dev and test unpacked side by side). Each utterance has
    ``utt_id = "<speaker>/<session>/<n>"``, ``speaker`` the speaker folder (``id10270``)
    and ``meta = {"session": <session>}``. Audio files at any other depth, or no audio at
    all, raise CorpusFormatError; other files (READMEs, checksums) are ignored.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise CorpusFormatError("VoxCeleb folder not found", root)
    folders = [(os.path.join(root, name), extension) for name, extension in AUDIO_FOLDERS
               if os.path.isdir(os.path.join(root, name))]
    if not folders:
        raise CorpusFormatError("no wav/, aac/ or dev/aac/ folder (VoxCeleb layout "
                                "wav/<speaker>/<session>/<n>.wav)", root)
    utterances = []
    for folder, extension in folders:
        utterances.extend(_read_audio_folder(folder, extension))
    if not utterances:
        raise CorpusFormatError("no VoxCeleb audio files found", root)
    utterances.sort(key=lambda utt: utt.utt_id)
    check_unique_ids(utterances, root)
    return utterances


def _read_audio_folder(folder: str, extension: str) -> Iterable[Utterance]:
    for directory, subdirs, names in os.walk(folder):
        subdirs.sort()
        for name in sorted(names):
            if not name.lower().endswith(extension):
                continue
            relative = os.path.relpath(os.path.join(directory, name), folder)
            parts = relative.split(os.sep)
            if len(parts) != 3:
                raise CorpusFormatError(
                    f"audio file at the wrong depth (expected <speaker>/<session>/<n>"
                    f"{extension})", os.path.join(directory, name))
            speaker, session, _ = parts
            yield Utterance(utt_id="/".join(parts)[:-len(extension)],
                            path=os.path.join(directory, name), speaker=speaker,
                            meta={"session": session})


def read_iden_split(path: os.PathLike | str) -> dict[str, str]:
    """Reads VoxCeleb1's ``iden_split.txt`` (``<1|2|3> id10001/1zcIwhmdeo4/00001.wav``).

    Returns ``{utt_id: "train" | "dev" | "test"}`` with ids in ``read_voxceleb`` form
    (extension stripped). Unknown codes, malformed lines and repeated utterances raise
    CorpusFormatError naming file and line.
    """
    split: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, (code, file_name) in read_table(path, 2):
        if code not in IDEN_SUBSETS:
            raise CorpusFormatError(f"subset code must be 1, 2 or 3, got {code!r}", path,
                                    number)
        utt_id = os.path.splitext(file_name)[0]
        if utt_id in lines:
            raise CorpusFormatError(f"{file_name!r} already appears on line "
                                    f"{lines[utt_id]}", path, number)
        split[utt_id] = IDEN_SUBSETS[code]
        lines[utt_id] = number
    if not split:
        raise CorpusFormatError("no utterances", path)
    return split


def apply_iden_split(utterances: Iterable[Utterance], split: dict[str, str],
                     split_path: os.PathLike | str = "iden_split.txt"
                     ) -> dict[str, list[Utterance]]:
    """Groups utterances by their ``read_iden_split`` subset ({"train", "dev", "test"}).

    Raises CorpusFormatError (naming ``split_path``) for an utterance the split does not
    list, or for split entries with no utterance on disk.
    """
    subsets: dict[str, list[Utterance]] = {name: [] for name in IDEN_SUBSETS.values()}
    found = set()
    for utt in utterances:
        if utt.utt_id not in split:
            raise CorpusFormatError(f"utterance {utt.utt_id!r} ({utt.path}) is not listed",
                                    split_path)
        subsets[split[utt.utt_id]].append(utt)
        found.add(utt.utt_id)
    missing = sorted(set(split) - found)
    if missing:
        raise CorpusFormatError(f"{len(missing)} listed utterances have no audio, e.g. "
                                f"{missing[0]!r}", split_path)
    return subsets
