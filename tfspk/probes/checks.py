"""Checks a probe runs before any work: a bad option is refused in seconds, naming it,
not after minutes of embedding (issue 13).

Every probe entry point (`broad_class.run`, `phone_recognition.phone_error_rates`,
`critical_phones.critical_phones`, `over_training.probe_checkpoints`, `run.run_all`)
calls the checks for its own options first. The options are named as the `probes` CLIs'
flags are (`per_layers`, `critical_layer`, ...), so the CLIs report a `ProbeOptionError`
as a flag error. Corpus problems (an alignment past the end of its audio, unreadable
audio) are `tfspk.probes.data.load_split`'s, when the split is read.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

from tfspk import phones
from tfspk.probes.frames import FrameEmbedderError


class ProbeOptionError(ValueError):
    """A probe option that cannot work with this model, corpus or run; `option` is its
    name (the CLI flag of the same name)."""

    def __init__(self, option: str, value, reason: str):
        self.option, self.value, self.reason = option, value, reason
        super().__init__(f"{option}={value}: {reason}")


class UnknownLayerError(ProbeOptionError, FrameEmbedderError):
    """A layer option naming layers the model does not have (also a FrameEmbedderError,
    which `FrameEmbedder(layers=...)` raised before these checks existed)."""


def check_layers(embedder, option: str, names: Optional[Sequence[str]]) -> None:
    """Every name in `names` (None: the model's own) is a layer of `embedder`."""
    unknown = [name for name in names or () if name not in embedder.layers]
    if unknown:
        raise UnknownLayerError(option, ",".join(names),
                                f"unknown layers {unknown}; {embedder.name} has "
                                f"{list(embedder.layers)}")


def check_phone_labels(option: str, labels: Sequence[str]) -> None:
    """Every label is TIMIT-61 (in any case): a typo would silently exclude nothing."""
    known = set(phones.TIMIT61)
    unknown = [label for label in labels if label.lower() not in known]
    if unknown:
        raise ProbeOptionError(option, ",".join(labels),
                               f"{unknown} not TIMIT-61 phone labels (e.g. h#, pau, epi)")


def check_min_utterances(option: str, utterances, minimum: int) -> None:
    """`minimum` >= 2 (one utterance is held out, the rest enrol) and some speaker of
    `utterances` has that many."""
    from tfspk.probes.data import group_by_speaker

    if minimum < 2:
        raise ProbeOptionError(option, minimum, "must be >= 2 (one utterance is held out, "
                               "the others enrol the speaker)")
    counts = [len(utts) for utts in group_by_speaker(utterances).values()]
    if not any(count >= minimum for count in counts):
        raise ProbeOptionError(option, minimum, f"no speaker has {minimum} utterances "
                               f"(the most any has is {max(counts, default=0)})")


def check_positive(option: str, value: int) -> None:
    if value < 1:
        raise ProbeOptionError(option, value, "must be >= 1")


def check_training_run(model_dir: str, option: str = "model_dir") -> list[tuple[int, str]]:
    """A training run with `model_spec.json` and at least one checkpoint; returns the
    checkpoints as `training.checkpointing.list_checkpoints` lists them."""
    from tfspk.training.checkpointing import list_checkpoints

    if not os.path.isdir(model_dir):
        raise ProbeOptionError(option, model_dir, "not a directory")
    if not os.path.isfile(os.path.join(model_dir, "model_spec.json")):
        raise ProbeOptionError(option, model_dir, "no model_spec.json: not a tfspk.train "
                               "model_dir")
    checkpoints = list_checkpoints(model_dir)
    if not checkpoints:
        raise ProbeOptionError(option, model_dir,
                               f"no checkpoints in {os.path.join(model_dir, 'checkpoints')}")
    return checkpoints
