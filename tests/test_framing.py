"""Frame geometry: one answer to "where is frame j of layer L" everywhere.

For snip_edges true and false, at 8 and 16 kHz, every layer's frame centres as the export
writes them (`tfspk.export.frame_geometry`, what `frame_geometry.json` holds), as the
probes compute them (`FrameEmbedder.frame_centres`) and as measured on the training
pipeline's own front end (`tfspk.data`, applied in tf.data) agree sample for sample. The
measurement is independent of the framing arithmetic: the samples each MFCC frame
depends on (non-zero gradient) and the MFCC frames each layer frame depends on (a network
with positive weights, so every ReLU passes its gradient) give each frame's support, and
the centre of a support is the midpoint of its first and one-past-last sample.
"""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from tfspk import data, export, models
from tfspk import model_spec as spec_lib
from tfspk.frontend import framing
from tfspk.probes.frames import FrameEmbedder

CASES = list(itertools.product([True, False], [8000, 16000]))
NUM_FRAMES = 40  # MFCC frames in the crop the test measures


def _spec(snip_edges, sample_rate, architecture):
    features = spec_lib.FeatureSpec(sample_rate=sample_rate, num_mel_bins=23, num_ceps=13,
                                    snip_edges=snip_edges, cmn="none")
    filters = (4, 4, 4, 4) if architecture == "paper_cnn" else (4, 4, 4, 4, 6)
    return spec_lib.ModelSpec(architecture=architecture, conv_filters=filters,
                              fc_units=(6, 5), features=features)


def _mfcc_sample_support(spec, num_samples):
    """`[frames, 2]` first and one-past-last sample each MFCC frame depends on, through
    `tfspk.data`'s front end and `device_augment_and_features`."""
    frontend = data.make_frontend(spec.features.mfcc_options(), spec.features.cmn,
                                  spec.features.sample_rate)
    waveform = tf.constant(np.random.default_rng(0).uniform(-0.5, 0.5, (1, num_samples)),
                           tf.float32)
    lengths = tf.constant([num_samples])
    with tf.GradientTape() as tape:
        tape.watch(waveform)
        features = data.device_augment_and_features(
            {"waveform": waveform, "lengths": lengths}, frontend)["features"]
        projection = tf.constant(np.random.default_rng(1).normal(size=features.shape[-1]),
                                 tf.float32)
        per_frame = tf.reduce_sum(features[0] * projection, axis=-1)
    jacobian = tape.jacobian(per_frame, waveform)[:, 0, :].numpy()  # [frames, samples]
    support = []
    for row in jacobian:
        nonzero = np.flatnonzero(row)
        support.append((nonzero[0], nonzero[-1] + 1))
    return np.array(support)


def _layer_mfcc_support(frame_model, num_mfcc, num_features):
    """`{layer: [frames, 2]}` first and one-past-last MFCC frame each layer frame sees."""
    for variable in frame_model.trainable_variables:
        # Positive weights and biases on positive inputs: every unit is active, so each
        # output depends on its whole receptive field.
        variable.assign(tf.abs(variable) + 0.01)
    features = tf.constant(np.random.default_rng(2).uniform(0.5, 1.0, (1, num_mfcc,
                                                                       num_features)),
                           tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(features)
        outputs = frame_model({"features": features, "lengths": tf.constant([num_mfcc])})
        per_frame = {name: tf.reduce_sum(value[0], axis=-1) for name, value in outputs.items()
                     if not name.endswith("_lengths")}
    supports = {}
    for name, value in per_frame.items():
        jacobian = tape.jacobian(value, features)[:, 0].numpy()  # [T_layer, T, F]
        reach = np.abs(jacobian).sum(axis=-1) > 0
        supports[name] = np.array([(np.flatnonzero(r)[0], np.flatnonzero(r)[-1] + 1)
                                   for r in reach])
    return supports


@pytest.mark.parametrize("architecture", ["paper_cnn", "xvector"])
@pytest.mark.parametrize("snip_edges,sample_rate", CASES)
def test_frame_centres_agree_in_export_probes_and_tf_data(snip_edges, sample_rate,
                                                          architecture):
    spec = _spec(snip_edges, sample_rate, architecture)
    embedding_model = spec_lib.build_embedding_model(spec)
    frame_model = models.frame_embedding_model(embedding_model)
    geometry = export.frame_geometry(spec, embedding_model)
    embedder = FrameEmbedder.from_keras(frame_model, spec.features.build(), geometry)

    # The training crop gives exactly NUM_FRAMES frames, in tf.data as well.
    num_samples = data.samples_for_frames(NUM_FRAMES, spec.features.mfcc_options(),
                                          sample_rate)
    frontend = data.make_frontend(spec.features.mfcc_options(), False, sample_rate)
    batch = tf.data.Dataset.from_tensors(
        {"waveform": tf.zeros([1, num_samples]) + 0.1, "lengths": [num_samples]}).map(
        lambda inputs: data.device_augment_and_features(inputs, frontend))
    assert int(next(iter(batch))["lengths"][0]) == NUM_FRAMES
    assert framing.num_frames(num_samples - 1, spec.features.frame_length_ms,
                              spec.features.frame_shift_ms, snip_edges,
                              sample_rate) == NUM_FRAMES - 1

    # MFCC frames: measured support of the frames that lie wholly inside the signal
    # (without snip_edges the first and last are partly reflected samples).
    support = _mfcc_sample_support(spec, num_samples)
    assert len(support) == NUM_FRAMES
    window = geometry["frame_length_samples"]
    interior = [i for i in range(NUM_FRAMES)
                if support[i][1] - support[i][0] == window]
    assert len(interior) >= NUM_FRAMES - 4
    assert interior == list(range(interior[0], interior[-1] + 1))
    measured_mfcc = support.mean(axis=1)  # (first + one past last) / 2
    expected = embedder.frame_centres("mfcc", NUM_FRAMES)
    np.testing.assert_array_equal(measured_mfcc[interior], expected[interior])
    np.testing.assert_array_equal(
        expected, framing.layer_frame_centres(geometry, "mfcc", NUM_FRAMES))
    assert geometry["first_frame_start"] == (
        0 if snip_edges else geometry["frame_shift_samples"] // 2 - window // 2)
    # MFCC centres are evenly spaced, so a fractional MFCC index maps to a sample.
    first, shift = measured_mfcc[interior[0]], geometry["frame_shift_samples"]

    layer_support = _layer_mfcc_support(frame_model, NUM_FRAMES, spec.features.num_ceps)
    assert set(layer_support) | {"mfcc"} == set(geometry["layers"])
    for layer, reach in layer_support.items():
        centre_in_mfcc = (reach[:, 0] + reach[:, 1] - 1) / 2  # mid MFCC frame
        measured = first + (centre_in_mfcc - interior[0]) * shift
        np.testing.assert_array_equal(measured, embedder.frame_centres(layer, len(reach)),
                                      err_msg=layer)
        np.testing.assert_array_equal(
            measured, framing.layer_frame_centres(geometry, layer, len(reach)), err_msg=layer)
        receptive = geometry["layers"][layer]["receptive_field"]
        assert (reach[:, 1] - reach[:, 0] == receptive).all(), layer


@pytest.mark.parametrize("snip_edges,sample_rate", CASES + [(True, 11025), (False, 22050)])
def test_samples_for_frames_inverts_num_frames(snip_edges, sample_rate):
    grid = framing.FrameGrid(sample_rate, 25.0, 10.0, snip_edges)
    for frames in range(0, 60):
        samples = grid.samples_for_frames(frames)
        assert grid.num_frames(samples) == frames
        if samples > 0:
            assert grid.num_frames(samples - 1) == frames - 1
    spec = spec_lib.FeatureSpec(sample_rate=sample_rate, snip_edges=snip_edges)
    assert spec.samples_for_frames(37) == grid.samples_for_frames(37) == \
        data.samples_for_frames(37, {"snip_edges": snip_edges, "num_mel_bins": 23,
                                     "num_ceps": 13},
                                sample_rate)


def test_probe_segments_follow_the_first_frame_offset():
    """Without snip_edges MFCC frame i starts `shift // 2 - window // 2` (-120 at 16 kHz)
    samples earlier than with it; the probes' segment lookup moves with it."""
    snipped = FrameEmbedder(lambda w, n: {}, {**_geometry(True)})
    centred = FrameEmbedder(lambda w, n: {}, {**_geometry(False)})
    assert centred.frame_centres("mfcc", 1)[0] - snipped.frame_centres("mfcc", 1)[0] == -120
    # Samples [200, 360) hold frame 0's centre (200) with snip_edges, and frame 1's (240)
    # without.
    assert snipped.segment_frames("mfcc", 200, 360) == slice(0, 1)
    assert centred.segment_frames("mfcc", 200, 360) == slice(1, 2)


def _geometry(snip_edges):
    return framing.FrameGrid(16000, 25.0, 10.0, snip_edges).geometry()
