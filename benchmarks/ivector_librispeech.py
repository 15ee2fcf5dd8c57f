"""i-vector + cosine / LDA+PLDA on LibriSpeech halves, with T trained in or out of domain.

    python benchmarks/ivector_librispeech.py --components=256 --rank=200
    python benchmarks/ivector_librispeech.py --components=256 --rank=200 --protocol=in_domain

The halves of `benchmarks/librispeech_verification.py` (same speaker split, seed 0): 125
backend speakers, 126 test speakers, every enrollment half against every test half.

* `--protocol=disjoint` (default, the right one): UBM and T are trained on the backend
  speakers' halves only, cut into `--chunk_frames` voiced-frame segments (more, shorter
  utterances for T); the test speakers are never seen by the UBM, T or backend.
* `--protocol=in_domain`: UBM and T are trained on all 502 halves, the test halves
  included (the measurement that gave PLDA 55.6% EER at 512/400): the i-vectors of T's
  own training set are white as a set, so a backend fitted on half of them is biased
  against the other half.

Prints cosine and mean + LDA(`--lda_dims`) + length norm + PLDA EERs (0 = no LDA).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.librispeech_verification import (DEFAULT_LIBRISPEECH_DIR,  # noqa: E402
                                                 MIN_HALF_SAMPLES, read_librispeech)
from eval import halves, ivector  # noqa: E402
from tfspk import backend, metrics  # noqa: E402
from tfspk.ivector import gmm, stats, total_variability  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--librispeech_dir", default=str(DEFAULT_LIBRISPEECH_DIR))
    parser.add_argument("--components", type=int, default=256)
    parser.add_argument("--rank", type=int, default=200)
    parser.add_argument("--protocol", choices=("disjoint", "in_domain"), default="disjoint")
    parser.add_argument("--chunk_frames", type=int, default=100,
                        help="disjoint: T-training segment length in voiced frames (0: whole halves)")
    parser.add_argument("--tv_iters", type=int, default=5)
    parser.add_argument("--lda_dims", default="200,50,0")
    args = parser.parse_args()
    started = time.monotonic()
    utterances, sexes = read_librispeech(args.librispeech_dir)
    backend_set, _ = halves.split_speakers(sorted(sexes), 125, 0, strata=sexes)
    enrollment, test = halves.split_in_halves(utterances, MIN_HALF_SAMPLES)
    all_halves = enrollment + test
    _, speakers, frames = ivector.corpus_frames(all_halves)
    speakers = np.array(speakers)
    in_backend = np.isin(speakers, backend_set)
    if args.protocol == "in_domain":
        train = frames
    else:
        backend_frames = [f for f, keep in zip(frames, in_backend) if keep]
        chunk = args.chunk_frames
        train = ([f[i:i + chunk] for f in backend_frames
                  for i in range(0, len(f) - chunk // 2, chunk)] if chunk else backend_frames)
    ubm = gmm.train_ubm(np.concatenate(train), args.components)
    zeroth, first = stats.baum_welch(ubm, train, top_k=20, progress=True)
    model = total_variability.train_tv(ubm, zeroth, first, args.rank, args.tv_iters)
    vectors = model.extract(*stats.baum_welch(ubm, frames, top_k=20)).astype(np.float64)

    count = len(enrollment)
    test_rows = np.flatnonzero(~in_backend[:count])
    enroll_vectors, test_vectors = vectors[:count][test_rows], vectors[count:][test_rows]
    labels = np.eye(len(test_rows), dtype=int).ravel()  # halves are in the same order
    print(f"{args.protocol}: UBM {args.components}, T {args.rank} on {len(train)} "
          f"utterances; {len(test_rows)} test speakers, {labels.size} trials")

    def report(name, scoring):
        scoring.fit(vectors[in_backend], speakers[in_backend])
        scores = scoring.score_matrix(scoring.enroll(enroll_vectors),
                                      scoring.transform(test_vectors)).ravel()
        print(f"  {name:12s} EER {100 * metrics.eer(scores, labels)[0]:.2f}%")

    report("cosine", backend.make_cosine_backend(True))
    for dim in (int(d) for d in args.lda_dims.split(",")):
        report(f"LDA{dim}+PLDA" if dim else "PLDA", backend.make_plda_backend(dim or None))
    print(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
