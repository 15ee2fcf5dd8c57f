"""Batch normalization whose training statistics use the valid frames only."""
import keras

from tfspk.layers.lengths import length_mask


@keras.saving.register_keras_serializable(package="tfspk")
class LengthAwareBatchNormalization(keras.layers.BatchNormalization):
    """`BatchNormalization` over `(frames [B, T, C], lengths [B])`.

    In training, the batch mean and variance are taken over the valid frames of
    every row, so the amount of padding in a batch does not change them (nor the
    moving averages). At inference it is the usual per-channel affine map. It
    consumes the lengths instead of emitting a Keras mask, so the following
    Conv1D (which cannot use masks) gets a plain tensor.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = False

    def build(self, frames_shape, lengths_shape=None):
        super().build(frames_shape)

    def call(self, frames, lengths, training=None):
        mask = length_mask(lengths, keras.ops.shape(frames)[1])
        return super().call(frames, training=training, mask=mask)

    def compute_output_shape(self, frames_shape, lengths_shape=None):
        return frames_shape

    def compute_mask(self, frames, lengths=None, mask=None):
        return None
