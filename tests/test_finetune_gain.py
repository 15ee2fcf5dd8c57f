"""benchmarks/finetune_gain.py plumbing on a few real LibriSpeech speakers with a tiny
network: disjoint speaker sets, both runs trained for the steps asked (only one from the
source), and every reported EER equal to one recomputed from the embeddings or scores.
Whether fine-tuning wins is measured at full size (not here: 2 steps prove nothing)."""
import json

import numpy as np
import pytest

from benchmarks import finetune_gain
from eval.embeddings import load_embeddings
from tfspk import metrics
from tfspk.corpora import librispeech
from tfspk.corpora.speaker_sets import read_training_speakers
from tfspk.scoring.score import read_scores
from tfspk.trials import read_trials

TINY_FLAGS = """--architecture=frame_level_cnn
--conv_filters=8,8,8,16
--fc_units=16,12
--num_mel_bins=24
--num_ceps=20
--num_frames=100
--batch_size=8
--optimizer=adam
--shuffle_buffer=16
--log_every=1
--record_graph=false
"""


@pytest.fixture(scope="module")
def gain(voxceleb_shards, librispeech_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune_gain")
    flagfile = root / "tiny.flags"
    flagfile.write_text(TINY_FLAGS)
    source = root / "source"
    finetune_gain.train_run([f"--flagfile={flagfile}", f"--model_dir={source}",
                             f"--train_data={voxceleb_shards['train']}", "--max_steps=2"])
    # The source's "training speakers": two of the first 12 recordings' speakers, given
    # as a sessions corpus speakers.tsv (speaker, sex, train|test).
    first = librispeech.read_librispeech_folder(librispeech_dir, 12)
    excluded = sorted({u.speaker for u in first})[:2]
    speakers_tsv = root / "source_speakers.tsv"
    speakers_tsv.write_text("".join(f"{s}\tF\ttrain\n" for s in excluded)
                            + f"{first[-1].speaker}\tM\ttest\n")
    summary = finetune_gain.run(
        str(source), str(root / "out"), librispeech_dir, flagfile=str(flagfile),
        adapt_speakers=5, max_steps=2, segment_seconds=2.0, max_files=12, num_shards=1,
        exclude_speakers=read_training_speakers(speakers_tsv))
    return {"summary": summary, "out": root / "out", "source": source,
            "excluded": set(excluded)}


def test_speaker_sets_are_disjoint_and_only_adaptation_speakers_train(gain):
    out, summary = gain["out"], gain["summary"]
    sets = dict(line.split("\t")[::2] for line in
                (out / "speakers.tsv").read_text().splitlines())
    adapt = {s for s, kind in sets.items() if kind == "adapt"}
    held_out = {s for s, kind in sets.items() if kind == "held_out"}
    assert len(adapt) == 5 and len(held_out) == 5 and not adapt & held_out
    assert not (adapt | held_out) & gain["excluded"]  # the source's speakers: in neither
    trained_on = {line.split("\t")[-1] for line in
                  (out / "data" / "train.speakers.tsv").read_text().splitlines()}
    assert trained_on == adapt
    test = load_embeddings(str(out / "embeddings" / "before_test.npz"))
    assert set(test.speakers) == held_out
    assert summary["speakers"] == {"adapt": 5, "held_out": 5, "excluded": 2,
                                   "adapt_female": sum(1 for s in adapt if
                                                       _sex(out, s) == "F"),
                                   "held_out_female": sum(1 for s in held_out if
                                                          _sex(out, s) == "F")}


def _sex(out, speaker):
    for line in (out / "speakers.tsv").read_text().splitlines():
        fields = line.split("\t")
        if fields[0] == speaker:
            return fields[1]


def test_both_runs_train_the_same_steps_and_only_one_starts_from_the_source(gain):
    out, training = gain["out"], gain["summary"]["training"]
    for system in finetune_gain.TRAINED:
        assert training[system]["step"] == 2 and np.isfinite(training[system]["loss"])
        config = json.loads((out / "models" / system / "config.json").read_text())
        assert config["optim"]["max_steps"] == 2
        assert config["init_from"] == (str(gain["source"]) if system == "finetuned" else "")
    assert [a for a in training["finetuned"]["args"] if not a.startswith("--init_from=")] \
        == [a.replace("/scratch", "/finetuned") for a in training["scratch"]["args"]]
    assert f"--init_from={gain['source']}" in training["finetuned"]["args"]
    assert not any(a.startswith("--init_from") for a in training["scratch"]["args"])


def test_reported_eers_equal_recomputed_ones(gain):
    out, summary = gain["out"], gain["summary"]
    trials = read_trials(str(out / "trials.txt"))
    labels = np.array([t.label for t in trials])
    assert summary["trials"] == {"target": int(labels.sum()),
                                 "nontarget": int(len(labels) - labels.sum())}
    segments = summary["segments"]["held_out"]
    assert len(trials) == segments * (segments - 1) // 2
    for system in finetune_gain.SYSTEMS:
        # Cosine straight from the embeddings, independently of eval.score.
        test = load_embeddings(str(out / "embeddings" / f"{system}_test.npz"))
        unit = test.embeddings / np.linalg.norm(test.embeddings, axis=1, keepdims=True)
        row = {utt: i for i, utt in enumerate(test.ids)}
        cosine = np.array([unit[row[t.enroll]] @ unit[row[t.test]] for t in trials])
        reported = summary["results"][system]
        assert reported["cosine"]["eer"] == pytest.approx(metrics.eer(cosine, labels)[0],
                                                          abs=1e-9)
        pairs, plda = read_scores(out / "scores" / f"{system}_plda" / "scores.txt")
        assert pairs == [(t.enroll, t.test) for t in trials]
        assert reported["plda"]["eer"] == pytest.approx(metrics.eer(plda, labels)[0],
                                                        abs=1e-9)
        assert reported["plda"]["min_dcf_p0.01"] == pytest.approx(
            metrics.min_dcf(plda, labels, 0.01)[0], abs=1e-9)
    written = json.loads((out / "finetune_gain.json").read_text())
    assert written["results"] == summary["results"]
    assert finetune_gain.table(summary).count("\n") == 1 + len(finetune_gain.SYSTEMS)


def test_rerun_skips_training_and_reports_the_same(gain):
    again = finetune_gain.run(gain["summary"]["init_from"], str(gain["out"]),
                              gain["summary"]["librispeech_dir"],
                              flagfile=gain["summary"]["flagfile"], adapt_speakers=5,
                              max_steps=2, segment_seconds=2.0, max_files=12, num_shards=1,
                              exclude_speakers=gain["excluded"])
    assert all(again["training"][s]["seconds"] is None for s in finetune_gain.TRAINED)
    assert again["results"] == gain["summary"]["results"]


def test_bad_init_from_is_refused_naming_it(tmp_path, librispeech_dir):
    with pytest.raises(ValueError, match="--init_from="):
        finetune_gain.run(str(tmp_path / "nothing"), str(tmp_path / "out"), librispeech_dir)


def test_silent_segments_are_left_out_and_listed():
    from eval.extract import LoadedUtterance

    rng = np.random.default_rng(0)
    speech = LoadedUtterance("a-1-0", "a", (0.1 * rng.normal(size=16000)).astype(np.float32))
    silent = LoadedUtterance("a-1-1", "a", np.zeros(16000, np.float32))
    dropped = []
    assert finetune_gain.usable([speech, silent], dropped) == [speech]
    assert dropped == ["a-1-1"]
