"""VoxCeleb1/2 reader and the VoxCeleb1 identification split.

VoxCeleb1 unpacks to ``wav/<speaker>/<session>/<n>.wav`` (16 kHz WAV); VoxCeleb2 to
``aac/<speaker>/<session>/<n>.m4a`` (test) or ``dev/aac/...`` (dev), decoded with PyAV. An
utterance's id is its path below the ``wav``/``aac`` folder without extension, e.g.
``id10270/5r0dWxy17C8/00001``: the form the trial lists use once their extension is
stripped (``tfspk.trials``).

``vox1_meta.csv`` (tab-separated ``VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set``)
says which speakers form the ``dev`` and which the ``test`` part; ``read_voxceleb(root,
subset=...)`` uses it to take one part out of a single tree holding both.
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

#: File name of the VoxCeleb1 speaker table, and the columns ``read_vox1_meta`` uses.
META_FILENAME = "vox1_meta.csv"
META_ID_COLUMN = "VoxCeleb1 ID"
META_SET_COLUMN = "Set"
#: Values of the ``Set`` column: the verification development and test speakers.
META_SETS = ("dev", "test")


def read_voxceleb(root: os.PathLike | str, subset: str | None = None,
                  meta_path: os.PathLike | str | None = None) -> list[Utterance]:
    """Reads the VoxCeleb1 or VoxCeleb2 utterances under ``root``, sorted by id.

    ``root`` holds ``wav/`` (VoxCeleb1), ``aac/`` or ``dev/aac/`` (VoxCeleb2), or several
    of them (dev and test unpacked side by side). Each utterance has
    ``utt_id = "<speaker>/<session>/<n>"``, ``speaker`` the speaker folder (``id10270``)
    and ``meta = {"session": <session>}``. Audio files at any other depth, or no audio at
    all, raise CorpusFormatError; other files (READMEs, checksums) are ignored.

    ``subset`` ("dev" or "test") keeps only the speakers whose ``Set`` in ``meta_path``
    (default: ``find_vox1_meta(root)``) is that subset. A speaker on disk that the table
    does not list, or a subset with no audio, raises CorpusFormatError.
    """
    if subset is not None and subset not in META_SETS:
        raise ValueError(f"subset must be one of {META_SETS} or None, got {subset!r}")
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
    if subset is None:
        return utterances
    meta_path = os.fspath(meta_path) if meta_path is not None else find_vox1_meta(root)
    return select_subset(utterances, read_vox1_meta(meta_path), subset, meta_path)


def find_vox1_meta(root: os.PathLike | str) -> str:
    """``<root>/vox1_meta.csv``, else ``<root>/../vox1_meta.csv`` (the table beside
    ``vox1_dev_wav/`` and ``vox1_test_wav/``); CorpusFormatError when neither exists."""
    root = os.fspath(root)
    candidates = [os.path.join(root, META_FILENAME),
                  os.path.join(os.path.dirname(os.path.abspath(root)), META_FILENAME)]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise CorpusFormatError(f"no {META_FILENAME} to select a subset with (looked for "
                            f"{' and '.join(candidates)}); pass its path", root)


def read_vox1_meta(path: os.PathLike | str) -> dict[str, str]:
    """Reads ``vox1_meta.csv``: ``{speaker id: "dev" | "test"}``.

    The file is tab-separated with a header row naming at least the ``VoxCeleb1 ID``
    and ``Set`` columns; fields are stripped of surrounding spaces. A missing header
    column, a row with another number of fields than the header, an unknown ``Set``
    value or a repeated speaker raises CorpusFormatError naming file and line.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CorpusFormatError("file not found", path)
    with open(path, "rb") as stream:
        raw_lines = stream.read().splitlines()
    sets: dict[str, str] = {}
    lines: dict[str, int] = {}
    header: list[str] | None = None
    for number, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise CorpusFormatError(f"not valid UTF-8 text ({error.reason})", path,
                                    number) from None
        if not line.strip():
            continue
        fields = [field.strip() for field in line.rstrip().split("\t")]
        if header is None:
            header = fields
            missing = [c for c in (META_ID_COLUMN, META_SET_COLUMN) if c not in header]
            if missing:
                raise CorpusFormatError(
                    f"header lacks column(s) {missing} (expected tab-separated "
                    f"{META_ID_COLUMN!r} ... {META_SET_COLUMN!r}), got {line.strip()!r}",
                    path, number)
            id_index, set_index = header.index(META_ID_COLUMN), header.index(META_SET_COLUMN)
            continue
        if len(fields) != len(header):
            raise CorpusFormatError(f"expected {len(header)} tab-separated fields like the "
                                    f"header, found {len(fields)}: {line.strip()!r}",
                                    path, number)
        speaker, subset = fields[id_index], fields[set_index]
        if subset not in META_SETS:
            raise CorpusFormatError(f"{META_SET_COLUMN} must be one of {META_SETS}, got "
                                    f"{subset!r}", path, number)
        if speaker in lines:
            raise CorpusFormatError(f"speaker {speaker!r} already appears on line "
                                    f"{lines[speaker]}", path, number)
        sets[speaker] = subset
        lines[speaker] = number
    if not sets:
        raise CorpusFormatError("no speakers" if header else "empty file", path)
    return sets


def select_subset(utterances: Iterable[Utterance], sets: dict[str, str], subset: str,
                  meta_path: os.PathLike | str = META_FILENAME) -> list[Utterance]:
    """The utterances of the speakers that ``sets`` (``read_vox1_meta``) puts in
    ``subset``; a speaker it does not list, or an empty result, raises
    CorpusFormatError naming ``meta_path``."""
    selected = []
    for utt in utterances:
        if utt.speaker not in sets:
            raise CorpusFormatError(f"speaker {utt.speaker!r} ({utt.path}) is not listed",
                                    meta_path)
        if sets[utt.speaker] == subset:
            selected.append(utt)
    if not selected:
        raise CorpusFormatError(f"no audio of a speaker whose {META_SET_COLUMN} is "
                                f"{subset!r}", meta_path)
    return selected


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
