"""recipes/synthetic/run.sh: option checks, and a tiny run whose report rows are checked
against the scores they come from, then rerun to show finished steps are skipped."""
import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from test_recipe import read_run, textbook_rates

REPO = pathlib.Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "synthetic" / "run.sh"
# Tiny sizes: every stage runs, on one training system (the full list starts ~40
# processes, several minutes of TensorFlow start-up alone on 2 cores).
TINY = ("--speakers", "6", "--test_speakers", "3", "--utts", "4", "--sessions", "2",
        "--babble_speakers", "2", "--noise", "1", "--music", "1", "--rooms", "1",
        "--rirs_per_room", "1", "--max_steps", "4", "--nj", "1",
        "--train_flags", "--warmup_steps=1 --validate_every=4 --checkpoint_every=4 "
        "--log_every=2 --shuffle_buffer=16",
        "--ubm_components", "4", "--ivector_dim", "3", "--ubm_iters", "1",
        "--ubm_final_iters", "1", "--tv_iters", "1", "--systems", "cnn_linear_fc1")


def run_recipe(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0")
    return subprocess.run(["bash", str(RECIPE), "--python", sys.executable, *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def test_bad_options_are_refused():
    result = run_recipe("--max_step", "3")
    assert result.returncode == 1 and "unknown option --max_step" in result.stderr
    result = run_recipe("--speakers=many")
    assert result.returncode == 1 and "--speakers must be a number" in result.stderr
    result = run_recipe("--systems", "cnn_linear_fc1 resnet")
    assert result.returncode == 1 and "unknown system 'resnet'" in result.stderr
    result = run_recipe("--max_steps", "0")
    assert result.returncode == 1 and "--max_steps must be a positive number" in result.stderr


def test_a_later_stage_without_its_inputs_names_the_stage_to_run(tmp_path):
    result = run_recipe("--work_dir", str(tmp_path / "exp"), "--stage", "1")
    assert result.returncode == 1
    assert "veri_test.txt is missing: run stage 0 first" in result.stderr


@pytest.mark.slow
def test_tiny_recipe_report_matches_its_scores_and_reruns_skip(tmp_path):
    work = tmp_path / "exp"
    result = run_recipe("--work_dir", str(work), *TINY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for number in range(8):
        assert f"run.sh: stage {number}: " in result.stdout

    with open(work / "report" / "table.csv", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    # LDA is capped at 6 training speakers - 1, the i-vector's at its dimension 3.
    assert [(r["System"], r["Backend"]) for r in rows] == [
        ("CNN linear_fc1 fc1", "cosine"), ("CNN linear_fc1 fc1", "LDA5+PLDA"),
        ("CNN linear_fc1 fc2", "cosine"), ("CNN linear_fc1 fc2", "LDA5+PLDA"),
        ("i-vector", "cosine"), ("i-vector", "LDA3+PLDA"),
        ("MFCC mean+std", "cosine"), ("MFCC mean+std", "LDA5+PLDA")]
    assert (work / "report" / "det.png").stat().st_size > 0
    run_dirs = {}
    for run in json.loads((work / "report" / "runs.json").read_text()):
        label = json.loads((pathlib.Path(run["dir"]) / "metrics.json").read_text())
        run_dirs[run["system"], label["backend_label"]] = pathlib.Path(run["dir"])
    for row in rows:
        scores, labels = read_run(run_dirs[row["System"], row["Backend"]])
        assert labels.sum() > 0 and (1 - labels).sum() > 0
        miss, false_alarm = textbook_rates(scores, labels)
        eer = float(row["EER (%)"]) / 100
        assert (np.max(np.minimum(miss, false_alarm)) - 5e-5 <= eer
                <= np.min(np.maximum(miss, false_alarm)) + 5e-5)
        for p_target, column in ((0.01, "minDCF (p=0.01)"), (0.001, "minDCF (p=0.001)")):
            cost = (p_target * miss + (1 - p_target) * false_alarm) / p_target
            assert float(row[column]) == pytest.approx(cost.min(), abs=5e-5)

    # The i-vector system was trained on the training speakers only.
    with np.load(work / "embeddings" / "ivector" / "train.npz") as train, \
            np.load(work / "embeddings" / "ivector" / "test.npz") as test:
        assert not set(train["speakers"]) & set(test["speakers"])
        assert train["embeddings"].shape[1] == 3

    # Resumable: a rerun skips every finished step and only redraws the report.
    timings = (work / "timings.tsv").read_text()
    again = run_recipe("--work_dir", str(work), *TINY)
    assert again.returncode == 0, again.stderr[-3000:]
    commands = [line for line in again.stderr.splitlines() if line.startswith("+ ")]
    assert len(commands) == 1 and " -m eval.report " in commands[0], commands
    assert again.stdout.count("done before, skipped") == len(timings.splitlines())
