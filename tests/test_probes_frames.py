"""FrameEmbedder: geometry arithmetic, output trimming, and SavedModel/checkpoint loading
agreeing with the Keras model they came from."""
import json
import os

import numpy as np
import pytest

from probes.frames import FrameEmbedder, FrameEmbedderError, make_geometry

import probes_fixtures as pf


def _constant_embedder(layers, frames=50, dims=3, valid=None):
    def fn(waveform, lengths):
        out = {}
        for name in layers:
            out[name] = np.arange(frames * dims, dtype=np.float32).reshape(1, frames, dims)
            if valid is not None:
                out[name + "_lengths"] = np.array([valid], np.int32)
        return out
    return FrameEmbedder(fn, make_geometry(layers))


def test_segment_frames_by_centre_mfcc_geometry():
    embedder = _constant_embedder({"mfcc": (0, 1)})
    # MFCC frame i covers [160 i, 160 i + 400): centre 160 i + 200.
    # Centres in [1000, 2000): i = 5 (1000) .. 11 (1960).
    assert embedder.segment_frames("mfcc", 1000, 2000) == slice(5, 12)
    # From 1001, frame 5's centre (1000) is outside; up to 2001 frame 12 (2120) still is.
    assert embedder.segment_frames("mfcc", 1001, 2001) == slice(6, 12)
    assert embedder.segment_frames("mfcc", 0, 200) == slice(0, 1)   # nearest to centre 100


def test_segment_frames_strided_layer_and_short_segments():
    embedder = _constant_embedder({"conv2": (5, 2)})
    # Frame j centred on MFCC frame 5 + 2 j: sample 160 (5 + 2 j) + 200 = 1000 + 320 j.
    assert embedder.segment_frames("conv2", 1000, 1960) == slice(0, 3)   # 1000, 1320, 1640
    # No centre inside [1330, 1600): the one nearest its midpoint 1465 is 1320 (frame 1).
    assert embedder.segment_frames("conv2", 1330, 1600) == slice(1, 2)
    assert embedder.segment_frames("conv2", 1100, 1200) == slice(0, 1)   # 1150 nearer 1000
    # Segments before the first centre get frame 0; past the valid frames, the last one.
    assert embedder.segment_frames("conv2", 0, 400) == slice(0, 1)
    assert embedder.segment_frames("conv2", 50_000, 60_000, num_frames=10) == slice(9, 10)
    assert embedder.segment_frames("conv2", 3000, 60_000, num_frames=10) == slice(7, 10)
    with pytest.raises(ValueError, match="empty segment"):
        embedder.segment_frames("conv2", 10, 10)
    with pytest.raises(KeyError, match="no layer 'fc9'"):
        embedder.segment_frames("fc9", 0, 10)


def test_embed_trims_to_lengths_and_checks_outputs():
    embedder = _constant_embedder({"a": (0, 1), "b": (2, 1)}, frames=50, valid=7)
    frames = embedder.embed(np.zeros(8000, np.float32))
    assert set(frames) == {"a", "b"} and frames["a"].shape == (7, 3)
    np.testing.assert_array_equal(frames["b"][1], [3, 4, 5])
    with pytest.raises(ValueError, match="one waveform"):
        embedder.embed(np.zeros((2, 100), np.float32))
    broken = FrameEmbedder(lambda w, n: {"a": np.zeros((1, 4, 2))}, make_geometry({"a": (0, 1),
                                                                                  "b": (0, 1)}))
    with pytest.raises(FrameEmbedderError, match="no 'b' output"):
        broken.embed(np.zeros(1000, np.float32))
    with pytest.raises(FrameEmbedderError, match="unknown layers"):
        FrameEmbedder(lambda w, n: {}, make_geometry({"a": (0, 1)}), layers=["z"])


def test_saved_model_and_checkpoint_match_the_keras_model(tmp_path):
    """The same tiny network as a Keras model, an exported SavedModel and a restored
    checkpoint yields the same frames at every layer."""
    from tfspk import export

    model_dir = pf.write_tiny_run(str(tmp_path / "run"), steps=(3,))
    spec, embedding_model, _ = export.restore_embedding_model(model_dir)
    export_path = str(tmp_path / "export" / "1")
    export.build_export_archive(spec, embedding_model).write_out(export_path, verbose=False)
    os.makedirs(os.path.join(export_path, "assets.extra"), exist_ok=True)
    export.write_frame_geometry(export_path, spec, embedding_model)

    from_saved = FrameEmbedder.from_saved_model(export_path)
    from_checkpoint = FrameEmbedder.from_checkpoint(model_dir, "3")
    assert from_saved.layers == from_checkpoint.layers == (
        "mfcc", "conv1", "conv2", "conv3", "conv4", "fc1", "fc2")
    waveform = 0.1 * np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    a, b = from_saved.embed(waveform), from_checkpoint.embed(waveform)
    assert a["mfcc"].shape == (48, 40)          # 1 + (8000 - 400) // 160
    assert a["conv2"].shape == (19, 8)          # (48 - 4 - 7) // 2 + 1
    assert a["fc2"].shape == (19, 6)
    for layer in from_saved.layers:
        np.testing.assert_allclose(a[layer], b[layer], rtol=1e-4, atol=1e-4)
    # The geometry JSON is the probes' map from frames to samples: conv2 frame j is
    # centred on MFCC frame 5 + 2 j (kernels 5 and 7, stride 2).
    with open(os.path.join(export_path, "assets.extra", "frame_geometry.json")) as f:
        conv2 = json.load(f)["layers"]["conv2"]
    assert (conv2["offset"], conv2["stride"]) == (5, 2)

    os.remove(os.path.join(export_path, "assets.extra", "frame_geometry.json"))
    with pytest.raises(FrameEmbedderError, match="frame_geometry.json: not found"):
        FrameEmbedder.from_saved_model(export_path)


def test_segment_slices_scale_a_16khz_alignment_to_an_8khz_model():
    """A phone covers the same time whatever the model's rate: with 25 ms / 10 ms frames an
    8 kHz model's frame i is centred where a 16 kHz model's is, so the slices agree."""
    import dataclasses

    from tfspk.corpora.records import PhoneSegment, Utterance
    from tfspk.probes import data

    def geometry(rate):
        return make_geometry({"mfcc": (0, 1), "conv2": (5, 2)}, sample_rate=rate,
                             frame_length_samples=rate // 40, frame_shift_samples=rate // 100)
    at_16k = FrameEmbedder(lambda w, l: {}, geometry(16000))
    at_8k = FrameEmbedder(lambda w, l: {}, geometry(8000))
    cuts = [0, 1130, 3200, 3201, 7777, 16000]
    utt = Utterance("FAAA0_SA1", "SA1.WAV", "FAAA0", meta={"sample_rate": 16000},
                    phones=tuple(PhoneSegment(a, b, "aa") for a, b in zip(cuts, cuts[1:])))
    for layer, frames in (("mfcc", 98), ("conv2", 44)):
        expected = data.segment_slices(at_16k, layer, utt, frames)
        assert expected == [at_16k.segment_frames(layer, a, b, frames)
                            for a, b in zip(cuts, cuts[1:])]
        assert data.segment_slices(at_8k, layer, utt, frames) == expected
    # An alignment already at the model's rate is used as it is.
    at_8k_rate = dataclasses.replace(utt, meta={"sample_rate": 8000})
    assert data.segment_slices(at_8k, "mfcc", at_8k_rate, 98) == [
        at_8k.segment_frames("mfcc", a, b, 98) for a, b in zip(cuts, cuts[1:])]
