"""benchmarks/calibration.py on a trained model's segment embeddings: every pair of
distinct segments within each speaker group is one trial, the two groups share no
speaker, and the held-out metrics are those of the calibration fitted on the other."""
import numpy as np
import pytest

from benchmarks import calibration as benchmark
from eval import halves
from eval.embeddings import save_embeddings
from tfspk import calibration, metrics


def _segments(tmp_path, num_speakers=12, per_speaker=4, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_speakers, dim))
    speakers = [f"s{k:02d}" for k in range(num_speakers) for _ in range(per_speaker)]
    x = np.repeat(centres, per_speaker, axis=0) + 0.7 * rng.normal(
        size=(num_speakers * per_speaker, dim))
    path = tmp_path / "segments.npz"
    save_embeddings(path, [f"{s}/{k}" for k, s in enumerate(speakers)], x.astype(np.float32),
                    speakers)
    return path, x, np.array(speakers)


def test_pair_scores_are_every_distinct_pair_once():
    rng = np.random.default_rng(1)
    x, speakers = rng.normal(size=(7, 3)), np.array(list("aabbbcd"))
    mean = rng.normal(size=3)
    scores, labels = benchmark.pair_scores(x, speakers, mean)
    unit = (x - mean) / np.linalg.norm(x - mean, axis=1, keepdims=True)
    expected = [(unit[i] @ unit[j], int(speakers[i] == speakers[j]))
                for i in range(7) for j in range(i + 1, 7)]
    np.testing.assert_allclose(scores, [s for s, _ in expected], atol=1e-12)
    np.testing.assert_array_equal(labels, [label for _, label in expected])


def test_held_out_metrics_come_from_the_calibration_group_fit(tmp_path):
    path, x, speakers = _segments(tmp_path)
    sexes = {s: "F" if int(s[1:]) % 2 else "M" for s in set(speakers)}
    result = benchmark.run_on_embeddings(str(path), seed=3, sexes=sexes)
    assert result["calibration_speakers"] == result["held_out_speakers"] == 6
    # 6 speakers x 4 segments: C(24, 2) pairs, 6 * C(4, 2) of them targets.
    assert result["held_out_target"] == result["calibration_target"] == 36
    assert result["held_out_nontarget"] == result["calibration_nontarget"] == 276 - 36
    cal_set, _ = halves.split_speakers(sorted(set(speakers)), 6, 3, sexes)  # the same split
    assert sum(sexes[s] == "F" for s in cal_set) == 3  # stratified by sex
    in_cal = np.isin(speakers, cal_set)
    mean = x[in_cal].mean(axis=0)
    cal_scores, cal_labels = benchmark.pair_scores(x[in_cal], speakers[in_cal], mean)
    scores, labels = benchmark.pair_scores(x[~in_cal], speakers[~in_cal], mean)
    fitted = calibration.fit_calibration(cal_scores, cal_labels)
    assert result["cllr_calibrated"] == pytest.approx(metrics.cllr(fitted.llr(scores), labels))
    assert result["eer"] == pytest.approx(metrics.eer(scores, labels)[0])
    assert result["held_out_far_at_far_0.01"] == pytest.approx(
        np.mean(scores[labels == 0] >= fitted.threshold("far_0.01")))
