"""MUSAN reader: ``musan/{noise,music,speech}/<source>/*.wav`` (16 kHz), for augmentation.

The category comes from the path. Music sources ship an ``ANNOTATIONS`` file
(``<id> <genres> <vocals Y|N> <artist> ...``), read here into ``meta["vocals"]`` because
Kaldi's recipes can leave music with vocals out of the music set.
"""
from __future__ import annotations

import math
import os

from tfspk.corpora.records import CorpusFormatError, Utterance, check_unique_ids, read_table

CATEGORIES = ("noise", "music", "speech")


def read_musan(root: os.PathLike | str) -> dict[str, list[Utterance]]:
    """Reads MUSAN into ``{"noise": [...], "music": [...], "speech": [...]}``.

    ``root`` is the ``musan`` folder or its parent. Each utterance has the file stem as
    ``utt_id`` and as ``speaker`` (MUSAN names no speakers; each file stands for its own
    source, which is what babble mixing needs), and ``meta = {"category", "source"}``, plus
    ``"vocals"`` (bool) for music listed in an ``ANNOTATIONS`` file. A missing category
    folder or one without audio raises CorpusFormatError.
    """
    root = os.fspath(root)
    if os.path.isdir(os.path.join(root, "musan")):
        root = os.path.join(root, "musan")
    if not os.path.isdir(root):
        raise CorpusFormatError("MUSAN folder not found", root)
    corpus = {}
    for category in CATEGORIES:
        folder = os.path.join(root, category)
        if not os.path.isdir(folder):
            raise CorpusFormatError(f"no {category}/ folder (MUSAN layout "
                                    f"musan/{category}/<source>/*.wav)", root)
        utterances = []
        for source in sorted(os.listdir(folder)):
            source_dir = os.path.join(folder, source)
            if os.path.isdir(source_dir):
                utterances.extend(_read_source(source_dir, category, source))
        if not utterances:
            raise CorpusFormatError(f"no .wav files in {category}/<source>/", folder)
        corpus[category] = utterances
    check_unique_ids([utt for utts in corpus.values() for utt in utts], root)
    return corpus


def _read_source(source_dir: str, category: str, source: str) -> list[Utterance]:
    vocals = {}
    annotations = os.path.join(source_dir, "ANNOTATIONS")
    if category == "music" and os.path.isfile(annotations):
        for number, fields in read_table(annotations, 3, math.inf):
            if fields[2] not in ("Y", "N"):
                raise CorpusFormatError(f"third field (vocals) must be Y or N, got "
                                        f"{fields[2]!r}", annotations, number)
            vocals[fields[0]] = fields[2] == "Y"
    utterances = []
    for name in sorted(os.listdir(source_dir)):
        stem, extension = os.path.splitext(name)
        if extension.lower() != ".wav":
            continue
        meta = {"category": category, "source": source}
        if stem in vocals:
            meta["vocals"] = vocals[stem]
        utterances.append(Utterance(utt_id=stem, path=os.path.join(source_dir, name),
                                    speaker=stem, meta=meta))
    return utterances
