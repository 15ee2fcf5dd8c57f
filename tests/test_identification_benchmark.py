"""benchmarks/identification.py on the tiny export and real LibriSpeech speakers: the
groups are disjoint and respect --exclude_speakers, and the reported accuracies and
rejection rate equal what the embeddings give when recomputed here directly."""
import json
import os
import sys

import numpy as np
import pytest
from absl import flags

import export_fixtures as fx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks import identification  # noqa: E402
from tfspk import calibration  # noqa: E402
from tfspk.inference import SpeakerModel  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return fx.export_tiny_model(tmp_path_factory.mktemp("identification"))


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_identification_numbers_match_a_direct_computation(exported, librispeech_dir,
                                                           tmp_path):
    files = identification.list_speakers(librispeech_dir)
    excluded = sorted(files)[:100:2]  # as if the model had trained on these
    (tmp_path / "train.speakers.tsv").write_text(
        "".join(f"{label}\t{speaker}\n" for label, speaker in enumerate(excluded)))
    kwargs = dict(exclude_speakers=str(tmp_path / "train.speakers.tsv"), num_enrolled=8,
                  num_impostors=5, calibration_speakers=6, test_seconds=2.0, seed=3)
    result = identification.run(exported, librispeech_dir, **kwargs)
    enrolled, impostors, calibration_group = identification.assign_groups(
        [s for s in files if s not in set(excluded)], 8, 5, 6, 3)
    assert not (set(enrolled) | set(impostors) | set(calibration_group)) & set(excluded)
    assert len(set(enrolled) | set(impostors) | set(calibration_group)) == 19
    assert result["num_excluded_speakers"] == 50
    assert "fitted on 6 calibration speakers (30 non-target trials)" in \
        result["threshold_source"]

    # Recompute: enrollment embeddings, 2 s test segments, cosine ranking, threshold.
    model = SpeakerModel.load(exported)
    enroll, tests = {}, []
    for speaker in enrolled + impostors:
        waveform = model.load_waveform(files[speaker])
        part, segments = identification.cut(waveform, 0.5, 32000, model.min_samples)
        if speaker in enrolled:
            enroll[speaker] = model.embed(part)
        tests += [(speaker, s) for s in segments]
    names = sorted(enroll)
    means = _unit(np.stack([enroll[n] for n in names]))
    queries = _unit(model.embed([s for _, s in tests]))
    scores = queries @ means.T
    ranked = np.argsort(-scores, axis=1)
    genuine = [i for i, (s, _) in enumerate(tests) if s in enroll]
    impostor = [i for i, (s, _) in enumerate(tests) if s not in enroll]
    assert result["num_genuine_segments"] == len(genuine)
    assert result["num_impostor_segments"] == len(impostor) > 0
    top1 = np.mean([names[ranked[i, 0]] == tests[i][0] for i in genuine])
    top5 = np.mean([tests[i][0] in [names[j] for j in ranked[i, :5]] for i in genuine])
    assert result["top1_accuracy"] == pytest.approx(top1)
    assert result["top5_accuracy"] == pytest.approx(top5)
    threshold = result["threshold"]
    rejected = np.mean([scores[i].max() < threshold for i in impostor])
    assert result["impostor_rejection_rate"] == pytest.approx(rejected)
    identified = np.mean([scores[i].max() >= threshold and names[ranked[i, 0]] == tests[i][0]
                          for i in genuine])
    assert result["open_set_identification_rate"] == pytest.approx(identified)


def test_identification_threshold_sources_and_cli(exported, librispeech_dir, tmp_path):
    numeric = identification.run(exported, librispeech_dir, num_enrolled=4, num_impostors=2,
                                 threshold="0.5", seed=1)
    assert numeric["threshold"] == 0.5 and numeric["threshold_source"] == "--threshold"
    assert numeric["num_calibration_speakers"] == 0
    assert numeric["impostor_rejection_rate"] == 0.0  # every cosine here exceeds 0.5
    # With a calibration.json in the export, its operating point is used as it is.
    calibration.Calibration(scale=10.0, offset=-9.5, thresholds={"far_0.01": 0.97},
                            default_threshold="far_0.01").save(exported)
    try:
        values = flags.FlagValues()
        identification.define_flags(values)
        output = tmp_path / "result.json"
        values(["identification", f"--model={exported}", f"--librispeech_dir={librispeech_dir}",
                "--num_enrolled=4", "--num_impostors=2", f"--output={output}"])
        identification.main(["identification"], flag_values=values)
        saved = json.loads(output.read_text())
        assert saved["threshold"] == 0.97
        assert saved["threshold_source"].startswith("far_0.01 of ")
        assert saved["num_calibration_speakers"] == 0
    finally:
        os.remove(os.path.join(exported, calibration.FILE_NAME))
    with pytest.raises(ValueError, match=r"--num_enrolled=200 \+ --num_impostors=40 \+ "
                                         r"--calibration_speakers=40 need 280 speakers, 251"):
        identification.run(exported, librispeech_dir, num_enrolled=200)
