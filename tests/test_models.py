"""Tests for tfspk.models: paper CNN, frame-level CNN, x-vector, classifier."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfspk import models

F = 6
TINY_CNN = dict(num_features=F, conv_filters=(8, 8, 8, 12), fc_units=(10, 7))
TINY_XVECTOR = dict(num_features=F, frame_filters=(8, 8, 8, 8, 12),
                    segment_units=(10, 7))

BUILDERS = {
    "relu_all": lambda: models.build_paper_cnn(variant="relu_all", **TINY_CNN),
    "linear_fc1_attentive_bn": lambda: models.build_paper_cnn(
        variant="linear_fc1", pooling="attentive", batch_norm=True,
        attention_units=4, channel_wise_attention=True, **TINY_CNN),
    "frame_level": lambda: models.build_frame_level_cnn(batch_norm=True, **TINY_CNN),
    "xvector": lambda: models.build_xvector(**TINY_XVECTOR),
}


def _inputs(lengths, seed=0, max_length=None):
    rng = np.random.default_rng(seed)
    max_length = max_length or max(lengths)
    features = rng.standard_normal((len(lengths), max_length, F)).astype("float32")
    return {"features": features, "lengths": np.asarray(lengths, "int32")}


def _randomise_batch_norm(model, seed=1):
    """Non-trivial inference statistics, so that batch norm matters in tests."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for variable in (layer.moving_mean, layer.beta):
                variable.assign(0.3 * rng.standard_normal(variable.shape))
            for variable in (layer.moving_variance, layer.gamma):
                variable.assign(rng.uniform(0.5, 2.0, variable.shape))
    return model


def _numpy(outputs):
    return {key: np.asarray(value) for key, value in outputs.items()}


def _assert_same_outputs(actual, expected, atol=1e-5):
    assert sorted(actual) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(np.asarray(actual[key]), np.asarray(expected[key]),
                                   rtol=1e-5, atol=atol, err_msg=key)


def _roundtrip(model, tmp_path):
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    return keras.saving.load_model(path, safe_mode=True)


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def model(request):
    return _randomise_batch_norm(BUILDERS[request.param]())


def test_output_shapes(model):
    outputs = model(_inputs([40, 25]))
    assert outputs["fc1"].shape == (2, 10) and outputs["fc2"].shape == (2, 7)


def test_each_row_of_a_padded_batch_equals_the_row_alone(model):
    batch = _inputs([41, 19, 30, 24], max_length=50)
    together = _numpy(model(batch))
    for row, length in enumerate(batch["lengths"]):
        alone = _numpy(model({"features": batch["features"][row:row + 1, :length],
                              "lengths": batch["lengths"][row:row + 1]}))
        for key in ("fc1", "fc2"):
            np.testing.assert_allclose(together[key][row], alone[key][0], rtol=1e-5,
                                       atol=1e-5, err_msg=f"row {row} {key}")


def test_padding_is_ignored_in_training_mode(model):
    # Batch-norm statistics must use valid frames only.
    batch = _inputs([35, 22], max_length=40)
    repadded = {key: value.copy() for key, value in batch.items()}
    repadded["features"][1, 22:] = 50.0
    _assert_same_outputs(model(repadded, training=True), model(batch, training=True),
                         atol=1e-4)


def test_propagated_lengths_match_conv_outputs(model):
    frames_model = models.frame_embedding_model(model)
    for length in (23, 24, 31):
        outputs = frames_model(_inputs([length]))
        for block in models.layer_frame_geometry(model):
            assert int(outputs[block + "_lengths"][0]) == outputs[block].shape[1], \
                (block, length)


def test_saved_model_gives_same_outputs(model, tmp_path):
    batch = _inputs([33, 20])
    _assert_same_outputs(_roundtrip(model, tmp_path)(batch), model(batch), atol=1e-6)
    frames_model = models.frame_embedding_model(model)
    _assert_same_outputs(_roundtrip(frames_model, tmp_path)(batch),
                         frames_model(batch), atol=1e-6)


def test_frame_geometry_matches_impulse_response(model):
    geometry = models.layer_frame_geometry(model)
    frames_model = models.frame_embedding_model(model)
    base = _inputs([60], seed=3)
    reference = _numpy(frames_model(base))
    for frame in (0, 17, 30, 59):
        perturbed = {"features": base["features"].copy(), "lengths": base["lengths"]}
        perturbed["features"][0, frame] += 5.0
        outputs = _numpy(frames_model(perturbed))
        for block, (offset, stride, field) in geometry.items():
            changed = np.flatnonzero(np.any(
                np.abs(outputs[block][0] - reference[block][0]) > 1e-6, axis=-1))
            centres = offset + stride * np.arange(reference[block].shape[1])
            expected = np.flatnonzero(np.abs(centres - frame) <= (field - 1) / 2)
            np.testing.assert_array_equal(changed, expected,
                                          err_msg=f"{block}, input frame {frame}")


def test_paper_geometry_values():
    geometry = models.layer_frame_geometry(models.build_paper_cnn(**TINY_CNN))
    assert geometry == {"conv1": (2, 1, 5), "conv2": (5, 2, 11),
                        "conv3": (5, 2, 11), "conv4": (5, 2, 11)}
    xvector = models.layer_frame_geometry(models.build_xvector(**TINY_XVECTOR))
    assert xvector["frame3"] == (7, 1, 15) and xvector["frame5"] == (7, 1, 15)


def test_frame_level_mean_of_fc2_frames_equals_utterance_embedding():
    model = _randomise_batch_norm(BUILDERS["frame_level"]())
    frames_model = models.frame_embedding_model(model)
    batch = _inputs([45, 26, 31], max_length=50)
    utterance = _numpy(model(batch))
    frames = _numpy(frames_model(batch))
    for row in range(3):
        count = frames["fc2_lengths"][row]
        assert count == frames["conv4_lengths"][row] > 0
        for key in ("fc1", "fc2"):
            np.testing.assert_allclose(frames[key][row, :count].mean(axis=0),
                                       utterance[key][row], rtol=1e-5, atol=1e-5)
    # Frame-level outputs share the trained weights.
    assert frames_model.get_layer("fc2") is model.get_layer("fc2")


def test_stats_cnn_frame_model_has_conv_blocks_only():
    frames_model = models.frame_embedding_model(BUILDERS["relu_all"]())
    assert sorted(frames_model.output) == sorted(
        [f"conv{i}" for i in range(1, 5)] + [f"conv{i}_lengths" for i in range(1, 5)])


def test_variant_activations():
    relu_all = models.build_paper_cnn(variant="relu_all", **TINY_CNN)
    linear = models.build_paper_cnn(variant="linear_fc1", **TINY_CNN)
    assert relu_all.get_layer("fc1").activation is keras.activations.relu
    assert linear.get_layer("fc1").activation is keras.activations.linear
    assert linear.get_layer("fc2").activation is keras.activations.relu
    outputs = linear(_inputs([30, 30]))
    assert np.any(np.asarray(outputs["fc1"]) < 0)  # no ReLU after fc1
    with pytest.raises(ValueError, match="variant"):
        models.build_paper_cnn(variant="tanh", **TINY_CNN)
    with pytest.raises(ValueError, match="same length"):
        models.build_paper_cnn(num_features=F, kernel_sizes=(5, 7, 1))


def test_xvector_contexts():
    assert models.context_to_kernel((-2, -1, 0, 1, 2)) == (5, 1)
    assert models.context_to_kernel((-3, 0, 3)) == (3, 3)
    assert models.context_to_kernel((0,)) == (1, 1)
    with pytest.raises(ValueError, match="symmetric"):
        models.context_to_kernel((-2, 0, 3))
    xvector = models.build_xvector(**TINY_XVECTOR)
    assert xvector.get_layer("frame2").dilation_rate == (2,)


# ----------------------------------------------------------------- classifier


@pytest.mark.parametrize("head,kwargs", [("softmax", {}),
                                         ("am_softmax", {"margin": 0.3}),
                                         ("aam_softmax", {"margin": 0.2, "scale": 20.0})])
def test_classifier_trains_and_roundtrips(head, kwargs, tmp_path):
    embedding_model = BUILDERS["linear_fc1_attentive_bn"]()
    classifier = models.build_classifier(embedding_model, 5, head=head, **kwargs)
    assert classifier.embedding_model is embedding_model
    batch = _inputs([30, 24, 27])
    labels = np.array([0, 3, 4], "int32")
    with tf.GradientTape() as tape:
        logits = classifier(batch, labels=labels, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True))
    assert logits.shape == (3, 5) and logits.dtype == "float32"
    gradients = tape.gradient(loss, classifier.trainable_variables)
    assert all(g is not None for g in gradients)
    plain = np.asarray(classifier(batch))
    with_labels = np.asarray(classifier(batch, labels=labels))
    if head == "softmax":
        np.testing.assert_array_equal(with_labels, plain)
    else:  # the margin lowers only the target logits
        lowered = plain - with_labels
        assert np.all(lowered[np.arange(3), labels] > 0)
        lowered[np.arange(3), labels] = 0
        np.testing.assert_allclose(lowered, 0, atol=1e-5)
    loaded = _roundtrip(classifier, tmp_path)
    assert isinstance(loaded, models.SpeakerClassifier)
    np.testing.assert_allclose(np.asarray(loaded(batch, labels=labels)), with_labels,
                               rtol=1e-5, atol=1e-5)
    _assert_same_outputs(loaded.embedding_model(batch), embedding_model(batch),
                         atol=1e-6)


def test_classifier_rejects_unknown_embedding_and_head():
    embedding_model = BUILDERS["relu_all"]()
    with pytest.raises(ValueError, match="fc3"):
        models.build_classifier(embedding_model, 5, embedding="fc3")
    with pytest.raises(ValueError, match="head"):
        models.build_classifier(embedding_model, 5, head="sphereface")


# ----------------------------------------------------------------- front end


@keras.saving.register_keras_serializable(package="tfspk_test")
class _BlockFrames(keras.layers.Layer):
    """Tiny front end: non-overlapping blocks of `width` samples as features."""

    def __init__(self, width=F, **kwargs):
        super().__init__(**kwargs)
        self.width = width

    def call(self, waveform, lengths):
        frames = keras.ops.shape(waveform)[1] // self.width
        features = keras.ops.reshape(waveform[:, :frames * self.width],
                                     (-1, frames, self.width))
        return features, lengths // self.width

    def compute_output_spec(self, waveform, lengths):
        return (keras.KerasTensor((waveform.shape[0], None, self.width)),
                keras.KerasTensor(lengths.shape, dtype="int32"))

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def test_waveform_frontend_composition(tmp_path):
    embedding_model = BUILDERS["relu_all"]()
    model = models.with_waveform_frontend(embedding_model, _BlockFrames())
    rng = np.random.default_rng(7)
    waveform = rng.uniform(-1, 1, (2, 40 * F)).astype("float32")
    lengths = np.array([40 * F, 29 * F + 3], "int32")
    outputs = model({"waveform": waveform, "lengths": lengths})
    expected = embedding_model({"features": waveform.reshape(2, 40, F),
                                "lengths": np.array([40, 29], "int32")})
    _assert_same_outputs(outputs, expected)
    _assert_same_outputs(_roundtrip(model, tmp_path)(
        {"waveform": waveform, "lengths": lengths}), outputs, atol=1e-6)
    with pytest.raises(ValueError, match="features per frame"):
        models.with_waveform_frontend(embedding_model, _BlockFrames(width=F + 1))


def test_waveform_frontend_with_mfcc_features(tmp_path):
    features = pytest.importorskip("tfspk.features")
    embedding_model = models.build_paper_cnn(**{**TINY_CNN, "num_features": 40})
    frontend = features.MfccFeatures()
    model = models.with_waveform_frontend(embedding_model, frontend)
    rng = np.random.default_rng(8)
    batch = {"waveform": rng.uniform(-0.3, 0.3, (2, 8000)).astype("float32"),
             "lengths": np.array([8000, 5000], "int32")}
    mfcc, frame_lengths = frontend(batch["waveform"], batch["lengths"])
    expected = embedding_model({"features": mfcc, "lengths": frame_lengths})
    outputs = model(batch)
    _assert_same_outputs(outputs, expected)
    _assert_same_outputs(_roundtrip(model, tmp_path)(batch), outputs, atol=1e-6)


def test_classifier_checkpoint_restores_into_a_fresh_classifier(tmp_path):
    # The training loop checkpoints with tf.train.Checkpoint(model=classifier).
    def build():
        return models.build_classifier(BUILDERS["xvector"](), 4, head="aam_softmax")

    trained = build()
    trained.head.set_margin(0.1)
    _randomise_batch_norm(trained.embedding_model)
    path = tf.train.Checkpoint(model=trained).save(str(tmp_path / "ckpt"))
    fresh = build()
    tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
    batch, labels = _inputs([30, 22]), np.array([1, 3], "int32")
    np.testing.assert_allclose(np.asarray(fresh(batch, labels=labels)),
                               np.asarray(trained(batch, labels=labels)), atol=1e-6)


# ----------------------------------------------------------------- size and cost


def test_full_size_paper_cnn_parameters_and_flops():
    model = models.build_paper_cnn()
    assert models.count_parameters(model)["total"] == 15_106_600
    classifier = models.build_classifier(model, 1211)
    assert models.count_parameters(classifier)["total"] == 15_834_411
    cost = models.count_flops_per_frame(model)
    # 2 * (5*40*1000 + 7*1000*1000/2 + 1000*1000/2 + 1000*1500/2)
    assert cost.per_frame == pytest.approx(9.9e6)
    assert cost.per_layer["conv2"] == pytest.approx(7e6)
    assert cost.per_utterance == pytest.approx(2 * (3000 * 1500 + 1500 * 600))


def test_mixed_precision_model_is_close_to_float32():
    batch = _inputs([30, 21])
    reference = BUILDERS["relu_all"]()
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = BUILDERS["relu_all"]()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    mixed.set_weights(reference.get_weights())
    expected = np.asarray(reference(batch)["fc2"])
    actual = np.asarray(mixed(batch)["fc2"], "float32")
    assert np.all(np.isfinite(actual))
    np.testing.assert_allclose(actual, expected, atol=0.05 * np.abs(expected).max())
