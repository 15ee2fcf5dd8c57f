"""Keras layers of tfspk: length-aware pooling, length propagation, margin heads."""
from tfspk.layers.lengths import (ConvOutputLengths, conv_output_lengths,
                                  length_mask)
from tfspk.layers.margin import (AAMSoftmax, AMSoftmax, CosineSoftmax,
                                 linear_margin_schedule)
from tfspk.layers.normalization import LengthAwareBatchNormalization
from tfspk.layers.pooling import (DEFAULT_VARIANCE_FLOOR, AttentiveStatsPooling,
                                  AveragePooling, StatsPooling)

__all__ = [
    "AAMSoftmax", "AMSoftmax", "AttentiveStatsPooling", "AveragePooling",
    "ConvOutputLengths", "CosineSoftmax", "DEFAULT_VARIANCE_FLOOR",
    "LengthAwareBatchNormalization",
    "StatsPooling", "conv_output_lengths", "length_mask", "linear_margin_schedule",
]
