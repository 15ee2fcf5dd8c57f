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
From Python: `run_benchmark(librispeech_dir, components=..., ...)` prints the same and
returns the EERs as a dict.
"""
from __future__ import annotations

import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks.librispeech_verification import (DEFAULT_LIBRISPEECH_DIR,  # noqa: E402
                                                 MIN_HALF_SAMPLES, read_librispeech)
from eval import halves, ivector  # noqa: E402
from tfspk import backend, metrics  # noqa: E402
from tfspk.ivector import gmm, stats, total_variability  # noqa: E402

PROTOCOLS = ("disjoint", "in_domain")
FLAGS = flags.FLAGS


def parse_lda_dims(items) -> list[int]:
    """`--lda_dims` items ("200", "50", "0") as LDA dimensions >= 0 (0: no LDA)."""
    dims = [int(item) for item in items]
    if not dims or min(dims) < 0:
        raise ValueError(f"LDA dimensions must be integers >= 0, got {list(items)}")
    return dims


def run_benchmark(librispeech_dir=DEFAULT_LIBRISPEECH_DIR, *, components: int = 256,
                  rank: int = 200, protocol: str = "disjoint", chunk_frames: int = 100,
                  tv_iters: int = 5, lda_dims=(200, 50, 0)) -> dict:
    """Trains the UBM and T by `protocol`, prints the cosine and (LDA+)PLDA EERs as it
    goes and returns them ({backend name: EER}) with the sizes and the seconds taken."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    started = time.monotonic()
    utterances, sexes = read_librispeech(librispeech_dir)
    backend_set, _ = halves.split_speakers(sorted(sexes), 125, 0, strata=sexes)
    enrollment, test = halves.split_in_halves(utterances, MIN_HALF_SAMPLES)
    all_halves = enrollment + test
    _, speakers, frames = ivector.corpus_frames(all_halves)
    speakers = np.array(speakers)
    in_backend = np.isin(speakers, backend_set)
    if protocol == "in_domain":
        train = frames
    else:
        backend_frames = [f for f, keep in zip(frames, in_backend) if keep]
        chunk = chunk_frames
        train = ([f[i:i + chunk] for f in backend_frames
                  for i in range(0, len(f) - chunk // 2, chunk)] if chunk else backend_frames)
    ubm = gmm.train_ubm(np.concatenate(train), components)
    zeroth, first = stats.baum_welch(ubm, train, top_k=20, progress=True)
    model = total_variability.train_tv(ubm, zeroth, first, rank, tv_iters)
    vectors = model.extract(*stats.baum_welch(ubm, frames, top_k=20)).astype(np.float64)

    count = len(enrollment)
    test_rows = np.flatnonzero(~in_backend[:count])
    enroll_vectors, test_vectors = vectors[:count][test_rows], vectors[count:][test_rows]
    labels = np.eye(len(test_rows), dtype=int).ravel()  # halves are in the same order
    print(f"{protocol}: UBM {components}, T {rank} on {len(train)} "
          f"utterances; {len(test_rows)} test speakers, {labels.size} trials")
    eers = {}

    def report(name, scoring):
        scoring.fit(vectors[in_backend], speakers[in_backend])
        scores = scoring.score_matrix(scoring.enroll(enroll_vectors),
                                      scoring.transform(test_vectors)).ravel()
        eers[name] = metrics.eer(scores, labels)[0]
        print(f"  {name:12s} EER {100 * eers[name]:.2f}%")

    report("cosine", backend.make_cosine_backend(True))
    for dim in lda_dims:
        report(f"LDA{dim}+PLDA" if dim else "PLDA", backend.make_plda_backend(dim or None))
    seconds = time.monotonic() - started
    print(f"took {seconds:.0f} s")
    return {"protocol": protocol, "components": components, "rank": rank,
            "train_utterances": len(train), "test_speakers": len(test_rows),
            "trials": int(labels.size), "eer": eers, "seconds": seconds}


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """CLI flags; defined only when run as a program, so tests can import the module."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("librispeech_dir", str(DEFAULT_LIBRISPEECH_DIR),
                        "Folder of SPEAKER-CHAPTER-UTT.flac files (one per speaker) and "
                        "SPEAKERS.TXT.", **define)
    flags.DEFINE_integer("components", 256, "UBM components.", lower_bound=1, **define)
    flags.DEFINE_integer("rank", 200, "i-vector dimension (rank of T).", lower_bound=1,
                         **define)
    flags.DEFINE_enum("protocol", "disjoint", list(PROTOCOLS), "disjoint: UBM and T on "
                      "the backend speakers' halves only; in_domain: on all halves, the "
                      "test halves included.", **define)
    flags.DEFINE_integer("chunk_frames", 100, "disjoint: T-training segment length in "
                         "voiced frames (0: whole halves)", lower_bound=0, **define)
    flags.DEFINE_integer("tv_iters", 5, "T EM iterations.", lower_bound=1, **define)
    flags.DEFINE_list("lda_dims", ["200", "50", "0"], "LDA dimensions before PLDA, one "
                      "PLDA row each (0: no LDA).", **define)

    def lda_dims_ok(items):
        try:
            parse_lda_dims(items)
        except ValueError:
            return False
        return True

    flags.register_validator("lda_dims", lda_dims_ok, "--lda_dims must be a "
                             "comma-separated list of integers >= 0", **define)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not os.path.isdir(FLAGS.librispeech_dir):
        raise app.UsageError(f"--librispeech_dir {FLAGS.librispeech_dir} is not a directory")
    run_benchmark(FLAGS.librispeech_dir, components=FLAGS.components, rank=FLAGS.rank,
                  protocol=FLAGS.protocol, chunk_frames=FLAGS.chunk_frames,
                  tv_iters=FLAGS.tv_iters, lda_dims=parse_lda_dims(FLAGS.lda_dims))


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
