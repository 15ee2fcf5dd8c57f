"""Linear discriminant analysis as Kaldi's `ivector-compute-lda`.

With `N` training embeddings, per-speaker means `m_s` over `n_s` utterances and
the global mean removed first:

* total covariance      `T = sum_i x_i x_i^T / N`
* between-class         `B = sum_s n_s m_s m_s^T / N` (utterance-weighted)
* within-class          `W = T - B`

The output is `U_k^T P (x - mean)` where `P` makes
`f T + (1 - f) W` the identity (`f = total_covariance_factor`, Kaldi's default
0: plain within-class normalisation) and `U_k` holds the `k` leading
eigenvectors of `P B P^T`. The projected training data therefore have identity
within-class covariance and a diagonal between-class covariance whose entries
(`between_class_variances`) decrease.
"""
from __future__ import annotations

import logging

from tfspk.backend.base import Transform
from tfspk.backend.linalg import (check_matrix, class_statistics, normalizing_transform,
                                  sorted_eigh)

logger = logging.getLogger(__name__)


class LDA(Transform):
    """Projects to the `dim` most speaker-discriminant directions.

    `dim` is capped at `min(input_dim, num_speakers - 1)`, the rank of the
    between-class scatter; `output_dim` holds the value used.
    """

    array_names = ("mean", "projection", "between_class_variances")

    def __init__(self, dim: int = 200, total_covariance_factor: float = 0.0,
                 covariance_floor: float = 1e-6):
        if dim < 1:
            raise ValueError(f"LDA dim must be positive, got {dim}")
        if not 0.0 <= total_covariance_factor <= 1.0:
            raise ValueError("total_covariance_factor must be in [0, 1], got "
                             f"{total_covariance_factor}")
        self.dim = int(dim)
        self.total_covariance_factor = float(total_covariance_factor)
        self.covariance_floor = float(covariance_floor)
        self.mean = None
        self.projection = None
        self.between_class_variances = None

    def get_config(self):
        return {"dim": self.dim, "total_covariance_factor": self.total_covariance_factor,
                "covariance_floor": self.covariance_floor}

    @property
    def output_dim(self) -> int:
        self._check_fitted()
        return self.projection.shape[0]

    def fit(self, embeddings, speakers=None):
        if speakers is None:
            raise ValueError("LDA needs speaker labels")
        embeddings = check_matrix(embeddings)
        stats = class_statistics(embeddings, speakers)
        num_speakers = stats.labels.size
        if num_speakers < 2 or embeddings.shape[0] <= num_speakers:
            raise ValueError("LDA needs at least 2 speakers and more utterances than "
                             f"speakers; got {embeddings.shape[0]} utterances of "
                             f"{num_speakers} speakers")
        out_dim = min(self.dim, embeddings.shape[1], num_speakers - 1)
        if out_dim < self.dim:
            logger.warning("LDA dim %d capped to %d (input dim %d, %d speakers)",
                           self.dim, out_dim, embeddings.shape[1], num_speakers)
        self.mean = embeddings.mean(axis=0)
        centred = embeddings - self.mean
        centred_means = stats.means - self.mean
        total = centred.T @ centred / len(centred)
        between = (centred_means.T * stats.counts) @ centred_means / len(centred)
        within = total - between
        to_normalize = (self.total_covariance_factor * total
                        + (1.0 - self.total_covariance_factor) * within)
        normalizer = normalizing_transform(to_normalize, self.covariance_floor)
        variances, directions = sorted_eigh(normalizer @ between @ normalizer.T)
        self.projection = directions[:, :out_dim].T @ normalizer
        self.between_class_variances = variances[:out_dim]
        return self

    def transform(self, embeddings):
        self._check_fitted()
        return (check_matrix(embeddings) - self.mean) @ self.projection.T
