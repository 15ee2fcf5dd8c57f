"""Which speakers a model was trained on, read from the files its data stages write.

Benchmarks use it to keep a model's training speakers out of its test (and adaptation)
sets: `benchmarks/librispeech_verification.py --training_speakers` refuses a model that
saw a test speaker, and `benchmarks/finetune_gain.py --exclude_speakers` draws its
adaptation and held-out speakers from the others only."""
from __future__ import annotations

import os

from tfspk.corpora.records import CorpusFormatError


def read_training_speakers(path: os.PathLike | str) -> set[str]:
    """The speakers a model was trained on, from a shard set's `<split>.speakers.tsv`
    (`label<TAB>speaker`) or a `tfrecords_tools.sessions` `speakers.tsv`
    (`speaker<TAB>sex<TAB>train|test`: only the `train` rows).

    Raises CorpusFormatError naming file and line for any other layout."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CorpusFormatError("file not found", path)
    speakers = set()
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            fields = line.rstrip("\n").split("\t")
            if not line.strip() or fields[0] == "label":
                continue
            if len(fields) == 2:
                speakers.add(fields[1])
            elif len(fields) == 3 and fields[2] in ("train", "test"):
                if fields[2] == "train":
                    speakers.add(fields[0])
            else:
                raise CorpusFormatError("expected label<TAB>speaker or "
                                        f"speaker<TAB>sex<TAB>train|test, got {line.strip()!r}",
                                        path, number)
    return speakers
