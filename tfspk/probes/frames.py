"""One view of any model as frame-level embeddings: `FrameEmbedder`.

Every probe asks the same two questions of a model: "what are the frame-level outputs of
each layer for this waveform?" and "which frames of layer L belong to the phone segment
`[start, end)`?". `FrameEmbedder` answers both for a SavedModel exported by
`tfspk.export` (signature `frame_embeddings` plus `assets.extra/frame_geometry.json`), for a
training directory + checkpoint, or for any Python callable with a geometry (oracle or noise
features for sanity checks, a tiny random Keras model in tests).

Geometry (the format of `frame_geometry.json`): frame `j` of a layer is centred on MFCC
frame `offset + j * stride`, and MFCC frame `i` covers samples
`[first_frame_start + i * shift, first_frame_start + i * shift + window)`, so its centre
is sample `first_frame_start + (offset + j * stride) * shift + window / 2`
(`tfspk.frontend.framing`, which computes it).
"""
from __future__ import annotations

import json
import os
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from tfspk.frontend import framing

LENGTHS_SUFFIX = "_lengths"
GEOMETRY_FILENAME = "frame_geometry.json"
SIGNATURE = "frame_embeddings"

#: `fn(waveform float32 [1, S], lengths int32 [1]) -> {layer: [1, T, D], layer_lengths: [1]}`.
FrameFunction = Callable[[np.ndarray, np.ndarray], Mapping[str, object]]


class FrameEmbedderError(ValueError):
    """A model or geometry that cannot serve as a FrameEmbedder; the message names it."""


def make_geometry(layers: Mapping[str, tuple[float, int]], *, sample_rate: int = 16000,
                  frame_length_samples: int = 400, frame_shift_samples: int = 160,
                  snip_edges: bool = True) -> dict:
    """A geometry dict (same format as `frame_geometry.json`) from `{layer: (offset, stride)}`.

    Defaults are Kaldi's 25 ms / 10 ms frames at 16 kHz, snip_edges=True.
    """
    return {
        "sample_rate": sample_rate,
        "frame_length_samples": frame_length_samples,
        "frame_shift_samples": frame_shift_samples,
        "snip_edges": snip_edges,
        "first_frame_start": framing.first_frame_start(frame_length_samples,
                                                       frame_shift_samples, snip_edges),
        "layers": {name: {"offset": offset, "stride": stride}
                   for name, (offset, stride) in layers.items()},
    }


def _check_geometry(geometry: Mapping, where: str) -> None:
    for key in ("frame_length_samples", "frame_shift_samples", "layers"):
        if key not in geometry:
            raise FrameEmbedderError(f"{where}: frame geometry lacks {key!r}")
    if not geometry["layers"]:
        raise FrameEmbedderError(f"{where}: frame geometry lists no layers")
    for name, layer in geometry["layers"].items():
        if "offset" not in layer or "stride" not in layer or layer["stride"] <= 0:
            raise FrameEmbedderError(
                f"{where}: layer {name!r} needs an offset and a positive stride, got {layer}")


class FrameEmbedder:
    """Frame-level embeddings of every layer of a model, and their positions in samples."""

    def __init__(self, fn: FrameFunction, geometry: Mapping, *, name: str = "model",
                 layers: Optional[Sequence[str]] = None):
        """
        Args:
          fn: `fn(waveform [1, S] float32, lengths [1] int32)` returning a mapping with a
            `[1, T, D]` array per layer and optionally `<layer>_lengths` `[1]` (valid frames;
            without it all T frames are valid). Tensors or arrays.
          geometry: see the module docstring; its `layers` order is the probes' layer order.
          name: shown in error messages and reports.
          layers: a subset of the geometry's layers to expose (default: all of them).
        """
        from tfspk.probes.checks import check_layers

        _check_geometry(geometry, name)
        self._fn = fn
        self.geometry = dict(geometry)
        self.name = name
        self._layers = tuple(geometry["layers"])
        check_layers(self, "layers", layers)   # UnknownLayerError, a FrameEmbedderError
        if layers is not None:
            self._layers = tuple(layer for layer in self._layers if layer in layers)
        self.sample_rate = int(geometry.get("sample_rate", 16000))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_saved_model(cls, path: str, layers: Optional[Sequence[str]] = None):
        """Loads a SavedModel written by `tfspk.export` (signature `frame_embeddings`)."""
        import tensorflow as tf

        geometry_path = os.path.join(path, "assets.extra", GEOMETRY_FILENAME)
        if not os.path.isfile(geometry_path):
            raise FrameEmbedderError(
                f"{geometry_path}: not found; export the model with tfspk.export, which "
                "writes the frame geometry the probes need")
        with open(geometry_path, encoding="utf-8") as f:
            try:
                geometry = json.load(f)
            except json.JSONDecodeError as error:
                raise FrameEmbedderError(f"{geometry_path}: not valid JSON ({error})") from None
        loaded = tf.saved_model.load(path)
        if SIGNATURE not in loaded.signatures:
            raise FrameEmbedderError(
                f"{path}: SavedModel has no {SIGNATURE!r} signature "
                f"(it has {sorted(loaded.signatures)})")
        signature = loaded.signatures[SIGNATURE]

        def fn(waveform, lengths):
            return signature(waveform=tf.constant(waveform, tf.float32),
                             lengths=tf.constant(lengths, tf.int32))

        embedder = cls(fn, geometry, name=path, layers=layers)
        embedder._keep_alive = loaded  # the signature's variables live in `loaded`
        return embedder

    @classmethod
    def from_keras(cls, frame_model, frontend, geometry: Mapping, *, name: str = "model",
                   layers: Optional[Sequence[str]] = None):
        """Wraps a front end `(waveform, lengths) -> (features, frame_lengths)` and a
        frame model `{"features", "lengths"} -> {layer: [B, T, D], layer_lengths: [B]}`
        (`tfspk.models.frame_embedding_model`); the MFCCs are exposed as layer `mfcc`."""
        import tensorflow as tf

        from tfspk.frontend.layers import network_inputs

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32),
                                      tf.TensorSpec([None], tf.int32)])
        def fn(waveform, lengths):
            inputs = network_inputs(frontend, waveform, lengths)
            outputs = {"mfcc": inputs["features"], "mfcc" + LENGTHS_SUFFIX: inputs["lengths"]}
            outputs.update(frame_model(inputs, training=False))
            return outputs

        return cls(fn, geometry, name=name, layers=layers)

    @classmethod
    def from_checkpoint(cls, model_dir: str, checkpoint: Optional[str] = None,
                        layers: Optional[Sequence[str]] = None):
        """Rebuilds a training run's network from `model_spec.json` and restores
        `checkpoint` (None: latest; a step number; or a checkpoint prefix)."""
        from tfspk import export, models

        spec, embedding_model, path = export.restore_embedding_model(model_dir, checkpoint)
        return cls.from_keras(models.frame_embedding_model(embedding_model),
                              spec.features.build(),
                              export.frame_geometry(spec, embedding_model),
                              name=path, layers=layers)

    # ------------------------------------------------------------------ queries
    @property
    def layers(self) -> tuple[str, ...]:
        """Layer names, input side first (e.g. mfcc, conv1, ..., fc2)."""
        return self._layers

    def embed(self, waveform: np.ndarray) -> dict[str, np.ndarray]:
        """`{layer: float32 [T_layer, D_layer]}` (valid frames only) for a 1-D waveform."""
        waveform = np.asarray(waveform, np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"{self.name}: embed takes one waveform [samples], "
                             f"got shape {waveform.shape}")
        outputs = self._fn(waveform[None, :], np.array([waveform.shape[0]], np.int32))
        result = {}
        for layer in self._layers:
            if layer not in outputs:
                raise FrameEmbedderError(
                    f"{self.name}: model returned no {layer!r} output "
                    f"(it returned {sorted(outputs)})")
            frames = np.asarray(outputs[layer], np.float32)
            if frames.ndim != 3 or frames.shape[0] != 1:
                raise FrameEmbedderError(f"{self.name}: {layer!r} has shape {frames.shape}, "
                                         "expected [1, frames, dims]")
            frames = frames[0]
            if layer + LENGTHS_SUFFIX in outputs:
                frames = frames[:int(np.asarray(outputs[layer + LENGTHS_SUFFIX]).reshape(-1)[0])]
            result[layer] = frames
        return result

    def frame_centres(self, layer: str, num_frames: int) -> np.ndarray:
        """Sample position of the centre of each of the first `num_frames` frames."""
        self._check_layer(layer)
        return framing.layer_frame_centres(self.geometry, layer, num_frames)

    def segment_frames(self, layer: str, start_sample: int, end_sample: int,
                       num_frames: Optional[int] = None) -> slice:
        """Frames of `layer` whose centre falls in `[start_sample, end_sample)`.

        A segment shorter than the layer's frame spacing may contain no centre; it then gets
        the one frame nearest its midpoint, so every segment has at least one frame. With
        `num_frames` (the layer's valid frames) the slice is clipped to them.
        """
        self._check_layer(layer)
        try:
            return framing.frames_centred_in(self.geometry, layer, start_sample, end_sample,
                                             num_frames)
        except ValueError as error:
            raise ValueError(f"{self.name}: {error}") from None

    def _check_layer(self, layer: str) -> None:
        if layer not in self.geometry["layers"]:
            raise KeyError(f"{self.name}: no layer {layer!r}; it has {list(self._layers)}")
