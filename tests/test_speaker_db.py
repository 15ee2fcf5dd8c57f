"""tfspk.speaker_db + enroll/identify: adding, identification, open-set rejection,
model fingerprint, SIGKILL during enroll, and a second concurrent writer."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import export_fixtures as fx
from tfspk import audio, speaker_db
from tfspk.inference import SpeakerModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
MODEL = {"export": "/m/1", "fingerprint": "f" * 64}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return fx.export_tiny_model(tmp_path_factory.mktemp("db_model"))


def test_enroll_twice_adds_and_keeps_utterances(tmp_path):
    db = speaker_db.SpeakerDB(tmp_path / "db")
    rng = np.random.default_rng(0)
    first, second = rng.standard_normal((2, 8)), rng.standard_normal((3, 8))
    db.enroll("alice", ["a1", "a2"], first, MODEL)
    db.enroll("bob", ["b1"], rng.standard_normal((1, 8)), MODEL)
    state = db.enroll("alice", ["a2", "a3", "a4", "a5"][1:], second, MODEL)
    state = db.load()
    assert state.ids[state.speakers == "alice"].tolist() == ["a1", "a2", "a3", "a4", "a5"]
    names, means = state.means()
    assert names == ["alice", "bob"]
    both = np.concatenate([first, second])
    expected = (both / np.linalg.norm(both, axis=1, keepdims=True)).mean(axis=0)
    np.testing.assert_allclose(means[0], expected, atol=1e-6)
    # Re-enrolling a known utterance does not duplicate it.
    db.enroll("alice", ["a1"], first[:1], MODEL)
    assert len(db.load().ids) == 6
    with pytest.raises(speaker_db.ModelMismatchError, match="fingerprint"):
        db.enroll("carol", ["c1"], first[:1], {"export": "/other", "fingerprint": "0" * 64})
    # Only npz without pickles and JSON on disk.
    assert sorted(os.listdir(tmp_path / "db")) == ["db.json", "db.lock", "embeddings-3.npz"]


def test_identify_cli_top1_and_unknown(exported, tmp_path, librispeech_dir):
    # Three enrolled LibriSpeech speakers (two crops each), a fourth as impostor. The tiny
    # model is untrained (every cosine is near 1 and different crops of one speaker are no
    # closer than other speakers), so a speaker's test clip is its enrollment crop sent
    # through other channels (44.1 kHz stereo FLAC with a little noise; 8 kHz for the
    # second enrollment of spk0): what identify must then get right is the ranking.
    import soundfile
    clips = fx.librispeech_clips(librispeech_dir, [3.0] * 4, offset_seconds=0.5)
    files = {}
    rng = np.random.default_rng(0)
    for s, clip in enumerate(clips):
        files[s, 0] = str(tmp_path / f"s{s}_0.wav")
        audio.write_wav(files[s, 0], clip[:48000], 16000)
        files[s, 1] = str(tmp_path / f"s{s}_1.wav")
        audio.write_wav(files[s, 1], audio.resample(clip[:48000], 16000, 8000), 8000)
        test = clip[:48000] + 0.002 * rng.standard_normal(48000).astype(np.float32)
        test = audio.resample(test, 16000, 44100)
        files[s, 2] = str(tmp_path / f"s{s}_test.flac")
        soundfile.write(files[s, 2], np.stack([test, test], axis=1), 44100)
    db = str(tmp_path / "db")

    def cli(module, *args):
        result = subprocess.run([sys.executable, "-m", module, f"--db={db}",
                                 f"--model={exported}", *args], capture_output=True,
                                text=True, env=ENV, cwd=REPO, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    # spk1 and spk2 through the library function the CLI runs (each CLI start costs ~10 s);
    # spk0 through the CLI, twice.
    from tfspk import enroll, identify
    model = SpeakerModel.load(exported)
    cli("tfspk.enroll", "--speaker=spk0", files[0, 0])
    for s in (1, 2):
        enroll.enroll_files(db, f"spk{s}", model, [files[s, 0]], progress=False)
    out = cli("tfspk.enroll", "--speaker=spk0", files[0, 1])
    assert "spk0: 2 utterances; 3 speakers" in out
    results = [identify.identify_file(db, model, files[s, 2], top_k=3) for s in range(4)]
    for s in range(3):
        assert results[s]["top_k"][0]["speaker"] == f"spk{s}", results[s]
    genuine = min(r["top_k"][0]["score"] for r in results[1:3])  # single-channel enrollments
    impostor = results[3]["top_k"][0]["score"]
    assert impostor < genuine, (impostor, genuine)
    threshold = (impostor + genuine) / 2
    report = json.loads(cli("tfspk.identify", "--json", "--top_k=2",
                            f"--threshold={threshold}", files[1, 2]))
    assert report["speaker"] == "spk1" and len(report["top_k"]) == 2
    report = json.loads(cli("tfspk.identify", "--json", f"--threshold={threshold}",
                            files[3, 2]))
    assert report["speaker"] == "unknown"
    assert report["top_k"][0]["score"] == pytest.approx(impostor, abs=1e-5)


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from tfspk import speaker_db
    db = speaker_db.SpeakerDB(sys.argv[1])
    model = {"export": "/m/1", "fingerprint": "f" * 64}
    start = int(sys.argv[2])
    rng = np.random.default_rng(start)
    for i in range(start, start + 100000):
        db.enroll(f"spk{i % 3}", [f"u{i}"], rng.standard_normal((1, 64)), model)
        with open(sys.argv[3], "a") as log:
            log.write(f"{i}\\n")
""")


def test_sigkill_during_enroll_leaves_old_or_new_state(tmp_path):
    directory = str(tmp_path / "db")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    log = tmp_path / "committed.log"
    rng = random.Random(0)
    next_index = 0
    for kill in range(6):
        process = subprocess.Popen([sys.executable, str(script), directory, str(next_index),
                                    str(log)], env=ENV, cwd=REPO)
        time.sleep(0.6 + rng.uniform(0.0, 0.8))
        process.send_signal(signal.SIGKILL)
        process.wait()
        committed = [int(x) for x in log.read_text().split()] if log.exists() else []
        state = speaker_db.SpeakerDB(directory).load()
        ids = [int(u[1:]) for u in state.ids.tolist()]
        # Exactly the utterances committed, plus possibly the one whose commit landed
        # before the kill but before its log line.
        assert ids[:len(committed)] == committed
        assert len(ids) - len(committed) in (0, 1)
        assert ids == list(range(len(ids)))
        assert np.isfinite(state.embeddings).all() and state.embeddings.shape[1] == 64
        assert state.speakers.tolist() == [f"spk{i % 3}" for i in ids]
        next_index = len(ids)
        with open(log, "w") as stream:
            stream.writelines(f"{i}\n" for i in ids)
    assert next_index > 6  # the writer made progress between kills


HOLDER = textwrap.dedent("""
    import sys, time
    from tfspk import speaker_db
    db = speaker_db.SpeakerDB(sys.argv[1])
    with db.lock():
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def test_second_writer_refused_naming_holder_or_serialized(tmp_path):
    directory = str(tmp_path / "db")
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    db = speaker_db.SpeakerDB(directory)
    embedding = np.ones((1, 4))
    holder = subprocess.Popen([sys.executable, str(script), directory, "3"], env=ENV,
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(speaker_db.DbLockedError, match=f"pid {holder.pid}") as info:
            db.enroll("alice", ["a1"], embedding, MODEL, timeout=0.2)
        assert info.value.holder == holder.pid
        assert not db.exists()
        started = time.monotonic()
        db.enroll("alice", ["a1"], embedding, MODEL, timeout=30)  # waits for the holder
        assert time.monotonic() - started > 0.5
    finally:
        holder.wait()
    assert db.load().ids.tolist() == ["a1"]


def _enroll_cli(db, model, speaker, files):
    return [sys.executable, "-m", "tfspk.enroll", f"--db={db}", f"--model={model}",
            f"--speaker={speaker}", *files]


def test_sigkill_during_the_enroll_cli_leaves_old_or_new_state(exported, tmp_path):
    # `python -m tfspk.enroll` killed at random moments of its run (importing, loading
    # the model, embedding, committing): each time the db is the state before that
    # enroll or the state after it, it loads, its lock is free, and a rerun completes.
    # Three kills (each a full CLI start, ~10 s): the moments are random over the run.
    num_speakers, num_utterances = 4, 8
    files = {}
    for k in range(num_speakers):
        files[k] = [str(tmp_path / f"spk{k}_{i}.wav") for i in range(num_utterances)]
        for i, path in enumerate(files[k]):
            audio.write_wav(path, fx.speech_like(16000, seed=100 * k + i), 16000)
    db = str(tmp_path / "db")
    started = time.monotonic()
    subprocess.run(_enroll_cli(db, exported, "spk0", files[0]), env=ENV, cwd=REPO,
                   check=True, capture_output=True, timeout=300)
    duration = time.monotonic() - started  # one uninterrupted run, the model load included
    expected = {os.path.abspath(p) for p in files[0]}
    rng = random.Random(13)
    outcomes = []
    for k in range(1, num_speakers):
        process = subprocess.Popen(_enroll_cli(db, exported, f"spk{k}", files[k]), env=ENV,
                                   cwd=REPO, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        # Random moments over the whole run, weighted towards its end, where it commits.
        time.sleep(duration * rng.uniform(0.5, 1.1))
        process.send_signal(signal.SIGKILL)
        process.wait()
        state = speaker_db.SpeakerDB(db).load()
        ids = set(state.ids.tolist())
        new = expected | {os.path.abspath(p) for p in files[k]}
        assert ids in (expected, new), (k, len(ids), len(expected))
        assert len(state.ids) == len(ids)  # no duplicated rows
        assert np.isfinite(state.embeddings).all()
        assert set(state.speaker_names()) == {f"spk{j}" for j in range(k + (ids == new))}
        outcomes.append("new" if ids == new else "old")
        if ids != new:  # rerun the killed enroll: it completes (the lock was released)
            subprocess.run(_enroll_cli(db, exported, f"spk{k}", files[k]), env=ENV,
                           cwd=REPO, check=True, capture_output=True, timeout=300)
            assert set(speaker_db.SpeakerDB(db).load().ids.tolist()) == new
        expected = new
    final = speaker_db.SpeakerDB(db).load()
    assert len(final.ids) == num_speakers * num_utterances
    assert final.speaker_names() == [f"spk{k}" for k in range(num_speakers)]
    # A commit killed half-way may leave a temporary file or the previous generation,
    # which readers never look at and the next commit removes.
    others = set(os.listdir(db)) - {"db.json", "db.lock", f"embeddings-{final.generation}.npz"}
    assert all(n.endswith(".tmp") or re.fullmatch(r"embeddings-\d+\.npz", n)
               for n in others), others
    print("kill outcomes:", outcomes)


def test_identify_refuses_a_query_of_another_dimension(tmp_path):
    db = speaker_db.SpeakerDB(tmp_path / "db")
    db.enroll("alice", ["a1"], np.ones((1, 8)), MODEL)
    with pytest.raises(speaker_db.ModelMismatchError, match=r"shape \(12,\), the database "
                                                            r"holds \[8\]"):
        db.identify(np.ones(12), MODEL)
    with pytest.raises(ValueError, match="NaN"):
        db.identify(np.full(8, np.nan), MODEL)
    assert db.identify(np.ones(8), MODEL)["speaker"] == "alice"
