"""Calibration on real speech: fit on one half of the speakers, evaluate on the other.

    python benchmarks/calibration.py [--librispeech_dir=../shared/data/librispeech-251] \
        [--seed=0] [--cache=/tmp/calib_baseline.npz]

Embeddings: the MFCC mean+std baseline (`eval.baseline`) of every LibriSpeech
recording cut in halves (`eval.halves`). Speakers are split at random
(stratified by sex) into a calibration group and a disjoint held-out group; in
each group every enrollment half is scored against every test half (cosine after
subtracting the calibration group's mean). `tfspk.calibration.fit_calibration`
is fitted on the calibration group's scores and applied to the held-out scores.
Prints held-out Cllr of the raw cosine scores taken as LLRs, of the calibrated
LLRs, min-Cllr, actual DCF at the Bayes threshold vs minDCF (p_target 0.01,
0.05), and the held-out false-accept rate at the calibration set's FAR-1%
threshold.

A trained model instead of the baseline: `--embeddings=NPZ`, any embeddings file with
speakers (`eval.extract`; e.g. `benchmarks/finetune_gain.py`'s
`embeddings/finetuned_test.npz`, 3-s segments of speakers the model never trained on).
Its speakers are split the same way (`--calibration_fraction`); within each group every
pair of distinct segments is a trial (a target when both are one speaker's).
"""
from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.librispeech_verification import (  # noqa: E402
    DEFAULT_LIBRISPEECH_DIR, MIN_HALF_SAMPLES, SAMPLE_RATE, read_librispeech,
    read_speaker_sexes)
from eval import baseline, halves  # noqa: E402
from tfspk import calibration, metrics  # noqa: E402


def group_scores(enroll, test, speakers, mean):
    """All-vs-all cosine scores (enrollment-major) and labels of one speaker group."""
    def unit(x):
        x = x - mean
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    scores = unit(enroll) @ unit(test).T
    labels = speakers[:, None] == speakers[None, :]
    return scores.ravel(), labels.ravel().astype(np.int64)


def embeddings(librispeech_dir, cache):
    if cache and os.path.exists(cache):
        data = np.load(cache)
        return data["speakers"], data["sexes"], data["enroll"], data["test"]
    utterances, sexes = read_librispeech(librispeech_dir)
    enrollment, test = halves.split_in_halves(utterances, MIN_HALF_SAMPLES)
    _, speakers, enroll_x = baseline.baseline_embeddings(enrollment, SAMPLE_RATE)
    _, _, test_x = baseline.baseline_embeddings(test, SAMPLE_RATE)
    speakers = np.asarray(speakers)
    sex = np.asarray([sexes[s] for s in speakers])
    if cache:
        np.savez(cache, speakers=speakers, sexes=sex, enroll=enroll_x, test=test_x)
    return speakers, sex, enroll_x.astype(np.float64), test_x.astype(np.float64)


def pair_scores(x, speakers, mean):
    """Cosine scores (after subtracting `mean`) of every pair i < j of rows, and labels."""
    x = x - mean
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    upper = np.triu_indices(len(x), k=1)
    return (x @ x.T)[upper], (speakers[:, None] == speakers[None, :])[upper].astype(np.int64)


def run_benchmark(librispeech_dir, seed=0, cache=None) -> dict:
    speakers, sex, enroll_x, test_x = embeddings(librispeech_dir, cache)
    enroll_x, test_x = enroll_x.astype(np.float64), test_x.astype(np.float64)
    num_cal = len(speakers) // 2
    cal_set, _ = halves.split_speakers(list(speakers), num_cal, seed,
                                       dict(zip(speakers, sex)))
    in_cal = np.isin(speakers, cal_set)
    mean = np.concatenate([enroll_x[in_cal], test_x[in_cal]]).mean(axis=0)
    cal_scores, cal_labels = group_scores(enroll_x[in_cal], test_x[in_cal], speakers[in_cal],
                                          mean)
    scores, labels = group_scores(enroll_x[~in_cal], test_x[~in_cal], speakers[~in_cal], mean)
    return {"calibration_speakers": int(in_cal.sum()),
            "held_out_speakers": int((~in_cal).sum())} | evaluate(cal_scores, cal_labels,
                                                                  scores, labels)


def run_on_embeddings(path, seed=0, calibration_fraction=0.5, sexes=None) -> dict:
    """The benchmark on a trained model's segment embeddings (module docstring);
    `sexes` (speaker -> F/M, e.g. from SPEAKERS.TXT) stratifies the split."""
    from tfspk.scoring.embeddings import load_embeddings

    data = load_embeddings(path)
    speakers = np.asarray(data.speakers)
    unique = sorted(set(data.speakers))
    num_cal = int(round(calibration_fraction * len(unique)))
    strata = {s: sexes[s] for s in unique} if sexes and set(unique) <= set(sexes) else None
    cal_set, _ = halves.split_speakers(unique, num_cal, seed, strata)
    in_cal = np.isin(speakers, cal_set)
    x = data.embeddings.astype(np.float64)
    mean = x[in_cal].mean(axis=0)
    cal_scores, cal_labels = pair_scores(x[in_cal], speakers[in_cal], mean)
    scores, labels = pair_scores(x[~in_cal], speakers[~in_cal], mean)
    return {"embeddings": os.path.abspath(path), "calibration_speakers": len(cal_set),
            "held_out_speakers": len(unique) - len(cal_set),
            "calibration_target": int(cal_labels.sum()),
            "calibration_nontarget": int((cal_labels == 0).sum())} | evaluate(
                cal_scores, cal_labels, scores, labels)


def evaluate(cal_scores, cal_labels, scores, labels) -> dict:
    """Fits on the calibration trials; held-out Cllr, DCFs and FAR."""
    cal = calibration.fit_calibration(cal_scores, cal_labels)
    llrs = cal.llr(scores)
    result = {"held_out_target": int(labels.sum()), "held_out_nontarget": int((labels == 0).sum()),
              "scale": cal.scale, "offset": cal.offset,
              "eer": metrics.eer(scores, labels)[0],
              "cllr_raw": metrics.cllr(scores, labels),
              "cllr_calibrated": metrics.cllr(llrs, labels),
              "min_cllr": metrics.min_cllr(scores, labels)}
    for p in (0.01, 0.05):
        result[f"min_dcf_p{p}"] = metrics.min_dcf(scores, labels, p)[0]
        result[f"actual_dcf_p{p}"] = metrics.actual_dcf(llrs, labels, None, p)
        # The same with the logistic regression weighted by this operating point's prior
        # (BOSARIS practice when one application prior matters).
        matched = calibration.fit_calibration(cal_scores, cal_labels, prior=p)
        result[f"actual_dcf_p{p}_prior_matched"] = metrics.actual_dcf(
            matched.llr(scores), labels, None, p)
    nontarget = scores[labels == 0]
    result["held_out_far_at_far_0.01"] = float(np.mean(nontarget >= cal.threshold("far_0.01")))
    return result


FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    flags.DEFINE_string("librispeech_dir", str(DEFAULT_LIBRISPEECH_DIR), "LibriSpeech sample.",
                        flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Speaker split seed.", flag_values=flag_values)
    flags.DEFINE_string("cache", None, "npz to cache the baseline embeddings in.",
                        flag_values=flag_values)
    flags.DEFINE_string("embeddings", None, "A trained model's embeddings npz (with "
                        "speakers) to use instead of the MFCC baseline.",
                        flag_values=flag_values)
    flags.DEFINE_float("calibration_fraction", 0.5, "With --embeddings: share of the "
                       "speakers that fit the calibration.", lower_bound=0.0,
                       upper_bound=1.0, flag_values=flag_values)
    flags.DEFINE_string("output", None, "Also write the results JSON here.",
                        flag_values=flag_values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.embeddings:
        speakers_txt = pathlib.Path(FLAGS.librispeech_dir) / "SPEAKERS.TXT"
        sexes = read_speaker_sexes(speakers_txt) if speakers_txt.is_file() else None
        result = run_on_embeddings(FLAGS.embeddings, FLAGS.seed, FLAGS.calibration_fraction,
                                   sexes)
    else:
        result = run_benchmark(FLAGS.librispeech_dir, FLAGS.seed, FLAGS.cache)
    print(json.dumps(result, indent=2))
    if FLAGS.output:
        pathlib.Path(FLAGS.output).write_text(json.dumps(result, indent=2) + "\n")
    r = result
    print(f"held out: Cllr raw {r['cllr_raw']:.4f}  calibrated {r['cllr_calibrated']:.4f}  "
          f"min-Cllr {r['min_cllr']:.4f}")
    for p in (0.01, 0.05):
        print(f"p={p}: actual DCF {r[f'actual_dcf_p{p}']:.4f}  minDCF {r[f'min_dcf_p{p}']:.4f}  "
              f"ratio {r[f'actual_dcf_p{p}'] / r[f'min_dcf_p{p}']:.3f}  (calibration fitted "
              f"at prior {p}: actual DCF {r[f'actual_dcf_p{p}_prior_matched']:.4f}, ratio "
              f"{r[f'actual_dcf_p{p}_prior_matched'] / r[f'min_dcf_p{p}']:.3f})")
    print(f"FAR-1% threshold: held-out FAR {100 * r['held_out_far_at_far_0.01']:.2f}%")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
