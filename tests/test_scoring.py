"""tfspk.scoring.score_trials id lookup (`--score_ids`), and the old eval.score names."""
import json

import numpy as np
import pytest
from absl import flags

from eval import score as score_cli
from tfspk import scoring
from tfspk.trials import TrialListError

SPEAKERS = 4
PER_SPEAKER = 3


def _embeddings(ids):
    """One well-separated direction per speaker plus a little noise."""
    rng = np.random.default_rng(0)
    centres = np.eye(SPEAKERS, 8) * 5.0
    vectors = np.stack([centres[int(utt.split("/")[0][3:])] + rng.normal(0, 0.3, 8)
                        for utt in ids]).astype(np.float32)
    return vectors


def _write_corpus(tmp_path, with_extension: bool):
    ids = [f"spk{s}/sess/{u:05d}" for s in range(SPEAKERS) for u in range(PER_SPEAKER)]
    stored = [i + ".wav" for i in ids] if with_extension else ids
    path = tmp_path / ("listed.npz" if with_extension else "stripped.npz")
    scoring.save_embeddings(path, stored, _embeddings(ids), [i.split("/")[0] for i in ids])
    trials = tmp_path / "trials.txt"
    lines = []
    for a in ids:
        for b in ids:
            if a < b:
                lines.append(f"{int(a.split('/')[0] == b.split('/')[0])} {a}.wav {b}.wav")
    trials.write_text("\n".join(lines) + "\n")
    return trials, path, len(lines)


def test_as_listed_looks_ids_up_with_their_extension(tmp_path):
    trials, listed, count = _write_corpus(tmp_path, with_extension=True)
    result = scoring.score_trials(trials, listed, tmp_path / "out", score_ids="as_listed")
    assert result["num_target"] + result["num_nontarget"] == count
    assert result["eer"] == 0.0
    first = (tmp_path / "out" / "scores.txt").read_text().splitlines()[0].split()
    assert first[:2] == ["spk0/sess/00000.wav", "spk0/sess/00001.wav"]
    # The default strips the extension, so these ids are not found; the error names the
    # file and the line of the first trial.
    with pytest.raises(TrialListError,
                       match=r"trials.txt:1: unknown utterance id .spk0/sess/00000."):
        scoring.score_trials(trials, listed, tmp_path / "out2")


def test_stripped_is_the_default_and_as_listed_refuses_stripped_ids(tmp_path):
    trials, stripped, _ = _write_corpus(tmp_path, with_extension=False)
    default = scoring.score_trials(trials, stripped, tmp_path / "a")
    assert default["eer"] == 0.0
    first = (tmp_path / "a" / "scores.txt").read_text().splitlines()[0].split()
    assert first[:2] == ["spk0/sess/00000", "spk0/sess/00001"]
    with pytest.raises(TrialListError, match=r"'spk0/sess/00000.wav' is not in .*stripped"):
        scoring.score_trials(trials, stripped, tmp_path / "b", score_ids="as_listed")


def test_cli_flag_and_old_import_path(tmp_path):
    trials, listed, _ = _write_corpus(tmp_path, with_extension=True)
    flag_values = flags.FlagValues()
    score_cli.define_flags(flag_values)
    flag_values(["score", f"--trials={trials}", f"--embeddings={listed}",
                 f"--output_dir={tmp_path / 'cli'}", "--score_ids=as_listed"])
    result = score_cli.run(flag_values)
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["eer"] == result["eer"]
    assert score_cli.score_trials is scoring.score_trials
    fresh = flags.FlagValues()
    score_cli.define_flags(fresh)
    with pytest.raises(flags.IllegalFlagValueError, match="score_ids"):
        fresh(["score", f"--trials={trials}", f"--embeddings={listed}",
               f"--output_dir={tmp_path}", "--score_ids=exact"])
