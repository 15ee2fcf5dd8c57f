"""Flags shared by the probe CLIs (which model, which corpus, where the outputs go) and
`probe_main`, the error reporting of every probe CLI's `main`."""
from __future__ import annotations

import functools
import os

from absl import app, flags

from tfspk.probes import data
from tfspk.probes.checks import ProbeOptionError
from tfspk.probes.frames import FrameEmbedder
from tfspk.shards.cli import user_errors

FLAGS = flags.FLAGS


def define_once(define, name: str, default, help_text: str, flag_values=FLAGS, **kwargs):
    """Defines a flag unless `flag_values` has it: `probes.run` defines every probe's flags
    and several probes share some."""
    if name not in flag_values:
        define(name, default, help=help_text, flag_values=flag_values, **kwargs)


def define_common_flags(flag_values=FLAGS) -> None:
    """Model, corpus and output flags shared by every probe CLI (defined on demand, so
    importing a probe module defines no flags)."""
    string, integer = flags.DEFINE_string, flags.DEFINE_integer
    define_once(string, "saved_model", None,
                "SavedModel exported by tfspk.export (a version dir).", flag_values)
    define_once(string, "model_dir", None, "Training directory; used when --saved_model is "
                "absent (and by over_training).", flag_values)
    define_once(string, "checkpoint", None,
                "With --model_dir: step number or prefix; default latest.", flag_values)
    define_once(string, "timit_dir", None, "TIMIT-layout corpus (TRAIN/ and TEST/).",
                flag_values)
    define_once(string, "output_dir", None, "Where figures, tables and report.md go.",
                flag_values)
    define_once(flags.DEFINE_list, "layers", None,
                "Layers to probe; default: all the model has.", flag_values)
    define_once(integer, "max_speakers", None, "Keep the first N speakers of each split.",
                flag_values, lower_bound=1)
    define_once(integer, "max_utterances_per_speaker", None,
                "Keep the first N utterances of each speaker.", flag_values, lower_bound=1)
    define_once(integer, "seed", 0, "Random seed (subsampling, t-SNE, recognizer init).",
                flag_values, lower_bound=0)


def probe_main(main):
    """Wraps a probe CLI's `main(argv, flag_values)`: every check runs before any work,
    and a failed one ends the program with one `error: ...` line and exit status 2, no
    traceback (`tfspk.shards.cli.user_errors`). A `ProbeOptionError` (a flag that cannot
    work with this model or corpus, e.g. an unknown --per_layers) is named as the flag."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ProbeOptionError as error:
            raise ValueError(f"--{error}") from None
    return user_errors(wrapped)


def check_required(flag_values, *names: str) -> None:
    missing = [f"--{name}" for name in names if flag_values[name].value in (None, "")]
    if missing:
        raise app.UsageError(f"missing required flags: {', '.join(missing)}")


def check_common(argv, flag_values=FLAGS) -> None:
    """Usage checks every probe CLI shares."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    check_required(flag_values, "timit_dir", "output_dir")
    if not flag_values.saved_model and not flag_values.model_dir:
        raise app.UsageError("give --saved_model or --model_dir")
    if not os.path.isdir(flag_values.timit_dir):
        raise app.UsageError(f"--timit_dir={flag_values.timit_dir}: not a directory")


def embedder_from_flags(flag_values=FLAGS) -> FrameEmbedder:
    values = flag_values
    if values.saved_model:
        return FrameEmbedder.from_saved_model(values.saved_model, layers=values.layers)
    return FrameEmbedder.from_checkpoint(values.model_dir, values.checkpoint,
                                         layers=values.layers)


def split_from_flags(split: str, flag_values=FLAGS, max_speakers: int | None = None):
    """The TIMIT `split` the flags select; `max_speakers` overrides --max_speakers."""
    values = flag_values
    if max_speakers is None:
        max_speakers = values.max_speakers
    return data.load_split(values.timit_dir, split, max_speakers,
                           values.max_utterances_per_speaker)
