"""Which checkpoint of a training run to export, and restoring it into the network
rebuilt from `model_spec.json`."""
from __future__ import annotations

import os

import tensorflow as tf

from tfspk import model_spec as spec_lib
from tfspk.training.checkpointing import list_checkpoints


def restore_embedding_model(model_dir: str, checkpoint: str | None = None):
    """Rebuilds the trained network from model_spec.json and restores a checkpoint.

    Returns `(spec, embedding_model, checkpoint_path)`.
    """
    spec = spec_lib.ModelSpec.load(model_dir)
    classifier = spec_lib.build_classifier_model(spec)
    path = resolve_checkpoint(model_dir, checkpoint)
    # Training checkpoints also hold the optimizer; only the model is needed here,
    # but every model variable must be found.
    tf.train.Checkpoint(model=classifier).restore(path).expect_partial() \
        .assert_existing_objects_matched()
    return spec, classifier.embedding_model, path


def resolve_checkpoint(model_dir: str, checkpoint: str | None) -> str:
    """The checkpoint prefix to export from `<model_dir>/checkpoints`.

    `None` or "" -> the latest; "1200" -> `ckpt-1200`; otherwise a prefix, either a
    path or a name inside the checkpoints directory (`ckpt-1200`).
    """
    directory = os.path.join(model_dir, "checkpoints")
    if not checkpoint:
        latest = tf.train.latest_checkpoint(directory)
        if latest is None:
            raise FileNotFoundError(f"{directory}: no checkpoint found")
        return latest
    if checkpoint.isdigit():
        prefix = os.path.join(directory, f"ckpt-{int(checkpoint)}")
        if not tf.io.gfile.exists(prefix + ".index"):
            raise FileNotFoundError(f"{prefix}: no checkpoint for step {checkpoint}; "
                                    f"available: {_available_steps(model_dir)}")
        return prefix
    for prefix in (checkpoint, os.path.join(directory, checkpoint)):
        if tf.io.gfile.exists(prefix + ".index"):
            return prefix
    raise FileNotFoundError(f"{checkpoint}: not a checkpoint prefix (no {checkpoint}.index, "
                            f"nor in {directory}); available steps: "
                            f"{_available_steps(model_dir)}")


def _available_steps(model_dir: str) -> list[int]:
    return [step for step, _ in list_checkpoints(model_dir)]
