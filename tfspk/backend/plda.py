"""Two-covariance PLDA trained by EM and scored as Kaldi's `ivector-compute-plda`
/ `ivector-plda-scoring`.

Model: a speaker variable `y ~ N(mu, B)` and utterances `x = y + e`,
`e ~ N(0, W)`. EM starts from `B = W = I`. In each iteration, for a speaker with
`n` utterances and mean `m` (global mean removed), the posterior of `y` has
covariance `C_n = (B^-1 + n W^-1)^-1` and mean `w = C_n n W^-1 m`; then

* `B = mean over speakers of (C_n + w w^T)`
* `W = (scatter of utterances about their speaker mean
        + sum over speakers of n (C_n + (m - w)(m - w)^T)) / N`

(the second term counts one degree of freedom per speaker, so the within-class
count is `sum(n - 1) + num_speakers = N`). The global mean `mu` is the average
of the speaker means, as in Kaldi.

After training, `A = U^T L^-1` (`W = L L^T`, `U` the eigenvectors of
`L^-1 B L^-T`, eigenvalues `psi` decreasing) makes `W` the identity and `B`
diagonal. Scoring a model averaged over `n` enrollment utterances, `u = A(e - mu)`,
against a test embedding `v = A(t - mu)`:

    llr = log N(v; n psi / (n psi + 1) u, I + psi / (n psi + 1))
          - log N(v; 0, I + psi)

With `normalize_length=True` (Kaldi's default) `u` and `v` are first scaled so
that `sum(u^2 / (psi + 1/n)) = dim`, the squared norm they would have on average
under the model. Scores are natural-log likelihood ratios.
"""
from __future__ import annotations

import numpy as np

from tfspk.backend.base import Scorer
from tfspk.backend.linalg import check_matrix, class_statistics, rowwise_dot, sorted_eigh


class PLDA(Scorer):
    """Two-covariance PLDA: `fit` runs EM, `score_pairs`/`score_matrix` give LLRs."""

    array_names = ("mean", "transform", "psi", "within_covariance", "between_covariance")
    produces_llr = True

    def __init__(self, num_em_iters: int = 10, normalize_length: bool = True,
                 simple_length_norm: bool = False):
        if num_em_iters < 1:
            raise ValueError(f"num_em_iters must be positive, got {num_em_iters}")
        self.num_em_iters = int(num_em_iters)
        self.normalize_length = bool(normalize_length)
        self.simple_length_norm = bool(simple_length_norm)
        self.mean = None
        self.transform = None
        self.psi = None
        self.within_covariance = None
        self.between_covariance = None

    def get_config(self):
        return {"num_em_iters": self.num_em_iters, "normalize_length": self.normalize_length,
                "simple_length_norm": self.simple_length_norm}

    def fit(self, embeddings, speakers=None):
        if speakers is None:
            raise ValueError("PLDA needs speaker labels")
        embeddings = check_matrix(embeddings)
        stats = class_statistics(embeddings, speakers)
        num_utts, dim = embeddings.shape
        num_speakers = stats.labels.size
        if num_utts <= num_speakers:
            raise ValueError("PLDA needs some speakers with 2 or more utterances to "
                             f"estimate the within-class covariance; got {num_utts} "
                             f"utterances of {num_speakers} speakers")
        offsets = embeddings - stats.means[stats.index]
        scatter = offsets.T @ offsets
        self.mean = stats.means.mean(axis=0)
        centred_means = stats.means - self.mean
        # Speakers with the same utterance count share the posterior covariance.
        groups = [(n, centred_means[stats.counts == n]) for n in np.unique(stats.counts)]

        within, between = np.eye(dim), np.eye(dim)
        for _ in range(self.num_em_iters):
            within_inv, between_inv = np.linalg.inv(within), np.linalg.inv(between)
            within_stats, between_stats = scatter.copy(), np.zeros((dim, dim))
            for n, means in groups:
                posterior_cov = np.linalg.inv(between_inv + n * within_inv)
                posterior_means = means @ (n * within_inv) @ posterior_cov
                residual = means - posterior_means
                between_stats += len(means) * posterior_cov + posterior_means.T @ posterior_means
                within_stats += n * (len(means) * posterior_cov + residual.T @ residual)
            within = _symmetric(within_stats / num_utts)
            between = _symmetric(between_stats / num_speakers)
        self.within_covariance, self.between_covariance = within, between
        self._diagonalise()
        return self

    def _diagonalise(self):
        cholesky_inv = np.linalg.inv(np.linalg.cholesky(self.within_covariance))
        psi, eigenvectors = sorted_eigh(cholesky_inv @ self.between_covariance @ cholesky_inv.T)
        self.psi = np.maximum(psi, 0.0)
        self.transform = eigenvectors.T @ cholesky_inv

    def project(self, embeddings, counts=None) -> np.ndarray:
        """Kaldi's `TransformIvector`: the embeddings in the diagonal PLDA space,
        length-normalised for the given utterance counts."""
        self._check_fitted()
        projected = (check_matrix(embeddings) - self.mean) @ self.transform.T
        if not self.normalize_length:
            return projected
        dim = projected.shape[1]
        if self.simple_length_norm:
            squared = np.sum(projected**2, axis=1)
        else:
            counts = _counts(counts, len(projected))
            squared = np.sum(projected**2 / (self.psi + 1.0 / counts[:, None]), axis=1)
        return projected * np.sqrt(dim / np.maximum(squared, np.finfo(np.float64).tiny))[:, None]

    def _enroll_terms(self, enroll, enroll_counts):
        """Per model: the vector dotted with the test embedding, the constant, and
        the index of its utterance count among `counts`."""
        counts = _counts(enroll_counts, len(enroll))
        projected = self.project(enroll, counts)
        n_psi = counts[:, None] * self.psi
        shrink = n_psi / (n_psi + 1.0)
        same_var = 1.0 + self.psi / (n_psi + 1.0)
        linear = shrink * projected / same_var
        constant = (-0.5 * np.sum(shrink**2 * projected**2 / same_var + np.log(same_var), axis=1)
                    + 0.5 * np.sum(np.log1p(self.psi)))
        distinct, count_index = np.unique(counts, return_inverse=True)
        return linear, constant, distinct, count_index

    def _test_quadratic(self, projected_test, distinct_counts):
        """`0.5 v^2 . (1/(1+psi) - 1/same_var(n))` for each distinct count n: [G, T]."""
        same_var = 1.0 + self.psi / (distinct_counts[:, None] * self.psi + 1.0)
        weights = 0.5 * (1.0 / (1.0 + self.psi) - 1.0 / same_var)
        return weights @ (projected_test**2).T

    def score_matrix(self, enroll, test, enroll_counts=None):
        linear, constant, distinct, count_index = self._enroll_terms(enroll, enroll_counts)
        projected_test = self.project(test)
        quadratic = self._test_quadratic(projected_test, distinct)
        return linear @ projected_test.T + constant[:, None] + quadratic[count_index]

    def score_pairs(self, enroll, test, enroll_index, test_index, enroll_counts=None):
        linear, constant, distinct, count_index = self._enroll_terms(enroll, enroll_counts)
        projected_test = self.project(test)
        quadratic = self._test_quadratic(projected_test, distinct)
        enroll_index, test_index = np.asarray(enroll_index), np.asarray(test_index)
        return (rowwise_dot(linear, projected_test, enroll_index, test_index)
                + constant[enroll_index] + quadratic[count_index[enroll_index], test_index])


def _symmetric(matrix):
    return (matrix + matrix.T) / 2


def _counts(counts, size):
    if counts is None:
        return np.ones(size)
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (size,) or (counts < 1).any():
        raise ValueError(f"need one utterance count >= 1 per enrollment row ({size}), "
                         f"got shape {counts.shape}")
    return counts
