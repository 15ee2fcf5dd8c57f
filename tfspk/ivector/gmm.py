"""Diagonal-covariance GMM-UBM trained by EM with Kaldi-style component splitting."""
from __future__ import annotations

import dataclasses
import json
import os
import sys

import numpy as np
from tqdm import tqdm

_LOG_2PI = np.log(2.0 * np.pi)


@dataclasses.dataclass
class DiagGmm:
    weights: np.ndarray    # [C]
    means: np.ndarray      # [C, D]
    variances: np.ndarray  # [C, D]

    @property
    def num_components(self) -> int:
        return self.weights.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def component_log_likelihoods(self, frames: np.ndarray) -> np.ndarray:
        """log(w_c N(x_t; mu_c, diag var_c)) as [T, C] float64 (matrix form)."""
        x = np.asarray(frames, np.float64)
        inv_var = 1.0 / self.variances
        const = (np.log(self.weights) - 0.5 * (self.dim * _LOG_2PI
                                               + np.log(self.variances).sum(1)
                                               + (self.means ** 2 * inv_var).sum(1)))
        return const + x @ (self.means * inv_var).T - 0.5 * (x * x) @ inv_var.T

    def posteriors(self, frames: np.ndarray):
        """(posteriors [T, C], per-frame log-likelihood [T])."""
        ll = self.component_log_likelihoods(frames)
        top = ll.max(axis=1, keepdims=True)
        post = np.exp(ll - top)
        total = post.sum(axis=1, keepdims=True)
        return post / total, (top + np.log(total))[:, 0]

    def save(self, path) -> None:
        path = os.fspath(path)
        with open(path, "wb") as stream:
            np.savez(stream, weights=self.weights, means=self.means, variances=self.variances)
        with open(path + ".json", "w", encoding="utf-8") as stream:
            json.dump({"kind": "DiagGmm", "num_components": self.num_components,
                       "dim": self.dim}, stream, indent=2)

    @classmethod
    def load(cls, path) -> "DiagGmm":
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return cls(data["weights"].astype(np.float64), data["means"].astype(np.float64),
                       data["variances"].astype(np.float64))


def accumulate(gmm: DiagGmm, frames: np.ndarray, chunk: int = 20000):
    """Zeroth/first/second-order sufficient statistics (float64) and total log-likelihood."""
    c, d = gmm.num_components, gmm.dim
    n, f, s, ll = np.zeros(c), np.zeros((c, d)), np.zeros((c, d)), 0.0
    for start in range(0, len(frames), chunk):
        x = np.asarray(frames[start:start + chunk], np.float64)
        post, frame_ll = gmm.posteriors(x)
        n += post.sum(0)
        f += post.T @ x
        s += post.T @ (x * x)
        ll += frame_ll.sum()
    return n, f, s, ll


def _split(gmm: DiagGmm, target: int, perturb: float) -> DiagGmm:
    """Splits the heaviest components (mean +- perturb * std, half the weight each)."""
    w, m, v = gmm.weights.copy(), gmm.means.copy(), gmm.variances.copy()
    while len(w) < target:
        k = int(np.argmax(w))
        offset = perturb * np.sqrt(v[k])
        w[k] /= 2
        w = np.append(w, w[k])
        m = np.vstack([m, m[k] + offset])
        m[k] -= offset
        v = np.vstack([v, v[k]])
    return DiagGmm(w, m, v)


def em_step(gmm: DiagGmm, frames, var_floor, min_count: float = 1e-3, perturb: float = 0.2):
    """One EM iteration; returns (new gmm, average log-likelihood per frame under `gmm`).

    Components with occupancy below `min_count` are re-initialised by splitting the
    heaviest component (so the count stays fixed); variances are floored at `var_floor`.
    """
    n, f, s, ll = accumulate(gmm, frames)
    keep = n >= min_count
    nk = np.maximum(n, 1e-300)[:, None]
    means = f / nk
    variances = np.maximum(s / nk - means ** 2, var_floor)
    weights = n / n.sum()
    new = DiagGmm(weights[keep] / weights[keep].sum(), means[keep], variances[keep])
    if not keep.all():
        new = _split(new, gmm.num_components, perturb)
    return new, ll / len(frames)


def train_ubm(frames: np.ndarray, num_components: int, iters_per_split: int = 4,
              final_iters: int = 8, perturb: float = 0.2, var_floor_factor: float = 0.01,
              min_variance: float = 1e-3, max_frames: int = 0, seed: int = 0,
              progress: bool = True, history: list | None = None) -> DiagGmm:
    """Trains a diagonal UBM: 1 -> 2 -> 4 ... -> `num_components` by splitting, with
    `iters_per_split` EM iterations at each intermediate size and `final_iters` at the
    final one. Variance floor: `var_floor_factor` x global variance (>= min_variance).
    `history` (a list) receives (num_components, avg log-likelihood) per iteration.
    """
    frames = np.asarray(frames, np.float64)
    if max_frames and len(frames) > max_frames:
        rng = np.random.default_rng(seed)
        frames = frames[np.sort(rng.choice(len(frames), max_frames, replace=False))]
    mean, var = frames.mean(0), frames.var(0)
    var_floor = np.maximum(var_floor_factor * var, min_variance)
    gmm = DiagGmm(np.ones(1), mean[None], np.maximum(var, var_floor)[None])
    sizes = []
    size = 1
    while size < num_components:
        size = min(2 * size, num_components)
        sizes.append(size)
    schedule = [(s, iters_per_split) for s in sizes[:-1]] + [(num_components, final_iters)]
    bar = tqdm(total=sum(i for _, i in schedule), desc="UBM EM", unit="iter",
               disable=not progress, file=sys.stderr)
    for size, iters in schedule:
        gmm = _split(gmm, size, perturb)
        for _ in range(iters):
            gmm, ll = em_step(gmm, frames, var_floor, perturb=perturb)
            if history is not None:
                history.append((size, ll))
            bar.set_postfix(C=size, ll=f"{ll:.3f}")
            bar.update()
    bar.close()
    return gmm
