"""recipes/voxceleb1/run.sh: option handling, the real-corpus checks, and a full
synthetic run whose report is checked against the scores it was computed from."""
import csv
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from tfspk.audio import write_wav

REPO = pathlib.Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "voxceleb1" / "run.sh"


def run_recipe(*args, cwd=None, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0")
    return subprocess.run(["bash", str(RECIPE), "--python", sys.executable, *args],
                          cwd=cwd or REPO, capture_output=True, text=True, timeout=timeout,
                          env=env)


def test_unknown_option_and_bad_values_are_refused():
    result = run_recipe("--max_step", "3")
    assert result.returncode == 1 and "unknown option --max_step" in result.stderr
    result = run_recipe("--synthetic", "yes")
    assert result.returncode == 1 and "--synthetic must be true or false" in result.stderr
    result = run_recipe("--stage=two")
    assert result.returncode == 1 and "--stage must be a number" in result.stderr


def test_stage0_lists_every_missing_part_of_the_real_corpus(tmp_path):
    (tmp_path / "vox1" / "vox1_dev_wav" / "wav").mkdir(parents=True)
    (tmp_path / "vox1" / "veri_test.txt").write_text("1 a/b/1.wav a/c/2.wav\n")
    result = run_recipe("--vox1", str(tmp_path / "vox1"), "--stop_stage", "0",
                        "--work_dir", str(tmp_path / "exp"))
    assert result.returncode == 1
    missing = [line for line in result.stderr.splitlines() if line.startswith("run.sh: ")]
    assert any("no vox1_test_wav/wav, test/wav or wav" in line for line in missing)
    assert any("vox1_meta.csv: missing" in line for line in missing)
    assert any("veri_test2.txt: missing" in line for line in missing)
    assert not any("veri_test.txt: missing" in line for line in missing)
    assert any("--musan ''" in line for line in missing)
    assert any("--rirs ''" in line for line in missing)
    assert "no vox1_dev_wav" not in result.stderr


def tiny_real_layout(tmp_path):
    """A VoxCeleb1-layout tree (dev/ and test/ side by side) with audio, meta and lists."""
    vox1 = tmp_path / "VoxCeleb1"
    utterances = {"dev": ["id10001/sessA/00001", "id10001/sessB/00001"],
                  "test": ["id10270/sessA/00001", "id10270/sessB/00002",
                           "id10271/sessA/00001"]}
    tone = (0.1 * np.sin(np.arange(8000) * 0.05)).astype(np.float32)
    for part, ids in utterances.items():
        for utt_id in ids:
            path = vox1 / part / "wav" / f"{utt_id}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, tone, 16000)
    (vox1 / "vox1_meta.csv").write_text(
        "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
        "id10001\tA\tm\tUK\tdev\nid10270\tB\tf\tUK\ttest\nid10271\tC\tm\tUK\ttest\n")
    trials = ("1 id10270/sessA/00001.wav id10270/sessB/00002.wav\n"
              "0 id10270/sessA/00001.wav id10271/sessA/00001.wav\n")
    for name in ("veri_test.txt", "veri_test2.txt"):
        (vox1 / name).write_text(trials)
    (vox1 / "list_test_hard2.txt").write_text("")
    for folder in ("musan/noise", "musan/music", "musan/speech", "RIRS/simulated_rirs"):
        (tmp_path / folder).mkdir(parents=True)
    return vox1


def test_stage0_accepts_the_real_layout_and_links_augmentation(tmp_path):
    vox1 = tiny_real_layout(tmp_path)
    # Relative paths are taken from where the recipe is started.
    result = run_recipe("--vox1", "VoxCeleb1", "--musan", "musan", "--rirs", "RIRS",
                        "--work_dir", "exp", "--stop_stage", "0", "--expect_counts", "",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"dev audio: {vox1}/dev/wav, test audio: {vox1}/test/wav" in result.stdout
    assert "list_test_hard2.txt (VoxCeleb1-H/E); not scored" in result.stdout
    links = tmp_path / "exp" / "augmentation"
    assert os.readlink(links / "musan") == str(tmp_path / "musan")
    assert os.readlink(links / "RIRS_NOISES") == str(tmp_path / "RIRS")


def test_stage0_checks_the_known_voxceleb1_counts(tmp_path):
    tiny_real_layout(tmp_path)
    result = run_recipe("--vox1", "VoxCeleb1", "--musan", "musan", "--rirs", "RIRS",
                        "--work_dir", "exp", "--stop_stage", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "dev part at" in result.stderr and "1 speakers / 2 utterances, voxceleb1 has " \
        "1211 / 148642" in result.stderr
    assert "2 speakers / 3 utterances, voxceleb1 has 40 / 4874" in result.stderr


def test_a_missing_test_utterance_stops_stage0_naming_it(tmp_path):
    vox1 = tiny_real_layout(tmp_path)
    (vox1 / "test" / "wav" / "id10271" / "sessA" / "00001.wav").unlink()
    start = time.monotonic()
    result = run_recipe("--vox1", "VoxCeleb1", "--musan", "musan", "--rirs", "RIRS",
                        "--work_dir", "exp", "--expect_counts", "", cwd=tmp_path)
    assert result.returncode == 1
    assert "veri_test.txt: 1 trial ids have no test audio: id10271/sessA/00001" in result.stderr
    assert "stage 1" not in result.stdout  # no shard was built
    assert time.monotonic() - start < 60


def textbook_rates(scores, labels):
    """Miss and false-alarm rates when accepting score >= t, for every score t and +inf."""
    thresholds = np.r_[np.unique(scores), np.inf]
    miss = np.array([np.mean(scores[labels == 1] < t) for t in thresholds])
    false_alarm = np.array([np.mean(scores[labels == 0] >= t) for t in thresholds])
    return miss, false_alarm


def read_run(directory):
    scores = [line.split() for line in (directory / "scores.txt").read_text().splitlines()]
    trials = [line.split() for line in (directory / "trials.txt").read_text().splitlines()]
    assert [s[:2] for s in scores] == [t[:2] for t in trials]
    return (np.array([float(s[2]) for s in scores]),
            np.array([t[2] == "target" for t in trials], dtype=int))


@pytest.mark.slow
def test_synthetic_recipe_end_to_end(tmp_path):
    work = tmp_path / "exp"
    result = run_recipe("--synthetic", "true", "--work_dir", str(work),
                        "--synth_speakers", "10", "--synth_utts", "6",
                        "--synth_test_speakers", "3", "--synth_babble_speakers", "2",
                        "--synth_noise", "2", "--synth_music", "1", "--synth_rooms", "1",
                        "--synth_rirs_per_room", "1", "--max_steps", "12", "--nj", "1",
                        # demo.flags warms up for 50 steps; a 12-step run needs a shorter one.
                        "--train_flags", "--warmup_steps=4")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for number in range(8):
        assert f"run.sh: stage {number}: " in result.stdout

    assert json.loads((work / "model" / "last_metrics.json").read_text())["step"] == 12

    # Stage 1 split one tree by vox1_meta.csv: dev speakers train, test speakers test.
    corpus = work / "synth" / "voxceleb"
    with open(corpus / "vox1_meta.csv", encoding="utf-8") as f:
        sets = {row["VoxCeleb1 ID"]: row["Set"] for row in csv.DictReader(f, delimiter="\t")}
    trial_ids = {utt for line in (corpus / "veri_test.txt").read_text().splitlines()
                 for utt in (line.split()[1][:-4], line.split()[2][:-4])}
    for layer, dim in (("fc1", 256), ("fc2", 128)):  # configs/demo.flags: --fc_units=256,128
        with np.load(work / "embeddings" / layer / "dev.npz") as dev:
            assert {sets[s] for s in dev["speakers"]} == {"dev"}
            assert len(set(dev["speakers"])) == 7 and dev["embeddings"].shape == (42, dim)
        with np.load(work / "embeddings" / layer / "test.npz") as test:
            assert {sets[s] for s in test["speakers"]} == {"test"}
            assert set(test["ids"]) == trial_ids and test["embeddings"].shape[1] == dim

    # The table: one row per system x backend, each number the one its scores give.
    report = work / "report" / "veri_test"
    with open(report / "table.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # LDA is capped at 7 dev speakers - 1: the backend saw the dev subset only.
    assert [(r["System"], r["Backend"]) for r in rows] == [
        ("CNN fc1", "cosine"), ("CNN fc1", "LDA6+PLDA"),
        ("CNN fc2", "cosine"), ("CNN fc2", "LDA6+PLDA")]
    assert (report / "det.png").stat().st_size > 0
    for row in rows:
        layer = row["System"].split()[1]
        backend = "plda" if "PLDA" in row["Backend"] else "cosine"
        scores, labels = read_run(work / "scores" / "veri_test" / f"{layer}_{backend}")
        assert labels.sum() == 18 and (1 - labels).sum() == 18
        miss, false_alarm = textbook_rates(scores, labels)
        # The EER lies where the miss and false-alarm curves cross.
        eer = float(row["EER (%)"]) / 100
        assert (np.max(np.minimum(miss, false_alarm)) - 5e-5 <= eer
                <= np.min(np.maximum(miss, false_alarm)) + 5e-5)
        for p_target, column in ((0.01, "minDCF (p=0.01)"), (0.001, "minDCF (p=0.001)")):
            cost = (p_target * miss + (1 - p_target) * false_alarm) / p_target
            assert float(row[column]) == pytest.approx(cost.min(), abs=5e-5)
