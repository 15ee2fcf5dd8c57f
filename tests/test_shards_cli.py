"""The build CLI: multiprocess (spawn) workers, recorded command, exit status on rejects."""
import json
import os
import subprocess
import sys

import shards_fixtures as fx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cli_exits_non_zero_when_rejects_exceed_the_limit(tmp_path):
    bad = fx.bad_audio(str(tmp_path / "bad"))
    lines = [f"{path}\tspk\t{kind}" for kind, (path, _) in list(bad.items())[:2]]
    lines += [f"{fx.write_audio(str(tmp_path / f'g{i}.wav'), fx.speech_like(1, seed=i))}"
              f"\tspk\tg{i}" for i in range(3)]
    (tmp_path / "list.tsv").write_text("\n".join(lines) + "\n")
    out = str(tmp_path / "out")
    command = [sys.executable, "-m", "tfrecords_tools.build", "--input_format=manifest",
               f"--input={tmp_path / 'list.tsv'}", f"--output_dir={out}", "--split=train",
               "--num_shards=2", "--num_workers=2", "--max_reject_fraction=0.25"]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "2 of 5 inputs rejected" in run.stderr
    m = json.load(open(os.path.join(out, "train.metadata.json")))
    assert (m["num_examples"], m["num_rejected"]) == (3, 2)
    assert m["flags"]["max_reject_fraction"] == 0.25
    assert m["command"][:3] == ["python", "-m", "tfrecords_tools.build"]
    assert "--num_workers=2" in m["command"]
