"""Cohort score normalisation: Z-norm, T-norm, S-norm and adaptive S-norm.

Given raw trial scores `s(e, t)` and the scores of every enrollment model and
every test embedding against a cohort of impostor embeddings
(`enroll_cohort_scores` [E, C], `test_cohort_scores` [T, C]):

* Z-norm:  `(s - mu_e) / sigma_e`, statistics of the enrollment side's cohort scores;
* T-norm:  `(s - mu_t) / sigma_t`, statistics of the test side's cohort scores;
* S-norm:  the average of the two;
* AS-norm: S-norm where each side's statistics use only its `top_n` highest
  cohort scores (the most similar impostors; Matejka et al., 2017).

Standard deviations are population ones (ddof=0), so Z-normalised cohort
scores of an enrollment model have exactly zero mean and unit variance.
Everything is matrix form: one pass over the cohort score matrices.
"""
from __future__ import annotations

import numpy as np

METHODS = ("none", "znorm", "tnorm", "snorm", "asnorm")


def cohort_statistics(cohort_scores, top_n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each row of `cohort_scores` [R, C], over
    its `top_n` largest entries when given (all entries otherwise)."""
    cohort_scores = np.asarray(cohort_scores, dtype=np.float64)
    if cohort_scores.ndim != 2 or cohort_scores.shape[1] < 2:
        raise ValueError("cohort scores must be [rows, cohort_size] with at least 2 "
                         f"cohort members, got shape {cohort_scores.shape}")
    if top_n is not None:
        if top_n < 2:
            raise ValueError(f"top_n must be at least 2, got {top_n}")
        if top_n < cohort_scores.shape[1]:
            cut = cohort_scores.shape[1] - top_n
            cohort_scores = np.partition(cohort_scores, cut, axis=1)[:, cut:]
    mean = cohort_scores.mean(axis=1)
    std = cohort_scores.std(axis=1)
    return mean, np.maximum(std, 1e-12)


def normalize_scores(scores, method: str, enroll_cohort_scores=None, test_cohort_scores=None,
                     enroll_index=None, test_index=None, top_n: int | None = None) -> np.ndarray:
    """Normalised scores.

    Args:
      scores: raw scores, either a matrix [E, T] (then leave the indices None)
        or a vector of trials with `enroll_index`/`test_index` giving each
        trial's row in the cohort score matrices.
      method: one of `METHODS`.
      enroll_cohort_scores: [E, C], needed by znorm, snorm, asnorm.
      test_cohort_scores: [T, C], needed by tnorm, snorm, asnorm.
      top_n: cohort size kept per side, required by (and only used by) asnorm.
    """
    if method not in METHODS:
        raise ValueError(f"unknown score normalisation {method!r}; choose from {METHODS}")
    scores = np.asarray(scores, dtype=np.float64)
    if method == "none":
        return scores
    if method == "asnorm" and top_n is None:
        raise ValueError("asnorm needs top_n")
    top_n = top_n if method == "asnorm" else None
    paired = enroll_index is not None
    if paired != (test_index is not None):
        raise ValueError("give both enroll_index and test_index, or neither")

    def side(cohort_scores, index, name, axis):
        if cohort_scores is None:
            raise ValueError(f"{method} needs {name}")
        mean, std = cohort_statistics(cohort_scores, top_n)
        if paired:
            return mean[index], std[index]
        # Matrix form: enrollment statistics vary along rows, test along columns.
        return (mean[:, None], std[:, None]) if axis == 0 else (mean[None, :], std[None, :])

    normalized = []
    if method in ("znorm", "snorm", "asnorm"):
        mean, std = side(enroll_cohort_scores, enroll_index, "enroll_cohort_scores", 0)
        normalized.append((scores - mean) / std)
    if method in ("tnorm", "snorm", "asnorm"):
        mean, std = side(test_cohort_scores, test_index, "test_cohort_scores", 1)
        normalized.append((scores - mean) / std)
    return sum(normalized) / len(normalized)
