"""Embedding architectures by name: `@register("name")` on a builder `(ModelSpec) ->
keras.Model` makes `ModelSpec(architecture="name")`, `--architecture=name` and every
rebuild from `model_spec.json` find it. Adding an architecture is one new module in
`tfspk/models/` with a decorated builder: `names()` and `get()` import every module of
the package first, so nothing else needs to list it.

The builder reads what it needs from the spec: `spec.features.num_ceps` (input width),
`spec.conv_filters`, `spec.fc_units`, `spec.batch_norm`, ... and returns a model with
inputs `{"features", "lengths"}` and outputs `{"fc1", "fc2"}` (`tfspk.models.blocks`
naming, which the frame-level views and the probes read back).
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

_BUILDERS: dict[str, Callable] = {}


class UnknownArchitectureError(ValueError):
    """An architecture name that no module registered; the message lists the known ones."""


def register(name: str):
    """Decorator: registers `builder(spec) -> embedding model` under `name`."""
    def decorate(builder):
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"architecture {name!r} is registered twice: "
                             f"{_BUILDERS[name].__module__} and {builder.__module__}")
        _BUILDERS[name] = builder
        return builder
    return decorate


def _load_builtins() -> None:
    package = importlib.import_module("tfspk.models")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"tfspk.models.{module.name}")


def names() -> tuple[str, ...]:
    """Registered architecture names, in registration order."""
    _load_builtins()
    return tuple(_BUILDERS)


def get(name: str) -> Callable:
    """The builder registered as `name`; UnknownArchitectureError lists the others."""
    _load_builtins()
    if name not in _BUILDERS:
        raise UnknownArchitectureError(
            f"unknown architecture {name!r}; registered: {', '.join(_BUILDERS)} (register "
            "one with @tfspk.models.registry.register(name))")
    return _BUILDERS[name]
