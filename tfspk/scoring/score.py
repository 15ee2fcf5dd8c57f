"""Scoring a trial list with a cosine or PLDA backend: EER / minDCF and the score files.

`score_trials(trials, embeddings, output_dir, ...)` is what `python -m eval.score` runs.
It writes to `output_dir`:
* `scores.txt`: `enroll test score`, one trial a line in trial-list order (Kaldi format);
* `trials.txt`: the same trials with their labels, `enroll test target|nontarget`
  (a Kaldi trial list; `eval.report` reads it back with `scores.txt` to redraw DET curves);
* `metrics.json`: `eer` (a fraction), `eer_threshold`, `min_dcf_p0.01`,
  `min_dcf_p0.001`, `num_target`, `num_nontarget`, `backend`, `score_norm`, and
  `cllr`, `actual_dcf_p0.01`, `actual_dcf_p0.001` when the scores are LLRs (PLDA
  without score normalisation), `min_cllr` always;
* with `--calibration=FILE` (an `eval.calibrate` output): `llrs.txt` (the calibrated
  LLRs, same layout as `scores.txt`), and in `metrics.json` `cllr`, `min_cllr` and
  `actual_dcf_p<p>` / `min_dcf_p<p>` at p = 0.01, 0.05, 0.001 computed on the LLRs
  (actual DCF at the Bayes threshold `log((1-p)/p)`), `calibrated: true`;
* `backend/`: the backend, when this run trained one (`--backend_train`); pass it
  as `--backend_dir` to reuse it.

Trial ids are looked up with their audio extension stripped (`score_ids="stripped"`,
matching `utt_id`s) or exactly as the list wrote them (`score_ids="as_listed"`, for
embedding files keyed by the listed names, e.g. `id10270/x6uYqmx31kE/00001.wav`).
Enrollment ids are looked up in `--enroll_embeddings` when given (there an id on
several rows is a model enrolled from those utterances: the backend averages
them and PLDA scores with their count), otherwise in `--embeddings`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Optional

import numpy as np

from tfspk import backend as backends
from tfspk import calibration as calibration_lib
from tfspk import metrics
from tfspk.corpora.records import LocatedError, read_table
from tfspk.scoring.embeddings import EmbeddingSet, load_embeddings
from tfspk.shards.writer import atomic_write_lines, atomic_write_text
from tfspk.trials import Trial, TrialListError, read_trials

BACKENDS = ("cosine", "plda")
P_TARGETS = (0.01, 0.001)
# Operating points reported for calibrated LLRs (actual DCF at the Bayes threshold).
CALIBRATED_P_TARGETS = (0.01, 0.05, 0.001)
#: How trial ids are matched to embedding ids: extension stripped, or as written.
SCORE_IDS = ("stripped", "as_listed")


class ScoreFileError(LocatedError):
    """A scores file is malformed (the message names file and line)."""


def score_trials(trials: str, embeddings: str, output_dir: str, *, backend: str = "cosine",
                 enroll_embeddings: Optional[str] = None, backend_train: Optional[str] = None,
                 backend_dir: Optional[str] = None, lda_dim: int = 200,
                 num_em_iters: int = 10, score_norm: str = "none",
                 cohort: Optional[str] = None, cohort_top_n: int = 300,
                 calibration: Optional[str] = None, score_ids: str = "stripped") -> dict:
    """Scores every trial, writes the outputs listed in the module docstring and
    returns the metrics dict (what `metrics.json` holds)."""
    _check_arguments(backend, backend_train, backend_dir, score_norm, cohort, cohort_top_n,
                     score_ids)
    calibrator = calibration_lib.Calibration.load(calibration) if calibration else None
    test_set = load_embeddings(embeddings)
    enroll_set = (load_embeddings(enroll_embeddings, allow_duplicate_ids=True)
                  if enroll_embeddings else test_set)
    if enroll_set.embeddings.shape[1] != test_set.embeddings.shape[1]:
        raise ValueError(f"{enroll_embeddings}: embeddings of dimension "
                         f"{enroll_set.embeddings.shape[1]}, but {embeddings} holds dimension "
                         f"{test_set.embeddings.shape[1]}: were they made by one model?")
    trial_list = _read_trials_for(trials, enroll_set, test_set, score_ids)

    scoring_backend, trained = _get_backend(backend, backend_train, backend_dir, lda_dim,
                                            num_em_iters)
    enroll_ids = list(dict.fromkeys(trial.enroll for trial in trial_list))
    test_ids = list(dict.fromkeys(trial.test for trial in trial_list))
    enrollment = _enroll(scoring_backend, enroll_set, enroll_ids)
    test_rows = test_set.rows_by_id()
    test_vectors = scoring_backend.transform(
        test_set.embeddings[[test_rows[utt_id][0] for utt_id in test_ids]])
    enroll_position = {utt_id: i for i, utt_id in enumerate(enroll_ids)}
    test_position = {utt_id: i for i, utt_id in enumerate(test_ids)}
    enroll_index = np.fromiter((enroll_position[t.enroll] for t in trial_list), np.int64,
                               len(trial_list))
    test_index = np.fromiter((test_position[t.test] for t in trial_list), np.int64,
                             len(trial_list))
    scores = scoring_backend.score_pairs(enrollment, test_vectors, enroll_index, test_index)

    if score_norm != "none":
        cohort_set = load_embeddings(cohort)
        cohort_vectors = scoring_backend.transform(cohort_set.embeddings)
        test_as_models = backends.Enrollment(test_vectors, np.ones(len(test_vectors)))
        scores = backends.normalize_scores(
            scores, score_norm,
            enroll_cohort_scores=scoring_backend.score_matrix(enrollment, cohort_vectors),
            test_cohort_scores=scoring_backend.score_matrix(test_as_models, cohort_vectors),
            enroll_index=enroll_index, test_index=test_index,
            top_n=min(cohort_top_n, len(cohort_vectors)) if score_norm == "asnorm" else None)

    labels = np.fromiter((t.label for t in trial_list), np.int64, len(trial_list))
    result = compute_metrics(scores, labels, llr=scoring_backend.produces_llr
                             and score_norm == "none")
    llrs = None
    if calibrator is not None:
        llrs = calibrator.llr(scores)
        result.update(calibrated_metrics(llrs, labels), calibration=os.fspath(calibration))
    result.update(backend=backend, backend_label=backend_label(scoring_backend, score_norm,
                                                               cohort_top_n),
                  score_norm=score_norm, trials=os.fspath(trials),
                  embeddings=os.fspath(embeddings))

    output = pathlib.Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    write_scores(output / "scores.txt", trial_list, scores)
    write_kaldi_trials(output / "trials.txt", trial_list)
    if llrs is not None:
        write_scores(output / "llrs.txt", trial_list, llrs)
    if trained:
        scoring_backend.save(output / "backend")
    atomic_write_text(os.fspath(output / "metrics.json"), json.dumps(result, indent=2))
    return result


def compute_metrics(scores, labels, llr: bool) -> dict:
    """EER, minDCF at the standard operating points, and (for LLRs) Cllr and actual DCF."""
    curve = metrics.det_curve(scores, labels)
    eer, threshold = metrics.eer_from_det(curve)
    result = {"eer": eer, "eer_threshold": threshold}
    for p_target in P_TARGETS:
        result[f"min_dcf_p{p_target}"] = metrics.min_dcf_from_det(curve, p_target)[0]
    if llr:
        result["cllr"] = metrics.cllr(scores, labels)
        for p_target in P_TARGETS:
            result[f"actual_dcf_p{p_target}"] = metrics.actual_dcf(scores, labels, None,
                                                                   p_target)
    result["min_cllr"] = metrics.min_cllr(scores, labels)
    result["num_target"] = int(np.count_nonzero(labels))
    result["num_nontarget"] = int(labels.size - np.count_nonzero(labels))
    return result


def calibrated_metrics(llrs, labels) -> dict:
    """Cllr, min-Cllr, and actual DCF at the Bayes threshold next to minDCF, for LLRs."""
    curve = metrics.det_curve(llrs, labels)
    result = {"calibrated": True, "cllr": metrics.cllr(llrs, labels),
              "min_cllr": metrics.min_cllr(llrs, labels)}
    for p_target in CALIBRATED_P_TARGETS:
        result[f"min_dcf_p{p_target}"] = metrics.min_dcf_from_det(curve, p_target)[0]
        result[f"actual_dcf_p{p_target}"] = metrics.actual_dcf(llrs, labels, None, p_target)
    return result


def backend_label(scoring_backend: backends.Backend, score_norm: str = "none",
                  cohort_top_n: int = 300) -> str:
    """A short name such as `LDA200+PLDA` or `cosine+AS-norm(300)` for tables."""
    parts = []
    for step in scoring_backend.transforms:
        if isinstance(step, backends.LDA):
            parts.append(f"LDA{step.output_dim}")
        elif isinstance(step, backends.Whitening):
            parts.append("whiten")
    parts.append("PLDA" if isinstance(scoring_backend.scorer, backends.PLDA) else "cosine")
    norm_names = {"znorm": "Z-norm", "tnorm": "T-norm", "snorm": "S-norm",
                  "asnorm": f"AS-norm({cohort_top_n})"}
    if score_norm in norm_names:
        parts.append(norm_names[score_norm])
    return "+".join(parts)


# Score files are written atomically (`tfspk.shards.writer`): a rerun killed midway
# leaves the previous files, not a truncated one.
def write_scores(path, trial_list: list[Trial], scores) -> None:
    atomic_write_lines(os.fspath(path), (f"{t.enroll} {t.test} {s:.8g}\n"
                                         for t, s in zip(trial_list, scores)))


def write_kaldi_trials(path, trial_list: list[Trial]) -> None:
    atomic_write_lines(os.fspath(path),
                       (f"{t.enroll} {t.test} {'target' if t.label else 'nontarget'}\n"
                        for t in trial_list))


def read_scores(path) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Reads a Kaldi scores file: the `(enroll, test)` pairs and the float scores."""
    pairs, scores = [], []
    for number, (enroll, test, value) in read_table(path, 3, error=ScoreFileError):
        try:
            score = float(value)
        except ValueError:
            raise ScoreFileError(f"score {value!r} is not a number", path, number) from None
        if not np.isfinite(score):  # float() accepts "nan" and "inf"
            raise ScoreFileError(f"score {value!r} is not a finite number", path, number)
        scores.append(score)
        pairs.append((enroll, test))
    return pairs, np.asarray(scores)


def _check_arguments(backend, backend_train, backend_dir, score_norm, cohort, cohort_top_n,
                     score_ids="stripped"):
    if score_ids not in SCORE_IDS:
        raise ValueError(f"--score_ids must be one of {SCORE_IDS}, got {score_ids!r}")
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {BACKENDS}, got {backend!r}")
    if backend_train and backend_dir:
        raise ValueError("give --backend_train (train a backend) or --backend_dir (load "
                         "one), not both")
    if backend == "plda" and not (backend_train or backend_dir):
        raise ValueError("--backend=plda needs --backend_train or --backend_dir")
    if score_norm not in backends.SCORE_NORM_METHODS:
        raise ValueError(f"--score_norm must be one of {backends.SCORE_NORM_METHODS}")
    if score_norm != "none" and not cohort:
        raise ValueError(f"--score_norm={score_norm} needs --cohort")
    if score_norm == "asnorm" and cohort_top_n < 2:
        raise ValueError(f"--cohort_top_n must be at least 2, got {cohort_top_n}")


def _read_trials_for(path, enroll_set: EmbeddingSet, test_set: EmbeddingSet,
                     score_ids: str = "stripped") -> list[Trial]:
    """Reads the trials, checking each side's ids against its embedding file.

    With `score_ids="as_listed"` each trial's ids become the ones its list wrote."""
    enroll_ids, test_ids = set(enroll_set.ids.tolist()), set(test_set.ids.tolist())
    if score_ids == "as_listed":
        trial_list = [dataclasses.replace(t, enroll=t.listed_ids()[0], test=t.listed_ids()[1])
                      for t in read_trials(path)]
    else:
        # read_trials names the line of any id found in neither file.
        trial_list = read_trials(path, known_ids=enroll_ids | test_ids)
    for k, trial in enumerate(trial_list):
        for utt_id, known, side_set in ((trial.enroll, enroll_ids, enroll_set),
                                        (trial.test, test_ids, test_set)):
            if utt_id not in known:
                raise TrialListError(f"id {utt_id!r} is not in {side_set.path}", path,
                                     _line_of_trial(path, k))
    return trial_list


def _line_of_trial(path, index: int) -> int:
    """Line number of the `index`-th trial (read_trials skips only blank lines)."""
    for k, (number, _) in enumerate(read_table(path, 3, error=TrialListError)):
        if k == index:
            return number
    raise AssertionError("trial index past the end of its list")


def _get_backend(name, backend_train, backend_dir, lda_dim, num_em_iters):
    """The backend to score with and whether this run trained it."""
    if backend_dir:
        loaded = backends.Backend.load(backend_dir)
        expected = backends.PLDA if name == "plda" else backends.CosineScorer
        if not isinstance(loaded.scorer, expected):
            raise ValueError(f"{backend_dir}: holds a {type(loaded.scorer).__name__} "
                             f"backend, but --backend={name}")
        return loaded, False
    if name == "plda":
        scoring_backend = backends.make_plda_backend(lda_dim or None, num_em_iters)
    else:
        scoring_backend = backends.make_cosine_backend(subtract_mean=bool(backend_train))
    if not backend_train:
        return scoring_backend, False
    train_set = load_embeddings(backend_train, require_speakers=True)
    return scoring_backend.fit(train_set.embeddings, train_set.speakers), True


def _enroll(scoring_backend, enroll_set: EmbeddingSet, model_ids: list[str]):
    rows_by_id = enroll_set.rows_by_id()
    rows, model_index = [], []
    for model, utt_id in enumerate(model_ids):
        rows.extend(rows_by_id[utt_id])
        model_index.extend([model] * len(rows_by_id[utt_id]))
    return scoring_backend.enroll(enroll_set.embeddings[rows], np.asarray(model_index),
                                  len(model_ids))
