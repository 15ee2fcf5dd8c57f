"""Tests for tfspk.phones against the TIMIT documentation and Lee & Hon (1989)."""
import collections

import pytest

from tfspk import phones


def test_timit61_is_the_documented_set():
    assert len(phones.TIMIT61) == len(set(phones.TIMIT61)) == 61
    # phoncode.doc groups: 20 vowels, 8 stops (with dx, q), 6 closures, 2 affricates,
    # 8 fricatives, 7 nasals, 7 semivowels/glides, 3 others.
    sizes = {name: len(members) for name, members in phones.BROAD_CLASSES.items()}
    assert sizes == {"stop": 8, "affricate": 2, "fricative": 8, "nasal": 7,
                     "semivowel_glide": 7, "vowel": 20, "closure": 6, "other": 3}
    for label in ("ax-h", "h#", "eng", "nx", "hv", "dx", "epi", "pau", "q", "axr", "ux"):
        assert label in phones.TIMIT61


def test_lee_hon_folding_gives_39_classes():
    assert len(phones.TIMIT39) == 39
    assert set(phones.TIMIT39) == {
        "iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "oy", "ow", "uh", "uw", "er",
        "b", "d", "g", "p", "t", "k", "dx", "jh", "ch", "s", "sh", "z", "f", "th", "v",
        "dh", "m", "n", "ng", "l", "r", "w", "y", "hh", "sil"}
    merged = collections.defaultdict(set)
    for label in phones.TIMIT61:
        merged[phones.fold_to_39(label)].add(label)
    # Lee & Hon's merges, in full.
    assert merged["aa"] == {"aa", "ao"}
    assert merged["ah"] == {"ah", "ax", "ax-h"}
    assert merged["er"] == {"er", "axr"}
    assert merged["hh"] == {"hh", "hv"}
    assert merged["ih"] == {"ih", "ix"}
    assert merged["l"] == {"l", "el"}
    assert merged["m"] == {"m", "em"}
    assert merged["n"] == {"n", "en", "nx"}
    assert merged["ng"] == {"ng", "eng"}
    assert merged["sh"] == {"sh", "zh"}
    assert merged["uw"] == {"uw", "ux"}
    assert merged["sil"] == {"bcl", "dcl", "gcl", "pcl", "tcl", "kcl", "h#", "pau", "epi"}
    assert merged[None] == {"q"}
    # 61 labels = 39 classes + the 21 labels merged away + the deleted q.
    extra = sum(len(members) - 1 for key, members in merged.items() if key is not None)
    assert 39 + extra + 1 == 61


def test_q_is_deleted_and_lookups_are_case_insensitive():
    assert phones.fold_to_39("q") is None
    assert phones.fold_to_39("AX-H") == "ah"
    assert phones.fold_to_39(" kcl ") == "sil"
    assert phones.broad_class("Q") == "stop"


def test_broad_classes():
    assert phones.broad_class("jh") == "affricate"
    assert phones.broad_class("tcl") == "closure"
    assert phones.broad_class("dh") == "fricative"
    assert phones.broad_class("nx") == "nasal"
    assert phones.broad_class("hv") == "semivowel_glide"
    assert phones.broad_class("axr") == "vowel"
    assert phones.broad_class("dx") == "stop"
    assert phones.broad_class("h#") == "other"
    assert {phones.broad_class(label) for label in phones.TIMIT61} == set(
        phones.BROAD_CLASSES)


@pytest.mark.parametrize("function", [phones.fold_to_39, phones.broad_class])
def test_unknown_labels_are_errors(function):
    for label in ("sil", "xx", ""):
        with pytest.raises(ValueError, match="not a TIMIT-61 phone label"):
            function(label)
