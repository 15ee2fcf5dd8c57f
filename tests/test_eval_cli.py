"""eval.score / eval.report end to end on small npz files, and eval.embeddings I/O."""
import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from absl import app, flags

from eval import embeddings as embeddings_io
from eval import report, score
from tfspk import backend, metrics
from tfspk.trials import TrialListError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DIM = 16


def _speaker_embeddings(rng, speakers, utts, prefix):
    """Speaker mean + anisotropic within-class noise (PLDA should win)."""
    centres = rng.normal(size=(len(speakers), DIM)) * 1.5
    noise_scale = np.geomspace(0.2, 4.0, DIM)
    noise = rng.normal(size=(len(speakers) * utts, DIM)) * noise_scale
    x = np.repeat(centres, utts, axis=0) + noise
    spk = np.repeat(speakers, utts)
    ids = np.array([f"{s}/{prefix}/{i % utts:05d}" for i, s in enumerate(spk)])
    return ids, (x + 2.0).astype(np.float32), spk


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_cli")
    rng = np.random.default_rng(0)
    train_ids, train_x, train_spk = _speaker_embeddings(
        rng, [f"id1{i:04d}" for i in range(80)], 6, "train")
    test_ids, test_x, test_spk = _speaker_embeddings(
        rng, [f"id2{i:04d}" for i in range(20)], 4, "sess")
    cohort_ids, cohort_x, cohort_spk = _speaker_embeddings(
        rng, [f"id3{i:04d}" for i in range(30)], 2, "cohort")
    embeddings_io.save_embeddings(root / "train.npz", train_ids, train_x, train_spk)
    embeddings_io.save_embeddings(root / "test.npz", test_ids, test_x, test_spk)
    embeddings_io.save_embeddings(root / "cohort.npz", cohort_ids, cohort_x)
    lines, labels = [], []
    for i in range(0, len(test_ids), 2):
        for j in range(1, len(test_ids), 3):
            label = int(test_spk[i] == test_spk[j])
            lines.append(f"{label} {test_ids[i]}.wav {test_ids[j]}.wav")
            labels.append(label)
    (root / "trials.txt").write_text("\n".join(lines) + "\n")
    return {"root": root, "test_ids": test_ids, "test_x": test_x, "test_spk": test_spk,
            "labels": np.array(labels), "trial_lines": lines}


def test_cosine_scores_metrics_and_outputs(data, tmp_path):
    root = data["root"]
    result = score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "cos")
    pairs, scores = score.read_scores(tmp_path / "cos" / "scores.txt")
    index = {utt: i for i, utt in enumerate(data["test_ids"])}
    x = data["test_x"].astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    expected = [x[index[e]] @ x[index[t]] for e, t in pairs]
    np.testing.assert_allclose(scores, expected, atol=1e-7)
    assert pairs[0] == tuple(l.removesuffix(".wav") for l in data["trial_lines"][0].split()[1:])
    labels = data["labels"]
    assert result["eer"] == pytest.approx(metrics.eer(scores, labels)[0], abs=1e-6)
    assert result["min_dcf_p0.01"] == pytest.approx(metrics.min_dcf(scores, labels, 0.01)[0],
                                                    abs=1e-6)
    assert result["num_target"] == labels.sum()
    assert result["num_nontarget"] == (labels == 0).sum()
    assert result["backend"] == "cosine" and result["score_norm"] == "none"
    assert "cllr" not in result
    assert json.loads((tmp_path / "cos" / "metrics.json").read_text()) == result
    kaldi_trials = (tmp_path / "cos" / "trials.txt").read_text().splitlines()
    assert kaldi_trials[0].split()[2] == ("target" if labels[0] else "nontarget")
    assert not (tmp_path / "cos" / "backend").exists()


def test_plda_trains_saves_and_reuses_backend(data, tmp_path):
    root = data["root"]
    trained = score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "plda",
                                 backend="plda", backend_train=root / "train.npz", lda_dim=10)
    cosine = score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "cos",
                                backend="cosine", backend_train=root / "train.npz")
    assert trained["eer"] < cosine["eer"]
    assert trained["backend_label"] == "LDA10+PLDA"
    assert 0 < trained["cllr"] and "actual_dcf_p0.01" in trained
    assert (tmp_path / "plda" / "backend" / "backend.npz").is_file()
    reused = score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "again",
                                backend="plda", backend_dir=tmp_path / "plda" / "backend")
    assert reused["eer"] == trained["eer"]
    assert ((tmp_path / "again" / "scores.txt").read_text()
            == (tmp_path / "plda" / "scores.txt").read_text())
    with pytest.raises(ValueError, match="holds a PLDA backend, but --backend=cosine"):
        score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "x",
                           backend="cosine", backend_dir=tmp_path / "plda" / "backend")


def test_score_normalisation_matches_backend_functions(data, tmp_path):
    root = data["root"]
    score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "raw")
    raw_pairs, raw = score.read_scores(tmp_path / "raw" / "scores.txt")
    cohort = embeddings_io.load_embeddings(root / "cohort.npz").embeddings.astype(np.float64)
    cohort /= np.linalg.norm(cohort, axis=1, keepdims=True)
    index = {utt: i for i, utt in enumerate(data["test_ids"])}
    x = data["test_x"].astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    enroll = np.array([index[e] for e, _ in raw_pairs])
    test = np.array([index[t] for _, t in raw_pairs])
    cohort_scores = x @ cohort.T  # cosine is symmetric: one matrix serves both sides
    for method in ("znorm", "tnorm", "snorm", "asnorm"):
        result = score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / method,
                                    score_norm=method, cohort=root / "cohort.npz",
                                    cohort_top_n=20)
        _, normed = score.read_scores(tmp_path / method / "scores.txt")
        expected = backend.normalize_scores(raw, method, cohort_scores, cohort_scores,
                                            enroll_index=enroll, test_index=test,
                                            top_n=20 if method == "asnorm" else None)
        np.testing.assert_allclose(normed, expected, rtol=1e-6, atol=1e-6)
        assert result["score_norm"] == method
        assert "cllr" not in result


def test_multi_utterance_enrollment_uses_counts(data, tmp_path):
    root = data["root"]
    test_ids, test_x, test_spk = data["test_ids"], data["test_x"], data["test_spk"]
    # One model per speaker from its first three utterances; test with the fourth.
    speakers = np.unique(test_spk)
    first_three = np.flatnonzero(np.arange(len(test_ids)) % 4 != 3)
    embeddings_io.save_embeddings(tmp_path / "tests.npz", test_ids[3::4], test_x[3::4])
    np.savez(tmp_path / "enroll.npz", ids=test_spk[first_three], embeddings=test_x[first_three])
    lines = [f"{s} {t} {'target' if test_spk[3 + 4 * j] == s else 'nontarget'}"
             for s in speakers for j, t in enumerate(test_ids[3::4])]
    (tmp_path / "trials").write_text("\n".join(lines) + "\n")
    result = score.score_trials(tmp_path / "trials", tmp_path / "tests.npz", tmp_path / "out",
                                backend="plda", backend_train=root / "train.npz", lda_dim=10,
                                enroll_embeddings=tmp_path / "enroll.npz")
    trained = backend.Backend.load(tmp_path / "out" / "backend")
    enrollment = trained.enroll(test_x[first_three],
                                np.searchsorted(speakers, test_spk[first_three]))
    assert set(enrollment.counts) == {3.0}
    expected = trained.score_matrix(enrollment, trained.transform(test_x[3::4])).ravel()
    _, scores = score.read_scores(tmp_path / "out" / "scores.txt")
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-5)
    assert result["num_target"] == len(speakers)


def test_bad_inputs_give_clear_errors(data, tmp_path):
    root = data["root"]
    good = data["trial_lines"]
    (tmp_path / "unknown").write_text("\n".join(good[:3] + ["1 nobody/x/1.wav "
                                                            + good[0].split()[2]]) + "\n")
    with pytest.raises(TrialListError, match=r"unknown:4: unknown utterance id 'nobody/x/1'"):
        score.score_trials(tmp_path / "unknown", root / "test.npz", tmp_path / "o")
    (tmp_path / "badlabel").write_text(good[0] + "\n2 a b\n")
    with pytest.raises(TrialListError, match="badlabel:2"):
        score.score_trials(tmp_path / "badlabel", root / "test.npz", tmp_path / "o")
    # An id that exists, but only in the enrollment file, on the test side.
    enroll_id = good[0].split()[1].removesuffix(".wav")
    np.savez(tmp_path / "enroll.npz", ids=np.r_[data["test_ids"], ["only_enroll"]],
             embeddings=np.r_[data["test_x"], np.ones((1, DIM), np.float32)])
    (tmp_path / "sides").write_text(f"{good[0]}\n\n{good[1]}\n1 {enroll_id} only_enroll\n")
    with pytest.raises(TrialListError, match=r"sides:4: id 'only_enroll' is not in .*test.npz"):
        score.score_trials(tmp_path / "sides", root / "test.npz", tmp_path / "o",
                           enroll_embeddings=tmp_path / "enroll.npz")
    with pytest.raises(embeddings_io.EmbeddingFileError, match="cohort.npz: needs a 'speakers'"):
        score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "o",
                           backend="plda", backend_train=root / "cohort.npz")
    with pytest.raises(ValueError, match="needs --backend_train or --backend_dir"):
        score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "o",
                           backend="plda")
    with pytest.raises(ValueError, match="needs --cohort"):
        score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "o",
                           score_norm="znorm")


def test_embedding_files_round_trip_and_validation(tmp_path):
    ids, x = np.array(["a/1", "b/2"]), np.arange(6, dtype=np.float32).reshape(2, 3)
    embeddings_io.save_embeddings(tmp_path / "sub" / "e.npz", ids, x, ["a", "b"])
    loaded = embeddings_io.load_embeddings(tmp_path / "sub" / "e.npz", require_speakers=True)
    assert loaded.ids.tolist() == ["a/1", "b/2"] and loaded.speakers.tolist() == ["a", "b"]
    np.testing.assert_array_equal(loaded.embeddings, x)
    assert loaded.embeddings.dtype == np.float32
    cases = {
        "pickled.npz": dict(ids=np.array(["a", "b"], dtype=object), embeddings=x),
        "dup.npz": dict(ids=np.array(["a", "a"]), embeddings=x),
        "nan.npz": dict(ids=ids, embeddings=np.full((2, 3), np.nan, np.float32)),
        "short.npz": dict(ids=ids[:1], embeddings=x),
        "nokey.npz": dict(ids=ids),
    }
    messages = {"pickled.npz": "not a readable .npz without pickles",
                "dup.npz": "duplicate id 'a'", "nan.npz": "2 embeddings contain NaN",
                "short.npz": "1 ids but 2 embeddings",
                "nokey.npz": "missing array 'embeddings'"}
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(embeddings_io.EmbeddingFileError, match=f"{name}: {messages[name]}"):
            embeddings_io.load_embeddings(tmp_path / name)
    assert embeddings_io.load_embeddings(tmp_path / "dup.npz",
                                         allow_duplicate_ids=True).rows_by_id() == {"a": [0, 1]}
    with pytest.raises(embeddings_io.EmbeddingFileError, match="missing.npz: file not found"):
        embeddings_io.load_embeddings(tmp_path / "missing.npz")


def test_report_table_and_mismatch_error(data, tmp_path):
    root = data["root"]
    cos = score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "cos")
    plda = score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "plda",
                              backend="plda", backend_train=root / "train.npz", lda_dim=8)
    runs = report.parse_runs(f"toy={tmp_path / 'cos'},toy={tmp_path / 'plda'}")
    results = report.make_report(runs, tmp_path / "rep")
    with open(tmp_path / "rep" / "table.csv", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == list(report.COLUMNS)
    assert rows[1] == ["toy", "cosine", f"{100 * cos['eer']:.2f}",
                       f"{cos['min_dcf_p0.01']:.4f}", f"{cos['min_dcf_p0.001']:.4f}"]
    assert rows[2][1] == "LDA8+PLDA" and rows[2][2] == f"{100 * plda['eer']:.2f}"
    assert "| toy | LDA8+PLDA |" in (tmp_path / "rep" / "table.md").read_text()
    # The DET curve recomputed from the stored scores gives the stored EER.
    assert metrics.eer_from_det(results[1].curve)[0] == pytest.approx(plda["eer"])
    png = (tmp_path / "rep" / "det.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    scores_file = tmp_path / "cos" / "scores.txt"
    lines = scores_file.read_text().splitlines()
    scores_file.write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")
    with pytest.raises(score.ScoreFileError, match="scores.txt: trial 1 is"):
        report.make_report(runs, tmp_path / "rep2")
    with pytest.raises(ValueError, match="not name=dir"):
        report.parse_runs("a=b,c")


def _parse(module, *argv):
    """The module's flags parsed on a fresh FlagValues, as app.run would."""
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    flag_values([module.__name__, *argv])
    return flag_values


def test_command_line_end_to_end(data, tmp_path):
    """`python -m eval.score` in a subprocess; `eval.report`'s flags in process."""
    root = data["root"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-m", "eval.score", f"--trials={root / 'trials.txt'}",
         f"--embeddings={root / 'test.npz'}", "--backend=plda",
         f"--backend_train={root / 'train.npz'}", "--lda_dim=12", "--score_norm=asnorm",
         f"--cohort={root / 'cohort.npz'}", "--cohort_top_n=25",
         f"--output_dir={tmp_path / 'run'}"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "EER" in done.stdout
    result = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert result["backend_label"] == "LDA12+PLDA+AS-norm(25)"
    assert (tmp_path / "run" / "backend" / "backend.json").is_file()

    (tmp_path / "runs.json").write_text(json.dumps({"toy": "run"}))
    report.run(_parse(report, f"--runs_json={tmp_path / 'runs.json'}",
                      f"--output_dir={tmp_path / 'rep'}"))
    assert (f"| toy | LDA12+PLDA+AS-norm(25) | {100 * result['eer']:.2f} |"
            in (tmp_path / "rep" / "table.md").read_text())
    with pytest.raises(flags.IllegalFlagValueError, match="exactly one of --runs"):
        _parse(report, f"--output_dir={tmp_path / 'rep'}")
    with pytest.raises(app.UsageError, match="plda needs --backend_train or --backend_dir"):
        score.run(_parse(score, f"--trials={root / 'trials.txt'}",
                         f"--embeddings={root / 'test.npz'}", "--backend=plda",
                         f"--output_dir={tmp_path / 'bad'}"))
    with pytest.raises(flags.IllegalFlagValueError, match="score_norm"):
        _parse(score, "--trials=t", "--embeddings=e", "--output_dir=o", "--score_norm=bogus")


def test_calibrate_then_score_and_report_with_calibration(data, tmp_path):
    from eval import calibrate
    from tfspk.calibration import Calibration
    root = data["root"]
    score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "raw")
    export = tmp_path / "export"
    export.mkdir()
    cal = calibrate.run(_parse(calibrate, f"--scores={tmp_path / 'raw' / 'scores.txt'}",
                               f"--trials={root / 'trials.txt'}",
                               f"--output={tmp_path / 'calibration.json'}",
                               f"--model={export}"))
    assert Calibration.load(export / "calibration.json") == cal
    assert set(cal.thresholds) >= {"bayes_p0.01", "bayes_p0.05", "bayes_p0.5", "far_0.01"}
    result = score.score_trials(root / "trials.txt", root / "test.npz", tmp_path / "cal",
                                calibration=tmp_path / "calibration.json")
    _, raw = score.read_scores(tmp_path / "raw" / "scores.txt")
    _, llrs = score.read_scores(tmp_path / "cal" / "llrs.txt")
    np.testing.assert_allclose(llrs, cal.llr(raw), rtol=1e-6, atol=1e-6)
    labels = data["labels"]
    assert result["cllr"] == pytest.approx(metrics.cllr(cal.llr(raw), labels), abs=1e-5)
    assert result["min_cllr"] <= result["cllr"]
    assert result["actual_dcf_p0.05"] >= result["min_dcf_p0.05"] - 1e-9
    results = report.make_report([report.Run("cos", tmp_path / "raw")], tmp_path / "report",
                                 tmp_path / "calibration.json")
    header = (tmp_path / "report" / "table.md").read_text().splitlines()[0]
    assert "Cllr" in header and "actDCF (p=0.05)" in header
    assert results[0].metrics["cllr"] == pytest.approx(result["cllr"], abs=1e-5)
