"""Iteration times of the i-vector system on synthetic frames.

    python benchmarks/ivector_speed.py --frames=360000 --utts=1000

Times one UBM-EM iteration at C components on `--frames` frames of dimension D, one
Baum-Welch pass, and one T-EM iteration on `--tv_utts` utterances (extrapolated
linearly to `--utts`), then prints the extrapolated total for a recipe (UBM: splitting
schedule of tfspk.ivector.gmm.train_ubm; T: --tv_iters iterations).

From Python: `run_benchmark(components=..., ...)` returns the times as a dict and
`format_report(result)` the lines printed.
"""
from __future__ import annotations

import time

import numpy as np
from absl import app, flags

from tfspk.ivector import gmm, stats, total_variability as tv

FLAGS = flags.FLAGS


def run_benchmark(*, components: int = 512, dim: int = 60, rank: int = 400,
                  frames: int = 360000, ubm_frames: int = 60000, utts: int = 1000,
                  tv_utts: int = 128, tv_iters: int = 5, iters_per_split: int = 4,
                  final_iters: int = 8) -> dict:
    """Times (seconds) of one UBM-EM iteration, the UBM recipe, a Baum-Welch pass, one
    T-EM iteration and the extrapolated total, with the sizes they were timed at."""
    if frames < utts:
        raise ValueError(f"frames={frames} < utts={utts}: no frames per utterance")
    rng = np.random.default_rng(0)
    c, d, r = components, dim, rank
    ubm = gmm.DiagGmm(np.full(c, 1 / c), rng.normal(0, 1, (c, d)), rng.uniform(0.5, 1.5, (c, d)))
    x = rng.normal(0, 1.2, (ubm_frames, d))
    start = time.perf_counter()
    gmm.em_step(ubm, x, 1e-3)
    ubm_iter = (time.perf_counter() - start) * frames / ubm_frames
    # Splitting: an iteration at size s costs ~s/C of one at C.
    sizes, s = [], 1
    while s < c:
        s = min(2 * s, c)
        sizes.append(s)
    ubm_total = ubm_iter * (sum(iters_per_split * s / c for s in sizes[:-1]) + final_iters)
    frames_per = frames // utts
    utterances = [rng.normal(0, 1.2, (frames_per, d)) for _ in range(tv_utts)]
    start = time.perf_counter()
    zeroth, first = stats.baum_welch(ubm, utterances, top_k=20)
    bw = (time.perf_counter() - start) * utts / tv_utts
    model = tv.init_tv(ubm.means, ubm.variances, r)
    start = time.perf_counter()
    tv.em_step(model, zeroth, first)
    tv_iter = (time.perf_counter() - start) * utts / tv_utts
    # The per-component M-step solve does not scale with utterances: time it apart.
    a = np.eye(r)[None].repeat(c, 0) * 2
    start = time.perf_counter()
    np.linalg.solve(a, rng.normal(size=(c, r, d)))
    solve = time.perf_counter() - start
    tv_iter_fixed = tv_iter - solve * (utts / tv_utts - 1)
    return {"components": c, "dim": d, "rank": r, "frames": frames, "utts": utts,
            "ubm_frames": ubm_frames, "tv_utts": tv_utts, "tv_iters": tv_iters,
            "iters_per_split": iters_per_split, "final_iters": final_iters,
            "ubm_iteration_s": ubm_iter, "ubm_total_s": ubm_total,
            "baum_welch_s": bw, "tv_iteration_s": tv_iter_fixed,
            "total_s": ubm_total + bw + tv_iters * tv_iter_fixed}


def format_report(result: dict) -> list[str]:
    """The lines the CLI prints for `run_benchmark`'s result."""
    r = result
    c = r["components"]
    return [
        f"C={c} D={r['dim']} R={r['rank']}, {r['frames']} frames in {r['utts']} utterances",
        f"UBM EM iteration at C={c}: {r['ubm_iteration_s']:.1f} s "
        f"(timed on {r['ubm_frames']} frames)",
        f"UBM total ({r['iters_per_split']}/split, {r['final_iters']} final): "
        f"{r['ubm_total_s']:.0f} s",
        f"Baum-Welch pass (top-20): {r['baum_welch_s']:.1f} s",
        f"T EM iteration: {r['tv_iteration_s']:.1f} s (timed on {r['tv_utts']} utts)",
        f"extrapolated total: {r['total_s']:.0f} s",
    ]


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """CLI flags; defined only when run as a program, so tests can import the module."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_integer("components", 512, "UBM components C.", lower_bound=1, **define)
    flags.DEFINE_integer("dim", 60, "Feature dimension D.", lower_bound=1, **define)
    flags.DEFINE_integer("rank", 400, "i-vector dimension R (rank of T).", lower_bound=1,
                         **define)
    flags.DEFINE_integer("frames", 360000, "Frames of the recipe the times are "
                         "extrapolated to (at least --utts).", lower_bound=1, **define)
    flags.DEFINE_integer("ubm_frames", 60000, "Frames the UBM-EM iteration is timed on.",
                         lower_bound=1, **define)
    flags.DEFINE_integer("utts", 1000, "Utterances of the recipe (--frames are split "
                         "evenly among them).", lower_bound=1, **define)
    flags.DEFINE_integer("tv_utts", 128, "Utterances Baum-Welch and the T-EM iteration "
                         "are timed on.", lower_bound=1, **define)
    flags.DEFINE_integer("tv_iters", 5, "T EM iterations of the recipe.", lower_bound=1,
                         **define)
    flags.DEFINE_integer("iters_per_split", 4, "UBM EM iterations per intermediate "
                         "split size.", lower_bound=1, **define)
    flags.DEFINE_integer("final_iters", 8, "UBM EM iterations at the final size.",
                         lower_bound=1, **define)
    flags.register_multi_flags_validator(
        ["frames", "utts"], lambda values: values["utts"] <= values["frames"],
        "--utts must be at most --frames (each utterance needs a frame)", **define)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    result = run_benchmark(
        components=FLAGS.components, dim=FLAGS.dim, rank=FLAGS.rank, frames=FLAGS.frames,
        ubm_frames=FLAGS.ubm_frames, utts=FLAGS.utts, tv_utts=FLAGS.tv_utts,
        tv_iters=FLAGS.tv_iters, iters_per_split=FLAGS.iters_per_split,
        final_iters=FLAGS.final_iters)
    print("\n".join(format_report(result)))


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
