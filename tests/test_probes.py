"""Every probe end to end on a tone-coded TIMIT-layout corpus, with oracle, noise and tiny
random-CNN embedders; `probes.run` over a tiny training run."""
import csv
import dataclasses
import json
import os
import re

import numpy as np
import pytest
import threadpoolctl
from absl import app, flags

from tfspk import phones
from tfspk.corpora.records import PhoneSegment, Utterance

from probes import (broad_class, critical_phones, data, phone_recognition,
                    similarity_matrix, tsne)
from probes import run as run_probes
from probes.frames import FrameEmbedder, make_geometry
from probes.report import Artifact, update_report

import probes_fixtures as pf

TINY_RECOGNIZER = phone_recognition.RecognizerConfig(units=8, num_layers=1,
                                                     bidirectional=False, epochs=2,
                                                     batch_size=8, learning_rate=1e-2)


@pytest.fixture(scope="module", autouse=True)
def single_threaded_openmp():
    # t-SNE's OpenMP threads oversubscribe a shared 2-core test machine (30 s instead of 2);
    # probes.tsne imports scikit-learn at import time, so the limit reaches its OpenMP.
    with threadpoolctl.threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = pf.write_tone_timit(str(tmp_path_factory.mktemp("timit")))
    return root, data.load_split(root, "TRAIN"), data.load_split(root, "TEST")


@pytest.fixture(scope="module")
def tiny():
    return pf.tiny_embedder()


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_corpus_fixture_reads_as_timit(corpus):
    root, train, test = corpus
    assert len(train) == 40 and len(test) == 20
    assert {utt.speaker for utt in test} == set(pf.TEST_SPEAKERS)
    # load_split read each header: the tone audio ends exactly where its last phone does.
    assert all(utt.meta["sample_rate"] == pf.RATE and
               utt.meta["num_samples"] == utt.phones[-1].end for utt in train + test)
    assert data.load_split(root, "TRAIN", max_speakers=2, max_utterances_per_speaker=3)[-1] \
        .utt_id == "FCCC0_SI1"


def test_oracle_features_classify_broad_classes_and_noise_is_at_chance(corpus):
    _, train, test = corpus
    result = broad_class.broad_class_confusion(pf.oracle_embedder(), train, test,
                                               progress=False)
    accuracy = result.accuracies()
    num_segments = sum(len(utt.phones) for utt in test)
    assert result.num_segments("noise") == num_segments
    assert accuracy["broad_onehot"] == pytest.approx(1.0)
    assert accuracy["phone_onehot"] >= 0.99     # phones of one class share its centroid
    # The strided, offset layer needs the geometry: frame j sits at MFCC frame 5 + 2 j.
    assert accuracy["broad_conv"] >= 0.95
    chance = 1 / len(data.BROAD_CLASSES)
    assert accuracy["noise"] < chance + 0.12, accuracy

    # Ignoring the offset misplaces every frame by 50 ms, about half a phone.
    misplaced = pf.oracle_embedder()
    misplaced.geometry["layers"]["broad_conv"] = {"offset": 0, "stride": 2}
    wrong = broad_class.broad_class_confusion(misplaced, train, test, ["broad_conv"],
                                              progress=False)
    assert wrong.accuracy("broad_conv") < accuracy["broad_conv"] - 0.15


def test_classify_uses_cosine_and_skips_missing_classes():
    centroids = np.array([[1.0, 0.0], [np.nan, np.nan], [0.0, 10.0]])
    segments = np.array([[5.0, 1.0], [0.1, 0.2], [-1.0, -1.0]])
    np.testing.assert_array_equal(broad_class.classify(segments, centroids), [0, 2, 0])
    np.testing.assert_allclose(broad_class.row_normalised(np.array([[1, 3], [0, 0]])),
                               [[0.25, 0.75], [0.0, 0.0]])


def test_broad_class_outputs_on_tiny_model(corpus, tiny, tmp_path):
    _, train, test = corpus
    result, artifacts = broad_class.run(tiny, train, test, str(tmp_path), progress=False)
    rows = _read_csv(tmp_path / "broad_class_accuracy.csv")
    assert [row["layer"] for row in rows] == list(tiny.layers)
    for row in rows:
        assert float(row["accuracy"]) == pytest.approx(result.accuracy(row["layer"]), abs=1e-6)
    # Random conv weights keep the MFCC's phonetic information only partly.
    assert result.accuracy("mfcc") > 0.8
    confusion = json.loads((tmp_path / "broad_class_confusion.json").read_text())
    assert np.trace(confusion["confusion"]["mfcc"]) == round(
        result.accuracy("mfcc") * result.num_segments("mfcc"))
    report = update_report(str(tmp_path), artifacts)
    lines = open(report).read().splitlines()[2:]
    assert len(lines) == 4 and all(os.path.exists(tmp_path / re.search(r"\]\(([^)]+)\)", line)[1])
                                   for line in lines)
    # Writing again replaces lines instead of duplicating them.
    update_report(str(tmp_path), artifacts[:1] + [Artifact("x", str(tmp_path / "y.csv"), "y")])
    assert len(open(report).read().splitlines()[2:]) == 5


@pytest.mark.parametrize("loss", phone_recognition.LOSSES)
def test_phone_recognition_trains_and_scores_per(corpus, tmp_path, loss):
    _, train, test = corpus
    config = dataclasses.replace(TINY_RECOGNIZER, loss=loss)
    results = phone_recognition.phone_error_rates(
        pf.oracle_embedder(), train, test, ["phone_onehot"], config, progress=False)
    result = results["phone_onehot"]
    expected_phones = sum(len(utt.phones) for utt in test)   # no q in the tone corpus
    assert result.counts.reference_length == expected_phones
    assert result.losses[-1] < result.losses[0]
    assert 0.0 <= result.per <= result.counts.errors / expected_phones + 1e-9
    assert (result.frame_accuracy is None) == (loss == "ctc")
    artifacts = phone_recognition.write_outputs(results, config, str(tmp_path))
    row = _read_csv(tmp_path / "phone_error_rate.csv")[0]
    assert float(row["per"]) == pytest.approx(result.per, abs=1e-6)
    assert json.loads((tmp_path / "phone_recognition.json").read_text())["config"]["loss"] \
        == loss
    assert all(os.path.getsize(a.path) > 0 for a in artifacts)


def test_default_recognizer_is_a_two_layer_bilstm():
    model = phone_recognition.PhoneRecognizer(len(phone_recognition.SYMBOLS), units=4)
    frames = np.zeros((2, 9, 3), np.float32)
    frames[0, 5:] = 100.0   # padding of row 0 must not change its valid outputs
    logits = model((frames, np.array([5, 9], np.int32)))
    clean = model((np.zeros((1, 5, 3), np.float32), np.array([5], np.int32)))
    assert logits.shape == (2, 9, 40)
    np.testing.assert_allclose(np.asarray(logits)[0, :5], np.asarray(clean)[0], atol=1e-5)
    assert [layer.name for layer in model.recurrent] == ["bilstm1", "bilstm2"]
    restored = phone_recognition.PhoneRecognizer.from_config(model.get_config())
    assert (restored.units, restored.num_layers, restored.bidirectional) == (4, 2, True)


def test_tsne_of_first_and_last_layer(corpus, tiny, tmp_path):
    _, _, test = corpus
    coordinates, classes = tsne.segment_tsne(tiny, test[:6], max_segments=40, progress=False)
    assert list(coordinates) == ["mfcc", "fc2"]
    assert all(points.shape == (len(classes), 2) for points in coordinates.values())
    assert len(classes) == min(40, sum(len(utt.phones) for utt in test[:6]))
    assert set(classes) <= set(data.BROAD_CLASSES)
    artifacts = tsne.write_outputs(coordinates, classes, str(tmp_path))
    assert len(_read_csv(tmp_path / "tsne_broad_class.csv")) == len(classes)
    assert all(os.path.getsize(a.path) > 0 for a in artifacts)


def test_critical_phones_end_to_end(corpus, tiny, tmp_path):
    _, train, test = corpus
    summary, artifacts = critical_phones.run(tiny, test, train, str(tmp_path), progress=False)
    per_utt = _read_csv(tmp_path / "critical_phones_per_utterance.csv")
    assert len(per_utt) == 20                     # 2 speakers x 10 held-out utterances
    for row in per_utt:
        assert float(row["highest_similarity"]) >= float(row["lowest_similarity"])
        assert row["highest"] not in critical_phones.DEFAULT_EXCLUDE
    fractions = summary["broad_class"].values()
    assert sum(v["highest"] for v in fractions) == pytest.approx(1.0)
    assert sum(v["train"] for v in fractions) == pytest.approx(1.0)
    assert "other" not in summary["broad_class"]  # pau and h# are excluded
    with pytest.raises(ValueError, match="no speaker has 11 utterances"):
        critical_phones.critical_phones(tiny, test, min_utterances=11, progress=False)


def test_critical_phones_summary_by_hand():
    results = [critical_phones.CriticalPhones("u1", "s", "iy", 0.9, "t", 0.1),
               critical_phones.CriticalPhones("u2", "s", "iy", 0.8, "m", 0.2)]
    table = critical_phones.summarise(results, {"iy": 0.5, "t": 0.25, "m": 0.25},
                                      key=phones.broad_class)
    assert table["vowel"] == {"highest": 1.0, "lowest": 0.0, "train": 0.5}
    assert table["stop"] == {"highest": 0.0, "lowest": 0.5, "train": 0.25}


def test_phone_similarities_average_frame_cosines():
    embedder = FrameEmbedder(lambda w, n: {}, make_geometry({"x": (0, 1)}))
    utt = Utterance("A_1", "-", "A", phones=(PhoneSegment(0, 520, "iy"),
                                              PhoneSegment(520, 1000, "s")))
    frames = np.array([[1, 0], [1, 0], [0, 1], [1, 1], [0, 1]], np.float64)
    # Centres 200, 360 (iy), 520, 680, 840 (s); cosine to [1, 0]: 1, 1 | 0, 0.707, 0.
    scores = critical_phones.phone_similarities(embedder, "x", utt, frames, np.array([2.0, 0]))
    np.testing.assert_allclose(scores, [1.0, np.sqrt(0.5) / 3])


def test_similarity_matrix(corpus, tiny, tmp_path):
    _, _, test = corpus
    same = tiny.embed(data.load_waveform(test[0], 16000))
    matrices = similarity_matrix.frame_similarity(tiny, test[0], test[0], ["mfcc", "fc2"])
    np.testing.assert_allclose(np.diag(matrices["fc2"]), 1.0, atol=1e-5)
    assert matrices["mfcc"].shape == (len(same["mfcc"]),) * 2
    summary, artifacts = similarity_matrix.run(tiny, test, str(tmp_path))
    assert summary["same_speaker"]["utterances"] == ["FEEE0_SA1", "FEEE0_SA2"]
    assert summary["different_speakers"]["utterances"] == ["FEEE0_SA1", "MFFF0_SA1"]
    assert len(artifacts) == 3 and all(os.path.getsize(a.path) > 0 for a in artifacts)
    with pytest.raises(ValueError, match="'NOPE0_SA1' is not in the split"):
        similarity_matrix.choose_pairs(test, same=["NOPE0_SA1", "FEEE0_SA1"])


def test_run_all_with_over_training(corpus, tmp_path, monkeypatch):
    """probes.run's CLI on a training run with two checkpoints (no SavedModel)."""
    root, _, _ = corpus
    model_dir = pf.write_tiny_run(str(tmp_path / "run"), steps=(0, 5))
    out = tmp_path / "out"
    argv = ["run", f"--model_dir={model_dir}", f"--timit_dir={root}", f"--output_dir={out}",
            "--quick", "--per_layers=fc2"]
    run_probes.define_flags()
    flags.FLAGS.unparse_flags()
    remaining = flags.FLAGS(argv)
    monkeypatch.setattr(run_probes, "QUICK_RECOGNIZER", TINY_RECOGNIZER)  # keep it fast
    try:
        run_probes.main(remaining)
    finally:
        flags.FLAGS.unparse_flags()
    results = json.loads((out / "results.json").read_text())
    layers = ["mfcc", "conv1", "conv2", "conv3", "conv4", "fc1", "fc2"]
    assert results["layers"] == layers
    assert set(results["broad_class_accuracy"]) == set(layers)
    assert list(results["phone_error_rate"]) == ["fc2"]
    assert results["critical_phones"]["num_utterances"] == 20
    steps = sorted({row["step"] for row in results["over_training"]})
    assert steps == [0, 5] and len(results["over_training"]) == 2 * len(layers)
    # The latest checkpoint is the model probed: its accuracies match the last over_training
    # rows.
    last = {row["layer"]: row["broad_class_accuracy"] for row in results["over_training"]
            if row["step"] == 5}
    assert last == pytest.approx(results["broad_class_accuracy"])
    report = (out / "report.md").read_text().splitlines()
    linked = [re.search(r"\]\(([^)]+)\)", line)[1] for line in report if line.startswith("- ")]
    assert all((out / path).exists() for path in linked)
    for expected in ("broad_class_confusion.png", "phone_error_rate.png", "tsne_broad_class.png",
                     "critical_phones.png", "similarity_same_speaker.png",
                     "over_training_broad_class.png", "over_training_per.png",
                     "results.json"):
        assert expected in linked


def test_cli_usage_errors(tmp_path):
    broad_class.define_flags()
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["broad_class", f"--output_dir={tmp_path}"])
    try:
        with pytest.raises(app.UsageError, match="--timit_dir"):
            broad_class.main(["broad_class"])
        flags.FLAGS.timit_dir = str(tmp_path / "missing")
        with pytest.raises(app.UsageError, match="--saved_model or --model_dir"):
            broad_class.main(["broad_class"])
    finally:
        flags.FLAGS.unparse_flags()


_BACKEND_SCRIPT = """
import matplotlib
matplotlib.use("svg")  # the user's choice, which importing and plotting must keep
import sys
from eval import report as eval_report
from tfspk.probes import broad_class, critical_phones, over_training, similarity_matrix, tsne
from tfspk.probes import report
from tfspk.shards import inspect
import numpy as np
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
broad_class.plot_accuracy({"conv1": 0.5, "conv2": 0.75}, sys.argv[1], "accuracy")
inspect.plot_histogram(inspect.SplitSummary("train", 2, 3, 0, 0.01,
                                            np.array([1.0, 2.0, 3.0]), {}), sys.argv[2])
print("backend", matplotlib.get_backend())
pyplot = sys.modules.get("matplotlib.pyplot")
print("open", 0 if pyplot is None else len(pyplot.get_fignums()))
"""


def test_importing_and_plotting_keep_the_matplotlib_backend(tmp_path):
    # tfspk draws on figures of its own (tfspk.figures) instead of calling
    # matplotlib.use("Agg"), so a user's backend survives `import tfspk.probes.report`
    # and the plots, and nothing is left open in pyplot.
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pngs = [tmp_path / "accuracy.png", tmp_path / "durations.png"]
    result = subprocess.run(
        [sys.executable, "-c", _BACKEND_SCRIPT, *map(str, pngs)], cwd=root,
        env={**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "2",
             "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backend svg\nopen 0\n" in result.stdout
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
