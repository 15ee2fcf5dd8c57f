"""Fine-tuning: start a run from another tfspk model's layers up to the embedding.

`--init_from` names a training directory (`model_spec.json` + `checkpoints/`, latest
checkpoint), one checkpoint prefix of it (`RUN/checkpoints/ckpt-N`), or a SavedModel
export (`saved_model.pb`, with the spec in `assets.extra/model_spec.json`). The source's
architecture and front end must equal this run's: the weights only mean something for
the input they were trained on. The head is never loaded: it is sized for the new
speakers and trained from scratch. `--freeze_until=LAYER` keeps the layers from the
input up to and including LAYER (with its batch norm) at their loaded values; frozen
batch norm layers also keep their moving statistics (Keras runs a non-trainable
BatchNormalization in inference mode).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from tfspk import model_spec as spec_lib

#: ModelSpec fields the loaded weights depend on; the head's may differ.
ARCHITECTURE_FIELDS = ("architecture", "variant", "pooling", "conv_filters", "fc_units",
                       "batch_norm", "features")
SPEC_IN_EXPORT = os.path.join("assets.extra", spec_lib.SPEC_FILENAME)


class InitFromError(ValueError):
    """--init_from or --freeze_until cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class InitSource:
    """Where fine-tuning weights come from: `kind` "checkpoint" (`prefix`) or
    "saved_model" (`prefix` is the export directory)."""

    path: str
    kind: str
    prefix: str
    spec: spec_lib.ModelSpec


def resolve_source(path: str) -> InitSource:
    """The checkpoint or export `--init_from=path` names, with its model spec."""
    import tensorflow as tf

    where = f"--init_from={path}"
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        spec_path = os.path.join(path, SPEC_IN_EXPORT)
        if not tf.io.gfile.exists(spec_path):
            raise InitFromError(f"{where}: a SavedModel without {SPEC_IN_EXPORT} (not a "
                                "tfspk export, or exported before exports carried the "
                                "spec): pass its training directory instead")
        with tf.io.gfile.GFile(spec_path) as f:
            return InitSource(path, "saved_model", path, spec_lib.ModelSpec.from_json(f.read()))
    if tf.io.gfile.exists(path + ".index"):
        run_dir = os.path.dirname(os.path.dirname(os.path.abspath(path)))
        return InitSource(path, "checkpoint", path, _load_spec(run_dir, where))
    if tf.io.gfile.exists(os.path.join(path, spec_lib.SPEC_FILENAME)):
        spec = _load_spec(path, where)
        latest = tf.train.latest_checkpoint(os.path.join(path, "checkpoints"))
        if latest is None:
            raise InitFromError(f"{where}: no checkpoint in {os.path.join(path, 'checkpoints')}")
        return InitSource(path, "checkpoint", latest, spec)
    raise InitFromError(f"{where}: not a tfspk training directory (no "
                        f"{spec_lib.SPEC_FILENAME}), checkpoint prefix (no {path}.index) or "
                        "SavedModel export (no saved_model.pb)")


def _load_spec(run_dir: str, where: str) -> spec_lib.ModelSpec:
    try:
        return spec_lib.ModelSpec.load(run_dir)
    except FileNotFoundError as error:
        raise InitFromError(f"{where}: {error}") from None


def check_compatible(source: InitSource, spec: spec_lib.ModelSpec) -> None:
    """Refuses a source whose architecture or front end differs from `spec`, naming
    each difference and the flags that would match the source."""
    from tfspk.training import config as config_lib

    differences = [name for name in ARCHITECTURE_FIELDS
                   if getattr(source.spec, name) != getattr(spec, name)]
    if not differences:
        return
    shown = "; ".join(f"{name}: source {getattr(source.spec, name)} vs this run "
                      f"{getattr(spec, name)}" for name in differences)
    # The flags (paths ("model", field[, subfield])) whose values would match the source.
    flags = [flag.to_text(_get(source.spec, flag.path[1:]))
             for flag in config_lib.flag_specs()
             if flag.path[0] == "model" and flag.path[1] in differences
             and _get(source.spec, flag.path[1:]) != _get(spec, flag.path[1:])]
    raise InitFromError(f"--init_from={source.path}: its model differs from this run's "
                        f"({shown}); fine-tuning keeps the architecture and front end: "
                        f"pass {' '.join(f for f in flags if f)}")


def _get(obj, path):
    for name in path:
        obj = getattr(obj, name)
    return obj


def frozen_layers(embedding_model, until: str) -> list:
    """The layers from the input up to and including `until` and the layers of its
    block (`<until>_lengths`, `<until>_bn`: freezing conv2 also freezes its batch norm)."""
    names = trainable_layer_names(embedding_model)
    if until not in names:
        raise InitFromError(f"--freeze_until={until}: not a layer with weights of "
                            f"{embedding_model.name}; valid: {', '.join(names)}")
    layers = list(embedding_model.layers)
    last = max(index for index, layer in enumerate(layers)
               if layer.name == until or layer.name.startswith(until + "_"))
    return layers[:last + 1]


def trainable_layer_names(embedding_model) -> list[str]:
    """Names of the layers that hold weights, input first: what --freeze_until takes."""
    return [layer.name for layer in embedding_model.layers if layer.weights]


def freeze(embedding_model, until: str) -> list[str]:
    """Marks the layers up to `until` non-trainable; returns their names."""
    layers = frozen_layers(embedding_model, until)
    for layer in layers:
        layer.trainable = False
    return [layer.name for layer in layers if layer.weights]


def load_embedding_weights(embedding_model, source: InitSource) -> int:
    """Assigns the source's embedding-network weights to `embedding_model` (same
    architecture, see `check_compatible`); returns the number of variables set."""
    import tensorflow as tf

    if source.kind == "checkpoint":
        classifier = spec_lib.build_classifier_model(source.spec)
        tf.train.Checkpoint(model=classifier).restore(source.prefix).expect_partial() \
            .assert_existing_objects_matched()
        values = {v.path: v.numpy() for v in classifier.embedding_model.weights}
    else:
        loaded = tf.saved_model.load(source.prefix)
        values = {}
        for variable in loaded.variables:
            name = variable.name.split(":", 1)[0]
            value = variable.numpy()
            if name in values and not np.array_equal(values[name], value):
                raise InitFromError(f"--init_from={source.path}: two different variables "
                                    f"named {name}")
            values[name] = value
    missing = [v.path for v in embedding_model.weights if v.path not in values]
    if missing:
        raise InitFromError(f"--init_from={source.path}: lacks {len(missing)} weight(s) of "
                            f"this model: {', '.join(missing[:5])}")
    for variable in embedding_model.weights:
        value = values[variable.path]
        if tuple(value.shape) != tuple(variable.shape):
            raise InitFromError(f"--init_from={source.path}: {variable.path} has shape "
                                f"{value.shape}, this model {tuple(variable.shape)}")
        variable.assign(value)
    return len(embedding_model.weights)
