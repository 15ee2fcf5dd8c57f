"""`export_saved_model`: a training run -> `BASE/NAME/<version>/` for TF Serving."""
from __future__ import annotations

import os
import re
import sys

import tensorflow as tf

from tfspk.export.archive import build_export_archive
from tfspk.export.checkpoints import restore_embedding_model
from tfspk.export.geometry import EXTRA_DIR, write_frame_geometry
from tfspk.export.server_configs import write_serving_configs
from tfspk.export.warmup import WARMUP_FILENAME, ServingApiMissingError, write_warmup_requests


def next_version(export_base: str) -> int:
    """TF Serving loads the highest numeric version; default to one above it."""
    if not tf.io.gfile.isdir(export_base):
        return 1
    versions = [int(name.strip("/")) for name in tf.io.gfile.listdir(export_base)
                if re.fullmatch(r"\d+/?", name)]
    return max(versions, default=0) + 1


def export_saved_model(model_dir: str, export_dir: str, version: int | None = None,
                       checkpoint: str | None = None, embedding_layer: str | None = None,
                       warmup: bool = True) -> str:
    """Exports a training run to `export_dir/<version>`; returns that path."""
    spec, embedding_model, checkpoint_path = restore_embedding_model(model_dir, checkpoint)
    version = version or next_version(export_dir)
    if version < 1:
        raise ValueError(f"version must be >= 1, got {version}")
    export_path = os.path.join(export_dir, str(version))
    if tf.io.gfile.exists(export_path):
        raise FileExistsError(f"{export_path} exists; TF Serving versions are immutable")
    archive = build_export_archive(spec, embedding_model, embedding_layer)
    archive.write_out(export_path, verbose=False)
    model_name = os.path.basename(os.path.abspath(export_dir.rstrip("/")))
    if warmup:
        try:
            write_warmup_requests(export_path, spec, model_name)
        except ServingApiMissingError:
            print(f"tfspk.export: no {WARMUP_FILENAME} written: tensorflow-serving-api is "
                  "not installed (pip install tfspk[serving])", file=sys.stderr, flush=True)
    write_frame_geometry(export_path, spec, embedding_model)
    # The spec lets `tfspk.train --init_from=EXPORT` rebuild the network to fine-tune.
    with open(os.path.join(export_path, EXTRA_DIR, "model_spec.json"), "w",
              encoding="utf-8") as f:
        f.write(spec.to_json())
    with open(os.path.join(export_path, EXTRA_DIR, "source.txt"), "w",
              encoding="utf-8") as f:
        f.write(f"model_dir: {os.path.abspath(model_dir)}\n"
                f"checkpoint: {checkpoint_path}\n"
                f"embedding_layer: {embedding_layer or spec.embedding_layer}\n")
    write_serving_configs(export_dir, model_name)
    return export_path
