"""The 1-D CNN of Shon, Tang & Glass (SLT 2018) and its frame-level variant.

Input `{"features": [B, T, F], "lengths": [B]}` (valid frames per row); output
`{"fc1": [B, 1500], "fc2": [B, 600]}`, the outputs (after activation) of the
two fully connected layers; `fc2` is the speaker embedding. Default widths are
the paper's: Conv1D 5x1000, 7x1000 stride 2, 1x1000, 1x1500, all 'valid' with
ReLU; statistics pooling; fc1 1500; fc2 600.

Variants (activations of fc1 / fc2):
- `relu_all` (paper Table 1, ReLU after every layer except the softmax output):
  fc1 ReLU, fc2 ReLU.
- `linear_fc1` (paper Tables 2 and 4, no non-linearity after fc1): fc1 linear,
  fc2 ReLU. fc2 keeps its ReLU: otherwise fc1 and fc2 would compose into one
  affine map of the pooled statistics and the embedding would be a linear
  projection of them.
- `build_frame_level_cnn`: average pooling of the conv4 frames, fc1 and fc2 both
  affine, so pooling commutes with them and `frame_embedding_model` can move
  the pooling after fc2 (frame-level embeddings at every layer).
"""
from keras import Model

from tfspk.models.blocks import (check_same_length, conv_block, dense_block,
                                 model_inputs, pooling_layer)
from tfspk.models.registry import register

PAPER_CONV_FILTERS = (1000, 1000, 1000, 1500)
PAPER_KERNEL_SIZES = (5, 7, 1, 1)
PAPER_STRIDES = (1, 2, 1, 1)
PAPER_FC_UNITS = (1500, 600)

FC_ACTIVATIONS = {
    "relu_all": ("relu", "relu"),
    "linear_fc1": (None, "relu"),
}


def _conv_stack(inputs, conv_filters, kernel_sizes, strides, batch_norm):
    check_same_length(conv_filters=conv_filters, kernel_sizes=kernel_sizes,
                      strides=strides)
    frames, lengths = inputs["features"], inputs["lengths"]
    for index, (filters, kernel, stride) in enumerate(
            zip(conv_filters, kernel_sizes, strides), start=1):
        frames, lengths = conv_block(frames, lengths, filters, kernel, stride,
                                     name=f"conv{index}", batch_norm=batch_norm)
    return frames, lengths


def _check_fc_units(fc_units):
    if len(fc_units) != 2:
        raise ValueError(f"fc_units must be (fc1, fc2), got {fc_units!r}")


def build_paper_cnn(num_features=40, conv_filters=PAPER_CONV_FILTERS,
                    kernel_sizes=PAPER_KERNEL_SIZES, strides=PAPER_STRIDES,
                    fc_units=PAPER_FC_UNITS, variant="linear_fc1",
                    pooling="stats", batch_norm=False, attention_units=128,
                    channel_wise_attention=False, name="paper_cnn"):
    """The paper's CNN with statistics (or attentive statistics) pooling.

    Args:
      num_features: F, feature dimension (40 MFCCs in the paper).
      conv_filters, kernel_sizes, strides: per conv layer ('valid', ReLU).
      fc_units: (fc1, fc2) widths.
      variant: 'linear_fc1' or 'relu_all' (see the module docstring).
      pooling: 'stats' or 'attentive' (`AttentiveStatsPooling` with
        `attention_units` and `channel_wise_attention`).
      batch_norm: batch norm after the activation of every conv and fc layer
        (statistics over valid frames only); the paper has none.
    """
    if variant not in FC_ACTIVATIONS:
        raise ValueError(f"variant must be one of {sorted(FC_ACTIVATIONS)}, got {variant!r}")
    if pooling not in ("stats", "attentive"):
        raise ValueError(f"pooling must be 'stats' or 'attentive', got {pooling!r}")
    _check_fc_units(fc_units)
    inputs = model_inputs(num_features)
    frames, lengths = _conv_stack(inputs, conv_filters, kernel_sizes, strides,
                                  batch_norm)
    pooled = pooling_layer(pooling, attention_units,
                           channel_wise_attention)(frames, lengths)
    fc1_activation, fc2_activation = FC_ACTIVATIONS[variant]
    fc1 = dense_block(pooled, fc_units[0], name="fc1", activation=fc1_activation,
                      batch_norm=batch_norm)
    fc2 = dense_block(fc1, fc_units[1], name="fc2", activation=fc2_activation,
                      batch_norm=batch_norm)
    return Model(inputs, {"fc1": fc1, "fc2": fc2}, name=name)


def build_frame_level_cnn(num_features=40, conv_filters=PAPER_CONV_FILTERS,
                          kernel_sizes=PAPER_KERNEL_SIZES, strides=PAPER_STRIDES,
                          fc_units=PAPER_FC_UNITS, batch_norm=False,
                          name="frame_level_cnn"):
    """Frame-level variant: length-aware average pooling, affine fc1 and fc2.

    `batch_norm` applies to the conv layers only: fc1 and fc2 must stay affine
    for the pooling to commute with them.
    """
    _check_fc_units(fc_units)
    inputs = model_inputs(num_features)
    frames, lengths = _conv_stack(inputs, conv_filters, kernel_sizes, strides,
                                  batch_norm)
    pooled = pooling_layer("average")(frames, lengths)
    fc1 = dense_block(pooled, fc_units[0], name="fc1")
    fc2 = dense_block(fc1, fc_units[1], name="fc2")
    return Model(inputs, {"fc1": fc1, "fc2": fc2}, name=name)


@register("paper_cnn")
def paper_cnn_from_spec(spec):
    """`build_paper_cnn` with a `tfspk.model_spec.ModelSpec`'s settings."""
    return build_paper_cnn(num_features=spec.features.num_ceps,
                           conv_filters=spec.conv_filters, fc_units=spec.fc_units,
                           variant=spec.variant, pooling=spec.pooling,
                           batch_norm=spec.batch_norm)


@register("frame_level_cnn")
def frame_level_cnn_from_spec(spec):
    """`build_frame_level_cnn` with a `tfspk.model_spec.ModelSpec`'s settings."""
    return build_frame_level_cnn(num_features=spec.features.num_ceps,
                                 conv_filters=spec.conv_filters, fc_units=spec.fc_units,
                                 batch_norm=spec.batch_norm)
