"""tfspk.inference + the embed/verify CLIs: API = CLI = bare SavedModel, on WAV/FLAC/MP3
at 8/16/44.1 kHz, mono and stereo; short and silent clips; resume; Kaldi ark."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile

import export_fixtures as fx
from tfspk import audio
from tfspk.inference import ClipTooShortError, SpeakerModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return fx.export_tiny_model(tmp_path_factory.mktemp("inference"))


def _speech(seconds, seed, librispeech):
    """16 kHz speech: real LibriSpeech when present, else synthetic."""
    if librispeech is not None:
        return fx.librispeech_clips(librispeech, [seconds] * 12)[seed]
    return fx.speech_like(int(seconds * fx.SAMPLE_RATE), seed=seed)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, request):
    try:
        librispeech = request.getfixturevalue("librispeech_dir")
    except pytest.skip.Exception:
        librispeech = None
    root = tmp_path_factory.mktemp("clips")
    paths = []
    formats = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", None)}
    seed = 0
    for ext, (fmt, subtype) in formats.items():
        for rate in (8000, 16000, 44100):
            for channels in (1, 2):
                speech = audio.resample(_speech(1.5, seed % 12, librispeech), 16000, rate)
                if channels == 2:
                    speech = np.stack([speech, 0.6 * speech[::-1]], axis=1)
                path = str(root / f"c{seed}_{rate}_{channels}.{ext}")
                soundfile.write(path, speech, rate, format=fmt, subtype=subtype)
                paths.append(path)
                seed += 1
    return paths


BARE_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    export_path, inputs, outputs = sys.argv[1:]
    data = np.load(inputs)
    model = tf.saved_model.load(export_path)
    rows = []
    for key in sorted(data.files, key=int):
        w = data[key]
        out = model.signatures["serving_default"](
            waveform=tf.constant(w[None]), lengths=tf.constant([len(w)], tf.int32))
        rows.append(out["embedding"].numpy()[0])
    assert "tfspk" not in sys.modules
    np.save(outputs, np.stack(rows))
""")


def _cli(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, env=ENV, cwd=REPO, timeout=300)


def test_api_cli_and_bare_savedmodel_agree(exported, clips, tmp_path):
    model = SpeakerModel.load(exported)
    assert model.path.endswith(os.path.join("spk", "1"))
    assert model.sample_rate == 16000
    api = model.embed(clips, batch_size=4)
    assert api.shape[0] == len(clips) and api.dtype == np.float32
    np.testing.assert_allclose(model.embed(clips[3]), api[3], atol=1e-5)
    # The bare SavedModel, in a process that imports only TensorFlow, fed the waveform
    # resampled and downmixed by load_audio.
    waveforms = {str(i): audio.load_audio(p, 16000, downmix=True)[0]
                 for i, p in enumerate(clips)}
    np.savez(tmp_path / "w.npz", **waveforms)
    (tmp_path / "bare.py").write_text(BARE_SCRIPT)
    result = subprocess.run([sys.executable, str(tmp_path / "bare.py"),
                             os.path.join(exported, "1"), str(tmp_path / "w.npz"),
                             str(tmp_path / "bare.npy")], capture_output=True, text=True,
                            env={**ENV, "PYTHONPATH": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "bare.npy"), api, atol=1e-5)
    # The CLI.
    output = str(tmp_path / "cli.npz")
    result = _cli("tfspk.embed", f"--model={exported}", f"--output={output}", *clips)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(output, allow_pickle=False) as data:
        by_id = dict(zip(data["ids"].tolist(), data["embeddings"]))
    for i, path in enumerate(clips):
        np.testing.assert_allclose(by_id[os.path.splitext(path)[0]], api[i], atol=1e-5)


def test_verify_scores_and_cli_json(exported, clips):
    model = SpeakerModel.load(exported)
    same = model.verify(clips[0], clips[0])
    assert same.score == pytest.approx(1.0, abs=1e-5)
    assert same.llr is None and same.accepted is None  # uncalibrated, no threshold
    result = _cli("tfspk.verify", f"--model={exported}", "--json", "--threshold=0.5",
                  clips[0], clips[7])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["score"] == pytest.approx(model.score(clips[0], clips[7]), abs=1e-5)
    assert report["accepted"] == (report["score"] >= 0.5)
    text = _cli("tfspk.verify", f"--model={exported}", clips[0], clips[0]).stdout
    assert "score" in text


def test_short_and_silent_clips_refused(exported, tmp_path):
    model = SpeakerModel.load(os.path.join(exported, "1"))
    short = str(tmp_path / "short.wav")
    audio.write_wav(short, fx.speech_like(model.min_samples - 10), 16000)
    with pytest.raises(ClipTooShortError, match="short.wav") as info:
        model.embed(short)
    assert isinstance(info.value, ValueError)
    assert f"{model.min_seconds:.3f} s" in str(info.value)
    silent = str(tmp_path / "silent.wav")
    audio.write_wav(silent, np.zeros(32000, np.float32), 16000)
    with pytest.raises(audio.AudioError, match="silent"):
        model.embed(silent)


def test_vad_drops_silence(exported):
    model = SpeakerModel.load(exported, vad=True)
    speech = fx.speech_like(24000, seed=3)
    padded = np.concatenate([np.zeros(16000, np.float32), speech,
                             np.zeros(16000, np.float32)])
    kept = model.load_waveform(padded)
    assert 0.8 * len(speech) < len(kept) < len(padded) - 16000


def test_embed_cli_resume_and_kaldi(exported, clips, tmp_path):
    import kaldiio

    folder = tmp_path / "in"
    folder.mkdir()
    for path in clips[:6]:
        os.symlink(path, folder / os.path.basename(path))
    output = str(tmp_path / "out.npz")
    first = _cli("tfspk.embed", f"--model={exported}", f"--output={output}",
                 "--save_every=1", "--batch_size=1", str(folder / "c[0-2]_*"))
    assert first.returncode == 0, first.stderr[-3000:]
    second = _cli("tfspk.embed", f"--model={exported}", f"--output={output}", str(folder))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "skipped 0" in second.stdout  # ids differ: glob ids are paths, dir ids relative
    # Simulate an interrupted run: a partial file with 2 of the 6 directory ids.
    ark = str(tmp_path / "out.ark")
    with np.load(output) as data:
        ids, emb = data["ids"], data["embeddings"]
    from eval import embeddings as embeddings_io
    directory_ids = [i for i in ids.tolist() if "/" not in i]
    rows = [ids.tolist().index(i) for i in directory_ids[:2]]
    embeddings_io.save_embeddings(ark + ".partial.npz", ids[rows], emb[rows],
                                  np.array([""] * 2))
    resumed = _cli("tfspk.embed", f"--model={exported}", f"--output={ark}", str(folder))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "embedded 4, skipped 2" in resumed.stdout
    assert not os.path.exists(ark + ".partial.npz")
    table = kaldiio.load_scp(str(tmp_path / "out.scp"))
    assert sorted(table) == sorted(directory_ids)
    npz = dict(zip(ids.tolist(), emb))
    for key in table:
        np.testing.assert_allclose(table[key], npz[key], atol=1e-6)
    again = _cli("tfspk.embed", f"--model={exported}", f"--output={ark}", str(folder))
    assert "embedded 0, skipped 6" in again.stdout
