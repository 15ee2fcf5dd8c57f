"""Halving, speaker split and all-pairs trials (eval.halves), and the LibriSpeech
verification benchmark end to end on a few real speakers (baseline system only)."""
import importlib.util
import json
import pathlib

import numpy as np
import pytest

from eval.extract import LoadedUtterance
from eval.halves import (ENROLL_SUFFIX, TEST_SUFFIX, all_pairs_trials, split_in_halves,
                         split_speakers)
from tfspk.corpora.records import CorpusFormatError
from tfspk.trials import read_trials, write_voxceleb_trials

BENCHMARK = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / \
    "librispeech_verification.py"


def _utt(utt_id, speaker, num_samples):
    return LoadedUtterance(utt_id, speaker, np.arange(num_samples, dtype=np.float32))


@pytest.fixture(scope="module")
def benchmark_module():
    spec = importlib.util.spec_from_file_location("librispeech_verification", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_halves_tile_the_recording_without_overlap():
    enrollment, test = split_in_halves([_utt("a", "s1", 7), _utt("b", "s2", 10)])
    assert [u.utt_id for u in enrollment] == ["a" + ENROLL_SUFFIX, "b" + ENROLL_SUFFIX]
    assert [u.utt_id for u in test] == ["a" + TEST_SUFFIX, "b" + TEST_SUFFIX]
    assert [u.speaker for u in enrollment + test] == ["s1", "s2", "s1", "s2"]
    np.testing.assert_array_equal(enrollment[0].waveform, [0, 1, 2])
    np.testing.assert_array_equal(test[0].waveform, [3, 4, 5, 6])  # odd sample goes to test
    for first, second, length in ((enrollment[1], test[1], 10), (enrollment[0], test[0], 7)):
        np.testing.assert_array_equal(np.concatenate([first.waveform, second.waveform]),
                                      np.arange(length))


def test_halves_reject_short_utterances_and_duplicate_ids():
    with pytest.raises(ValueError, match="'short'.*9 samples.*5 samples"):
        split_in_halves([_utt("long", "s", 100), _utt("short", "s", 9)], min_half_samples=5)
    with pytest.raises(ValueError, match="'a' occurs twice"):
        split_in_halves([_utt("a", "s1", 10), _utt("a", "s2", 10)])


def test_all_pairs_trials_labels_same_speaker_pairs():
    enrollment, test = split_in_halves([_utt(f"u{k}", f"s{k % 3}", 8) for k in range(4)])
    trials = all_pairs_trials(enrollment, test)
    assert len(trials) == 16
    assert [(t.enroll, t.test) for t in trials[:4]] == [
        ("u0/enroll", "u0/test"), ("u0/enroll", "u1/test"), ("u0/enroll", "u2/test"),
        ("u0/enroll", "u3/test")]
    # Speakers s0 (u0, u3), s1 (u1), s2 (u2): targets are the 4 self-pairs + u0-u3, u3-u0.
    targets = {(t.enroll, t.test) for t in trials if t.label}
    assert targets == {("u0/enroll", "u0/test"), ("u1/enroll", "u1/test"),
                       ("u2/enroll", "u2/test"), ("u3/enroll", "u3/test"),
                       ("u0/enroll", "u3/test"), ("u3/enroll", "u0/test")}
    with pytest.raises(ValueError, match="no non-target trials"):
        all_pairs_trials(enrollment[:1], test[:1])


def test_trial_list_round_trips_through_read_trials(tmp_path):
    enrollment, test = split_in_halves([_utt(f"1{k}-2-3", f"1{k}", 8) for k in range(3)])
    trials = all_pairs_trials(enrollment, test)
    path = tmp_path / "trials.txt"
    write_voxceleb_trials(path, trials)
    assert path.read_text().splitlines()[:2] == ["1 10-2-3/enroll 10-2-3/test",
                                                 "0 10-2-3/enroll 11-2-3/test"]
    assert read_trials(path) == trials
    with pytest.raises(ValueError, match="whitespace"):
        write_voxceleb_trials(path, [trials[0].__class__(1, "a b", "c")])


def test_speaker_split_is_disjoint_seeded_and_stratified():
    speakers = [f"spk{k:02d}" for k in range(20)]
    sexes = {s: "F" if k < 6 else "M" for k, s in enumerate(speakers)}  # 6 F, 14 M
    backend, test = split_speakers(speakers, 10, seed=3, strata=sexes)
    assert len(backend) == 10 and len(test) == 10
    assert set(backend).isdisjoint(test) and set(backend) | set(test) == set(speakers)
    assert sum(sexes[s] == "F" for s in backend) == 3  # 6 * 10 / 20
    assert split_speakers(speakers, 10, seed=3, strata=sexes) == (backend, test)
    assert split_speakers(speakers, 10, seed=4, strata=sexes) != (backend, test)
    # Largest remainder: 7 of 20 with 6 F -> 2.1 F, 4.9 M -> 2 F and 5 M.
    backend7, _ = split_speakers(speakers, 7, seed=0, strata=sexes)
    assert sum(sexes[s] == "F" for s in backend7) == 2
    with pytest.raises(ValueError, match="at least 2 speakers"):
        split_speakers(speakers, 19)
    with pytest.raises(ValueError, match="no stratum"):
        split_speakers(speakers, 10, strata={"spk00": "F"})


def test_speakers_txt_errors_name_file_and_line(benchmark_module, tmp_path):
    module = benchmark_module
    path = tmp_path / "SPEAKERS.TXT"
    path.write_text(";ID |SEX| SUBSET | MINUTES | NAME\n14 | F | x | 1.0 | A B\n"
                    "17   | M | y | 2.0 | C\n")
    assert module.read_speaker_sexes(path) == {"14": "F", "17": "M"}
    path.write_text("14 | F | x | 1.0 | A\n17 | X | y | 2.0 | C\n")
    with pytest.raises(CorpusFormatError, match=r"SPEAKERS.TXT:2: sex must be F or M"):
        module.read_speaker_sexes(path)


def test_benchmark_on_real_speech_baseline_only(benchmark_module, librispeech_dir,
                                                tmp_path):
    module = benchmark_module
    summary = module.run_benchmark(librispeech_dir, {}, tmp_path, backend_speakers=6,
                                   seed=0, max_speakers=12)
    assert summary["speakers"]["backend"] == 6 and summary["speakers"]["test"] == 6
    assert summary["trials"] == {"target": 6, "nontarget": 30,
                                 "same_sex_nontarget": summary["trials"]["same_sex_nontarget"]}
    assert len(read_trials(tmp_path / "trials.txt")) == 36
    rows = (tmp_path / "table.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("MFCC mean+std,cosine,")
    assert (tmp_path / "det.png").stat().st_size > 0
    for backend in ("cosine", "plda"):
        metrics = json.loads((tmp_path / "scores" / f"mfcc_mean_std_{backend}" /
                              "metrics.json").read_text())
        assert metrics["num_target"] == 6 and metrics["num_nontarget"] == 30
        # Real speech of 6 speakers: MFCC statistics separate the halves far better than chance.
        assert metrics["eer"] < 0.35


def test_training_speakers_files_and_the_test_speaker_guard(benchmark_module, tmp_path):
    module = benchmark_module
    shards = tmp_path / "train.speakers.tsv"
    shards.write_text("0\t103\n1\t1034\n")
    sessions = tmp_path / "speakers.tsv"
    sessions.write_text("103\tF\ttrain\n1034\tM\ttest\n1040\tF\ttrain\n")
    assert module.read_training_speakers(shards) == {"103", "1034"}
    assert module.read_training_speakers(sessions) == {"103", "1040"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("0\t103\n1 1034\n")
    with pytest.raises(CorpusFormatError, match=r"bad.tsv:2: expected label<TAB>speaker"):
        module.read_training_speakers(bad)


def test_a_model_trained_on_test_speakers_is_refused(benchmark_module, librispeech_dir,
                                                     tmp_path):
    module = benchmark_module
    # The same split the benchmark makes: its test speakers must not be training ones.
    utterances, sexes = module.read_librispeech(librispeech_dir, 12)
    _, test = split_speakers(sorted(sexes), 6, 0, strata=sexes)
    with pytest.raises(ValueError, match=r"'CNN' was trained on 1 of the 6 test speakers"):
        module.run_benchmark(librispeech_dir, {"CNN": str(tmp_path)}, tmp_path,
                             backend_speakers=6, seed=0, max_speakers=12,
                             training_speakers={"CNN": {test[0], "unrelated"}})
