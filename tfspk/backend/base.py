"""Serialisable backend components: the `Transform` and `Scorer` base classes.

Every component stores its hyper-parameters as a JSON config and its fitted
parameters as numpy arrays, so a component (or a whole `Backend`) is saved as
two files: `<prefix>.json` and `<prefix>.npz` (loaded with `allow_pickle=False`).
Subclasses register themselves by class name, which is what `load` looks up.
"""
from __future__ import annotations

import json
import pathlib
from typing import Any, ClassVar

import numpy as np

FORMAT_VERSION = 1
_REGISTRY: dict[str, type["Component"]] = {}


class BackendFileError(ValueError):
    """A saved backend that cannot be read (missing file, unknown class, bad arrays)."""


class NotFittedError(RuntimeError):
    """A component was used before `fit` (or `load`)."""


class Component:
    """A backend piece with JSON config and numpy arrays as its whole state."""

    # Names of the fitted arrays; all of them are set by `fit` / `set_arrays`.
    array_names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Component":
        return cls(**config)

    @property
    def fitted(self) -> bool:
        return all(getattr(self, name, None) is not None for name in self.array_names)

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError(f"{type(self).__name__} is used before fit() or load()")

    def get_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {name: np.asarray(getattr(self, name)) for name in self.array_names}

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        missing = [name for name in self.array_names if name not in arrays]
        if missing:
            raise BackendFileError(f"{type(self).__name__}: missing arrays {missing}")
        for name in self.array_names:
            setattr(self, name, np.asarray(arrays[name]))

    def describe(self) -> dict[str, Any]:
        """Class name and config, the JSON form of this component."""
        return {"class": type(self).__name__, "config": self.get_config()}

    def save(self, prefix: str | pathlib.Path) -> None:
        """Writes `<prefix>.json` (class and config) and `<prefix>.npz` (arrays)."""
        write_files(prefix, {"format_version": FORMAT_VERSION, **self.describe()},
                    self.get_arrays())

    @staticmethod
    def load(prefix: str | pathlib.Path) -> "Component":
        """Reads a component written by `save`, whatever its class."""
        config, arrays = read_files(prefix)
        return build_component(config, arrays, f"{prefix}.json")


class Transform(Component):
    """Maps embeddings [n, d_in] to [n, d_out]; `fit` may use speaker labels."""

    def fit(self, embeddings: np.ndarray, speakers=None) -> "Transform":
        return self

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit_transform(self, embeddings: np.ndarray, speakers=None) -> np.ndarray:
        return self.fit(embeddings, speakers).transform(embeddings)


class Scorer(Component):
    """Scores enrollment models against test embeddings.

    `enroll_counts[i]` is the number of utterances averaged into enrollment
    row `i` (1 when omitted); only PLDA uses it.
    """

    def fit(self, embeddings: np.ndarray, speakers=None) -> "Scorer":
        return self

    def score_matrix(self, enroll, test, enroll_counts=None) -> np.ndarray:
        """All-pairs scores [num_enroll, num_test]."""
        raise NotImplementedError

    def score_pairs(self, enroll, test, enroll_index, test_index,
                    enroll_counts=None) -> np.ndarray:
        """Scores of trials `(enroll[enroll_index[k]], test[test_index[k]])`."""
        raise NotImplementedError

    # True when scores are calibrated-in-form log-likelihood ratios.
    produces_llr: ClassVar[bool] = False


def build_component(description: dict, arrays: dict[str, np.ndarray],
                    source: str) -> Component:
    """Instantiates a component from its `describe()` dict and fitted arrays."""
    name = description.get("class")
    if name not in _REGISTRY:
        raise BackendFileError(f"{source}: unknown backend component {name!r}; "
                               f"known: {sorted(_REGISTRY)}")
    component = _REGISTRY[name].from_config(description.get("config", {}))
    try:
        component.set_arrays(arrays)
    except BackendFileError as error:
        raise BackendFileError(f"{source}: {error}") from None
    return component


def write_files(prefix: str | pathlib.Path, config: dict, arrays: dict[str, np.ndarray]) -> None:
    """Writes `<prefix>.json` and `<prefix>.npz`, creating the parent folder."""
    prefix = pathlib.Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{prefix}.json", "w", encoding="utf-8") as stream:
        json.dump(config, stream, indent=2)
    np.savez(f"{prefix}.npz", **arrays)


def read_files(prefix: str | pathlib.Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Reads the pair written by `write_files`, with clear errors."""
    config_path, arrays_path = f"{prefix}.json", f"{prefix}.npz"
    for path in (config_path, arrays_path):
        if not pathlib.Path(path).is_file():
            raise BackendFileError(f"{path}: file not found")
    try:
        with open(config_path, encoding="utf-8") as stream:
            config = json.load(stream)
    except json.JSONDecodeError as error:
        raise BackendFileError(f"{config_path}: not valid JSON ({error})") from None
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise BackendFileError(f"{config_path}: format_version {version!r}, "
                               f"this tfspk reads {FORMAT_VERSION}")
    try:
        with np.load(arrays_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError) as error:
        raise BackendFileError(f"{arrays_path}: cannot read arrays ({error})") from None
    return config, arrays
