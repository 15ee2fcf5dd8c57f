"""Building blocks shared by the tfspk embedding models.

Naming convention (read back by `frame_embedding_model`, `layer_frame_geometry`
and `count_flops_per_frame`): a frame-level block `<name>` is a 'valid'
`Conv1D` layer called `<name>` (with its activation), a `ConvOutputLengths`
layer `<name>_lengths` and, with batch norm, a `LengthAwareBatchNormalization`
layer `<name>_bn` after the activation (Kaldi order). The pooling layer is
called `pooling`; utterance-level blocks are `Dense` layers `fc1`, `fc2` (with
their activation), optionally followed by `fc1_bn`, `fc2_bn`.
"""
import keras

from tfspk.layers import (AttentiveStatsPooling, AveragePooling,
                          ConvOutputLengths, LengthAwareBatchNormalization,
                          StatsPooling)

POOLING_NAME = "pooling"
LENGTHS_SUFFIX = "_lengths"
BATCH_NORM_SUFFIX = "_bn"


def model_inputs(num_features):
    """The `{"features": float32 [B, T, F], "lengths": int32 [B]}` inputs."""
    if num_features < 1:
        raise ValueError(f"num_features must be >= 1, got {num_features}")
    return {
        "features": keras.Input(shape=(None, num_features), dtype="float32",
                                name="features"),
        "lengths": keras.Input(shape=(), dtype="int32", name="lengths"),
    }


def conv_block(frames, lengths, filters, kernel_size, stride=1, dilation=1, *,
               name, batch_norm=False, activation="relu"):
    """'valid' Conv1D + activation (+ batch norm over valid frames only).

    Returns `(frames, lengths)` after the block.
    """
    frames = keras.layers.Conv1D(filters, kernel_size, strides=stride,
                                 dilation_rate=dilation, padding="valid",
                                 activation=activation, name=name)(frames)
    lengths = ConvOutputLengths(kernel_size, stride, dilation,
                                name=name + LENGTHS_SUFFIX)(lengths)
    if batch_norm:
        frames = LengthAwareBatchNormalization(
            name=name + BATCH_NORM_SUFFIX)(frames, lengths)
    return frames, lengths


def dense_block(x, units, *, name, activation=None, batch_norm=False):
    """Dense + activation (+ batch norm)."""
    x = keras.layers.Dense(units, activation=activation, name=name)(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=name + BATCH_NORM_SUFFIX)(x)
    return x


def pooling_layer(kind, attention_units=128, channel_wise_attention=False):
    """'stats' -> StatsPooling, 'attentive' -> AttentiveStatsPooling, 'average'."""
    if kind == "stats":
        return StatsPooling(name=POOLING_NAME)
    if kind == "attentive":
        return AttentiveStatsPooling(hidden_units=attention_units,
                                     channel_wise=channel_wise_attention,
                                     name=POOLING_NAME)
    if kind == "average":
        return AveragePooling(name=POOLING_NAME)
    raise ValueError(f"pooling must be 'stats', 'attentive' or 'average', got {kind!r}")


def check_same_length(**sequences):
    """Raises ValueError unless all the given per-layer sequences have one length."""
    sizes = {name: len(values) for name, values in sequences.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"per-layer settings must have the same length, got {sizes}")


def frame_blocks(model):
    """Names of the frame-level blocks of a tfspk model, in graph order."""
    return [layer.name[:-len(LENGTHS_SUFFIX)] for layer in model.layers
            if isinstance(layer, ConvOutputLengths)]


def block_output(model, name):
    """The symbolic output of block `name` (after its batch norm, if any)."""
    layer_names = {layer.name for layer in model.layers}
    bn_name = name + BATCH_NORM_SUFFIX
    return model.get_layer(bn_name if bn_name in layer_names else name).output
