"""The calibrated path of a trained model: eval.calibrate fits a calibration on scored
trials and writes it into the export, SpeakerModel picks it up, and verify / identify
decide at its threshold (LLR, accept/reject, open-set "unknown").

Real speech: LibriSpeech recordings cut in halves (the first 3 s of each half). The
tiny export is untrained, so its scores separate speakers poorly; what these tests
check is that every number the calibrated path reports follows from the fitted
calibration (closed forms), whatever the model's accuracy.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import export_fixtures as fx
from eval import calibrate
from tfspk import audio, calibration as calibration_lib, enroll, identify
from tfspk.inference import SpeakerModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
HALF_SAMPLES = 3 * fx.SAMPLE_RATE
CALIBRATION_SPEAKERS = range(0, 40)
ENROLLED_SPEAKERS = range(40, 60)
IMPOSTOR_SPEAKERS = range(60, 70)


def _halves(directory, index):
    import soundfile
    paths = sorted(p for p in os.listdir(directory) if p.endswith(".flac"))
    waveform, rate = soundfile.read(os.path.join(directory, paths[index]), dtype="float32")
    assert rate == fx.SAMPLE_RATE
    middle = len(waveform) // 2
    return waveform[:middle][:HALF_SAMPLES], waveform[middle:][:HALF_SAMPLES]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, librispeech_dir):
    """An export with calibration.json fitted by eval.calibrate on 40 speakers' trials."""
    root = tmp_path_factory.mktemp("calibrated")
    base = fx.export_tiny_model(root)
    model = SpeakerModel.load(base)
    assert model.calibration is None
    halves = [_halves(librispeech_dir, s) for s in CALIBRATION_SPEAKERS]
    enroll = model.embed([h[0] for h in halves])
    test = model.embed([h[1] for h in halves])
    scores_path, trials_path = root / "scores.txt", root / "trials.txt"
    with open(scores_path, "w") as scores, open(trials_path, "w") as trials:
        for i in range(len(halves)):
            for j in range(len(halves)):
                score = model.score(enroll[i], test[j])
                scores.write(f"spk{i}/enroll spk{j}/test {score:.8g}\n")
                trials.write(f"spk{i}/enroll spk{j}/test "
                             f"{'target' if i == j else 'nontarget'}\n")
    # The model decides at the 1% false-accept point of the calibration trials (what an
    # open-set deployment picks); the Bayes point of prior 0.5 (LLR 0) is stored too.
    fitted = calibrate.calibrate(str(scores_path), str(trials_path),
                                 str(root / "calibration.json"), prior=0.5,
                                 p_targets=[0.5], fars=[0.01], model=base,
                                 default_threshold="far_0.01")
    return {"base": base, "fitted": fitted, "root": root}


def test_eval_calibrate_writes_into_the_export_and_speaker_model_loads_it(calibrated):
    base, fitted = calibrated["base"], calibrated["fitted"]
    assert os.path.isfile(os.path.join(base, calibration_lib.FILE_NAME))
    model = SpeakerModel.load(base)
    assert model.calibration.scale == pytest.approx(fitted.scale, rel=1e-12)
    assert model.calibration.offset == pytest.approx(fitted.offset, rel=1e-12)
    assert model.calibration.thresholds == pytest.approx(fitted.thresholds, rel=1e-12)
    assert fitted.default_threshold == "far_0.01" and fitted.scale > 0
    assert model.threshold == fitted.threshold("far_0.01")
    # The Bayes threshold for prior 0.5 is where the calibrated LLR is 0.
    assert model.calibration.threshold("bayes_p0.5") == pytest.approx(
        -fitted.offset / fitted.scale, rel=1e-9)
    # The 1% false-accept point: 1% of the 1560 calibration non-targets reach it.
    nontarget = [float(line.split()[2]) for line in open(calibrated["root"] / "scores.txt")
                 if line.split()[0].split("/")[0] != line.split()[1].split("/")[0]]
    accepted = np.mean(np.asarray(nontarget) >= model.threshold)
    assert accepted == pytest.approx(0.01, abs=1.5 / len(nontarget))
    # An explicit threshold overrides the calibration's; the LLR stays calibrated.
    assert SpeakerModel.load(base, threshold=0.25).threshold == 0.25


def test_calibrated_verify_gives_the_llr_and_the_decision_at_the_threshold(
        calibrated, librispeech_dir, tmp_path):
    model = SpeakerModel.load(calibrated["base"])
    fitted = calibrated["fitted"]
    files = {}
    for s in ENROLLED_SPEAKERS[:6]:
        for name, half in zip(("enroll", "test"), _halves(librispeech_dir, s)):
            files[s, name] = str(tmp_path / f"{s}_{name}.wav")
            audio.write_wav(files[s, name], half, fx.SAMPLE_RATE)
    for a in ENROLLED_SPEAKERS[:6]:
        for b in ENROLLED_SPEAKERS[:6]:
            result = model.verify(files[a, "enroll"], files[b, "test"])
            assert result.llr == pytest.approx(fitted.scale * result.score + fitted.offset,
                                               rel=1e-9, abs=1e-9)
            assert result.threshold == pytest.approx(fitted.threshold("far_0.01"))
            assert result.accepted == (result.score >= result.threshold)
            # The Bayes decision for prior 0.5, from the same calibration, is llr >= 0.
            bayes = model.calibration.threshold("bayes_p0.5")
            assert (result.score >= bayes) == (result.llr >= 0.0)
    same = model.verify(files[40, "enroll"], files[40, "enroll"])
    assert same.score == pytest.approx(1.0, abs=1e-5) and same.accepted
    assert same.llr == pytest.approx(fitted.scale + fitted.offset, rel=1e-6)
    # The CLI reports the same numbers from the export's calibration.json.
    cli = subprocess.run([sys.executable, "-m", "tfspk.verify", f"--model={calibrated['base']}",
                          "--json", files[41, "enroll"], files[42, "test"]],
                         capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert cli.returncode == 0, cli.stderr[-3000:]
    report = json.loads(cli.stdout)
    expected = model.verify(files[41, "enroll"], files[42, "test"])
    assert report["llr"] == pytest.approx(expected.llr, abs=1e-4)
    assert report["accepted"] == expected.accepted
    assert report["threshold"] == pytest.approx(expected.threshold)
    text = subprocess.run([sys.executable, "-m", "tfspk.verify",
                           f"--model={calibrated['base']}", files[41, "enroll"],
                           files[41, "enroll"]], capture_output=True, text=True, env=ENV,
                          cwd=REPO, timeout=300).stdout
    assert f"llr: {same.llr:.4f}" in text and "decision: accept (threshold" in text


def test_identify_rejects_open_set_impostors_at_the_calibrated_threshold(
        calibrated, librispeech_dir, tmp_path):
    model = SpeakerModel.load(calibrated["base"])
    threshold = calibrated["fitted"].threshold()
    assert math.isfinite(threshold) and model.threshold == pytest.approx(threshold)
    db = str(tmp_path / "db")
    files = {}
    for s in list(ENROLLED_SPEAKERS) + list(IMPOSTOR_SPEAKERS):
        for name, half in zip(("enroll", "test"), _halves(librispeech_dir, s)):
            files[s, name] = str(tmp_path / f"{s}_{name}.wav")
            audio.write_wav(files[s, name], half, fx.SAMPLE_RATE)
    for s in ENROLLED_SPEAKERS:
        enroll.enroll_files(db, f"spk{s}", model, [files[s, "enroll"]], progress=False)
    outcomes = {}
    for s in list(ENROLLED_SPEAKERS) + list(IMPOSTOR_SPEAKERS):
        for name in ("enroll", "test"):
            result = identify.identify_file(db, model, files[s, name], top_k=3)
            assert result["threshold"] == pytest.approx(threshold)
            best = result["top_k"][0]
            assert result["speaker"] == (best["speaker"] if best["score"] >= threshold
                                         else "unknown")
            outcomes[s, name] = result["speaker"]
    # An enrolled recording itself scores 1 against its own speaker: accepted, right name.
    for s in ENROLLED_SPEAKERS:
        assert outcomes[s, "enroll"] == f"spk{s}"
    rejected = sum(outcomes[s, n] == "unknown" for s in IMPOSTOR_SPEAKERS
                   for n in ("enroll", "test"))
    assert rejected >= 1, outcomes
    # Without a calibration (and no --threshold) identify has no threshold: never unknown.
    os.rename(os.path.join(calibrated["base"], calibration_lib.FILE_NAME),
              tmp_path / "moved.json")
    try:
        bare = SpeakerModel.load(calibrated["base"])
        result = identify.identify_file(db, bare, files[60, "test"], top_k=1)
        assert result["threshold"] is None and result["speaker"] != "unknown"
    finally:
        os.rename(tmp_path / "moved.json",
                  os.path.join(calibrated["base"], calibration_lib.FILE_NAME))


def test_nan_in_a_scores_file_is_refused_naming_file_and_line(tmp_path):
    from eval.score import ScoreFileError
    scores, trials = tmp_path / "scores.txt", tmp_path / "trials.txt"
    scores.write_text("a b 0.5\na c nan\n")
    trials.write_text("a b target\na c nontarget\n")
    with pytest.raises(ScoreFileError, match=r"scores.txt:2.*'nan' is not a finite number"):
        calibrate.calibrate(str(scores), str(trials), str(tmp_path / "c.json"))
    assert not (tmp_path / "c.json").exists()
