"""The serialisable description of a trained system: front end + network + head.

Training writes it to `<model_dir>/model_spec.json`; export, evaluation and the
probes rebuild exactly the same Keras graph from it and restore a checkpoint into it,
so nothing downstream needs the training flags.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

SPEC_FILENAME = "model_spec.json"

HEADS = ("softmax", "am_softmax", "aam_softmax")


@dataclasses.dataclass
class FeatureSpec:
    """Front end: Kaldi MFCC options (kaldi-native-fbank names) and normalisation."""

    sample_rate: int = 16000
    num_mel_bins: int = 40
    num_ceps: int = 40
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = 0.0
    snip_edges: bool = True
    cmn: str = "utterance"

    def mfcc_options(self) -> dict[str, Any]:
        return {
            "num_mel_bins": self.num_mel_bins,
            "num_ceps": self.num_ceps,
            "frame_length_ms": self.frame_length_ms,
            "frame_shift_ms": self.frame_shift_ms,
            "low_freq": self.low_freq,
            "high_freq": self.high_freq,
            "snip_edges": self.snip_edges,
        }

    def grid(self):
        """The MFCC frame grid (`tfspk.frontend.framing.FrameGrid`) of this front end."""
        from tfspk.frontend import framing

        return framing.FrameGrid(self.sample_rate, self.frame_length_ms,
                                 self.frame_shift_ms, self.snip_edges)

    def samples_for_frames(self, num_frames: int) -> int:
        """The fewest samples that yield exactly `num_frames` frames."""
        return self.grid().samples_for_frames(num_frames)

    def build(self):
        """The Keras front-end layer `(waveform, lengths) -> (features, frame_lengths)`
        with these options: the one builder export, training, validation and the
        probes use."""
        from tfspk.frontend import layers

        return layers.build_mfcc_frontend(self.sample_rate, self.cmn, self.mfcc_options())


@dataclasses.dataclass
class ModelSpec:
    """Network and classification head."""

    architecture: str = "paper_cnn"
    num_speakers: int = 0
    variant: str = "linear_fc1"
    pooling: str = "stats"
    conv_filters: tuple[int, ...] = (1000, 1000, 1000, 1500)
    fc_units: tuple[int, ...] = (1500, 600)
    batch_norm: bool = False
    head: str = "softmax"
    margin: float = 0.0
    scale: float = 30.0
    embedding_layer: str = "fc2"
    features: FeatureSpec = dataclasses.field(default_factory=FeatureSpec)

    def __post_init__(self):
        if isinstance(self.features, dict):
            self.features = FeatureSpec(**self.features)
        self.conv_filters = tuple(int(c) for c in self.conv_filters)
        self.fc_units = tuple(int(c) for c in self.fc_units)
        from tfspk.models import registry

        registry.get(self.architecture)  # UnknownArchitectureError lists the known names
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        return cls(**json.loads(text))

    def save(self, model_dir: str) -> str:
        path = os.path.join(model_dir, SPEC_FILENAME)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(self.to_json())
        os.replace(path + ".tmp", path)
        return path

    @classmethod
    def load(cls, model_dir: str) -> "ModelSpec":
        path = os.path.join(model_dir, SPEC_FILENAME)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{path}: no model spec; is {model_dir!r} a tfspk training directory?")
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())


def build_embedding_model(spec: ModelSpec):
    """The embedding network (features + lengths in, {"fc1", "fc2"} out) for `spec`:
    the builder registered as `spec.architecture` (`tfspk.models.registry`)."""
    from tfspk.models import registry

    return registry.get(spec.architecture)(spec)


def build_classifier_model(spec: ModelSpec):
    """Embedding network plus the speaker-classification head used in training."""
    from tfspk import models

    if spec.num_speakers < 2:
        raise ValueError(f"num_speakers must be >= 2, got {spec.num_speakers}")
    head_kwargs = {}
    if spec.head != "softmax":
        head_kwargs = {"margin": spec.margin, "scale": spec.scale}
    return models.build_classifier(
        build_embedding_model(spec), spec.num_speakers, head=spec.head,
        embedding=spec.embedding_layer, **head_kwargs)


def build_frontend(spec: ModelSpec):
    """`spec.features.build()`: the front end a trained system was trained with."""
    return spec.features.build()
