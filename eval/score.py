"""Scores a trial list with a cosine or PLDA backend and computes EER / minDCF.

    python -m eval.score --trials=veri_test2.txt --embeddings=test.npz \
        --backend=plda --backend_train=train.npz --lda_dim=200 --output_dir=runs/cnn_plda

Writes `scores.txt`, `trials.txt`, `metrics.json` (and `llrs.txt` with --calibration,
`backend/` with --backend_train) to --output_dir; the files are described in
`tfspk.scoring.score`, whose `score_trials` this CLI runs (its names are importable from
here as before). `--score_ids=as_listed` looks trial ids up exactly as the list writes
them (extension included) instead of stripped of their audio extension (the default).
"""
from __future__ import annotations

from absl import app, flags

from tfspk import backend as backends
from tfspk.scoring.score import *  # noqa: F401,F403 - the library names, as before
from tfspk.scoring.score import BACKENDS, SCORE_IDS, _check_arguments, score_trials
from tfspk.shards.cli import user_errors

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines this CLI's flags; called only when run as a program (or on a
    fresh `FlagValues` in tests), so importing the library never collides with
    other CLIs' flags of the same name."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("trials", None, "Trial list, VoxCeleb (`1 a.wav b.wav`) or Kaldi "
                        "(`a b target`) format.", **define)
    flags.DEFINE_string("embeddings", None, "Test (and enrollment) embeddings .npz.", **define)
    flags.DEFINE_string("enroll_embeddings", None, "Enrollment embeddings .npz; rows sharing "
                        "an id are averaged into one model.", **define)
    flags.DEFINE_enum("backend", "cosine", BACKENDS, "Scoring backend.", **define)
    flags.DEFINE_string("backend_train", None, "Training embeddings .npz with speakers: fit "
                        "the backend (PLDA: mean, LDA, length norm, PLDA; cosine: mean).",
                        **define)
    flags.DEFINE_string("backend_dir", None, "A saved backend folder (a run's `backend/`).",
                        **define)
    flags.DEFINE_integer("lda_dim", 200, "LDA output dimension for PLDA (0: no LDA); capped "
                         "by #speakers-1 and the embedding dimension.", **define)
    flags.DEFINE_integer("num_em_iters", 10, "PLDA EM iterations.", **define)
    flags.DEFINE_enum("score_norm", "none", list(backends.SCORE_NORM_METHODS),
                      "Score normalisation with --cohort.", **define)
    flags.DEFINE_string("cohort", None, "Cohort (impostor) embeddings .npz for score norm.",
                        **define)
    flags.DEFINE_integer("cohort_top_n", 300, "AS-norm: cohort scores kept per side.", **define)
    flags.DEFINE_string("output_dir", None, "Where scores.txt, trials.txt, metrics.json go.",
                        **define)
    flags.DEFINE_string("calibration", None, "calibration.json (eval.calibrate): also write "
                        "llrs.txt and report Cllr, min-Cllr, actual DCF on the LLRs.", **define)
    flags.DEFINE_enum("score_ids", "stripped", list(SCORE_IDS), "How trial ids are looked "
                      "up in the embeddings: with their audio extension stripped (matching "
                      "utt_id) or as_listed (exactly as the trial list writes them).",
                      **define)
    flags.mark_flags_as_required(["trials", "embeddings", "output_dir"], **define)


def run(flag_values: flags.FlagValues = FLAGS) -> dict:
    """The CLI's work on parsed flags: scores, prints a summary, returns the metrics."""
    options = {name: flag_values[name].value for name in (
        "backend", "enroll_embeddings", "backend_train", "backend_dir", "lda_dim",
        "num_em_iters", "score_norm", "cohort", "cohort_top_n", "calibration", "score_ids")}
    try:
        _check_arguments(options["backend"], options["backend_train"], options["backend_dir"],
                         options["score_norm"], options["cohort"], options["cohort_top_n"],
                         options["score_ids"])
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    result = score_trials(flag_values.trials, flag_values.embeddings, flag_values.output_dir,
                          **options)
    print(f"EER {100 * result['eer']:.2f}%  minDCF(0.01) {result['min_dcf_p0.01']:.4f}  "
          f"minDCF(0.001) {result['min_dcf_p0.001']:.4f}  "
          + (f"Cllr {result['cllr']:.4f} min-Cllr {result['min_cllr']:.4f}  "
             if "cllr" in result else "") +
          f"({result['num_target']} target, {result['num_nontarget']} non-target trials) "
          f"-> {flag_values.output_dir}")
    return result


@user_errors  # bad input (a ValueError naming the file) exits 2 without a traceback
def main(argv, flag_values: flags.FlagValues = FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    run(flag_values)


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
