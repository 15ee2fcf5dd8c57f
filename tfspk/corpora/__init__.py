"""Readers for speech and augmentation corpora in their published on-disk formats.

Each reader returns ``tfspk.corpora.records.Utterance`` records (MUSAN: grouped by
category) and raises ``CorpusFormatError`` naming the file (and line) on bad input.
"""
from tfspk.corpora.kaldi import read_data_dir
from tfspk.corpora.manifest import read_manifest
from tfspk.corpora.musan import read_musan
from tfspk.corpora.records import (CorpusFormatError, PhoneSegment, Utterance,
                                   WordSegment)
from tfspk.corpora.rirs import read_rirs
from tfspk.corpora.timit import read_phn, read_timit, read_txt, read_wrd
from tfspk.corpora.voxceleb import apply_iden_split, read_iden_split, read_voxceleb

__all__ = [
    "CorpusFormatError", "PhoneSegment", "Utterance", "WordSegment", "apply_iden_split",
    "read_data_dir", "read_iden_split", "read_manifest", "read_musan", "read_phn",
    "read_rirs", "read_timit", "read_txt", "read_voxceleb", "read_wrd",
]
