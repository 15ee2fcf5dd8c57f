"""TIMIT phone sets: the 61 labels, Lee & Hon's folding to 39, and broad phone classes.

The 61 labels are those of TIMIT's ``.PHN`` files (TIMIT documentation, phoncode.doc).
The 39-phone set is the folding of K.-F. Lee and H.-W. Hon, "Speaker-independent phone
recognition using hidden Markov models" (IEEE TASSP 1989): closures, pauses, epenthetic
silence and h# fold to ``sil`` and the glottal stop ``q`` is deleted (``fold_to_39("q")``
is None). The broad classes are the ones Shon, Tang & Glass (SLT 2018) analyse frame-level
embeddings with; they follow TIMIT's own grouping, with closures a class of their own.
"""
from __future__ import annotations

from typing import Optional

#: The broad classes, each with its TIMIT-61 members.
BROAD_CLASSES: dict[str, tuple[str, ...]] = {
    "stop": ("b", "d", "g", "p", "t", "k", "dx", "q"),
    "affricate": ("jh", "ch"),
    "fricative": ("s", "sh", "z", "zh", "f", "th", "v", "dh"),
    "nasal": ("m", "n", "ng", "em", "en", "eng", "nx"),
    "semivowel_glide": ("l", "r", "w", "y", "hh", "hv", "el"),
    "vowel": ("iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "ao", "oy", "ow", "uh",
              "uw", "ux", "er", "ax", "ix", "axr", "ax-h"),
    "closure": ("bcl", "dcl", "gcl", "pcl", "tcl", "kcl"),
    "other": ("pau", "epi", "h#"),
}

#: The 61 TIMIT phone labels, grouped by broad class.
TIMIT61: tuple[str, ...] = tuple(label for members in BROAD_CLASSES.values()
                                 for label in members)

#: Lee & Hon's merges: TIMIT-61 label -> its 39-set label, or None where the phone is
#: deleted. Labels not listed here keep their name.
_FOLDS_61_TO_39: dict[str, Optional[str]] = {
    "ao": "aa",
    "ax": "ah", "ax-h": "ah",
    "axr": "er",
    "hv": "hh",
    "ix": "ih",
    "el": "l",
    "em": "m",
    "en": "n", "nx": "n",
    "eng": "ng",
    "zh": "sh",
    "ux": "uw",
    "bcl": "sil", "dcl": "sil", "gcl": "sil", "pcl": "sil", "tcl": "sil", "kcl": "sil",
    "h#": "sil", "pau": "sil", "epi": "sil",
    "q": None,
}

#: TIMIT-61 label -> 39-set label (None: the phone is deleted).
FOLD_61_TO_39: dict[str, Optional[str]] = {
    label: _FOLDS_61_TO_39.get(label, label) for label in TIMIT61}

#: The 39 folded labels, in the order they first appear in TIMIT61.
TIMIT39: tuple[str, ...] = tuple(dict.fromkeys(
    folded for folded in FOLD_61_TO_39.values() if folded is not None))

_BROAD_CLASS_OF = {label: name for name, members in BROAD_CLASSES.items()
                   for label in members}


def _known_label(label: str) -> str:
    normalized = label.strip().lower()
    if normalized not in FOLD_61_TO_39:
        raise ValueError(f"{label!r} is not a TIMIT-61 phone label")
    return normalized


def fold_to_39(label: str) -> Optional[str]:
    """Maps a TIMIT-61 label to Lee & Hon's 39-phone set; None means the phone is deleted
    (only ``q``). Case-insensitive; raises ValueError for labels outside TIMIT-61."""
    return FOLD_61_TO_39[_known_label(label)]


def broad_class(label: str) -> str:
    """Broad class (a key of BROAD_CLASSES) of a TIMIT-61 label. Case-insensitive; raises
    ValueError for labels outside TIMIT-61."""
    return _BROAD_CLASS_OF[_known_label(label)]
