"""Analytic size and cost of tfspk models (parameters, multiply-adds).

FLOPs count a multiply-add as 2 operations, the convention of throughput
figures (GFLOP/s). Frame-rate layers (convolutions, attention scores) are
counted per *input* frame: a layer whose output has a total stride of S runs
once every S input frames. Utterance-level layers (after pooling) are counted per utterance.
Biases, activations, batch norm and pooling are not counted (they are O(C) per
frame against O(k * C_in * C_out)).
"""
import math
from typing import NamedTuple

import keras

from tfspk.layers import AttentiveStatsPooling
from tfspk.models.blocks import LENGTHS_SUFFIX


class FlopCount(NamedTuple):
    per_frame: float        # FLOPs per input frame of the frame-rate layers
    per_utterance: float    # FLOPs per utterance of the layers after pooling
    per_layer: dict         # layer name -> FLOPs (per frame or per utterance)


def _dense_macs(layer):
    return layer.kernel.shape[0] * layer.kernel.shape[1]


def count_flops_per_frame(model):
    """Counts the multiply-adds of `model` (a tfspk embedding model or classifier)."""
    if hasattr(model, "embedding_model"):
        model = model.embedding_model
    names = {layer.name for layer in model.layers}
    per_layer, per_frame, per_utterance = {}, 0.0, 0.0
    stride = 1  # total stride so far: input frames per frame of this layer
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv1D):
            kernel_size, c_in, c_out = layer.kernel.shape
            lengths_name = layer.name + LENGTHS_SUFFIX
            if lengths_name not in names:
                raise ValueError(f"{model.name}: conv layer {layer.name} has no "
                                 f"{lengths_name} layer; not a tfspk model")
            # A strided conv computes one output frame per `stride` inputs.
            stride *= model.get_layer(lengths_name).stride
            flops = 2.0 * kernel_size * c_in * c_out / stride
            per_frame += flops
        elif isinstance(layer, AttentiveStatsPooling):
            flops = 2.0 * (_dense_macs(layer.hidden) + _dense_macs(layer.score)) / stride
            per_frame += flops
        elif isinstance(layer, keras.layers.Dense):
            flops = 2.0 * _dense_macs(layer)
            per_utterance += flops
        else:
            continue
        per_layer[layer.name] = flops
    return FlopCount(per_frame, per_utterance, per_layer)


def count_parameters(model):
    """`{"total", "trainable", "non_trainable"}` parameter counts."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    total = model.count_params()
    return {"total": total, "trainable": trainable,
            "non_trainable": total - trainable}
