"""Fits a score calibration (raw scores -> LLRs, named thresholds) on a scored trial list.

    python -m eval.calibrate --scores=runs/cos/scores.txt --trials=runs/cos/trials.txt \
        --output=calibration.json [--prior=0.5] [--far=0.01] [--model=EXPORT_DIR]

`--scores` is an `eval.score` scores file (`enroll test score`); `--trials` any
trial list `tfspk.trials.read_trials` reads (labels), matched to the scores by
the `(enroll, test)` pair. `--model` also writes `calibration.json` into that
export folder. The calibration set must be disjoint (in speakers) from the data
you later evaluate on.
"""
from __future__ import annotations

import pathlib
from typing import Optional, Sequence

import numpy as np
from absl import app, flags

from eval.score import ScoreFileError, read_scores
from tfspk import calibration
from tfspk.shards.cli import user_errors
from tfspk.trials import read_trials


def labelled_scores(scores_path, trials_path) -> tuple[np.ndarray, np.ndarray]:
    """Scores of `scores_path` with the labels of the same pairs in `trials_path`."""
    pairs, scores = read_scores(scores_path)
    labels_by_pair = {}
    for trial in read_trials(trials_path):
        labels_by_pair[(trial.enroll, trial.test)] = trial.label
    labels = np.empty(len(pairs), np.int64)
    for k, pair in enumerate(pairs):
        if pair not in labels_by_pair:
            raise ScoreFileError(f"trial {pair} is not in {trials_path}", scores_path)
        labels[k] = labels_by_pair[pair]
    return scores, labels


def calibrate(scores_path, trials_path, output, *, prior: float = 0.5,
              fars: Sequence[float] = (0.01,),
              p_targets: Sequence[float] = calibration.DEFAULT_P_TARGETS,
              model: Optional[str] = None,
              default_threshold: Optional[str] = None) -> calibration.Calibration:
    """Fits, writes `output` (and `<model>/calibration.json`), returns the calibration.

    `default_threshold` names the operating point the model decides at (e.g.
    `far_0.01`; default: the Bayes point of the first of `p_targets`).
    """
    if model and not pathlib.Path(model).is_dir():  # before the fit, not after it
        raise ValueError(f"--model {model}: not a folder")
    scores, labels = labelled_scores(scores_path, trials_path)
    cal = calibration.fit_calibration(
        scores, labels, prior, p_targets=p_targets, fars=fars,
        default_threshold=default_threshold,
        metadata={"scores": str(scores_path), "trials": str(trials_path)})
    cal.save(output)
    if model:
        cal.save(pathlib.Path(model) / calibration.FILE_NAME)
    return cal


FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("scores", None, "eval.score scores file (enroll test score).", **define)
    flags.DEFINE_string("trials", None, "Trial list with labels (Kaldi or VoxCeleb).", **define)
    flags.DEFINE_string("output", calibration.FILE_NAME, "Calibration JSON to write.", **define)
    flags.DEFINE_float("prior", 0.5, "Target prior weighting the logistic regression.",
                       **define)
    flags.DEFINE_list("far", ["0.01"], "False-accept rates to store thresholds for.", **define)
    flags.DEFINE_list("p_targets", ["0.01", "0.05"], "Priors to store Bayes thresholds for.",
                      **define)
    flags.DEFINE_string("model", None, "Export folder: also write calibration.json there.",
                        **define)
    flags.DEFINE_string("default_threshold", None, "Operating point the model decides at "
                        "(bayes_p<p> or far_<f> of the stored ones); default: "
                        "bayes_p<first --p_targets>.", **define)
    flags.mark_flags_as_required(["scores", "trials"], **define)
    flags.register_validator("prior", lambda p: 0.0 < p < 1.0,
                             message="--prior must be in (0, 1)", **define)


def run(flag_values: flags.FlagValues = FLAGS) -> calibration.Calibration:
    try:
        fars = [float(v) for v in flag_values.far]
        p_targets = [float(v) for v in flag_values.p_targets]
    except ValueError as error:
        raise app.UsageError(f"--far / --p_targets: {error}") from None
    cal = calibrate(flag_values.scores, flag_values.trials, flag_values.output,
                    prior=flag_values.prior, fars=fars, p_targets=p_targets,
                    model=flag_values.model,
                    default_threshold=flag_values.default_threshold)
    print(f"llr = {cal.scale:.6g} * score + {cal.offset:.6g}  (Cllr {cal.metadata['cllr']:.4f}, "
          f"min-Cllr {cal.metadata['min_cllr']:.4f} on the calibration set)")
    for name, value in cal.thresholds.items():
        print(f"  {name}: {value:.6g}{'  (default)' if name == cal.default_threshold else ''}")
    print(f"-> {flag_values.output}")
    return cal


@user_errors
def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    run(FLAGS)


if __name__ == "__main__":
    from tfspk import flagfiles

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
