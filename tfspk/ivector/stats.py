"""Baum-Welch statistics of utterances against a diagonal UBM."""
from __future__ import annotations

import sys

import numpy as np
from tqdm import tqdm

from tfspk.ivector.gmm import DiagGmm


def frame_posteriors(ubm: DiagGmm, frames: np.ndarray, top_k: int = 0,
                     min_post: float = 0.0) -> np.ndarray:
    """[T, C] posteriors; with `top_k` > 0 only each frame's k best components (Kaldi's
    Gaussian selection) keep mass, renormalised; posteriors below `min_post` are pruned."""
    ll = ubm.component_log_likelihoods(frames)
    if 0 < top_k < ubm.num_components:
        cut = np.partition(ll, -top_k, axis=1)[:, -top_k][:, None]
        ll = np.where(ll >= cut, ll, -np.inf)
    post = np.exp(ll - ll.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    if min_post > 0:
        post = np.where(post >= min_post, post, 0.0)
        post /= post.sum(axis=1, keepdims=True)
    return post


def baum_welch(ubm: DiagGmm, utterances, top_k: int = 0, min_post: float = 0.0,
               progress: bool = False):
    """Zeroth [U, C] and first-order stats centred by the UBM means [U, C, D] (float64):
    N_c = sum_t g_tc, F~_c = sum_t g_tc (x_t - mu_c), for each [T, D] array in utterances."""
    zeroth, first = [], []
    for frames in tqdm(utterances, desc="Baum-Welch", unit="utt", disable=not progress,
                       file=sys.stderr):
        x = np.asarray(frames, np.float64)
        post = frame_posteriors(ubm, x, top_k, min_post)
        n = post.sum(0)
        zeroth.append(n)
        first.append(post.T @ x - n[:, None] * ubm.means)
    return np.array(zeroth), np.array(first)
