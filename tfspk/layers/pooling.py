"""Length-aware pooling of frame sequences into utterance vectors.

All layers take `(frames [B, T, C], lengths [B])` and use only the first
`lengths[b]` frames of row `b`: padded frames get zero weight, so their values
never change the result. Moments are computed in float32 whatever the layer's
compute dtype (float16 squares overflow above 256), and the result is cast back
to the compute dtype.

Standard deviations are population (biased, divide by N) estimates, as in Kaldi
x-vectors, floored for stability: `std = sqrt(max(var, variance_floor))`. The
floor keeps the gradient of sqrt finite on constant channels (e.g. ReLU units
that are zero on every frame). Rows with zero valid frames give mean 0 and
std `sqrt(variance_floor)`.
"""
import keras
from keras import ops

from tfspk.layers.lengths import length_mask

DEFAULT_VARIANCE_FLOOR = 1e-5


def masked_weights(frames, lengths):
    """float32 `[B, T, 1]` weights: 1/N_b on the valid frames of row b, else 0."""
    mask = ops.cast(length_mask(lengths, ops.shape(frames)[1]), "float32")
    counts = ops.sum(mask, axis=1, keepdims=True)
    return (mask / ops.maximum(counts, 1.0))[:, :, None]


def weighted_moments(frames, weights):
    """Weighted mean and variance over time; weights `[B, T, 1 or C]` sum to 1 (or 0)."""
    frames = ops.cast(frames, "float32")
    mean = ops.sum(weights * frames, axis=1)
    # Centre before squaring: E[x^2] - E[x]^2 cancels catastrophically.
    centred = frames - mean[:, None, :]
    variance = ops.sum(weights * ops.square(centred), axis=1)
    return mean, variance


def floored_std(variance, variance_floor):
    return ops.sqrt(ops.maximum(variance, variance_floor))


class _LengthAwarePooling(keras.layers.Layer):
    """Shared plumbing: float32 maths, output in the compute dtype."""

    def build(self, frames_shape, lengths_shape=None):
        if frames_shape[-1] is None:
            raise ValueError(f"{self.name}: the channel dimension must be known, "
                             f"got frames of shape {frames_shape}")
        self.built = True


@keras.saving.register_keras_serializable(package="tfspk")
class AveragePooling(_LengthAwarePooling):
    """Mean over the valid frames: `(frames [B, T, C], lengths [B]) -> [B, C]`."""

    def call(self, frames, lengths):
        mean = ops.sum(masked_weights(frames, lengths)
                       * ops.cast(frames, "float32"), axis=1)
        return ops.cast(mean, self.compute_dtype)

    def compute_output_shape(self, frames_shape, lengths_shape=None):
        return (frames_shape[0], frames_shape[-1])


@keras.saving.register_keras_serializable(package="tfspk")
class StatsPooling(_LengthAwarePooling):
    """Mean and standard deviation over the valid frames -> `[B, 2C]` (mean first)."""

    def __init__(self, variance_floor=DEFAULT_VARIANCE_FLOOR, **kwargs):
        super().__init__(**kwargs)
        if variance_floor < 0:
            raise ValueError(f"variance_floor must be >= 0, got {variance_floor}")
        self.variance_floor = float(variance_floor)

    def frame_weights(self, frames, lengths):
        """Per-frame weights summing to 1 over the valid frames: uniform here."""
        return masked_weights(frames, lengths)

    def call(self, frames, lengths):
        mean, variance = weighted_moments(frames, self.frame_weights(frames, lengths))
        std = floored_std(variance, self.variance_floor)
        return ops.cast(ops.concatenate([mean, std], axis=-1), self.compute_dtype)

    def compute_output_shape(self, frames_shape, lengths_shape=None):
        return (frames_shape[0], 2 * frames_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["variance_floor"] = self.variance_floor
        return config


@keras.saving.register_keras_serializable(package="tfspk")
class AttentiveStatsPooling(StatsPooling):
    """Attentive statistics pooling (Okabe, Koshinaka & Shinoda, Interspeech 2018).

    Frame scores `e_t = v^T f(W h_t + b) + k` (one score per frame) or, with
    `channel_wise=True`, one score per frame and channel (`v` is `[hidden, C]`).
    Weights are a softmax over the valid frames only (padding gets weight 0);
    the output is the weighted mean and weighted standard deviation `[B, 2C]`.
    """

    def __init__(self, hidden_units=128, channel_wise=False, activation="tanh",
                 variance_floor=DEFAULT_VARIANCE_FLOOR, **kwargs):
        super().__init__(variance_floor=variance_floor, **kwargs)
        if hidden_units < 1:
            raise ValueError(f"hidden_units must be >= 1, got {hidden_units}")
        self.hidden_units = int(hidden_units)
        self.channel_wise = bool(channel_wise)
        self.activation = keras.activations.get(activation)

    def build(self, frames_shape, lengths_shape=None):
        super().build(frames_shape, lengths_shape)
        channels = frames_shape[-1]
        self.hidden = keras.layers.Dense(self.hidden_units,
                                         activation=self.activation,
                                         name="attention_hidden",
                                         dtype=self.dtype_policy)
        self.hidden.build((None, None, channels))
        self.score = keras.layers.Dense(channels if self.channel_wise else 1,
                                        name="attention_score",
                                        dtype=self.dtype_policy)
        self.score.build((None, None, self.hidden_units))

    def frame_weights(self, frames, lengths):
        scores = ops.cast(self.score(self.hidden(frames)), "float32")
        mask = length_mask(lengths, ops.shape(frames)[1])[:, :, None]
        # Softmax restricted to valid frames; a row without valid frames gets
        # all-zero weights instead of a uniform average over padding.
        scores = ops.where(mask, scores, ops.full_like(scores, -1e30))
        scores = scores - ops.max(scores, axis=1, keepdims=True)
        unnormalised = ops.where(mask, ops.exp(scores), 0.0)
        return unnormalised / ops.maximum(
            ops.sum(unnormalised, axis=1, keepdims=True), 1e-30)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=self.hidden_units,
                      channel_wise=self.channel_wise,
                      activation=keras.activations.serialize(self.activation))
        return config
