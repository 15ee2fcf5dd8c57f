"""Metrics checked against brute-force definitions over every threshold."""
import numpy as np
import pytest
from sklearn.metrics import roc_curve

from tfspk import metrics


def _brute_rates(scores, labels, threshold):
    target = scores[labels == 1]
    nontarget = scores[labels == 0]
    return np.mean(target < threshold), np.mean(nontarget >= threshold)


def _every_threshold(scores):
    """Every threshold that can give a distinct decision, and more: each score,
    each midpoint between neighbours, and both infinities."""
    unique = np.unique(scores)
    return np.r_[-np.inf, unique, (unique[1:] + unique[:-1]) / 2, np.inf]


def _brute_eer(scores, labels):
    """Crossing of the piecewise-linear curve through the operating points,
    found by trying every segment."""
    points = sorted({_brute_rates(scores, labels, t) + (t,) for t in
                     np.r_[np.unique(scores), np.inf]}, key=lambda p: p[2])
    for (m0, f0, _), (m1, f1, _) in zip(points, points[1:]):
        if m0 == f0:
            return m0
        if (m0 - f0) < 0 < (m1 - f1):
            a = (f0 - m0) / ((m1 - m0) - (f1 - f0))
            return m0 + a * (m1 - m0)
    return points[-1][0]


def _random_trials(rng, n, tie_levels=None):
    labels = (rng.random(n) < 0.3).astype(int)
    labels[0], labels[1] = 1, 0
    scores = rng.normal(size=n) + 1.5 * labels
    if tie_levels:
        scores = np.round(scores * tie_levels) / tie_levels  # many exact ties
    return scores, labels


@pytest.mark.parametrize("seed", range(40))
def test_eer_and_dcf_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([2, 3, 4, 7, 20, 150]))
    scores, labels = _random_trials(rng, n, tie_levels=int(rng.choice([0, 1, 2, 4])))
    rate, threshold = metrics.eer(scores, labels)
    assert rate == pytest.approx(_brute_eer(scores, labels), abs=1e-12)

    all_rates = np.array([_brute_rates(scores, labels, t) for t in _every_threshold(scores)])
    # The interpolated EER lies between the best balanced operating points.
    assert all_rates.min(axis=1).max() - 1e-12 <= rate <= all_rates.max(axis=1).min() + 1e-12
    # The EER threshold is interpolated between scores, so it is inside their range.
    assert scores.min() <= threshold <= scores.max()

    for p_target in (0.5, 0.01, 0.001):
        for c_miss, c_fa in ((1, 1), (10, 1)):
            costs = (c_miss * p_target * all_rates[:, 0]
                     + c_fa * (1 - p_target) * all_rates[:, 1])
            costs /= min(c_miss * p_target, c_fa * (1 - p_target))
            value, best_t = metrics.min_dcf(scores, labels, p_target, c_miss, c_fa)
            assert value == pytest.approx(costs.min(), abs=1e-9)
            assert metrics.actual_dcf(scores, labels, best_t, p_target, c_miss,
                                      c_fa) == pytest.approx(value, abs=1e-9)


def test_hand_computed_cases():
    assert metrics.eer([2, 3, 0, 1], [1, 1, 0, 0]) == (0.0, 2.0)
    assert metrics.eer([0, 1], [1, 0])[0] == 1.0        # perfectly reversed
    assert metrics.eer([0, 0], [1, 0])[0] == 0.5        # one tie: chance
    # targets 1,3; non-targets 0,2: at t=2 miss=.5 fa=.5.
    assert metrics.eer([1, 3, 0, 2], [1, 1, 0, 0]) == (0.5, 2.0)
    # targets 2,3,4; non-target 1,5: points (miss, fa) t=1:(0,1) t=2:(0,.5)
    # t=3:(1/3,.5) t=4:(2/3,.5) -> crossing between t=3 and t=4 at .5
    rate, threshold = metrics.eer([2, 3, 4, 1, 5], [1, 1, 1, 0, 0])
    assert rate == pytest.approx(0.5)
    assert threshold == pytest.approx(3.5)
    # min DCF of a chance system is 1 (always reject or always accept).
    assert metrics.min_dcf([0, 0], [1, 0], 0.01)[0] == pytest.approx(1.0)


def test_det_curve_matches_sklearn_roc():
    rng = np.random.default_rng(0)
    scores, labels = _random_trials(rng, 500, tie_levels=3)
    curve = metrics.det_curve(scores, labels)
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    # sklearn: thresholds decreasing with a leading +inf; ours increasing, +inf last.
    np.testing.assert_allclose(curve.thresholds[::-1], thresholds)
    np.testing.assert_allclose(curve.false_alarm[::-1], fpr)
    np.testing.assert_allclose(curve.miss[::-1], 1 - tpr)
    assert np.all(np.diff(curve.miss) >= 0) and np.all(np.diff(curve.false_alarm) <= 0)


def test_eer_with_well_separated_gaussians_matches_theory():
    # Target ~ N(d, 1), non-target ~ N(0, 1): EER = Phi(-d/2).
    from scipy.stats import norm
    rng = np.random.default_rng(1)
    n = 400_000
    labels = rng.random(n) < 0.5
    scores = rng.normal(size=n) + 2.0 * labels
    rate, threshold = metrics.eer(scores, labels)
    assert rate == pytest.approx(norm.cdf(-1.0), abs=3e-3)
    assert threshold == pytest.approx(1.0, abs=0.02)


def test_actual_dcf_at_bayes_threshold_and_cllr():
    labels = np.array([1, 1, 0, 0, 0])
    llrs = np.array([3.0, -1.0, -5.0, 0.5, -2.0])
    threshold = metrics.bayes_threshold(0.01)
    assert threshold == pytest.approx(np.log(99))
    # With threshold log(99) ~ 4.6 everything is rejected: miss 1, fa 0.
    assert metrics.actual_dcf(llrs, labels, None, 0.01) == pytest.approx(1.0)
    # p=0.5: threshold 0 -> miss 1/2, fa 1/3; normalised by 0.5.
    assert metrics.actual_dcf(llrs, labels, None, 0.5) == pytest.approx(0.5 + 1 / 3)
    expected = (np.mean(np.log2(1 + np.exp(-llrs[:2])))
                + np.mean(np.log2(1 + np.exp(llrs[2:])))) / 2
    assert metrics.cllr(llrs, labels) == pytest.approx(expected)
    assert metrics.cllr(np.zeros(4), [1, 0, 1, 0]) == pytest.approx(1.0)
    # Huge LLRs must not overflow.
    assert metrics.cllr([800.0, -800.0], [1, 0]) == pytest.approx(0.0)


@pytest.mark.parametrize("scores, labels, message", [
    ([1.0, 2.0], [1, 1], "no non-target"),
    ([1.0, 2.0], [0, 0], "no target"),
    ([1.0, 2.0, 3.0], [1, 0], "length mismatch"),
    ([1.0, np.nan], [1, 0], "NaN"),
    ([1.0, 2.0], [1, 2], "labels must be 0"),
    ([], [], "no target"),
])
def test_bad_input_raises_clear_errors(scores, labels, message):
    with pytest.raises(metrics.ScoreError, match=message):
        metrics.eer(scores, labels)
    with pytest.raises(metrics.ScoreError, match=message):
        metrics.min_dcf(scores, labels, 0.01)


def test_bad_costs_raise():
    with pytest.raises(ValueError, match="p_target"):
        metrics.min_dcf([0, 1], [0, 1], 1.5)
