"""Edit distance, greedy CTC decoding and PER checked against hand-computed cases."""
import pytest

from probes.edit_distance import EditCounts, edit_distance, fold_phones, phone_error_rate
from probes.phone_recognition import SYMBOLS, ctc_min_frames, encode, greedy_ctc_decode


@pytest.mark.parametrize("reference, hypothesis, expected", [
    # (substitutions, deletions, insertions)
    ("", "", (0, 0, 0)),
    ("abc", "abc", (0, 0, 0)),
    ("abc", "", (0, 3, 0)),
    ("", "ab", (0, 0, 2)),
    ("abc", "abd", (1, 0, 0)),
    ("abc", "ac", (0, 1, 0)),          # b deleted
    ("ac", "abc", (0, 0, 1)),          # b inserted
    ("kitten", "sitting", (2, 0, 1)),  # k->s, e->i, +g: the textbook distance 3
    # a=a, b->z, c=c, d deleted, e=e, f->d: cost 3 (swapping d/e would cost 2 more).
    ("abcdef", "azced", (2, 1, 0)),
])
def test_edit_distance_counts(reference, hypothesis, expected):
    counts = edit_distance(list(reference), list(hypothesis))
    assert (counts.substitutions, counts.deletions, counts.insertions) == expected
    assert counts.reference_length == len(reference)


def test_edit_distance_is_levenshtein():
    # Textbook values: d(intention, execution) = 5, d(sunday, saturday) = 3.
    assert edit_distance("intention", "execution").errors == 5
    assert edit_distance("sunday", "saturday").errors == 3
    assert edit_distance("saturday", "sunday").errors == 3


def test_folding_removes_q_and_merges_to_39():
    assert fold_phones(["h#", "q", "ix", "pcl", "p", "ao", "zh", "h#"]) == \
        ["sil", "ih", "sil", "p", "aa", "sh", "sil"]


def test_phone_error_rate_folds_before_aligning():
    references = [["h#", "s", "ix", "q", "n", "h#"], ["ao", "l"]]
    hypotheses = [["sil", "s", "ih", "m", "sil"],     # ix==ih after folding; n->m; q gone
                  ["aa", "el", "l"]]                  # ao==aa; el folds to l: one insertion
    total = phone_error_rate(references, hypotheses)
    assert total == EditCounts(substitutions=1, deletions=0, insertions=1, reference_length=7)
    assert total.error_rate == pytest.approx(2 / 7)
    unfolded = phone_error_rate([["ao"]], [["aa"]], fold=False)
    assert unfolded.substitutions == 1


def test_error_rate_can_exceed_one_and_lengths_must_match():
    assert edit_distance(["a"], ["b", "c", "d"]).error_rate == pytest.approx(3.0)
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        phone_error_rate([["a"], ["b"]], [["a"]])


def test_greedy_ctc_decode_merges_repeats_then_drops_blanks():
    assert greedy_ctc_decode([0, 3, 3, 0, 3, 5, 5, 5, 0, 0]) == [3, 3, 5]
    assert greedy_ctc_decode([0, 0, 0]) == []
    assert greedy_ctc_decode([7, 7, 2]) == [7, 2]


def test_encode_and_ctc_frame_requirement():
    reference, ids = encode(["h#", "q", "b", "b", "iy"])
    assert reference == ["sil", "b", "b", "iy"]
    assert [SYMBOLS[i] for i in ids] == reference and 0 not in ids
    assert ctc_min_frames(ids) == 5   # a blank must separate the repeated b
