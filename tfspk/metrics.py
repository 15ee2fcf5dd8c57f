"""Speaker-verification metrics: EER, minimum and actual DCF, DET points, Cllr, min-Cllr.

Conventions shared by every function here:

* A trial is accepted when `score >= threshold` (higher score = more likely the
  same speaker). `labels` are 1 for target (same-speaker) trials and 0 for
  non-target trials (bools are accepted).
* Operating points are taken at every distinct score value `t` (accept
  `score >= t`) plus `t = +inf` (reject everything). The lowest distinct score
  gives `P_miss = 0, P_fa = 1`, so both extremes are always present. Ties
  therefore move both error rates in one step, as a detector that compares
  scores to a threshold must.
* EER uses the standard linear interpolation between the two adjacent
  operating points whose `P_miss - P_fa` changes sign: the EER is where the
  segment joining them crosses `P_miss = P_fa` (equivalently, a detector that
  randomises between the two thresholds). When an operating point has exactly
  `P_miss == P_fa` that value is the EER. This lies between
  `max_t min(P_miss, P_fa)` and `min_t max(P_miss, P_fa)` and is never below the
  ROC-convex-hull EER of BOSARIS.
* DCFs are normalised as in NIST SRE and Kaldi's `compute_min_dcf.py`:
  `DCF = (c_miss * p * P_miss + c_fa * (1 - p) * P_fa) / min(c_miss * p, c_fa * (1 - p))`,
  so a system that always accepts or always rejects scores at most 1.

All work is one sort plus cumulative sums: O(n log n) time, O(n) memory, which is
a few seconds for 10M trials.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ScoreError(ValueError):
    """Scores or labels that cannot be evaluated (length mismatch, NaN, one class)."""


class DetCurve(NamedTuple):
    """Error rates at each operating point, thresholds increasing.

    `miss[i]` and `false_alarm[i]` are the rates when accepting `score >= thresholds[i]`;
    the last threshold is `+inf` (miss = 1, false alarm = 0).
    """
    miss: np.ndarray
    false_alarm: np.ndarray
    thresholds: np.ndarray


def _validate(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1:
        raise ScoreError(f"scores and labels must be 1-D, got shapes {scores.shape} "
                         f"and {labels.shape}")
    if scores.shape != labels.shape:
        raise ScoreError(f"length mismatch: {scores.size} scores but {labels.size} labels")
    bad = ~np.isfinite(scores)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ScoreError(f"{int(bad.sum())} scores are NaN or infinite "
                         f"(first at index {first}: {scores[first]})")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise ScoreError("labels must be 0 (non-target) or 1 (target), got "
                             f"values {np.unique(labels)[:5].tolist()}")
        labels = labels.astype(bool)
    num_target = int(labels.sum())
    if num_target == 0:
        raise ScoreError(f"no target trials among {labels.size} trials")
    if num_target == labels.size:
        raise ScoreError(f"no non-target trials among {labels.size} trials")
    return scores, labels


def det_curve(scores, labels) -> DetCurve:
    """Miss and false-alarm rates at every distinct score and at +inf.

    Args:
      scores: float array [n], higher means more likely target.
      labels: array [n] of 0/1 or bool, 1 = target.
    Returns:
      `DetCurve(miss, false_alarm, thresholds)`, thresholds increasing, so miss
      is non-decreasing and false_alarm non-increasing.
    """
    scores, labels = _validate(scores, labels)
    # Order within a run of tied scores does not matter (counts are read at the
    # first element of each run), so the faster unstable sort is fine.
    order = np.argsort(scores)
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    # Index of the first occurrence of each distinct score: everything before
    # it lies strictly below the threshold and is rejected.
    first = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    targets_below = np.r_[0, np.cumsum(sorted_labels)]
    num_target = targets_below[-1]
    num_nontarget = labels.size - num_target
    nontargets_below = np.arange(labels.size + 1) - targets_below
    miss = np.r_[targets_below[first], num_target] / num_target
    false_alarm = (num_nontarget - np.r_[nontargets_below[first], num_nontarget]) / num_nontarget
    thresholds = np.r_[sorted_scores[first], np.inf]
    return DetCurve(miss, false_alarm, thresholds)


def eer(scores, labels) -> tuple[float, float]:
    """Equal error rate (a fraction) and its threshold.

    The EER is where the linearly interpolated DET curve crosses
    `P_miss = P_fa` (see the module docstring). The threshold is interpolated
    with the same weight between the two bracketing thresholds; when the upper
    one is +inf (the crossing is past the highest score) the highest score is
    returned.
    """
    return eer_from_det(det_curve(scores, labels))


def eer_from_det(curve: DetCurve) -> tuple[float, float]:
    """`eer` of an already computed DET curve (saves a sort per extra metric)."""
    difference = curve.miss - curve.false_alarm  # non-decreasing, from -1 to +1
    upper = int(np.argmax(difference >= 0))
    if difference[upper] == 0:
        return float(curve.miss[upper]), float(curve.thresholds[upper])
    lower = upper - 1
    weight = -difference[lower] / (difference[upper] - difference[lower])
    rate = curve.miss[lower] + weight * (curve.miss[upper] - curve.miss[lower])
    low_t, high_t = curve.thresholds[lower], curve.thresholds[upper]
    threshold = low_t if np.isinf(high_t) else low_t + weight * (high_t - low_t)
    return float(rate), float(threshold)


def _check_costs(p_target: float, c_miss: float, c_fa: float) -> None:
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")


def _normalised_dcf(miss, false_alarm, p_target, c_miss, c_fa):
    cost = c_miss * p_target * miss + c_fa * (1.0 - p_target) * false_alarm
    return cost / min(c_miss * p_target, c_fa * (1.0 - p_target))


def min_dcf(scores, labels, p_target: float, c_miss: float = 1.0,
            c_fa: float = 1.0) -> tuple[float, float]:
    """Minimum normalised detection cost over all thresholds, and that threshold
    (+inf when rejecting every trial is cheapest).

    Normalised as NIST SRE / Kaldi `compute_min_dcf.py`: divided by
    `min(c_miss * p_target, c_fa * (1 - p_target))`.
    """
    return min_dcf_from_det(det_curve(scores, labels), p_target, c_miss, c_fa)


def min_dcf_from_det(curve: DetCurve, p_target: float, c_miss: float = 1.0,
                     c_fa: float = 1.0) -> tuple[float, float]:
    """`min_dcf` of an already computed DET curve."""
    _check_costs(p_target, c_miss, c_fa)
    costs = _normalised_dcf(curve.miss, curve.false_alarm, p_target, c_miss, c_fa)
    best = int(np.argmin(costs))
    return float(costs[best]), float(curve.thresholds[best])


def bayes_threshold(p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """The Bayes-optimal threshold for calibrated log-likelihood-ratio scores."""
    _check_costs(p_target, c_miss, c_fa)
    return float(np.log(c_fa * (1.0 - p_target)) - np.log(c_miss * p_target))


def actual_dcf(scores, labels, threshold: float | None, p_target: float,
               c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalised detection cost when accepting `score >= threshold`.

    `threshold=None` uses the Bayes threshold `log(c_fa (1-p) / (c_miss p))`,
    which is the right one when the scores are calibrated log-likelihood ratios.
    """
    _check_costs(p_target, c_miss, c_fa)
    scores, labels = _validate(scores, labels)
    if threshold is None:
        threshold = bayes_threshold(p_target, c_miss, c_fa)
    accepted = scores >= threshold
    miss = np.count_nonzero(labels & ~accepted) / np.count_nonzero(labels)
    false_alarm = np.count_nonzero(~labels & accepted) / np.count_nonzero(~labels)
    return float(_normalised_dcf(miss, false_alarm, p_target, c_miss, c_fa))


def cllr(llr_scores, labels) -> float:
    """Log-likelihood-ratio cost (Brümmer), in bits.

    `Cllr = (mean_target log2(1 + e^-s) + mean_nontarget log2(1 + e^s)) / 2`;
    a well-calibrated useful system is below 1, an uninformative one scores 1.
    Natural-log LLRs are expected.
    """
    scores, labels = _validate(llr_scores, labels)
    target_cost = np.logaddexp(0.0, -scores[labels]).mean()
    nontarget_cost = np.logaddexp(0.0, scores[~labels]).mean()
    return float((target_cost + nontarget_cost) / (2.0 * np.log(2.0)))


def pav(values, weights=None) -> np.ndarray:
    """Weighted isotonic (non-decreasing) least-squares fit of `values` in their order:
    the pool-adjacent-violators algorithm. Uses `scipy.optimize.isotonic_regression`
    (C) when available (SciPy >= 1.12), otherwise a NumPy/Python PAV."""
    values = np.asarray(values, dtype=np.float64)
    weights = (np.ones_like(values) if weights is None
               else np.asarray(weights, dtype=np.float64))
    try:
        from scipy.optimize import isotonic_regression
    except ImportError:
        isotonic_regression = None
    if isotonic_regression is not None:
        return np.asarray(isotonic_regression(values, weights=weights).x, dtype=np.float64)
    # Stack of blocks: (weighted mean, total weight, length).
    means, totals, lengths = [], [], []
    for value, weight in zip(values.tolist(), weights.tolist()):
        mean, total, length = value, weight, 1
        while means and means[-1] >= mean:
            previous_total = totals.pop()
            mean = (means.pop() * previous_total + mean * total) / (previous_total + total)
            total += previous_total
            length += lengths.pop()
        means.append(mean)
        totals.append(total)
        lengths.append(length)
    return np.repeat(means, lengths)


def optimal_llrs(scores, labels) -> np.ndarray:
    """The LLRs of the best monotone (non-decreasing) calibration of `scores`,
    in the input order: BOSARIS `opt_loglr`.

    Trials with tied scores are pooled first (a calibration is a function of the
    score, so they must share one LLR); PAV of the labels on the sorted distinct
    scores, weighted by their counts, gives posteriors `P` at the empirical prior
    `pi = num_target / n`, and `llr = logit(P) - logit(pi)`. Blocks holding only
    non-targets (targets) get `-inf` (`+inf`), which costs nothing in Cllr.
    """
    scores, labels = _validate(scores, labels)
    distinct, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    target_counts = np.bincount(inverse, weights=labels.astype(np.float64),
                                minlength=distinct.size)
    posterior = np.clip(pav(target_counts / counts, counts), 0.0, 1.0)
    prior = labels.mean()
    with np.errstate(divide="ignore"):
        llr = (np.log(posterior) - np.log1p(-posterior)
               - (np.log(prior) - np.log1p(-prior)))
    return llr[inverse]


def min_cllr(scores, labels) -> float:
    """Minimum Cllr (bits): the Cllr of `optimal_llrs`, the lowest any monotone
    calibration of these scores can reach (the discrimination part of Cllr;
    `cllr - min_cllr` is the calibration loss)."""
    return cllr_of_llrs(optimal_llrs(scores, labels), labels)


def cllr_of_llrs(llr_scores, labels) -> float:
    """`cllr` that also accepts infinite LLRs (as `optimal_llrs` produces): a target
    at `+inf` or non-target at `-inf` costs 0, the opposite costs `inf`."""
    llr_scores = np.asarray(llr_scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if np.isnan(llr_scores).any():
        raise ScoreError("NaN LLRs")
    _validate(np.where(np.isfinite(llr_scores), llr_scores, 0.0), labels)
    target_cost = np.logaddexp(0.0, -llr_scores[labels]).mean()
    nontarget_cost = np.logaddexp(0.0, llr_scores[~labels]).mean()
    return float((target_cost + nontarget_cost) / (2.0 * np.log(2.0)))
