"""tfspk.calibration and the min-Cllr / PAV metrics."""
import itertools
import json

import numpy as np
import pytest

from tfspk import calibration, metrics


def _gaussian(num_target, num_nontarget, mu=2.0, sigma=1.0, seed=0):
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(mu, sigma, num_target), rng.normal(0.0, sigma, num_nontarget)]
    labels = np.r_[np.ones(num_target, int), np.zeros(num_nontarget, int)]
    return scores, labels


def test_recovers_true_linear_llr():
    # Equal variances: llr(s) = mu/sigma^2 * s - mu^2 / (2 sigma^2).
    mu, sigma = 2.0, 1.5
    scores, labels = _gaussian(5000, 20000, mu, sigma)
    cal = calibration.fit_calibration(scores, labels)
    assert cal.scale == pytest.approx(mu / sigma**2, rel=0.05)
    assert cal.offset == pytest.approx(-mu**2 / (2 * sigma**2), abs=0.06)
    assert cal.threshold() == cal.thresholds["bayes_p0.01"]


def test_prior_weighting_does_not_move_true_llr():
    scores, labels = _gaussian(5000, 20000)
    a = calibration.fit_calibration(scores, labels, prior=0.5)
    b = calibration.fit_calibration(scores, labels, prior=0.1)
    assert a.scale == pytest.approx(b.scale, rel=0.05)
    assert a.offset == pytest.approx(b.offset, abs=0.1)


def test_min_cllr_below_any_calibration():
    scores, labels = _gaussian(300, 3000, seed=1)
    lower = metrics.min_cllr(scores, labels)
    cal = calibration.fit_calibration(scores, labels)
    assert lower <= metrics.cllr(cal.llr(scores), labels) + 1e-12
    for scale, offset in itertools.product((0.5, 2.0, 4.0), (-3.0, 0.0, 1.0)):
        assert lower <= metrics.cllr(scale * scores + offset, labels) + 1e-12


def test_pav_matches_brute_force():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 2, 7).astype(float)
    weights = rng.integers(1, 4, 7).astype(float)
    fit = metrics.pav(values, weights)
    assert np.all(np.diff(fit) >= -1e-12)
    # Brute force: the isotonic fit is constant on blocks; try every partition.
    best = np.inf
    for cuts in itertools.product((0, 1), repeat=6):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [7]
        means = [np.average(values[s:e], weights=weights[s:e]) for s, e in zip(bounds, bounds[1:])]
        if np.any(np.diff(means) < 0):
            continue
        candidate = np.repeat(means, np.diff(bounds))
        best = min(best, np.sum(weights * (values - candidate) ** 2))
    assert np.sum(weights * (values - fit) ** 2) == pytest.approx(best)


def test_ties_share_one_llr_and_perfect_separation():
    scores = np.array([0.0, 0.0, 1.0, 1.0, 2.0])
    labels = np.array([0, 1, 0, 1, 1])
    llrs = metrics.optimal_llrs(scores, labels)
    assert llrs[0] == llrs[1] and llrs[2] == llrs[3]
    separable = metrics.min_cllr(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0, 0, 1, 1]))
    assert separable == 0.0
    # Cllr of perfect (huge, correct-signed) LLRs is ~0; uninformative LLR 0 gives 1.
    assert metrics.cllr(np.array([-50.0, 50.0]), np.array([0, 1])) < 1e-20
    assert metrics.cllr(np.zeros(4), np.array([0, 1, 0, 1])) == pytest.approx(1.0)


def test_far_threshold_and_bayes_dcf_on_held_out():
    train = _gaussian(2000, 20000, seed=4)
    test_scores, test_labels = _gaussian(2000, 20000, seed=5)
    cal = calibration.fit_calibration(*train)
    held_out_far = np.mean(test_scores[test_labels == 0] >= cal.threshold("far_0.01"))
    assert abs(held_out_far - 0.01) < 0.003
    llrs = cal.llr(test_scores)
    assert metrics.cllr(llrs, test_labels) < metrics.min_cllr(test_scores, test_labels) + 0.05
    for p in (0.01, 0.05):
        actual = metrics.actual_dcf(llrs, test_labels, None, p)
        assert actual <= 1.1 * metrics.min_dcf(test_scores, test_labels, p)[0]
        # The stored raw threshold is the same decision.
        raw = metrics.actual_dcf(test_scores, test_labels, cal.threshold(f"bayes_p{p}"), p)
        assert raw == pytest.approx(actual)


def test_far_threshold_exact_count():
    scores = np.arange(100, dtype=float)
    labels = np.zeros(100, int)
    threshold = calibration.threshold_for_far(scores, labels, 0.05)
    assert np.count_nonzero(scores >= threshold) == 5


def test_save_load_round_trip(tmp_path):
    cal = calibration.fit_calibration(*_gaussian(200, 2000))
    path = cal.save(tmp_path / "calibration.json")
    assert calibration.Calibration.load(path) == cal
    assert calibration.Calibration.load(tmp_path) == cal  # a folder means its calibration.json


@pytest.mark.parametrize("content", ["{not json", json.dumps({"offset": 1.0}),
                                     json.dumps({"scale": -1.0, "offset": 0.0}),
                                     json.dumps({"scale": 1.0, "offset": 0.0,
                                                 "thresholds": {}, "default_threshold": "x"})])
def test_malformed_file_names_it(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(calibration.CalibrationError, match="bad.json"):
        calibration.Calibration.load(path)
