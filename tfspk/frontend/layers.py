"""Keras front-end layers (waveform + lengths -> features + frame lengths) and the
one function that feeds a front end into an embedding network."""
from __future__ import annotations

import keras
import tensorflow as tf

from tfspk.frontend.framing import num_frames
from tfspk.frontend.normalization import apply_cmn, sliding_cmn
from tfspk.frontend.ops import _COMPUTE_DTYPES, _DEFAULTS_BY_KIND, _compute, resolve_options

_CMN_MODES = ("utterance", "sliding", "none")


class _KaldiFeatures(keras.layers.Layer):
    """Waveform [batch, samples] + lengths -> (features, frame_lengths)."""

    kind = ""

    def __init__(self, sample_rate=16000, cmn="utterance", cmn_window=300,
                 compute_dtype="float32", seed=None, **kwargs):
        option_names = set(_DEFAULTS_BY_KIND[self.kind])
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in option_names}
        super().__init__(**kwargs)
        if cmn not in _CMN_MODES:
            raise ValueError(f"cmn must be one of {_CMN_MODES}, got {cmn!r}")
        if compute_dtype not in _COMPUTE_DTYPES:
            raise ValueError(
                f"compute_dtype must be one of {sorted(_COMPUTE_DTYPES)}, "
                f"got {compute_dtype!r}")
        self.sample_rate = sample_rate
        self.cmn = cmn
        self.cmn_window = int(cmn_window)
        self.compute_dtype_name = compute_dtype
        self.seed = seed
        self.options = resolve_options(self.kind, sample_rate, **options)
        self._seed_generator = (keras.random.SeedGenerator(seed)
                                if self.options["dither"] > 0.0 else None)

    def call(self, waveform, lengths=None):
        seed = None
        if self._seed_generator is not None:
            seed = keras.random.randint([2], 0, 2**31 - 1, seed=self._seed_generator)
        features, frame_lengths = _compute(
            self.kind, waveform, lengths, self.sample_rate, seed,
            self.compute_dtype_name, self.options)
        if self.cmn == "utterance":
            features = apply_cmn(features, frame_lengths)
        elif self.cmn == "sliding":
            features = sliding_cmn(features, frame_lengths, cmn_window=self.cmn_window)
        return features, frame_lengths

    @property
    def feature_dim(self) -> int:
        if self.kind == "mfcc":
            return self.options["num_ceps"]
        return self.options["num_mel_bins"] + int(self.options["use_energy"])

    def compute_output_spec(self, waveform, lengths=None):
        batch, samples = waveform.shape[0], waveform.shape[1]
        frames = None
        if samples is not None:
            frames = num_frames(
                int(samples), self.options["frame_length_ms"],
                self.options["frame_shift_ms"], self.options["snip_edges"],
                self.sample_rate)
        return (keras.KerasTensor((batch, frames, self.feature_dim), "float32"),
                keras.KerasTensor((batch,), "int32"))

    def get_config(self):
        config = super().get_config()
        config.update(sample_rate=self.sample_rate, cmn=self.cmn,
                      cmn_window=self.cmn_window,
                      compute_dtype=self.compute_dtype_name, seed=self.seed,
                      **self.options)
        return config


@keras.saving.register_keras_serializable(package="tfspk")
class MfccFeatures(_KaldiFeatures):
    """Kaldi MFCCs (paper defaults: 40 bins, 40 cepstra) with optional CMN.

    `call(waveform [batch, samples], lengths [batch] or None)` returns
    `(features [batch, frames, num_ceps], frame_lengths [batch])`. `cmn` is
    "utterance" (mean over each row's valid frames), "sliding" (Kaldi
    apply-cmvn-sliding, `cmn_window` frames, centred) or "none".
    """

    kind = "mfcc"


@keras.saving.register_keras_serializable(package="tfspk")
class FbankFeatures(_KaldiFeatures):
    """Kaldi log mel filterbanks with optional CMN; same call as MfccFeatures."""

    kind = "fbank"


# --------------------------------------------------------------------------- #
# Building, and composing with an embedding network
# --------------------------------------------------------------------------- #
#: `cmn=True/False` (the training API) as a layer mode.
CMN_BY_BOOL = {True: "utterance", False: "none"}


def build_mfcc_frontend(sample_rate: int = 16000, cmn: bool | str = "utterance",
                        mfcc_options=None) -> MfccFeatures:
    """The MFCC layer (paper defaults for options not given) with CMN; what
    `FeatureSpec.build()` and the training pipeline both return."""
    mode = CMN_BY_BOOL[cmn] if isinstance(cmn, bool) else cmn
    return MfccFeatures(sample_rate=sample_rate, cmn=mode, **dict(mfcc_options or {}))


def network_inputs(frontend, waveform, lengths) -> dict:
    """`frontend(waveform, lengths)` as the inputs an embedding network takes:
    `{"features": [B, T, F], "lengths": int32 [B] valid frames}`.

    The one place a front end is wired to a network; training (tf.data or on the
    accelerator), validation, export and the probes all go through it.
    """
    features, frame_lengths = frontend(waveform, tf.cast(lengths, tf.int32))
    return {"features": features, "lengths": tf.cast(frame_lengths, tf.int32)}


def with_waveform_frontend(embedding_model, frontend_layer, name=None):
    """Model `{"waveform": float32 [B, S], "lengths": int32 [B] samples}` -> outputs
    of `embedding_model`.

    `frontend_layer(waveform, lengths)` must return `(features [B, T, F],
    frame_lengths [B])`, F matching the embedding model's `features` input.
    """
    inputs = {
        "waveform": keras.Input(shape=(None,), dtype="float32", name="waveform"),
        "lengths": keras.Input(shape=(), dtype="int32", name="lengths"),
    }
    features, frame_lengths = frontend_layer(inputs["waveform"], inputs["lengths"])
    expected = embedding_model.input["features"].shape[-1]
    if features.shape[-1] != expected:
        raise ValueError(f"{frontend_layer.name} gives {features.shape[-1]} features "
                         f"per frame but {embedding_model.name} expects {expected}")
    outputs = embedding_model({"features": features, "lengths": frame_lengths})
    return keras.Model(inputs, outputs,
                       name=name or f"{embedding_model.name}_waveform")
