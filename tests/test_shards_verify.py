"""verify names each corrupt, truncated or missing shard; its CLI exits non-zero."""
import os
import subprocess
import sys

import shards_fixtures as fx
from tfspk.shards import metadata as meta
from tfspk.shards.build import BuildConfig, build_from_corpus
from tfspk.shards.verify import verify_split

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_verify_names_corrupt_truncated_and_missing_shards(tmp_path):
    manifest, _ = fx.manifest(str(tmp_path / "m"), count=8)
    out = str(tmp_path / "out")
    build_from_corpus("manifest", manifest, BuildConfig(out, "train", 4))
    assert verify_split(out, "train").ok
    files = meta.SplitFiles(out, "train", 4)

    with open(files.shard_path(1), "r+b") as handle:  # flip bytes inside a record's PCM
        handle.seek(os.path.getsize(files.shard_path(1)) // 2)
        chunk = handle.read(4)
        handle.seek(-4, os.SEEK_CUR)
        handle.write(bytes(b ^ 0xFF for b in chunk))
    with open(files.shard_path(2), "r+b") as handle:
        handle.truncate(os.path.getsize(files.shard_path(2)) - 100)
    os.remove(files.shard_path(3))

    report = verify_split(out, "train")
    assert not report.ok
    text = "\n".join(report.problems)
    name = files.shard_name
    assert f"{name(1)}: sha256" in text and f"{name(1)}: unreadable" in text
    assert f"{name(2)}: sha256" in text and f"{name(2)}: unreadable" in text
    assert f"{name(3)}: missing" in text
    assert name(0) not in text

    cli = subprocess.run([sys.executable, "-m", "tfrecords_tools.verify",
                          f"--data_dir={out}"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 1
    for shard in (1, 2, 3):
        assert name(shard) in cli.stdout
    assert "train: 4 shards" in cli.stdout
