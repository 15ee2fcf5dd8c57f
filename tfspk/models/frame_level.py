"""Frame-level views of trained tfspk models, for extraction and probing.

`frame_embedding_model(model)` shares the trained weights and outputs every
frame-level block (`conv1`..`conv4` or `frame1`..`frame5`) with its lengths.
For the frame-level CNN (average pooling, affine fc1/fc2) the pooling is moved
after fc2: fc1 and fc2 are applied to every conv4 frame, and because the mean
commutes with affine maps, the mean of the valid fc2 frames equals the
utterance embedding.

`layer_frame_geometry(model)` gives, per block, `(offset, stride,
receptive_field)` in input-frame units: output frame `j` is centred on input
frame `offset + j * stride` and sees the `receptive_field` input frames around
it (centre +- (receptive_field - 1) / 2).
"""
import keras

from tfspk.layers import AveragePooling, ConvOutputLengths
from tfspk.models.blocks import (LENGTHS_SUFFIX, POOLING_NAME, block_output,
                                 frame_blocks)

FC_BLOCKS = ("fc1", "fc2")


def _frame_level_fc_layers(model):
    """The fc layers to apply per frame, or None when pooling does not commute."""
    names = {layer.name for layer in model.layers}
    if POOLING_NAME not in names or not isinstance(model.get_layer(POOLING_NAME),
                                                   AveragePooling):
        return None
    fc_layers = []
    for name in FC_BLOCKS:
        layer = model.get_layer(name)
        if (not isinstance(layer, keras.layers.Dense)
                or layer.activation is not keras.activations.linear
                or name + "_bn" in names):
            raise ValueError(f"{model.name}: average pooling commutes only with "
                             f"affine layers, but {name} is not a plain affine Dense")
        fc_layers.append(layer)
    return fc_layers


def frame_embedding_model(model):
    """Inference model with frame-level outputs sharing `model`'s weights.

    Outputs `{"<block>": [B, T_block, C], "<block>_lengths": [B], ...}` for every
    frame-level block; for a frame-level CNN also `fc1`, `fc2` `[B, T_last, D]`
    with `fc1_lengths`, `fc2_lengths` (the last block's lengths).
    """
    blocks = frame_blocks(model)
    if not blocks:
        raise ValueError(f"{model.name} has no frame-level blocks "
                         "(no ConvOutputLengths layers): not a tfspk model")
    outputs = {}
    for name in blocks:
        outputs[name] = block_output(model, name)
        outputs[name + LENGTHS_SUFFIX] = model.get_layer(name + LENGTHS_SUFFIX).output
    fc_layers = _frame_level_fc_layers(model)
    if fc_layers is not None:
        frames = outputs[blocks[-1]]
        last_lengths = outputs[blocks[-1] + LENGTHS_SUFFIX]
        for layer in fc_layers:
            frames = layer(frames)
            outputs[layer.name] = frames
            outputs[layer.name + LENGTHS_SUFFIX] = last_lengths
    return keras.Model(model.input, outputs, name=f"{model.name}_frames")


def _number(value):
    return int(value) if float(value).is_integer() else float(value)


def layer_frame_geometry(model):
    """`{block: (offset, stride, receptive_field)}` in input frames.

    Covers the frame-level blocks, plus `fc1`/`fc2` for a frame-level CNN (they
    share the last block's geometry). Works on the training model and on its
    `frame_embedding_model`.
    """
    geometry = {}
    offset, stride, field = 0, 1, 1
    for layer in model.layers:
        if not isinstance(layer, ConvOutputLengths):
            continue
        span = layer.dilation * (layer.kernel_size - 1)
        offset += stride * span / 2
        field += stride * span
        stride *= layer.stride
        geometry[layer.name[:-len(LENGTHS_SUFFIX)]] = (_number(offset), stride, field)
    names = {layer.name for layer in model.layers}
    # fc layers without a pooling layer: a frame_embedding_model, where they
    # run per frame.
    frame_level_fc = (_frame_level_fc_layers(model) is not None
                      or (POOLING_NAME not in names and set(FC_BLOCKS) <= names))
    if geometry and frame_level_fc:
        last = geometry[list(geometry)[-1]]
        geometry.update({name: last for name in FC_BLOCKS})
    return geometry
