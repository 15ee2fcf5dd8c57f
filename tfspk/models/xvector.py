"""The x-vector TDNN baseline (Snyder et al., ICASSP 2018).

Frame layers with contexts [-2..2], {-2,0,2}, {-3,0,3}, {0}, {0} are 'valid'
dilated Conv1D layers (kernel 5; kernel 3 dilation 2; kernel 3 dilation 3;
kernel 1; kernel 1), each followed by ReLU then batch norm as in Kaldi; then
statistics pooling, segment6 and segment7 (affine, ReLU, batch norm).

Same conventions as `tfspk.models.paper_cnn`: inputs `{"features", "lengths"}`,
outputs `{"fc1": segment6, "fc2": segment7}`, each the output of its whole
block (affine -> ReLU -> batch norm), which is also what the classifier head
reads. Kaldi extracts embeddings from the affine part, before the ReLU; here
the embedding includes the ReLU and the (inference-time per-dimension affine)
batch norm.
"""
from keras import Model

from tfspk.models.blocks import (check_same_length, conv_block, dense_block,
                                 model_inputs, pooling_layer)
from tfspk.models.registry import register

XVECTOR_CONTEXTS = ((-2, -1, 0, 1, 2), (-2, 0, 2), (-3, 0, 3), (0,), (0,))
XVECTOR_FRAME_FILTERS = (512, 512, 512, 512, 1500)
XVECTOR_SEGMENT_UNITS = (512, 512)


def context_to_kernel(context):
    """Frame offsets like (-3, 0, 3) -> (kernel_size, dilation) of a Conv1D.

    The offsets must be evenly spaced and symmetric around 0 so the output
    frame stays centred on its input frame.
    """
    context = tuple(int(c) for c in context)
    if not context:
        raise ValueError("a TDNN context needs at least one offset")
    if len(context) == 1:
        if context != (0,):
            raise ValueError(f"a single-offset context must be (0,), got {context}")
        return 1, 1
    steps = {b - a for a, b in zip(context, context[1:])}
    if len(steps) != 1 or min(steps) < 1 or context[0] != -context[-1]:
        raise ValueError("TDNN context must be evenly spaced, increasing and "
                         f"symmetric around 0, got {context}")
    return len(context), steps.pop()


def build_xvector(num_features=30, frame_filters=XVECTOR_FRAME_FILTERS,
                  frame_contexts=XVECTOR_CONTEXTS,
                  segment_units=XVECTOR_SEGMENT_UNITS, pooling="stats",
                  batch_norm=True, name="xvector"):
    """x-vector embedding model; blocks `frame1`..`frame5`, `fc1` (segment6),
    `fc2` (segment7). `num_features` is 30 in Kaldi's recipe (40 to match the
    paper CNN's input)."""
    check_same_length(frame_filters=frame_filters, frame_contexts=frame_contexts)
    if len(segment_units) != 2:
        raise ValueError(f"segment_units must be (segment6, segment7), got {segment_units!r}")
    inputs = model_inputs(num_features)
    frames, lengths = inputs["features"], inputs["lengths"]
    for index, (filters, context) in enumerate(zip(frame_filters, frame_contexts),
                                               start=1):
        kernel, dilation = context_to_kernel(context)
        frames, lengths = conv_block(frames, lengths, filters, kernel,
                                     dilation=dilation, name=f"frame{index}",
                                     batch_norm=batch_norm)
    pooled = pooling_layer(pooling)(frames, lengths)
    segment6 = dense_block(pooled, segment_units[0], name="fc1",
                           activation="relu", batch_norm=batch_norm)
    segment7 = dense_block(segment6, segment_units[1], name="fc2",
                           activation="relu", batch_norm=batch_norm)
    return Model(inputs, {"fc1": segment6, "fc2": segment7}, name=name)


@register("xvector")
def xvector_from_spec(spec):
    """`build_xvector` with a `tfspk.model_spec.ModelSpec`'s settings (conv_filters are
    the frame layers, fc_units segment6/segment7)."""
    return build_xvector(num_features=spec.features.num_ceps,
                         frame_filters=spec.conv_filters, segment_units=spec.fc_units)
