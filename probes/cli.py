"""Flags shared by the probe CLIs: which model, which corpus, where the outputs go."""
from __future__ import annotations

import os

from absl import app, flags

# Imported first: tfspk.export defines --model_dir and --checkpoint at import time, and a
# later import (FrameEmbedder.from_checkpoint) would clash with flags defined here.
from tfspk import export  # noqa: F401

from probes import data
from probes.frames import FrameEmbedder

FLAGS = flags.FLAGS


def _define_string_once(name: str, help_text: str) -> None:
    # Shared with tfspk.export, whose flags of these names mean the same.
    if name not in FLAGS:
        flags.DEFINE_string(name, None, help_text)


flags.DEFINE_string("saved_model", None, "SavedModel exported by tfspk.export (a version dir).")
_define_string_once("model_dir", "Training directory; used when --saved_model is absent "
                    "(and by over_training).")
_define_string_once("checkpoint", "With --model_dir: step number or prefix; default latest.")
flags.DEFINE_string("timit_dir", None, "TIMIT-layout corpus (TRAIN/ and TEST/).")
flags.DEFINE_string("output_dir", None, "Where figures, tables and report.md go.")
flags.DEFINE_list("layers", None, "Layers to probe; default: all the model has.")
flags.DEFINE_integer("max_speakers", None, "Keep the first N speakers of each split.")
flags.DEFINE_integer("max_utterances_per_speaker", None,
                     "Keep the first N utterances of each speaker.")
flags.DEFINE_integer("seed", 0, "Random seed (subsampling, t-SNE, recognizer init).")


def check_required(*names: str) -> None:
    missing = [f"--{name}" for name in names if getattr(FLAGS, name) in (None, "")]
    if missing:
        raise app.UsageError(f"missing required flags: {', '.join(missing)}")


def check_common(argv) -> None:
    """Usage checks every probe CLI shares."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    check_required("timit_dir", "output_dir")
    if not FLAGS.saved_model and not FLAGS.model_dir:
        raise app.UsageError("give --saved_model or --model_dir")
    if not os.path.isdir(FLAGS.timit_dir):
        raise app.UsageError(f"--timit_dir={FLAGS.timit_dir}: not a directory")


def embedder_from_flags() -> FrameEmbedder:
    if FLAGS.saved_model:
        return FrameEmbedder.from_saved_model(FLAGS.saved_model, layers=FLAGS.layers)
    return FrameEmbedder.from_checkpoint(FLAGS.model_dir, FLAGS.checkpoint, layers=FLAGS.layers)


def split_from_flags(split: str):
    return data.load_split(FLAGS.timit_dir, split, FLAGS.max_speakers,
                           FLAGS.max_utterances_per_speaker)
