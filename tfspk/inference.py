"""Use a trained model: embed, score and verify audio with a tfspk SavedModel export.

    model = SpeakerModel.load("exports/spk")          # base dir (highest version) or BASE/NAME/<v>
    emb = model.embed("a.flac")                       # float32 [D]
    result = model.verify("a.flac", "b.wav")          # Verification(score, llr, accepted)

Inputs are whatever `tfspk.audio.load_audio` reads, at any sample rate (resampled to the
model's) and any channel count (averaged), or float waveforms already at the model's rate.
The model's sample rate and shortest usable clip come from the export's
`assets.extra/frame_geometry.json`; a calibration (`calibration.json` in the version or
base directory, see `tfspk.calibration`) gives log-likelihood ratios and the threshold.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from typing import Optional, Sequence, Union

import numpy as np

from tfspk import audio as audio_lib

GEOMETRY_PATH = os.path.join("assets.extra", "frame_geometry.json")
CALIBRATION_FILENAME = "calibration.json"

Input = Union[str, os.PathLike, np.ndarray]


class ModelLoadError(ValueError):
    """An export that cannot be used: missing, not a tfspk SavedModel, unreadable."""


class ExportNotFoundError(ModelLoadError, FileNotFoundError):
    """No SavedModel at the path (also a FileNotFoundError, as callers may expect)."""


class ClipTooShortError(audio_lib.AudioError):
    """A clip (after optional VAD) is shorter than the model's minimum."""

    def __init__(self, path, seconds: float, min_seconds: float, after_vad: bool = False):
        self.seconds = seconds
        self.min_seconds = min_seconds
        what = "speech after VAD" if after_vad else "clip"
        super().__init__(f"{what} is {seconds:.3f} s, shorter than the model minimum of "
                         f"{min_seconds:.3f} s", path, "too_short")


@dataclasses.dataclass(frozen=True)
class Verification:
    """Outcome of one trial: cosine score, calibrated LLR (None when uncalibrated) and
    the decision at the model's threshold (None when it has no threshold)."""

    score: float
    llr: Optional[float]
    accepted: Optional[bool]
    threshold: Optional[float] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_export(export_dir: os.PathLike | str) -> str:
    """The SavedModel directory: `export_dir` itself, or its highest numeric version."""
    export_dir = os.fspath(export_dir)
    if os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        return export_dir
    if not os.path.isdir(export_dir):
        raise ExportNotFoundError(f"{export_dir}: no such export directory")
    versions = sorted((int(name) for name in os.listdir(export_dir)
                       if re.fullmatch(r"\d+", name)
                       and os.path.isfile(os.path.join(export_dir, name, "saved_model.pb"))))
    if not versions:
        raise ExportNotFoundError(f"{export_dir}: neither a SavedModel (no saved_model.pb) nor "
                                "a base directory with numeric versions holding one")
    return os.path.join(export_dir, str(versions[-1]))


def fingerprint(version_dir: str) -> str:
    """sha256 over the graph and the variables: identifies the weights that embed."""
    digest = hashlib.sha256()
    names = ["saved_model.pb"]
    variables = os.path.join(version_dir, "variables")
    if os.path.isdir(variables):
        names += [os.path.join("variables", n) for n in sorted(os.listdir(variables))]
    for name in names:
        digest.update(name.encode() + b"\0")
        with open(os.path.join(version_dir, name), "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of the last axes (broadcasting)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    return np.sum(a * b, axis=-1) / np.maximum(na * nb, 1e-12)


class SpeakerModel:
    """A loaded export; see the module docstring."""

    def __init__(self, version_dir: str, base_dir: str, geometry: dict, calibration=None,
                 threshold: Optional[float] = None, vad: bool = False):
        import tensorflow as tf

        self.path = version_dir
        self.base_dir = base_dir
        self.geometry = geometry
        self.sample_rate = int(geometry["sample_rate"])
        self.min_samples = int(geometry["min_samples"])
        self.calibration = calibration
        self._threshold = threshold
        self.vad = vad
        try:
            self._model = tf.saved_model.load(version_dir)
        except (OSError, ValueError, tf.errors.OpError) as error:
            message = getattr(error, "message", None) or str(error)
            raise ModelLoadError(f"{version_dir}: not a loadable SavedModel "
                                 f"({type(error).__name__}: {message[:300]})") from None
        if "serving_default" not in self._model.signatures:
            raise ModelLoadError(f"{version_dir}: the SavedModel has no 'serving_default' "
                                 f"signature (it has {sorted(self._model.signatures)}); "
                                 "is it a tfspk export?")
        self._serve = self._model.signatures["serving_default"]
        self._fingerprint: Optional[str] = None

    @classmethod
    def load(cls, export_dir: os.PathLike | str, calibration: os.PathLike | str | None = None,
             *, threshold: Optional[float] = None, vad: bool = False) -> "SpeakerModel":
        """Loads a tfspk export (base dir or version dir).

        `calibration`: path of a calibration JSON; default `calibration.json` in the
        version dir, else in the base dir, else none. `threshold` overrides the
        calibration's operating threshold (raw cosine units). `vad`: drop non-speech
        frames (Kaldi energy VAD) before embedding.
        """
        base = os.fspath(export_dir)
        version_dir = resolve_export(base)
        geometry_path = os.path.join(version_dir, GEOMETRY_PATH)
        if not os.path.isfile(geometry_path):
            raise ExportNotFoundError(f"{geometry_path}: missing; is {version_dir} a tfspk export?")
        try:
            with open(geometry_path, encoding="utf-8") as stream:
                geometry = json.load(stream)
            int(geometry["sample_rate"]), int(geometry["min_samples"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelLoadError(f"{geometry_path}: unreadable frame geometry "
                                 f"({type(error).__name__}: {error})") from None
        if calibration is None:
            for directory in (version_dir, base):
                candidate = os.path.join(directory, CALIBRATION_FILENAME)
                if os.path.isfile(candidate):
                    calibration = candidate
                    break
        loaded = None
        if calibration is not None:
            from tfspk import calibration as calibration_lib  # written alongside this module

            loaded = calibration_lib.Calibration.load(os.fspath(calibration))
        return cls(version_dir, base, geometry, loaded, threshold, vad)

    @classmethod
    def load_for_cli(cls, model_flag, calibration_flag=None, **kwargs) -> "SpeakerModel":
        """`load` for the CLIs: a failure is a ValueError naming the flag at fault."""
        from tfspk.calibration import CalibrationError

        try:
            return cls.load(model_flag, calibration_flag, **kwargs)
        except ModelLoadError as error:
            raise type(error)(f"--model={model_flag}: {error}") from None
        except (CalibrationError, OSError) as error:
            flag = (f"--calibration={calibration_flag}" if calibration_flag else
                    f"--model={model_flag} (its {CALIBRATION_FILENAME})")
            raise CalibrationError(f"{flag}: {error}") from None

    # ------------------------------------------------------------------ geometry
    @property
    def min_seconds(self) -> float:
        return self.min_samples / self.sample_rate

    @property
    def threshold(self) -> Optional[float]:
        """Operating threshold on the cosine score (None: no decision possible)."""
        if self._threshold is not None:
            return float(self._threshold)
        if self.calibration is not None:
            return float(self.calibration.threshold())
        return None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.path)
        return self._fingerprint

    # ------------------------------------------------------------------ audio
    def load_waveform(self, item: Input, name: Optional[str] = None) -> np.ndarray:
        """The model-rate mono waveform embed() feeds for `item` (after VAD and checks)."""
        if isinstance(item, np.ndarray):
            waveform = np.asarray(item, np.float32)
            if waveform.ndim == 2:  # [time, channels]
                waveform = waveform.mean(axis=1, dtype=np.float32)
            if waveform.ndim != 1:
                raise audio_lib.AudioError(f"waveform must be [time] or [time, channels], "
                                           f"got shape {item.shape}", name or "<waveform>",
                                           "span")
            path = name or "<waveform>"
        else:
            path = os.fspath(item)
            waveform, _ = audio_lib.load_audio(path, self.sample_rate, downmix=True)
        if waveform.size and waveform.size < self.min_samples:
            raise ClipTooShortError(path, waveform.size / self.sample_rate, self.min_seconds)
        audio_lib.check_audio(waveform, self.sample_rate, path, min_seconds=self.min_seconds)
        if self.vad:
            waveform = self.voiced(waveform)
            if waveform.size < self.min_samples:
                raise ClipTooShortError(path, waveform.size / self.sample_rate,
                                        self.min_seconds, after_vad=True)
        return waveform

    def voiced(self, waveform: np.ndarray) -> np.ndarray:
        """Samples of the frames Kaldi's energy VAD calls speech (frame hop resolution)."""
        import tensorflow as tf

        from tfspk import features

        geometry = self.geometry
        shift = int(geometry["frame_shift_samples"])
        window = int(geometry["frame_length_samples"])
        if waveform.size < window:
            return waveform[:0]
        mfcc = features.kaldi_mfcc(
            tf.constant(waveform), self.sample_rate,
            frame_length_ms=1000.0 * window / self.sample_rate,
            frame_shift_ms=1000.0 * shift / self.sample_rate, snip_edges=True)
        voiced = features.energy_vad(mfcc, **features.VOXCELEB_V2_VAD_OPTIONS).numpy()
        keep = np.zeros(waveform.size, bool)
        for frame in np.flatnonzero(voiced):
            start = frame * shift
            keep[start:start + (shift if frame + 1 < voiced.size else window)] = True
        return waveform[keep]

    # ------------------------------------------------------------------ embedding
    def embed_waveforms(self, waveforms: Sequence[np.ndarray], batch_size: int = 16,
                        names: Optional[Sequence[str]] = None) -> np.ndarray:
        """Embeddings [N, D] of checked model-rate waveforms, batched shortest first."""
        import tensorflow as tf

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))
        result: list = [None] * len(waveforms)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            lengths = np.array([len(waveforms[i]) for i in rows], np.int32)
            batch = np.zeros((len(rows), int(lengths.max())), np.float32)
            for r, i in enumerate(rows):
                batch[r, :lengths[r]] = waveforms[i]
            try:
                values = self._serve(waveform=tf.constant(batch),
                                     lengths=tf.constant(lengths))["embedding"].numpy()
            except tf.errors.InvalidArgumentError as error:
                which = [names[i] if names else str(i) for i in rows]
                raise ValueError(f"{which}: {error.message}") from error
            for r, i in enumerate(rows):
                result[i] = values[r]
        if not result:
            return np.zeros((0, 0), np.float32)
        return np.stack(result).astype(np.float32)

    def embed(self, items: Union[Input, Sequence[Input]], batch_size: int = 16) -> np.ndarray:
        """float32 [D] for one path or waveform, [N, D] for a list of them."""
        single = isinstance(items, (str, os.PathLike)) or (
            isinstance(items, np.ndarray) and items.dtype.kind == "f")
        batch = [items] if single else list(items)
        names = [os.fspath(i) if isinstance(i, (str, os.PathLike)) else f"<waveform {n}>"
                 for n, i in enumerate(batch)]
        waveforms = [self.load_waveform(item, name) for item, name in zip(batch, names)]
        embeddings = self.embed_waveforms(waveforms, batch_size, names)
        return embeddings[0] if single else embeddings

    def _as_embedding(self, item) -> np.ndarray:
        if isinstance(item, np.ndarray) and item.ndim == 1 and item.size == self.dimension:
            return item.astype(np.float32)
        return self.embed(item)

    @property
    def dimension(self) -> int:
        return int(self._serve.structured_outputs["embedding"].shape[-1])

    # ------------------------------------------------------------------ scoring
    def score(self, a, b) -> float:
        """Cosine similarity of two inputs (paths, waveforms or [D] embeddings)."""
        return float(cosine(self._as_embedding(a), self._as_embedding(b)))

    def llr(self, scores) -> Optional[np.ndarray]:
        if self.calibration is None:
            return None
        return np.asarray(self.calibration.llr(np.atleast_1d(np.asarray(scores, np.float64))))

    def decide(self, score: float) -> Verification:
        llr = self.llr(score)
        threshold = self.threshold
        return Verification(float(score), None if llr is None else float(llr[0]),
                            None if threshold is None else bool(score >= threshold),
                            threshold)

    def verify(self, a, b) -> Verification:
        """Score, LLR and decision for the trial (a, b)."""
        return self.decide(self.score(a, b))
