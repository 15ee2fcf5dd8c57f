"""The Beam DirectRunner build gives the same examples, shards and rejects as the
local build (same plan, same per-utterance function, deterministic serialisation)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import shards_fixtures as fx
from tfspk.shards import metadata as meta
from tfspk.shards.build import BuildConfig, build_from_corpus
from tfspk.shards.verify import verify_split

pytest.importorskip("apache_beam")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_beam_direct_runner_matches_local_build(tmp_path):
    expected = fx.voxceleb_tree(str(tmp_path / "vox"), speakers=3, per_speaker=3)
    # One undecodable file in the corpus: both builds must reject it the same way.
    with open(str(tmp_path / "vox" / "wav" / "id10000" / "sess0" / "00009.wav"), "wb") as f:
        f.write(b"not audio at all" * 20)
    local_dir, beam_dir = str(tmp_path / "local"), str(tmp_path / "beam")
    local = build_from_corpus("voxceleb", str(tmp_path / "vox"),
                              BuildConfig(local_dir, "train", 4, max_reject_fraction=0.2))

    command = [sys.executable, "-m", "tfrecords_tools.beam_build",
               "--input_format=voxceleb", f"--input={tmp_path / 'vox'}",
               f"--output_dir={beam_dir}", "--split=train", "--num_shards=4",
               "--max_reject_fraction=0.2", "--runner=DirectRunner",
               "--direct_num_workers=1", "--direct_running_mode=in_memory"]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "9 examples, 1 rejected" in run.stdout

    local_examples = fx.read_split(local_dir, "train")
    beam_examples = fx.read_split(beam_dir, "train")
    assert sorted(beam_examples) == sorted(local_examples) == sorted(expected)
    for utt_id, pcm in expected.items():
        np.testing.assert_array_equal(beam_examples[utt_id]["pcm16"], pcm)
        assert beam_examples[utt_id]["label"] == local_examples[utt_id]["label"]
    beam_meta = json.load(open(os.path.join(beam_dir, "train.metadata.json")))
    # Same plan and deterministic records: shard placement and bytes are identical too.
    assert ([s["sha256"] for s in beam_meta["shards"]]
            == [s["sha256"] for s in local.metadata["shards"]])
    assert beam_meta["flags"]["runner"] == "DirectRunner"
    assert (meta.read_rejects_tsv(os.path.join(beam_dir, "train.rejects.tsv"))
            == meta.read_rejects_tsv(os.path.join(local_dir, "train.rejects.tsv")))
    assert verify_split(beam_dir, "train").ok
