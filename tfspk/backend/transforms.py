"""Unsupervised embedding transforms: mean subtraction, whitening, length norm."""
from __future__ import annotations

import numpy as np

from tfspk.backend.base import Transform
from tfspk.backend.linalg import check_matrix, normalizing_transform


class MeanSubtraction(Transform):
    """Subtracts the training-set mean (Kaldi's `ivector-subtract-global-mean`)."""

    array_names = ("mean",)

    def __init__(self):
        self.mean = None

    def fit(self, embeddings, speakers=None):
        self.mean = check_matrix(embeddings).mean(axis=0)
        return self

    def transform(self, embeddings):
        self._check_fitted()
        return check_matrix(embeddings) - self.mean


class Whitening(Transform):
    """Centres and PCA-whitens: the training data come out with zero mean and
    identity covariance. Eigenvalues below `floor` x the largest are floored so
    that rank-deficient data do not blow up."""

    array_names = ("mean", "projection")

    def __init__(self, floor: float = 1e-6):
        self.floor = float(floor)
        self.mean = None
        self.projection = None

    def get_config(self):
        return {"floor": self.floor}

    def fit(self, embeddings, speakers=None):
        embeddings = check_matrix(embeddings)
        self.mean = embeddings.mean(axis=0)
        centred = embeddings - self.mean
        self.projection = normalizing_transform(centred.T @ centred / len(centred), self.floor)
        return self

    def transform(self, embeddings):
        self._check_fitted()
        return (check_matrix(embeddings) - self.mean) @ self.projection.T


class LengthNormalization(Transform):
    """Scales every embedding to a fixed norm.

    `scale="sqrt_dim"` (default) gives norm sqrt(dim), as Kaldi's
    `ivector-normalize-length`, so each coordinate has unit variance on average,
    which is what PLDA's Gaussian model expects. `scale="unit"` gives norm 1.
    A zero vector stays zero.
    """

    def __init__(self, scale: str = "sqrt_dim"):
        if scale not in ("sqrt_dim", "unit"):
            raise ValueError(f"scale must be 'sqrt_dim' or 'unit', got {scale!r}")
        self.scale = scale

    def get_config(self):
        return {"scale": self.scale}

    def transform(self, embeddings):
        embeddings = check_matrix(embeddings)
        target = np.sqrt(embeddings.shape[1]) if self.scale == "sqrt_dim" else 1.0
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        return embeddings * (target / np.maximum(norms, np.finfo(np.float64).tiny))
