"""Results table (the paper's Table 4 layout) and DET curves of several runs.

    python -m eval.report --runs=cnn=runs/cnn_plda,cnn=runs/cnn_cos,xvector=runs/xv_plda \
        --output_dir=report

or `--runs_json=runs.json` holding `{"system name": "run dir", ...}` or a list of
`{"system": ..., "dir": ...}` (a list lets one system name several runs).

Each run dir is an `eval.score` output. Rows are system x backend (the backend
label comes from the run's `metrics.json`); columns EER (%), minDCF at
p_target 0.01 and 0.001. Writes `table.md`, `table.csv` and `det.png`, whose
curves are recomputed from each run's `scores.txt` and `trials.txt` on probit
(normal-deviate) axes as in standard DET plots.

With `--calibration=FILE` every run's raw scores are mapped to LLRs by that
calibration and the table gains Cllr, min-Cllr and, at p_target 0.01 and 0.05,
actual DCF at the Bayes threshold next to minDCF. Without it those columns appear
when a run's `metrics.json` already has them (`eval.score --calibration`).
"""
from __future__ import annotations

import csv
import json
import pathlib
from typing import NamedTuple, Sequence

import numpy as np
from absl import app, flags

from tfspk import calibration as calibration_lib
from tfspk import metrics
from tfspk.scoring.score import ScoreFileError, calibrated_metrics, read_scores
from tfspk.trials import read_trials

COLUMNS = ("System", "Backend", "EER (%)", "minDCF (p=0.01)", "minDCF (p=0.001)")
CALIBRATION_COLUMNS = ("Cllr", "min-Cllr", "actDCF (p=0.01)", "minDCF (p=0.05)",
                       "actDCF (p=0.05)")
_CALIBRATION_KEYS = ("cllr", "min_cllr", "actual_dcf_p0.01", "min_dcf_p0.05",
                     "actual_dcf_p0.05")
# DET axis ticks, as rates.
_DET_TICKS = (0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)


class Run(NamedTuple):
    system: str
    directory: pathlib.Path


class RunResult(NamedTuple):
    system: str
    backend: str
    metrics: dict
    curve: metrics.DetCurve


def parse_runs(spec: str) -> list[Run]:
    """`name1=dir1,name2=dir2` -> runs, with clear errors."""
    runs = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, directory = item.partition("=")
        if not sep or not name or not directory:
            raise ValueError(f"--runs item {item!r} is not name=dir")
        runs.append(Run(name, pathlib.Path(directory)))
    if not runs:
        raise ValueError("--runs names no run")
    return runs


def read_runs_json(path) -> list[Run]:
    """Runs from `{"name": "dir"}` or `[{"system": name, "dir": dir}, ...]`; relative
    dirs are relative to the JSON file."""
    path = pathlib.Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read runs ({error})") from None
    items = data.items() if isinstance(data, dict) else (
        (entry.get("system"), entry.get("dir")) for entry in data
        if isinstance(entry, dict))
    runs = [Run(str(name), path.parent / directory) for name, directory in items
            if name and directory]
    if not runs:
        raise ValueError(f"{path}: no runs; expected {{\"name\": \"dir\"}} or "
                         "[{\"system\": ..., \"dir\": ...}]")
    return runs


def load_run(run: Run, calibration=None) -> RunResult:
    """Reads a run's metrics and recomputes its DET curve from scores + trials
    (with a `Calibration`, also the metrics of its LLRs)."""
    directory = run.directory
    for name in ("metrics.json", "scores.txt", "trials.txt"):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name}: not found (is {directory} an "
                                    "eval.score output?)")
    run_metrics = json.loads((directory / "metrics.json").read_text(encoding="utf-8"))
    pairs, scores = read_scores(directory / "scores.txt")
    trial_list = read_trials(directory / "trials.txt")
    if len(trial_list) != len(pairs):
        raise ScoreFileError(f"{len(pairs)} scores but {len(trial_list)} trials in "
                             f"{directory / 'trials.txt'}", directory / "scores.txt")
    for number, (pair, trial) in enumerate(zip(pairs, trial_list), start=1):
        if pair != (trial.enroll, trial.test):
            raise ScoreFileError(f"trial {number} is {pair}, but trials.txt has "
                                 f"{(trial.enroll, trial.test)}", directory / "scores.txt")
    labels = np.fromiter((t.label for t in trial_list), np.int64, len(trial_list))
    backend = run_metrics.get("backend_label", run_metrics.get("backend", "?"))
    if calibration is not None:
        run_metrics.update(calibrated_metrics(calibration.llr(scores), labels))
    return RunResult(run.system, backend, run_metrics, metrics.det_curve(scores, labels))


def _calibrated(results: Sequence[RunResult]) -> bool:
    return any(all(key in r.metrics for key in _CALIBRATION_KEYS) for r in results)


def table_columns(results: Sequence[RunResult]) -> tuple[str, ...]:
    return COLUMNS + (CALIBRATION_COLUMNS if _calibrated(results) else ())


def table_rows(results: Sequence[RunResult]) -> list[list[str]]:
    rows = [[r.system, r.backend, f"{100 * r.metrics['eer']:.2f}",
             f"{r.metrics['min_dcf_p0.01']:.4f}", f"{r.metrics['min_dcf_p0.001']:.4f}"]
            for r in results]
    if _calibrated(results):
        for row, r in zip(rows, results):
            row.extend(f"{r.metrics[key]:.4f}" if key in r.metrics else "-"
                       for key in _CALIBRATION_KEYS)
    return rows


def write_table(results: Sequence[RunResult], output_dir: pathlib.Path) -> None:
    rows = table_rows(results)
    columns = table_columns(results)
    with open(output_dir / "table.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |",
             "| --- | --- | " + " | ".join(["---:"] * (len(columns) - 2)) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    (output_dir / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _thin(x: np.ndarray, y: np.ndarray, resolution: float = 2e-3):
    """Drops points closer than `resolution` (in deviates) to the previous kept
    one, so a million-trial curve plots quickly and looks the same."""
    keys = np.round(np.c_[x, y] / resolution)
    keep = np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)]
    keep[-1] = True
    return x[keep], y[keep]


def plot_det(results: Sequence[RunResult], path: pathlib.Path) -> None:
    """All DET curves on normal-deviate axes, EER marked on each."""
    from scipy.stats import norm

    from tfspk import figures

    rates = np.concatenate([np.r_[r.curve.miss, r.curve.false_alarm] for r in results])
    positive = rates[rates > 0]
    low = max(_DET_TICKS[0], positive.min() if positive.size else 1e-3) * 0.8
    limits = norm.ppf([low, 0.8])
    figure, axes = figures.subplots(figsize=(6, 6))
    for r in results:
        # Rates of exactly 0 or 1 sit at +-inf; clip them to the frame.
        fa = norm.ppf(np.clip(r.curve.false_alarm, low / 2, 1 - 1e-9))
        miss = norm.ppf(np.clip(r.curve.miss, low / 2, 1 - 1e-9))
        fa, miss = _thin(fa, miss)
        line, = axes.plot(fa, miss, label=f"{r.system} {r.backend} "
                          f"(EER {100 * r.metrics['eer']:.2f}%)")
        axes.plot(norm.ppf(r.metrics["eer"]), norm.ppf(r.metrics["eer"]), "o",
                  color=line.get_color())
    ticks = [t for t in _DET_TICKS if low <= t <= 0.8]
    labels = [f"{100 * t:g}" for t in ticks]
    axes.set_xticks(norm.ppf(ticks), labels)
    axes.set_yticks(norm.ppf(ticks), labels)
    axes.set_xlim(limits)
    axes.set_ylim(limits)
    axes.plot(limits, limits, ":", color="grey", linewidth=0.8)
    axes.set_xlabel("False alarm rate (%)")
    axes.set_ylabel("Miss rate (%)")
    axes.set_title("DET curves")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=150)


def make_report(runs: Sequence[Run], output_dir, calibration=None) -> list[RunResult]:
    """Writes `table.md`, `table.csv` and `det.png`; returns what it read.
    `calibration`: a `Calibration` or a path to one, applied to every run."""
    if calibration is not None and not isinstance(calibration, calibration_lib.Calibration):
        calibration = calibration_lib.Calibration.load(calibration)
    results = [load_run(run, calibration) for run in runs]
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_table(results, output_dir)
    plot_det(results, output_dir / "det.png")
    return results


FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines this CLI's flags; called only when run as a program (or on a
    fresh `FlagValues` in tests), so importing the library never collides with
    other CLIs' flags of the same name."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("runs", None, "Comma-separated name=run_dir pairs (eval.score "
                        "outputs).", **define)
    flags.DEFINE_string("runs_json", None, "JSON file: {\"name\": \"run_dir\"} or "
                        "[{\"system\": name, \"dir\": run_dir}].", **define)
    flags.DEFINE_string("output_dir", None, "Where table.md, table.csv and det.png go.",
                        **define)
    flags.DEFINE_string("calibration", None, "calibration.json applied to every run's "
                        "scores: adds Cllr, min-Cllr and actual DCF columns.", **define)
    flags.mark_flags_as_required(["output_dir"], **define)
    flags.register_multi_flags_validator(
        ["runs", "runs_json"], lambda values: bool(values["runs"]) != bool(values["runs_json"]),
        message="give exactly one of --runs and --runs_json", **define)


def run(flag_values: flags.FlagValues = FLAGS) -> list[RunResult]:
    """The CLI's work on parsed flags: writes the report and prints the table."""
    try:
        runs = (parse_runs(flag_values.runs) if flag_values.runs
                else read_runs_json(flag_values.runs_json))
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    results = make_report(runs, flag_values.output_dir, flag_values.calibration)
    output_dir = pathlib.Path(flag_values.output_dir)
    print((output_dir / "table.md").read_text(encoding="utf-8"), end="")
    print(f"DET curves: {output_dir / 'det.png'}")
    return results


def main(argv, flag_values: flags.FlagValues = FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    run(flag_values)


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
