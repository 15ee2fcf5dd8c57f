"""`assets.extra/frame_geometry.json`: where each layer's frames sit in the waveform,
and the shortest utterance the export serves. The arithmetic is
`tfspk.frontend.framing`'s; this module only asks the network for its layers."""
from __future__ import annotations

import json
import os

import tensorflow as tf

from tfspk import model_spec as spec_lib

GEOMETRY_FILENAME = "frame_geometry.json"
EXTRA_DIR = "assets.extra"


def analysis_window_samples(spec: spec_lib.ModelSpec) -> int:
    """Samples in one MFCC analysis window (a row shorter than this has no frame)."""
    return spec.features.grid().frame_length_samples


def receptive_field(embedding_model) -> int:
    """MFCC frames the network needs for one frame at its last frame-level layer."""
    from tfspk import models

    geometry = models.layer_frame_geometry(embedding_model)
    return max((field for _, _, field in geometry.values()), default=1)


def min_samples(spec: spec_lib.ModelSpec, embedding_model) -> int:
    """Shortest utterance (samples) that yields at least one frame at every layer."""
    return max(spec.features.samples_for_frames(receptive_field(embedding_model)),
               analysis_window_samples(spec))


def frame_geometry(spec: spec_lib.ModelSpec, embedding_model) -> dict:
    """Where each layer's frames sit in the waveform, for mapping phone labels to frames.

    Frame `j` of a layer is centred on MFCC frame `offset + j * stride` and sees
    `receptive_field` MFCC frames; MFCC frame `i` covers samples
    `[first_frame_start + i * shift, first_frame_start + i * shift + window)`
    (see `tfspk.frontend.framing`). `min_samples` is the shortest utterance served.
    """
    from tfspk import models

    return spec.features.grid().geometry(models.layer_frame_geometry(embedding_model),
                                         min_samples=min_samples(spec, embedding_model))


def write_frame_geometry(export_path: str, spec, embedding_model) -> str:
    """assets.extra/frame_geometry.json (see `frame_geometry`)."""
    directory = os.path.join(export_path, EXTRA_DIR)
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, GEOMETRY_FILENAME)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(frame_geometry(spec, embedding_model), indent=2))
    return path
