"""Where feature frames sit in the waveform: the one owner of framing arithmetic.

Kaldi's framing, with `window = milliseconds_to_samples(rate, frame_length_ms)` and
`shift = milliseconds_to_samples(rate, frame_shift_ms)`:

* MFCC frame `i` covers samples `[start_i, start_i + window)` with
  `start_i = first_frame_start + i * shift`; `first_frame_start` is 0 with
  `snip_edges=True`, else `shift // 2 - window // 2` (samples before 0 or past the end
  are reflected). Its centre is `start_i + window / 2`.
* `num_frames(n)`: `1 + (n - window) // shift` (0 when `n < window`) with snip_edges,
  else `(n + shift // 2) // shift`.
* `samples_for_frames(f)`: the fewest samples that give exactly `f` frames, the
  inverse of `num_frames`.
* Frame `j` of a network layer is centred on MFCC frame `offset + j * stride` (the
  layer's geometry, `tfspk.models.layer_frame_geometry`), so its centre is sample
  `first_frame_start + (offset + j * stride) * shift + window / 2`
  (`layer_frame_centres`).

The MFCC op, the training crops (`tfspk.data`), the export's `frame_geometry.json`,
its input checks and the probes all take these numbers from here.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np
import tensorflow as tf

#: The keys of a frame geometry (the `frame_geometry.json` an export writes).
GEOMETRY_KEYS = ("sample_rate", "frame_length_samples", "frame_shift_samples",
                 "snip_edges", "first_frame_start", "layers")


def milliseconds_to_samples(sample_rate: float, milliseconds: float) -> int:
    """Kaldi's `static_cast<int32>(samp_freq * 0.001 * ms)`, truncation included."""
    return int(sample_rate * 0.001 * milliseconds)


def first_frame_start(window: int, shift: int, snip_edges: bool) -> int:
    """First sample of MFCC frame 0 (negative without snip_edges: reflected samples)."""
    return 0 if snip_edges else shift // 2 - window // 2


def _window_and_shift(frame_length_ms, frame_shift_ms, sample_rate) -> tuple[int, int]:
    window = milliseconds_to_samples(sample_rate, frame_length_ms)
    shift = milliseconds_to_samples(sample_rate, frame_shift_ms)
    if window < 1 or shift < 1:
        raise ValueError(
            f"frame_length_ms={frame_length_ms}, frame_shift_ms={frame_shift_ms} at "
            f"{sample_rate} Hz give fewer than 1 sample")
    return window, shift


def num_frames(num_samples, frame_length_ms: float = 25.0,
               frame_shift_ms: float = 10.0, snip_edges: bool = True,
               sample_rate: float = 16000):
    """Kaldi's number of frames for `num_samples` samples (int or integer tensor).

    snip_edges=True: 1 + (n - length) // shift when n >= length, else 0.
    snip_edges=False: (n + shift // 2) // shift.
    Returns a Python int for an int, a tensor of the same dtype for a tensor.
    """
    length, shift = _window_and_shift(frame_length_ms, frame_shift_ms, sample_rate)
    if isinstance(num_samples, (int, np.integer)):
        n = int(num_samples)
        if n < 0:
            raise ValueError(f"num_samples must be >= 0, got {n}")
        if snip_edges:
            return 1 + (n - length) // shift if n >= length else 0
        return (n + shift // 2) // shift
    n = tf.convert_to_tensor(num_samples)
    if not n.dtype.is_integer:
        raise ValueError(f"num_samples must be an integer tensor, got {n.dtype}")
    if snip_edges:
        return tf.where(n >= length, 1 + (n - length) // shift, tf.zeros_like(n))
    return (n + shift // 2) // shift


def samples_for_frames(frames: int, frame_length_ms: float = 25.0,
                       frame_shift_ms: float = 10.0, snip_edges: bool = True,
                       sample_rate: float = 16000) -> int:
    """The fewest samples that give exactly `frames` frames (0 for 0 frames).

    Solves `num_frames(n) >= frames` for the smallest n: `window + (frames - 1) * shift`
    with snip_edges, else `frames * shift - shift // 2`.
    """
    frames = int(frames)
    if frames < 0:
        raise ValueError(f"frames must be >= 0, got {frames}")
    window, shift = _window_and_shift(frame_length_ms, frame_shift_ms, sample_rate)
    if frames == 0:
        return 0
    if snip_edges:
        return window + (frames - 1) * shift
    return frames * shift - shift // 2


@dataclasses.dataclass(frozen=True)
class FrameGrid:
    """The MFCC frame grid of one front end (Kaldi option names)."""

    sample_rate: float = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    snip_edges: bool = True

    def __post_init__(self):
        _window_and_shift(self.frame_length_ms, self.frame_shift_ms, self.sample_rate)

    @classmethod
    def from_options(cls, sample_rate: float = 16000, **options) -> "FrameGrid":
        """From a feature option dict; options other than framing ones are ignored."""
        names = ("frame_length_ms", "frame_shift_ms", "snip_edges")
        return cls(sample_rate, **{k: options[k] for k in names if k in options})

    @property
    def frame_length_samples(self) -> int:
        return milliseconds_to_samples(self.sample_rate, self.frame_length_ms)

    @property
    def frame_shift_samples(self) -> int:
        return milliseconds_to_samples(self.sample_rate, self.frame_shift_ms)

    @property
    def first_frame_start(self) -> int:
        return first_frame_start(self.frame_length_samples, self.frame_shift_samples,
                                 self.snip_edges)

    def num_frames(self, num_samples):
        return num_frames(num_samples, self.frame_length_ms, self.frame_shift_ms,
                          self.snip_edges, self.sample_rate)

    def samples_for_frames(self, frames: int) -> int:
        return samples_for_frames(frames, self.frame_length_ms, self.frame_shift_ms,
                                  self.snip_edges, self.sample_rate)

    def geometry(self, layers: Mapping[str, tuple] | None = None,
                 **extra) -> dict:
        """A frame geometry (the format of `frame_geometry.json`).

        `layers` maps a layer name to `(offset, stride)` or `(offset, stride,
        receptive_field)` in MFCC frames (`tfspk.models.layer_frame_geometry`); the MFCC
        layer itself, `mfcc`, is `(0, 1, 1)` and comes first unless `layers` has it.
        `extra` keys (e.g. `min_samples`) are added as they are.
        """
        entries = {"mfcc": (0, 1, 1)}
        entries.update(layers or {})
        table = {}
        for name, entry in entries.items():
            offset, stride, *field = entry
            table[name] = {"offset": offset, "stride": stride}
            if field:
                table[name]["receptive_field"] = field[0]
        return {"sample_rate": int(self.sample_rate),
                "frame_length_samples": self.frame_length_samples,
                "frame_shift_samples": self.frame_shift_samples,
                "snip_edges": self.snip_edges,
                "first_frame_start": self.first_frame_start,
                **extra, "layers": table}


def geometry_first_frame_start(geometry: Mapping) -> float:
    """`first_frame_start` of a geometry; derived from `snip_edges` when absent
    (geometries written before the key existed were all snip_edges=True)."""
    if "first_frame_start" in geometry:
        return float(geometry["first_frame_start"])
    return float(first_frame_start(int(geometry["frame_length_samples"]),
                                   int(geometry["frame_shift_samples"]),
                                   bool(geometry.get("snip_edges", True))))


def layer_frame_origin_and_spacing(geometry: Mapping, layer: str) -> tuple[float, float]:
    """(centre of frame 0, samples between frame centres) of `layer` in `geometry`."""
    entry = geometry["layers"][layer]
    shift = float(geometry["frame_shift_samples"])
    origin = (geometry_first_frame_start(geometry) + float(entry["offset"]) * shift
              + float(geometry["frame_length_samples"]) / 2)
    return origin, float(entry["stride"]) * shift


def layer_frame_centres(geometry: Mapping, layer: str, count: int) -> np.ndarray:
    """Sample position of the centre of each of the first `count` frames of `layer`."""
    origin, spacing = layer_frame_origin_and_spacing(geometry, layer)
    return origin + np.arange(count) * spacing


def frames_centred_in(geometry: Mapping, layer: str, start_sample: int, end_sample: int,
                      num_valid: int | None = None) -> slice:
    """Frames of `layer` whose centre falls in `[start_sample, end_sample)`.

    A segment shorter than the layer's frame spacing may contain no centre; it then gets
    the one frame nearest its midpoint, so every segment has at least one frame. With
    `num_valid` (the layer's valid frames) the slice is clipped to them.
    """
    if end_sample <= start_sample:
        raise ValueError(f"empty segment [{start_sample}, {end_sample})")
    origin, spacing = layer_frame_origin_and_spacing(geometry, layer)
    # Centre of frame j >= start  <=>  j >= (start - origin) / spacing; likewise < end.
    first = max(0, math.ceil((start_sample - origin) / spacing))
    stop = max(0, math.ceil((end_sample - origin) / spacing))
    if num_valid is not None:
        if num_valid < 1:
            raise ValueError(f"layer {layer!r} has no frames")
        first, stop = min(first, num_valid), min(stop, num_valid)
    if first < stop:
        return slice(first, stop)
    middle = (start_sample + end_sample) / 2
    nearest = max(0, int(round((middle - origin) / spacing)))
    if num_valid is not None:
        nearest = min(nearest, num_valid - 1)
    return slice(nearest, nearest + 1)
