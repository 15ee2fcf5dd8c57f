"""Sequence lengths through 'valid' convolutions, and masks built from them.

Keras `Conv1D` drops Keras masks, so tfspk models carry an explicit `lengths`
tensor (number of valid frames per row) next to the frames and propagate it
through every convolution with `ConvOutputLengths`. With 'valid' padding the
first `conv_output_lengths(L, ...)` output frames depend only on the first `L`
input frames, so padding never reaches a valid frame.
"""
import keras
from keras import ops


def _check_conv_geometry(kernel_size, stride, dilation):
    for name, value in (("kernel_size", kernel_size), ("stride", stride),
                        ("dilation", dilation)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def conv_output_lengths(lengths, kernel_size, stride=1, dilation=1):
    """Number of output frames of a 'valid' 1-D convolution.

    Args:
      lengths: integer tensor (any shape) of valid input frames.
      kernel_size, stride, dilation: the convolution's geometry.

    Returns:
      int32 tensor `max(0, floor((L - dilation * (kernel_size - 1) - 1) / stride) + 1)`,
      the same count Keras computes for the padded time axis, applied per row.
      Inputs shorter than the receptive field give 0.
    """
    _check_conv_geometry(kernel_size, stride, dilation)
    lengths = ops.cast(lengths, "int32")
    span = dilation * (kernel_size - 1) + 1
    out = ops.floor_divide(lengths - span, stride) + 1
    return ops.maximum(out, 0)


def length_mask(lengths, max_length):
    """Boolean mask `[B, max_length]`, True on the first `lengths[b]` frames."""
    positions = ops.arange(max_length, dtype="int32")
    return ops.less(positions[None, :], ops.cast(lengths, "int32")[:, None])


@keras.saving.register_keras_serializable(package="tfspk")
class ConvOutputLengths(keras.layers.Layer):
    """Maps input lengths `[B]` to the lengths after a 'valid' Conv1D.

    Placed next to each convolution of a functional model; its config is the
    convolution's geometry, which `tfspk.models` also reads to compute frame
    geometry and FLOPs.
    """

    def __init__(self, kernel_size, stride=1, dilation=1, **kwargs):
        super().__init__(**kwargs)
        _check_conv_geometry(kernel_size, stride, dilation)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)
        self.dilation = int(dilation)

    def call(self, lengths):
        return conv_output_lengths(lengths, self.kernel_size, self.stride,
                                   self.dilation)

    def compute_output_shape(self, lengths_shape):
        return lengths_shape

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, stride=self.stride,
                      dilation=self.dilation)
        return config
