"""Tests for tfspk.trials: VoxCeleb and Kaldi trial lists and their errors."""
import pathlib

import pytest

from tfspk.trials import Trial, TrialListError, read_trials

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "corpora"
VOX_LIST = FIXTURES / "voxceleb" / "veri_test2.txt"
KALDI_TRIALS = FIXTURES / "kaldi_data" / "trials"


def test_voxceleb_list_strips_extensions():
    trials = read_trials(VOX_LIST)
    assert trials == [
        Trial(1, "id10270/x6uYqmx31kE/00001", "id10270/8jEAjG6SegY/00008"),
        Trial(0, "id10270/x6uYqmx31kE/00001", "id10300/ize_eiCFEg0/00003"),
        Trial(1, "id10270/x6uYqmx31kE/00001", "id10270/GWXujl-xAVM/00017"),
        Trial(0, "id10270/x6uYqmx31kE/00001", "id10273/0OCW1HUxZyg/00001")]


def test_kaldi_trials():
    trials = read_trials(KALDI_TRIALS, known_ids=[
        "spkA-rec1-000", "spkA-rec1-001", "spkB-rec2-000"])
    assert [(t.label, t.enroll, t.test) for t in trials] == [
        (1, "spkA-rec1-000", "spkA-rec1-001"),
        (0, "spkA-rec1-000", "spkB-rec2-000"),
        (0, "spkB-rec2-000", "spkA-rec1-001")]


def test_unknown_id_names_file_line_and_id():
    known = {"id10270/x6uYqmx31kE/00001", "id10270/8jEAjG6SegY/00008",
             "id10270/GWXujl-xAVM/00017", "id10273/0OCW1HUxZyg/00001"}
    with pytest.raises(TrialListError) as info:
        read_trials(VOX_LIST, known_ids=known)
    assert str(info.value) == (f"{VOX_LIST}:2: unknown utterance id "
                               "'id10300/ize_eiCFEg0/00003'")
    assert info.value.line == 2 and isinstance(info.value, ValueError)


@pytest.mark.parametrize("content,message", [
    ("1 a/b/1.wav c/d/2.wav\n0 a/b/1.wav\n", r"list.txt:2: expected 3 fields, found 2"),
    ("1 a/b/1.wav c/d/2.wav\n2 a/b/1.wav e/f/3.wav\n",
     r"list.txt:2: VoxCeleb trial label must be 0 or 1, got '2'"),
    ("u1 u2 target\nu1 u3 impostor\n",
     r"list.txt:2: Kaldi trial label must be 'target' or 'nontarget', got 'impostor'"),
    ("u1 u2 target\n0 a/b/1.wav c/d/2.wav\n", r"list.txt:2: Kaldi trial label"),
    ("1 a.wav b.wav\n1 a.wav c.wav\n", r"list.txt: no non-target trials among 2"),
    ("u1 u2 nontarget\n", r"list.txt: no target trials among 1"),
    ("", r"list.txt: no target trials among 0"),
])
def test_malformed_lists(tmp_path, content, message):
    path = tmp_path / "list.txt"
    path.write_text(content)
    with pytest.raises(TrialListError, match=message):
        read_trials(path)


def test_missing_list(tmp_path):
    with pytest.raises(TrialListError, match=r"veri_test.txt: file not found"):
        read_trials(tmp_path / "veri_test.txt")


def test_extension_stripping_only_removes_audio_extensions(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("1 a/b/1.m4a a/c/2.FLAC\n0 a/b/1.m4a x/y/v1.5\n")
    trials = read_trials(path)
    assert trials[0] == Trial(1, "a/b/1", "a/c/2")
    assert trials[1].test == "x/y/v1.5"


def test_ids_with_extensions_match_in_both_formats_and_keep_their_listed_form(tmp_path):
    ids = ["id10270/x6uYqmx31kE/00001", "id10271/8jEAjG6SegY/00008",
           "id10270/5r0dWxy17C8/00002"]
    kaldi = tmp_path / "trials"
    kaldi.write_text(f"{ids[0]}.wav {ids[2]}.wav target\n{ids[0]}.wav {ids[1]} nontarget\n")
    voxceleb = tmp_path / "veri.txt"
    voxceleb.write_text(f"1 {ids[0]}.wav {ids[2]}.wav\n0 {ids[0]}.wav {ids[1]}\n")
    for path in (kaldi, voxceleb):
        trials = read_trials(path, known_ids=ids)
        assert [(t.label, t.enroll, t.test) for t in trials] == [
            (1, ids[0], ids[2]), (0, ids[0], ids[1])]
        assert trials[1].listed_ids() == (f"{ids[0]}.wav", ids[1])


@pytest.mark.parametrize("content,message", [
    ("1 a/1.wav a/1.wav\n0 a/1.wav b/2.wav\n",
     r"list.txt:1: 1 trial\(s\) of an utterance against itself on line\(s\) 1"),
    ("1 a/1.wav a/2.wav\n0 a/1.wav b/2.wav\n1 a/1.wav a/2.wav\n",
     r"list.txt:3: 1 duplicate trial\(s\): line\(s\) 3 \(= line 1\); pass drop_duplicates"),
    ("1 a/1.wav a/2.wav\n0 a/1.wav b/2.wav\n0 a/2.wav a/1.wav\n",
     r"list.txt:3: 1 pair\(s\) with contradictory labels: line 3 labels 'a/2' vs 'a/1' 0, "
     r"line 1 1"),
    ("a b target\nb a nontarget\na c nontarget\n", r"list.txt:2: 1 pair\(s\) with "
     r"contradictory"),
])
def test_self_duplicate_and_contradictory_trials_are_refused_with_lines(tmp_path, content,
                                                                        message):
    path = tmp_path / "list.txt"
    path.write_text(content)
    with pytest.raises(TrialListError, match=message):
        read_trials(path, self_trials="error")


def test_self_trials_warn_by_default_with_their_lines(tmp_path, caplog):
    path = tmp_path / "list.txt"
    path.write_text("1 a/1.wav a/1.wav\n0 a/1.wav b/2.wav\n")
    with caplog.at_level("WARNING", logger="tfspk.trials"):
        assert len(read_trials(path)) == 2
    assert "1 trial(s) of an utterance against itself on line(s) 1" in caplog.text
    assert len(read_trials(path, self_trials="keep")) == 2


def test_drop_duplicates_keeps_the_first_and_reports_the_count(tmp_path, caplog):
    path = tmp_path / "list.txt"
    path.write_text("1 a/1.wav a/2.wav\n0 a/1.wav b/2.wav\n1 a/1.wav a/2.wav\n"
                    "0 a/1.wav b/2.wav\n1 a/2.wav a/1.wav\n")
    with caplog.at_level("WARNING", logger="tfspk.trials"):
        trials = read_trials(path, drop_duplicates=True)
    # The reversed pair with the same label is a distinct trial and stays.
    assert [(t.label, t.enroll, t.test) for t in trials] == [
        (1, "a/1", "a/2"), (0, "a/1", "b/2"), (1, "a/2", "a/1")]
    assert "dropped 2 duplicate trial(s) (lines 3, 4)" in caplog.text
    # Contradictions are never dropped silently.
    path.write_text("1 a/1.wav a/2.wav\n0 a/1.wav a/2.wav\n0 a/1.wav b/2.wav\n")
    with pytest.raises(TrialListError, match="list.txt:2: 1 pair"):
        read_trials(path, drop_duplicates=True)
