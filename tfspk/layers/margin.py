"""Cosine-similarity classification heads with margins for speaker training.

`call(embeddings [B, D], labels=None [B] int, training=None) -> logits [B, N]`
(float32). Logits are `scale * cos(theta_j)` between the L2-normalised embedding
and the L2-normalised class weight `j`; when `labels` are given the target
logit gets the margin:

- `CosineSoftmax` / `AMSoftmax` (additive margin, Wang et al. 2018):
  `scale * (cos(theta_y) - m)`.
- `AAMSoftmax` (additive angular margin, ArcFace, Deng et al. 2019):
  `scale * cos(theta_y + m)`. `cos(theta + m)` stops decreasing once
  `theta + m > pi`, so past `theta > pi - m` the target logit becomes
  `cos(theta) - m * sin(m)` (the insightface ArcFace form: still decreasing in
  theta, with a step down of `cos(m) + m sin(m) - 1 >= 0` at `pi - m`), or with
  `easy_margin=True` the margin is applied only where `cos(theta) > 0`.

The margin lives in a non-trainable variable so a training loop can ramp it up
(`head.set_margin(linear_margin_schedule(step, ...))`) inside a `tf.function`
without retracing; it is saved with the weights.
"""
import math

import keras
from keras import ops


def linear_margin_schedule(step, start_step, end_step, final_margin,
                           initial_margin=0.0):
    """Margin that rises linearly from `initial_margin` at `start_step` to
    `final_margin` at `end_step` and stays there (float32 scalar tensor)."""
    if end_step <= start_step:
        raise ValueError(f"end_step ({end_step}) must be greater than "
                         f"start_step ({start_step})")
    progress = (ops.cast(step, "float32") - start_step) / (end_step - start_step)
    progress = ops.clip(progress, 0.0, 1.0)
    return initial_margin + progress * (final_margin - initial_margin)


@keras.saving.register_keras_serializable(package="tfspk")
class CosineSoftmax(keras.layers.Layer):
    """Normalised softmax head with an optional additive cosine margin.

    Args:
      num_classes: number of speakers.
      scale: `s`, multiplies the cosines (the softmax temperature).
      margin: `m`, initial margin (settable later with `set_margin`).
      kernel_initializer: for the `[D, num_classes]` class weights.
    """

    default_margin = 0.0

    def __init__(self, num_classes, scale=30.0, margin=None,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.num_classes = int(num_classes)
        self.scale = float(scale)
        self.initial_margin = float(self.default_margin if margin is None
                                    else margin)
        self._check_margin(self.initial_margin)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.margin = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_margin),
            trainable=False, name="margin", dtype="float32")

    @staticmethod
    def _check_margin(value):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {value}")

    def set_margin(self, value):
        """Sets the margin used from the next call on (Python float or tensor)."""
        if isinstance(value, (int, float)):
            self._check_margin(float(value))
        self.margin.assign(ops.cast(value, "float32"))

    def build(self, embeddings_shape, labels_shape=None):
        self.kernel = self.add_weight(
            shape=(embeddings_shape[-1], self.num_classes),
            initializer=self.kernel_initializer, name="kernel", dtype="float32")
        self.built = True

    def cosines(self, embeddings):
        """`[B, N]` cosine of the angle between each embedding and class weight."""
        embeddings = ops.normalize(ops.cast(embeddings, "float32"), axis=-1)
        return ops.matmul(embeddings, ops.normalize(self.kernel, axis=0))

    def target_cosines(self, cosines):
        """The target-class cosine after the margin (AM: `cos - m`)."""
        return cosines - self.margin

    def call(self, embeddings, labels=None, training=None):
        cosines = self.cosines(embeddings)
        if labels is None:
            return self.scale * cosines
        one_hot = ops.one_hot(ops.cast(labels, "int32"), self.num_classes,
                              dtype="bool")
        return self.scale * ops.where(one_hot, self.target_cosines(cosines), cosines)

    def compute_output_shape(self, embeddings_shape, labels_shape=None):
        return (embeddings_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, scale=self.scale,
                      margin=self.initial_margin,
                      kernel_initializer=keras.initializers.serialize(
                          self.kernel_initializer))
        return config


@keras.saving.register_keras_serializable(package="tfspk")
class AMSoftmax(CosineSoftmax):
    """Additive margin softmax (CosFace / AM-softmax); default `m = 0.2`, `s = 30`."""

    default_margin = 0.2


@keras.saving.register_keras_serializable(package="tfspk")
class AAMSoftmax(CosineSoftmax):
    """Additive angular margin softmax (ArcFace); default `m = 0.2`, `s = 30`."""

    default_margin = 0.2

    def __init__(self, num_classes, scale=30.0, margin=None, easy_margin=False,
                 **kwargs):
        self.easy_margin = bool(easy_margin)
        super().__init__(num_classes, scale=scale, margin=margin, **kwargs)

    @staticmethod
    def _check_margin(value):
        if not 0.0 <= value < math.pi / 2:
            raise ValueError(f"angular margin must be in [0, pi/2), got {value}")

    def target_cosines(self, cosines):
        margin = self.margin
        sines = ops.sqrt(ops.clip(1.0 - ops.square(cosines), 0.0, 1.0))
        shifted = cosines * ops.cos(margin) - sines * ops.sin(margin)
        if self.easy_margin:
            return ops.where(cosines > 0.0, shifted, cosines)
        # cos(pi - m) = -cos(m): beyond it cos(theta + m) would rise again.
        return ops.where(cosines > -ops.cos(margin), shifted,
                         cosines - margin * ops.sin(margin))

    def get_config(self):
        config = super().get_config()
        config["easy_margin"] = self.easy_margin
        return config
