"""Kill-and-resume of the build CLI: finished shards are kept, the rest completed."""
import os
import signal
import subprocess
import sys

import shards_fixtures as fx
from tfspk.shards import metadata as meta
from tfspk.shards.build import BuildConfig, build_from_corpus
from tfspk.shards.verify import verify_split

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build_command(manifest, out):
    return [sys.executable, "-m", "tfrecords_tools.build", "--input_format=manifest",
            f"--input={manifest}", f"--output_dir={out}", "--split=train",
            "--num_shards=4", "--num_workers=1"]


# The build CLI with `build_split`'s `on_shard_finished` hook injected: SIGKILL the
# build (pool workers first, then itself) once N shards have finished in this run, so
# kill-and-resume is tested at a known point.
_KILL_AFTER = """
import multiprocessing, os, runpy, signal, sys
from tfspk.shards import build

def kill_after(count):
    finished = [0]
    def on_shard_finished():
        finished[0] += 1
        if finished[0] >= count:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
    return on_shard_finished

after = int(sys.argv.pop(1))
split = build.build_split
build.build_split = lambda utterances, config: split(
    utterances, config, on_shard_finished=kill_after(after))
sys.argv[0] = "tfrecords_tools.build"
runpy.run_module("tfrecords_tools.build", run_name="__main__", alter_sys=True)
"""


def _killed_build_command(manifest, out, after: int):
    return [sys.executable, "-c", _KILL_AFTER, str(after)] + _build_command(manifest, out)[3:]


def test_killed_build_resumes_without_rewriting_finished_shards(tmp_path):
    manifest, expected = fx.manifest(str(tmp_path / "m"), count=6)
    out = str(tmp_path / "out")
    killed = subprocess.run(_killed_build_command(manifest, out, 2), cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    files = meta.SplitFiles(out, "train", 4)
    plan = meta.load_plan(files.plan_path)
    done = [s for s in range(4) if meta.finished_sidecar(files, s, plan.shard_digest(s))]
    assert done == [0, 1]  # one worker writes shards in order
    assert not os.path.exists(files.metadata_path)
    missing = sorted(set(range(4)) - set(done))
    assert not any(os.path.exists(files.shard_path(s)) for s in missing)
    # What a kill in the middle of a shard write leaves behind.
    stale = files.shard_path(missing[0]) + ".tmp-99999"
    with open(stale, "wb") as handle:
        handle.write(b"half a shard")
    before = {s: os.stat(files.shard_path(s)).st_mtime_ns for s in done}

    resumed = subprocess.run(_build_command(manifest, out), cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "2 written, 2 already done" in resumed.stdout
    assert {s: os.stat(files.shard_path(s)).st_mtime_ns for s in done} == before
    assert not os.path.exists(stale)
    report = verify_split(out, "train")
    assert report.ok, report.problems
    assert report.num_examples == 6
    examples = fx.read_split(out, "train")
    assert {u: e["pcm16"].tolist() for u, e in examples.items()} == {
        u: p.tolist() for u, p in expected.items()}

    # The resumed build is byte-identical to an uninterrupted one.
    fresh = build_from_corpus("manifest", manifest,
                              BuildConfig(str(tmp_path / "fresh"), "train", 4))
    resumed_meta = meta.read_json(files.metadata_path)
    assert ([s["sha256"] for s in resumed_meta["shards"]]
            == [s["sha256"] for s in fresh.metadata["shards"]])


def _assert_resumable(out: str, num_shards: int) -> None:
    """What a SIGKILL at any moment may leave: a finished split that verifies, or
    sidecars that each describe a complete shard (the rest is redone on resume)."""
    files = meta.SplitFiles(out, "train", num_shards)
    if os.path.exists(files.metadata_path):
        report = verify_split(out, "train")
        assert report.ok, report.problems
        return
    if not os.path.exists(files.plan_path):
        return  # killed before planning finished: nothing to resume yet
    plan = meta.load_plan(files.plan_path)
    for shard in range(num_shards):
        if os.path.exists(files.sidecar_path(shard)):
            assert meta.finished_sidecar(files, shard, plan.shard_digest(shard)), shard


def test_random_sigkills_leave_a_build_that_resumes_to_the_same_bytes(tmp_path):
    import random
    import shutil

    rng = random.Random(1302)
    manifest, expected = fx.manifest(str(tmp_path / "m"), count=8)
    out = str(tmp_path / "out")
    command = _build_command(manifest, out)
    kills, attempts = 0, 0
    while kills < 5 and attempts < 15:
        attempts += 1
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        try:
            _, err = process.communicate(timeout=rng.uniform(0.2, 6.0))
            assert process.returncode == 0, err[-2000:]
            assert verify_split(out, "train").ok
            shutil.rmtree(out)  # finished before the kill: start again to kill it midway
            continue
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            kills += 1
        _assert_resumable(out, 4)
    assert kills == 5
    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    report = verify_split(out, "train")
    assert report.ok and report.num_examples == 8, report.problems
    assert not [n for n in os.listdir(out) if ".tmp-" in n or n == "tfspk.lock"]
    examples = fx.read_split(out, "train")
    assert {u: e["pcm16"].tolist() for u, e in examples.items()} == {
        u: p.tolist() for u, p in expected.items()}
    fresh = build_from_corpus("manifest", manifest,
                              BuildConfig(str(tmp_path / "fresh"), "train", 4))
    assert ([s["sha256"] for s in meta.read_json(os.path.join(out, "train.metadata.json"))
             ["shards"]] == [s["sha256"] for s in fresh.metadata["shards"]])
