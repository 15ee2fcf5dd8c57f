"""Iteration times of the i-vector system on synthetic frames.

    python benchmarks/ivector_speed.py --frames=360000 --utts=1000

Times one UBM-EM iteration at C components on `--frames` frames of dimension D, one
Baum-Welch pass, and one T-EM iteration on `--tv_utts` utterances (extrapolated
linearly to `--utts`), then prints the extrapolated total for a recipe (UBM: splitting
schedule of tfspk.ivector.gmm.train_ubm; T: --tv_iters iterations).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from tfspk.ivector import gmm, stats, total_variability as tv


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--components", type=int, default=512)
    parser.add_argument("--dim", type=int, default=60)
    parser.add_argument("--rank", type=int, default=400)
    parser.add_argument("--frames", type=int, default=360000)
    parser.add_argument("--ubm_frames", type=int, default=60000)
    parser.add_argument("--utts", type=int, default=1000)
    parser.add_argument("--tv_utts", type=int, default=128)
    parser.add_argument("--tv_iters", type=int, default=5)
    parser.add_argument("--iters_per_split", type=int, default=4)
    parser.add_argument("--final_iters", type=int, default=8)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    c, d, r = args.components, args.dim, args.rank
    ubm = gmm.DiagGmm(np.full(c, 1 / c), rng.normal(0, 1, (c, d)), rng.uniform(0.5, 1.5, (c, d)))
    x = rng.normal(0, 1.2, (args.ubm_frames, d))
    start = time.perf_counter()
    gmm.em_step(ubm, x, 1e-3)
    ubm_iter = (time.perf_counter() - start) * args.frames / args.ubm_frames
    # Splitting: an iteration at size s costs ~s/C of one at C.
    sizes, s = [], 1
    while s < c:
        s = min(2 * s, c)
        sizes.append(s)
    ubm_total = ubm_iter * (sum(args.iters_per_split * s / c for s in sizes[:-1])
                            + args.final_iters)
    frames_per = args.frames // args.utts
    utts = [rng.normal(0, 1.2, (frames_per, d)) for _ in range(args.tv_utts)]
    start = time.perf_counter()
    zeroth, first = stats.baum_welch(ubm, utts, top_k=20)
    bw = (time.perf_counter() - start) * args.utts / args.tv_utts
    model = tv.init_tv(ubm.means, ubm.variances, r)
    start = time.perf_counter()
    tv.em_step(model, zeroth, first)
    tv_iter = (time.perf_counter() - start) * args.utts / args.tv_utts
    # The per-component M-step solve does not scale with utterances: time it apart.
    a = np.eye(r)[None].repeat(c, 0) * 2
    start = time.perf_counter()
    np.linalg.solve(a, rng.normal(size=(c, r, d)))
    solve = time.perf_counter() - start
    tv_iter_fixed = tv_iter - solve * (args.utts / args.tv_utts - 1)
    print(f"C={c} D={d} R={r}, {args.frames} frames in {args.utts} utterances")
    print(f"UBM EM iteration at C={c}: {ubm_iter:.1f} s (timed on {args.ubm_frames} frames)")
    print(f"UBM total ({args.iters_per_split}/split, {args.final_iters} final): {ubm_total:.0f} s")
    print(f"Baum-Welch pass (top-20): {bw:.1f} s")
    print(f"T EM iteration: {tv_iter_fixed:.1f} s (timed on {args.tv_utts} utts)")
    print(f"extrapolated total: {ubm_total + bw + args.tv_iters * tv_iter_fixed:.0f} s")


if __name__ == "__main__":
    main()
