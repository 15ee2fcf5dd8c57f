"""Tests for tfspk.layers: length propagation, pooling, margin heads."""
import math

import keras
import numpy as np
import pytest

from tfspk import layers

FLOOR = layers.DEFAULT_VARIANCE_FLOOR


def _padded_batch(rng, lengths, channels, max_length=None, pad_value=None):
    max_length = max_length or max(lengths)
    frames = rng.standard_normal((len(lengths), max_length, channels)).astype("float32")
    if pad_value is not None:
        for row, length in enumerate(lengths):
            frames[row, length:] = pad_value
    return frames, np.asarray(lengths, dtype="int32")


def _roundtrip(model, tmp_path):
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    return keras.saving.load_model(path, safe_mode=True)


# ----------------------------------------------------------------- lengths


@pytest.mark.parametrize("kernel,stride,dilation", [(5, 1, 1), (7, 2, 1), (3, 1, 3),
                                                    (1, 1, 1), (4, 3, 1)])
def test_conv_output_lengths_match_conv1d(kernel, stride, dilation):
    conv = keras.layers.Conv1D(2, kernel, strides=stride, dilation_rate=dilation)
    span = dilation * (kernel - 1) + 1
    for length in range(span, span + 9):
        actual = conv(np.zeros((1, length, 3), "float32")).shape[1]
        predicted = layers.conv_output_lengths(np.array([length]), kernel, stride,
                                               dilation)
        assert int(predicted[0]) == actual, (length, kernel, stride, dilation)
    # Shorter than the receptive field: no valid output frame.
    short = layers.conv_output_lengths(np.arange(span), kernel, stride, dilation)
    np.testing.assert_array_equal(np.asarray(short), np.zeros(span))


def test_conv_output_lengths_rejects_bad_geometry():
    with pytest.raises(ValueError, match="stride"):
        layers.conv_output_lengths(np.array([10]), 3, stride=0)
    with pytest.raises(ValueError, match="kernel_size"):
        layers.ConvOutputLengths(kernel_size=2.5)


def test_length_mask():
    mask = np.asarray(layers.length_mask(np.array([0, 2, 4]), 4))
    np.testing.assert_array_equal(mask, [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])


# ----------------------------------------------------------------- pooling


def _numpy_stats(frames, lengths):
    rows = []
    for row, length in enumerate(lengths):
        valid = frames[row, :length].astype("float64")
        std = np.sqrt(np.maximum(valid.var(axis=0), FLOOR))
        rows.append(np.concatenate([valid.mean(axis=0), std]))
    return np.stack(rows)


def test_stats_pooling_matches_numpy_and_ignores_padding():
    rng = np.random.default_rng(0)
    frames, lengths = _padded_batch(rng, [7, 3, 12, 1], channels=5)
    pooling = layers.StatsPooling()
    result = np.asarray(pooling(frames, lengths))
    np.testing.assert_allclose(result, _numpy_stats(frames, lengths), rtol=1e-5,
                               atol=1e-6)
    # A single valid frame has zero variance: std is the floor.
    np.testing.assert_allclose(result[3, 5:], math.sqrt(FLOOR), rtol=1e-6)
    repadded, _ = _padded_batch(rng, [7, 3, 12, 1], channels=5, pad_value=1e4)
    for row, length in enumerate(lengths):
        repadded[row, :length] = frames[row, :length]
    np.testing.assert_array_equal(np.asarray(pooling(repadded, lengths)), result)


def test_stats_pooling_zero_length_row():
    frames = np.ones((1, 4, 3), "float32")
    result = np.asarray(layers.StatsPooling()(frames, np.array([0], "int32")))
    np.testing.assert_allclose(result, [[0, 0, 0] + [math.sqrt(FLOOR)] * 3], rtol=1e-6)


def test_average_pooling_matches_numpy_and_ignores_padding():
    rng = np.random.default_rng(1)
    frames, lengths = _padded_batch(rng, [4, 9, 2], channels=6)
    result = np.asarray(layers.AveragePooling()(frames, lengths))
    expected = np.stack([frames[r, :n].mean(axis=0) for r, n in enumerate(lengths)])
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)
    frames[0, 4:] = -1e5
    np.testing.assert_allclose(np.asarray(layers.AveragePooling()(frames, lengths)),
                               expected, rtol=1e-5, atol=1e-6)


def test_stats_pooling_mixed_float16_computes_variance_in_float32():
    # 300^2 overflows float16 (max 65504): a naive float16 variance is inf.
    rng = np.random.default_rng(2)
    frames = (300 + rng.standard_normal((2, 50, 4))).astype("float32")
    lengths = np.array([50, 30], "int32")
    pooling = layers.StatsPooling(dtype="mixed_float16")
    result = pooling(frames, lengths)
    assert result.dtype == "float16"
    np.testing.assert_allclose(np.asarray(result, "float32"),
                               _numpy_stats(frames.astype("float16"), lengths),
                               rtol=2e-3)


@pytest.mark.parametrize("channel_wise", [False, True])
def test_attentive_stats_pooling_matches_reference_and_masks_padding(channel_wise):
    rng = np.random.default_rng(3)
    frames, lengths = _padded_batch(rng, [6, 2, 9], channels=4)
    pooling = layers.AttentiveStatsPooling(hidden_units=5, channel_wise=channel_wise)
    result = np.asarray(pooling(frames, lengths))
    w1, b1 = [np.asarray(v) for v in pooling.hidden.weights]
    w2, b2 = [np.asarray(v) for v in pooling.score.weights]
    for row, length in enumerate(lengths):
        valid = frames[row, :length].astype("float64")
        scores = np.tanh(valid @ w1 + b1) @ w2 + b2          # [T, 1 or C]
        alpha = np.exp(scores - scores.max(axis=0))
        alpha /= alpha.sum(axis=0)
        mean = (alpha * valid).sum(axis=0)
        std = np.sqrt(np.maximum((alpha * (valid - mean) ** 2).sum(axis=0), FLOOR))
        np.testing.assert_allclose(result[row], np.concatenate([mean, std]),
                                   rtol=1e-5, atol=1e-6)
    frames[1, 2:] = 1e4
    np.testing.assert_allclose(np.asarray(pooling(frames, lengths)), result,
                               rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------- margin heads


def _head_at_angles(head_class, thetas, **kwargs):
    """Head with 2-D class weights e1, e2 and embeddings at angle theta from e1."""
    head = head_class(2, scale=10.0, **kwargs)
    embeddings = np.stack([np.cos(thetas), np.sin(thetas)], axis=1).astype("float32")
    head.build((None, 2))
    head.kernel.assign(np.eye(2, dtype="float32") * 3.0)  # norm must not matter
    return head, embeddings


def test_am_softmax_logits_at_known_angles():
    thetas = np.array([0.1, 0.7, 1.5, 2.9])
    head, embeddings = _head_at_angles(layers.AMSoftmax, thetas, margin=0.25)
    labels = np.array([0, 0, 1, 0])
    logits = np.asarray(head(embeddings, labels=labels))
    cos_target0 = np.cos(thetas)
    cos_target1 = np.cos(thetas - np.pi / 2)
    expected = 10 * np.stack([cos_target0, cos_target1], axis=1)
    expected[np.arange(4), labels] -= 10 * 0.25
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    # Without labels: plain scaled cosines.
    np.testing.assert_allclose(np.asarray(head(embeddings)),
                               10 * np.stack([cos_target0, cos_target1], axis=1),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("easy_margin", [False, True])
def test_aam_softmax_logits_at_known_angles(easy_margin):
    margin = 0.3
    thetas = np.array([0.05, 0.8, 1.4, 1.9, np.pi - margin - 0.1, np.pi - 0.05])
    head, embeddings = _head_at_angles(layers.AAMSoftmax, thetas, margin=margin,
                                       easy_margin=easy_margin)
    logits = np.asarray(head(embeddings, labels=np.zeros(len(thetas), "int32")))
    if easy_margin:
        expected_target = np.where(np.cos(thetas) > 0, np.cos(thetas + margin),
                                   np.cos(thetas))
    else:
        expected_target = np.where(thetas < np.pi - margin, np.cos(thetas + margin),
                                   np.cos(thetas) - margin * np.sin(margin))
    np.testing.assert_allclose(logits[:, 0], 10 * expected_target, rtol=1e-5,
                               atol=1e-5)
    # The non-target class keeps its plain cosine.
    np.testing.assert_allclose(logits[:, 1], 10 * np.cos(thetas - np.pi / 2),
                               rtol=1e-5, atol=1e-5)


def test_aam_target_logit_decreases_with_angle():
    thetas = np.linspace(0.0, np.pi, 721)
    head, embeddings = _head_at_angles(layers.AAMSoftmax, thetas, margin=0.5)
    target = np.asarray(head(embeddings, labels=np.zeros(len(thetas), "int32")))[:, 0]
    assert np.all(np.diff(target) <= 1e-5)


def test_margin_can_be_set_during_training():
    thetas = np.array([0.4])
    head, embeddings = _head_at_angles(layers.AAMSoftmax, thetas, margin=0.0)
    labels = np.array([0])
    np.testing.assert_allclose(np.asarray(head(embeddings, labels=labels))[0, 0],
                               10 * math.cos(0.4), rtol=1e-5)
    head.set_margin(layers.linear_margin_schedule(150, 100, 300, 0.2))
    np.testing.assert_allclose(float(head.margin), 0.05, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(head(embeddings, labels=labels))[0, 0],
                               10 * math.cos(0.45), rtol=1e-5)
    with pytest.raises(ValueError, match="margin"):
        head.set_margin(2.0)


def test_linear_margin_schedule():
    values = [float(layers.linear_margin_schedule(step, 10, 20, 0.3))
              for step in (0, 10, 15, 20, 1000)]
    np.testing.assert_allclose(values, [0.0, 0.0, 0.15, 0.3, 0.3], atol=1e-7)
    with pytest.raises(ValueError, match="end_step"):
        layers.linear_margin_schedule(0, 10, 10, 0.3)


# ----------------------------------------------------------------- saving


def _frames_model(layer, channels=4):
    frames = keras.Input((None, channels), name="frames")
    lengths = keras.Input((), dtype="int32", name="lengths")
    return keras.Model({"frames": frames, "lengths": lengths},
                       layer(frames, lengths), name=f"wrap_{layer.name}")


@pytest.mark.parametrize("make_layer", [
    lambda: layers.StatsPooling(variance_floor=1e-3),
    lambda: layers.AveragePooling(),
    lambda: layers.AttentiveStatsPooling(hidden_units=3, channel_wise=True,
                                         activation="relu"),
    lambda: layers.LengthAwareBatchNormalization(momentum=0.9),
])
def test_frame_layers_roundtrip_keras_file(make_layer, tmp_path):
    layer = make_layer()
    model = _frames_model(layer)
    rng = np.random.default_rng(4)
    frames, lengths = _padded_batch(rng, [5, 3], channels=4)
    inputs = {"frames": frames, "lengths": lengths}
    if isinstance(layer, layers.LengthAwareBatchNormalization):
        model(inputs, training=True)  # move the moving statistics off their init
        layer.gamma.assign(rng.standard_normal(4).astype("float32"))
    loaded = _roundtrip(model, tmp_path)
    assert loaded.layers[-1].get_config() == layer.get_config()
    np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(model(inputs)),
                               rtol=1e-6, atol=1e-6)


def test_length_aware_batch_norm_ignores_padding_in_training():
    rng = np.random.default_rng(5)
    frames, lengths = _padded_batch(rng, [6, 3], channels=3)
    bn = layers.LengthAwareBatchNormalization()
    out = np.asarray(bn(frames, lengths, training=True))
    valid = np.concatenate([frames[0, :6], frames[1, :3]])
    expected = (frames - valid.mean(0)) / np.sqrt(valid.var(0) + bn.epsilon)
    np.testing.assert_allclose(out[0, :6], expected[0, :6], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out[1, :3], expected[1, :3], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("make_head", [
    lambda: layers.CosineSoftmax(5, scale=16.0),
    lambda: layers.AMSoftmax(5, margin=0.3),
    lambda: layers.AAMSoftmax(5, margin=0.1, easy_margin=True),
])
def test_margin_heads_roundtrip_keras_file(make_head, tmp_path):
    head = make_head()
    embeddings = keras.Input((3,), name="embeddings")
    labels = keras.Input((), dtype="int32", name="labels")
    model = keras.Model({"embeddings": embeddings, "labels": labels},
                        head(embeddings, labels=labels), name="wrap_head")
    head.set_margin(0.15)  # the current margin is saved with the weights
    rng = np.random.default_rng(6)
    inputs = {"embeddings": rng.standard_normal((4, 3)).astype("float32"),
              "labels": np.array([0, 4, 2, 2], "int32")}
    loaded = _roundtrip(model, tmp_path)
    np.testing.assert_allclose(float(loaded.layers[-1].margin), 0.15, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(model(inputs)),
                               rtol=1e-6, atol=1e-6)
