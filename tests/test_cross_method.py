"""benchmarks/cross_method.py on tiny sizes: the held-out method never reaches training or
a backend, trials are cross-session, the table is what the scores give, reruns resume."""
import json
import pathlib

import numpy as np
import pytest

from benchmarks import cross_method
from tfspk import metrics
from tfspk.corpora import manifest
from tfspk.scoring.score import read_scores
from tfspk.trials import read_trials

# The benchmark's flag file, shrunk to a few steps of a narrow network.
TINY_TRAIN_FLAGS = ("--conv_filters=8,8,8,16", "--fc_units=16,12", "--batch_size=8",
                    "--max_steps=2", "--warmup_steps=0", "--margin_warmup_steps=0,1",
                    "--validate_every=2", "--checkpoint_every=2", "--shuffle_buffer=16",
                    "--record_graph=false")
SIZES = dict(train_speakers=3, test_speakers=3, utts_per_speaker=3, max_segments=2,
             train_renders=1, num_workers=1, seed=0, klatt_variant=2)


@pytest.fixture(scope="module")
def benchmark(librispeech_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("cross_method") / "klatt"
    result = cross_method.run_benchmark(work, "klatt", librispeech_dir,
                                        train_flags=TINY_TRAIN_FLAGS, **SIZES)
    return work, result


def _shard_speakers(path):
    """Speakers of a shard set's `<split>.speakers.tsv` (label<TAB>speaker)."""
    return {line.split("\t")[1] for line in pathlib.Path(path).read_text().splitlines()}


def test_held_out_method_never_reaches_training_or_a_backend(benchmark):
    work, result = benchmark
    train = {u.speaker for u in manifest.read_manifest(work / "corpus" / "train.tsv")}
    test = {u.speaker for u in manifest.read_manifest(work / "corpus" / "test.tsv")}
    assert {cross_method.method_of(s) for s in train} == {"espeak", "real"}
    assert {cross_method.method_of(s) for s in test} == {"klatt"} and len(test) == 3
    # What training read (the shards) and what every backend was fitted on (the train
    # embeddings) hold exactly the training speakers.
    assert _shard_speakers(work / "shards" / "train.speakers.tsv") == train
    for system in cross_method.SYSTEMS:
        with np.load(work / "embeddings" / f"{system}_train.npz") as data:
            assert set(data["speakers"]) == train
        with np.load(work / "embeddings" / f"{system}_test.npz") as data:
            assert set(data["speakers"]) == test
    # LDA is capped at (speakers - 1) of its training set: 6 training speakers, not 9.
    plda = [row["backend"] for row in result["rows"] if row["backend"] != "cosine"]
    assert plda == ["LDA5+PLDA"] * 2
    assert result["methods"]["klatt"] == {"role": "test", "engine": "klatt2",
                                          "speakers": {"test": 3}}
    assert result["methods"]["real"]["speakers"] == {"train": 3}


def test_trials_pair_different_sessions_of_test_segments(benchmark):
    work, _ = benchmark
    segments = [json.loads(line) for line in
                (work / "corpus" / "sessions.jsonl").read_text().splitlines()]
    session = {s["utt_id"]: s["channel"]["session_id"] for s in segments}
    test_ids = {s["utt_id"] for s in segments if s["split"] == "test"}
    trials = read_trials(work / "corpus" / "trials.txt")
    assert trials and {t.label for t in trials} == {0, 1}
    for trial in trials:
        assert {trial.enroll, trial.test} <= test_ids
        assert session[trial.enroll] != session[trial.test]


def test_table_rows_are_what_the_scores_give(benchmark):
    work, result = benchmark
    table = (work / "table.md").read_text()
    labels = {(t.enroll, t.test): t.label for t in read_trials(work / "corpus" /
                                                                "trials.txt")}
    assert len(result["rows"]) == 4
    for row, run in zip(result["rows"], [(s, b) for s in cross_method.SYSTEMS
                                         for b in ("cosine", "plda")]):
        pairs, scores = read_scores(work / "scores" / f"{run[0]}_{run[1]}" / "scores.txt")
        assert sorted(pairs) == sorted(labels)
        eer, _ = metrics.eer(scores, np.array([labels[p] for p in pairs]))
        assert row["eer"] == pytest.approx(eer)
        assert f"| {row['system']} | {row['backend']} | {100 * eer:.2f} |" in table
    check = result["check"]
    mfcc_plda = [r["eer"] for r in result["rows"]
                 if r["system"] == "MFCC mean+std" and r["backend"] != "cosine"]
    cnn_best = min(r["eer"] for r in result["rows"] if r["system"] == "CNN fc2")
    assert check["cnn_best_eer"] == cnn_best
    assert check["met"] == (cnn_best <= mfcc_plda[0])
    assert (work / "det.png").stat().st_size > 0


def test_rerun_skips_every_stage_and_refuses_other_settings(benchmark, librispeech_dir):
    work, first = benchmark
    again = cross_method.run_benchmark(work, "klatt", librispeech_dir,
                                       train_flags=TINY_TRAIN_FLAGS, **SIZES)
    assert again["steps_this_run"] == [] and again["rows"] == first["rows"]
    with pytest.raises(ValueError, match="held_out"):
        cross_method.run_benchmark(work, "espeak", librispeech_dir,
                                   train_flags=TINY_TRAIN_FLAGS, **SIZES)
    with pytest.raises(ValueError, match="held_out must be one of"):
        cross_method.run_benchmark(work.parent / "other", "festival", librispeech_dir)
