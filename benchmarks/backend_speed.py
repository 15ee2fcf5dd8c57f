"""Backend speed: PLDA training on 100k x 600 embeddings and scoring of 1M trials.

    python benchmarks/backend_speed.py [--num_speakers=5000 --utts_per_speaker=20
                                        --dim=600 --lda_dim=200 --num_trials=1000000]

Embeddings are drawn from a two-covariance model (speaker ~ N(0, B),
utterance = speaker + N(0, W)), so the EER printed beside the timings checks the
backend is doing real work. Times the Kaldi recipe (mean -> LDA 200 -> length
norm -> PLDA with 10 EM iterations), PLDA directly on the 600-dim embeddings,
scoring 1M random trials (PLDA and cosine), and EER + minDCF on those scores.
About 2-3 minutes on 2 busy cores; peak memory about 2.5 GB.
"""
from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from tfspk import backend, metrics  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_speakers", 5000, "Training speakers.")
flags.DEFINE_integer("utts_per_speaker", 20, "Training utterances per speaker.")
flags.DEFINE_integer("dim", 600, "Embedding dimension.")
flags.DEFINE_integer("lda_dim", 200, "LDA output dimension.")
flags.DEFINE_integer("num_trials", 1_000_000, "Trials to score.")
flags.DEFINE_integer("num_eval_speakers", 1000, "Evaluation speakers (10 utterances each).")
flags.DEFINE_float("between_scale", 0.07, "Speaker spread; 0.07 gives an EER of a few %.")
flags.DEFINE_integer("blas_threads", 1, "BLAS threads (0: library default). One thread is "
                     "the fair setting on a shared machine: with other jobs running, "
                     "multi-threaded OpenBLAS ran 600x600 eigh 20x slower.")
flags.DEFINE_integer("seed", 0, "Random seed.")


def two_covariance_sampler(dim: int, between_scale: float, rng: np.random.Generator):
    """A sampler of (embeddings, speakers) with a random rank-dim/4 B and
    anisotropic W, both fixed for train and evaluation data."""
    rank = dim // 4
    between_factor = rng.standard_normal((dim, rank)) * (between_scale / np.sqrt(rank))
    within_scales = np.geomspace(0.1, 1.5, dim)
    within_basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    within_factor = within_basis * within_scales

    def sample(num_speakers, utts, speaker_offset=0):
        speakers = rng.standard_normal((num_speakers, between_factor.shape[1])) @ between_factor.T
        x = np.repeat(speakers, utts, axis=0)
        x += rng.standard_normal((num_speakers * utts, dim)) @ within_factor.T
        labels = np.repeat(np.arange(speaker_offset, speaker_offset + num_speakers), utts)
        return x.astype(np.float32), labels

    return sample


def timed(label: str, function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    print(f"{label:<58s} {time.perf_counter() - start:8.2f} s", flush=True)
    return result


def main(argv):
    del argv
    if FLAGS.blas_threads:
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency
        threadpool_limits(FLAGS.blas_threads)
    print(f"BLAS threads: {FLAGS.blas_threads or 'library default'}")
    rng = np.random.default_rng(FLAGS.seed)
    sample = two_covariance_sampler(FLAGS.dim, FLAGS.between_scale, rng)
    train_x, train_spk = timed(
        f"sample train {FLAGS.num_speakers}x{FLAGS.utts_per_speaker} x {FLAGS.dim}",
        sample, FLAGS.num_speakers, FLAGS.utts_per_speaker)
    eval_x, eval_spk = sample(FLAGS.num_eval_speakers, 10, speaker_offset=10**6)

    recipe = timed(f"train mean->LDA{FLAGS.lda_dim}->lnorm->PLDA (10 EM iters)",
                   backend.make_plda_backend(FLAGS.lda_dim).fit, train_x, train_spk)
    direct = timed(f"train mean->lnorm->PLDA on {FLAGS.dim} dims (10 EM iters)",
                   backend.make_plda_backend(None).fit, train_x, train_spk)
    cosine = backend.make_cosine_backend().fit(train_x, train_spk)

    # Random trials over the evaluation utterances, ~10% targets.
    n = FLAGS.num_trials
    enroll_index = rng.integers(0, len(eval_x), n)
    same = rng.random(n) < 0.1
    partner = (enroll_index // 10) * 10 + rng.integers(0, 10, n)
    test_index = np.where(same, partner, rng.integers(0, len(eval_x), n))
    labels = (eval_spk[enroll_index] == eval_spk[test_index]).astype(np.int64)

    for name, scoring_backend in (("LDA+PLDA", recipe), (f"PLDA {FLAGS.dim}-dim", direct),
                                  ("cosine", cosine)):
        def score():
            enrollment = scoring_backend.enroll(eval_x)
            return scoring_backend.score_pairs(enrollment, scoring_backend.transform(eval_x),
                                               enroll_index, test_index)
        scores = timed(f"score {n:,} trials, {name} (incl. transforms)", score)
        eer = timed(f"EER + minDCF(0.01) of {n:,} scores",
                    lambda: (metrics.eer(scores, labels)[0],
                             metrics.min_dcf(scores, labels, 0.01)[0]))
        print(f"    {name}: EER {100 * eer[0]:.2f}%  minDCF(0.01) {eer[1]:.4f}")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
