"""Cosine similarity scoring."""
from __future__ import annotations

import numpy as np

from tfspk.backend.base import Scorer
from tfspk.backend.linalg import check_matrix, rowwise_dot


def _unit_rows(embeddings):
    embeddings = check_matrix(embeddings)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, np.finfo(np.float64).tiny)


class CosineScorer(Scorer):
    """`cos(enroll, test)`; enrollment counts are irrelevant (an averaged model
    is just another vector)."""

    def score_matrix(self, enroll, test, enroll_counts=None):
        return _unit_rows(enroll) @ _unit_rows(test).T

    def score_pairs(self, enroll, test, enroll_index, test_index, enroll_counts=None):
        return rowwise_dot(_unit_rows(enroll), _unit_rows(test), enroll_index, test_index)
