"""eval.extract and eval.baseline: real audio through an exported SavedModel."""
import os

import numpy as np
import pytest
import soundfile

import export_fixtures as fx
from eval import baseline, embeddings as embeddings_io, extract
from tfspk import export, features, schema


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract")
    spec = fx.tiny_spec()
    fx.make_model_dir(str(root / "run"), spec)
    path = export.export_saved_model(str(root / "run"), str(root / "models" / "spk"),
                                     warmup=False)
    return root, path


@pytest.fixture(scope="module")
def manifest(exported, librispeech_dir):
    root, _ = exported
    lines = []
    for i, name in enumerate(sorted(os.listdir(librispeech_dir))[:5]):
        if name.endswith(".flac"):
            lines.append(f"{librispeech_dir / name}\tspk{i}\tutt{i}")
    path = root / "manifest.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_batched_extraction_equals_one_utterance_at_a_time(exported, manifest):
    _, saved_model = exported
    utterances = list(extract.read_corpus("manifest", str(manifest)))
    ids, speakers, batched = extract.extract_embeddings(saved_model, utterances, batch_size=4,
                                                        progress=False)
    assert ids == [f"utt{i}" for i in range(len(ids))]
    assert speakers == [f"spk{i}" for i in range(len(ids))]
    for row, utt in enumerate(utterances):
        _, _, alone = extract.extract_embeddings(saved_model, [utt], progress=False)
        np.testing.assert_allclose(batched[row], alone[0], atol=1e-4)


def test_tfrecords_input_matches_audio_files(exported, manifest, tmp_path):
    _, saved_model = exported
    utterances = list(extract.read_corpus("manifest", str(manifest)))
    import tensorflow as tf
    shard = tmp_path / "test-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(str(shard)) as writer:
        for utt in utterances:
            pcm = np.round(utt.waveform * 32768).clip(-32768, 32767).astype(np.int16)
            writer.write(schema.serialize_example(utt.utt_id, utt.speaker, -1, pcm, 16000))
    from_files = extract.extract_embeddings(saved_model, utterances, progress=False)
    from_shards = extract.extract_embeddings(
        saved_model, extract.read_corpus("tfrecords", str(tmp_path / "test-*.tfrecord")),
        progress=False)
    assert from_files[0] == from_shards[0]
    np.testing.assert_allclose(from_files[2], from_shards[2], atol=1e-3)


def test_too_short_utterance_is_named(exported, tmp_path):
    _, saved_model = exported
    utt = extract.LoadedUtterance("tiny_one", "s", np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="tiny_one"):
        extract.extract_embeddings(saved_model, [utt], progress=False)


def test_baseline_is_mean_and_std_of_kaldi_mfcc(librispeech_dir):
    path = sorted(librispeech_dir.glob("*.flac"))[0]
    waveform, rate = soundfile.read(path, dtype="float32")
    vector = baseline.mfcc_mean_std(waveform, rate)
    frames = features.kaldi_mfcc(waveform, rate, num_mel_bins=40, num_ceps=40).numpy()
    np.testing.assert_allclose(vector[:40], frames.mean(0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(vector[40:], frames.std(0), rtol=1e-5, atol=1e-4)


def test_cli_writes_an_npz_without_pickles(exported, manifest, tmp_path):
    import subprocess
    import sys

    _, saved_model = exported
    output = tmp_path / "emb.npz"
    result = subprocess.run(
        [sys.executable, "-m", "eval.extract", f"--saved_model={saved_model}",
         "--input_format=manifest", f"--input={manifest}", f"--output={output}"],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-2000:]
    with np.load(output, allow_pickle=False) as data:
        assert data["embeddings"].shape[0] == 5
    loaded = embeddings_io.load_embeddings(output)
    assert list(loaded.ids) == [f"utt{i}" for i in range(5)]


def test_streaming_windows_give_the_same_embeddings(exported, manifest):
    _, saved_model = exported
    utterances = list(extract.read_corpus("manifest", str(manifest)))
    whole = extract.extract_embeddings(saved_model, utterances, progress=False)
    windowed = extract.extract_embeddings(saved_model, iter(utterances), window_size=2,
                                          progress=False)
    assert whole[0] == windowed[0]
    np.testing.assert_allclose(whole[2], windowed[2], atol=1e-4)


def test_one_pass_over_several_layers_equals_one_export_per_layer(exported, manifest,
                                                                  tmp_path):
    """fc1 and fc2 from the `embeddings` signature in one pass (prefetching the audio)
    equal what the recipe used to do: one export and one extraction per layer; and the
    CLI writes one npz per layer from --output's {layer}."""
    import subprocess
    import sys

    root, saved_model = exported
    utterances = list(extract.read_corpus("manifest", str(manifest)))
    ids, speakers, both = extract.extract_embeddings(saved_model, iter(utterances),
                                                     output_key=["fc1", "fc2"],
                                                     window_size=3, progress=False)
    assert set(both) == {"fc1", "fc2"}
    fc1_export = export.export_saved_model(str(root / "run"), str(tmp_path / "fc1"),
                                           warmup=False, embedding_layer="fc1")
    for layer, path in (("fc1", fc1_export), ("fc2", saved_model)):
        alone = extract.extract_embeddings(path, utterances, window_size=3, progress=False,
                                           prefetch=0)
        assert alone[0] == ids and alone[1] == speakers
        np.testing.assert_allclose(both[layer], alone[2], rtol=1e-5, atol=1e-5)

    output = tmp_path / "emb" / "{layer}" / "test.npz"
    result = subprocess.run(
        [sys.executable, "-m", "eval.extract", f"--saved_model={saved_model}",
         "--input_format=manifest", f"--input={manifest}", f"--output={output}",
         "--layers=fc1,fc2"], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-2000:]
    for layer in ("fc1", "fc2"):
        loaded = embeddings_io.load_embeddings(tmp_path / "emb" / layer / "test.npz")
        assert list(loaded.ids) == ids
        np.testing.assert_allclose(loaded.embeddings, both[layer], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="must contain {layer}"):
        extract.layer_outputs("one.npz", ["fc1", "fc2"])


def test_prefetch_hands_on_a_reading_error():
    def reading():
        yield 1
        raise OSError("disk gone")

    got = extract._prefetched(reading(), 4)
    assert next(got) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(got)
