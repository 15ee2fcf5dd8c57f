"""Total-variability (i-vector extractor) training by EM, Kaldi ivector-extractor style.

Model: the supervector of an utterance is m + T w with w ~ N(0, I), UBM covariances
Sigma_c fixed. E-step per utterance: precision L = I + sum_c N_c T_c' S_c^-1 T_c, mean
w = L^-1 sum_c T_c' S_c^-1 (F~_c - N_c (m_c - mu_c)). M-step: T_c = C_c A_c^-1 with
C_c = sum_u F~_uc E[w_u]', A_c = sum_u N_uc E[w_u w_u']. Minimum divergence (Kaldi's
prior update): with h, P the average posterior mean and centred second moment, the mean
offset is folded into the supervector mean (m_c += T_c h, Kaldi keeps it as the prior
offset in the first i-vector dimension; the two parameterisations are equivalent) and
T <- T chol(P), so that the prior stays N(0, I).
"""
from __future__ import annotations

import dataclasses
import json
import os
import logging
import sys

import numpy as np
from tqdm import tqdm

logger = logging.getLogger(__name__)

# Below this many training utterances per i-vector dimension T can give utterances
# near-private directions (the supervector has C*D >> R dimensions), and at the EM fixed
# point (exactly, with minimum divergence) the training i-vectors are white *as a set*:
# sum_u E[w_u w_u'] = U I. Any subset with extra variance in a direction then leaves the
# rest of the set short of it. On 502 LibriSpeech halves with T trained on the very
# utterances being tested, a PLDA fitted on half the speakers therefore pointed at the
# directions the other half lacked: 55.6% EER at R=400 (worse than chance), against 7.9%
# with T trained on other speakers' audio (WORKSPACE_NOTES, issue 11).
MIN_UTTERANCES_PER_DIM = 10


@dataclasses.dataclass
class TotalVariability:
    T: np.ndarray          # [C, D, R]
    means: np.ndarray      # [C, D] supervector mean m (starts at the UBM means)
    ubm_means: np.ndarray  # [C, D] means the stats are centred by
    variances: np.ndarray  # [C, D] fixed UBM variances

    @property
    def ivector_dim(self) -> int:
        return self.T.shape[2]

    def _precomputed(self):
        inv_var = 1.0 / self.variances
        t_ivar = self.T * inv_var[:, :, None]                      # S^-1 T  [C, D, R]
        p = np.einsum("cdr,cds->crs", self.T, t_ivar)              # T' S^-1 T [C, R, R]
        return t_ivar, p

    def posterior(self, zeroth, first, chunk: int = 64, _pre=None):
        """Yields (rows, mean [b, R], covariance [b, R, R], log-det of precision [b],
        linear term [b, R]) for chunks of utterances."""
        t_ivar, p = _pre or self._precomputed()
        c, d, r = self.T.shape
        offset = self.means - self.ubm_means
        for start in range(0, len(zeroth), chunk):
            n = np.asarray(zeroth[start:start + chunk], np.float64)
            f = np.asarray(first[start:start + chunk], np.float64) - n[:, :, None] * offset
            precision = np.eye(r) + (n @ p.reshape(c, r * r)).reshape(-1, r, r)
            linear = f.reshape(len(n), c * d) @ t_ivar.reshape(c * d, r)
            chol = np.linalg.cholesky(precision)
            cov = np.linalg.inv(precision)
            mean = np.einsum("brs,bs->br", cov, linear)
            logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
            yield slice(start, start + len(n)), mean, cov, logdet, linear, f

    def extract(self, zeroth, first) -> np.ndarray:
        """i-vectors: posterior means of w, [U, R] float32."""
        pre = self._precomputed()
        return np.concatenate([mean for _, mean, *_ in self.posterior(zeroth, first, _pre=pre)]
                              ).astype(np.float32)

    def save(self, path) -> None:
        path = os.fspath(path)
        with open(path, "wb") as stream:
            np.savez(stream, T=self.T, means=self.means, ubm_means=self.ubm_means,
                     variances=self.variances)
        c, d, r = self.T.shape
        with open(path + ".json", "w", encoding="utf-8") as stream:
            json.dump({"kind": "TotalVariability", "num_components": c, "dim": d,
                       "ivector_dim": r}, stream, indent=2)

    @classmethod
    def load(cls, path) -> "TotalVariability":
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return cls(*(data[k].astype(np.float64)
                         for k in ("T", "means", "ubm_means", "variances")))


def init_tv(ubm_means, variances, ivector_dim: int, scale: float = 1.0, seed: int = 0):
    """Random T_c = diag(std_c) G scale / sqrt(R) (G standard normal)."""
    rng = np.random.default_rng(seed)
    c, d = ubm_means.shape
    t = rng.standard_normal((c, d, ivector_dim)) * np.sqrt(variances)[:, :, None]
    return TotalVariability(t * scale / np.sqrt(ivector_dim), ubm_means.copy(),
                            ubm_means.copy(), variances.copy())


def em_step(model: TotalVariability, zeroth, first, min_divergence: bool = True):
    """One EM iteration; returns (new model, objective per frame under `model`).

    The objective is the log marginal likelihood of the first-order stats given the
    alignments, up to a constant that does not depend on T or m:
    sum_u [0.5 (b_u' L_u^-1 b_u - log|L_u|) + sum_c (F~_uc' S_c^-1 d_c - 0.5 N_uc d_c'
    S_c^-1 d_c)] with d = m - mu (UBM-centred F~), per frame.
    """
    c, d, r = model.T.shape
    pre = model._precomputed()
    a = np.zeros((c, r * r))
    acc = np.zeros((c * d, r))
    sum_w, sum_ww = np.zeros(r), np.zeros((r, r))
    objective = 0.0
    inv_var = 1.0 / model.variances
    delta = model.means - model.ubm_means
    delta_term = (delta * delta * inv_var).sum(1)
    for rows, mean, cov, logdet, linear, f in model.posterior(zeroth, first, _pre=pre):
        second = cov + mean[:, :, None] * mean[:, None, :]
        a += np.asarray(zeroth[rows]).T @ second.reshape(len(mean), r * r)
        acc += f.reshape(len(mean), c * d).T @ mean
        sum_w += mean.sum(0)
        sum_ww += second.sum(0)
        n = np.asarray(zeroth[rows])
        raw = np.asarray(first[rows])
        objective += (0.5 * (np.einsum("br,br->b", linear, mean) - logdet).sum()
                      + (raw * (delta * inv_var)).sum() - 0.5 * (n @ delta_term).sum())
    a = a.reshape(c, r, r)
    t_new = np.linalg.solve(a, acc.reshape(c, d, r).transpose(0, 2, 1)).transpose(0, 2, 1)
    means = model.means
    if min_divergence:
        u = len(zeroth)
        h = sum_w / u
        second = sum_ww / u - np.outer(h, h)
        means = means + t_new @ h
        t_new = t_new @ np.linalg.cholesky(second)
    total_frames = float(np.sum(zeroth))
    return (TotalVariability(t_new, means, model.ubm_means, model.variances),
            objective / total_frames)


def train_tv(ubm, zeroth, first, ivector_dim: int, num_iters: int = 5, seed: int = 0,
             min_divergence: bool = True, progress: bool = True,
             history: list | None = None) -> TotalVariability:
    """Trains T from Baum-Welch stats (centred by `ubm.means`); `history` gets the
    objective per frame of each iteration.

    Train T on data disjoint from the utterances you evaluate (the i-vectors of T's own
    training set are whitened jointly, see `MIN_UTTERANCES_PER_DIM`); a warning is logged
    when there are fewer than `MIN_UTTERANCES_PER_DIM` utterances per i-vector dimension.
    """
    num_utts = len(zeroth)
    if num_utts < MIN_UTTERANCES_PER_DIM * ivector_dim:
        logger.warning(
            "training a %d-dim T on only %d utterances (< %d per dimension): T can fit "
            "each utterance its own direction and its training i-vectors come out white "
            "as a set; do not score utterances T was trained on, and prefer a smaller "
            "--ivector_dim or more (shorter) training segments", ivector_dim, num_utts,
            MIN_UTTERANCES_PER_DIM)
    model = init_tv(ubm.means, ubm.variances, ivector_dim, seed=seed)
    for _ in tqdm(range(num_iters), desc="T EM", unit="iter", disable=not progress,
                  file=sys.stderr):
        model, objective = em_step(model, zeroth, first, min_divergence)
        if history is not None:
            history.append(objective)
    return model
