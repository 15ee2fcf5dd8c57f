"""Verification trial lists: VoxCeleb (``label enroll test``) and Kaldi (``enroll test
target|nontarget``).

VoxCeleb's lists (``veri_test.txt``, the cleaned ``veri_test2.txt``, ``list_test_hard2.txt``,
``list_test_all2.txt``) share one format: ``1 id10270/x6uYqmx31kE/00001.wav
id10270/8jEAjG6SegY/00008.wav``, 1 for a target (same speaker) trial and 0 for a
non-target one. In both formats an audio extension (``.wav``, ``.m4a``, ``.flac``) is
stripped so that ids match ``tfspk.corpora.read_voxceleb``'s ``utt_id``; the ids as the
list wrote them are kept in ``Trial.enroll_as_listed`` / ``test_as_listed`` for score files
that must name trials exactly as their list does.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Iterable, Optional, Sequence

from tfspk.corpora.records import LocatedError, read_table

#: Extensions removed from the paths of VoxCeleb-format lists.
AUDIO_EXTENSIONS = (".wav", ".m4a", ".flac")
_VOXCELEB_LABELS = {"1": 1, "0": 0}
_KALDI_LABELS = {"target": 1, "nontarget": 0}


class TrialListError(LocatedError):
    """A trial list is malformed, names unknown utterances or lacks a kind of trial."""


@dataclasses.dataclass(frozen=True)
class Trial:
    """One verification trial: ``label`` 1 (same speaker) or 0, and two utterance ids."""

    label: int
    enroll: str
    test: str
    #: The ids as the trial list spelled them (extension included); empty: same as above.
    enroll_as_listed: str = dataclasses.field(default="", compare=False)
    test_as_listed: str = dataclasses.field(default="", compare=False)

    def listed_ids(self) -> tuple[str, str]:
        """(enroll, test) exactly as the trial list wrote them."""
        return self.enroll_as_listed or self.enroll, self.test_as_listed or self.test


_log = logging.getLogger("tfspk.trials")
_MAX_LISTED = 5


def read_trials(path: os.PathLike | str,
                known_ids: Optional[Iterable[str]] = None, *,
                drop_duplicates: bool = False, self_trials: str = "warn") -> list[Trial]:
    """Reads a VoxCeleb or Kaldi trial list, in file order.

    The format is recognised from the first line (Kaldi when its third field is
    ``target``/``nontarget``, VoxCeleb when its first is ``0``/``1``) and every line must
    then follow it.

    Refused, with the line numbers: the same trial (enroll, test) listed twice (a duplicate: it would count twice in EER and
    DCF); two utterances listed with both labels, in either order (contradictory: one
    label is wrong, since whether two utterances share a speaker does not depend on
    which one is enrolled). ``b a`` after ``a b`` with the same label is a different
    trial and is kept (VoxCeleb's randomly drawn lists hold such pairs).
    ``drop_duplicates=True`` keeps the first line of each duplicated trial and logs how
    many were dropped (contradictions still raise). A trial of an utterance against
    itself (a certain target that flatters EER) is refused with ``self_trials="error"``
    (what training validation uses); the default ``"warn"`` keeps it and logs a warning
    with its line numbers, because existing score lists built as all pairs of one set
    contain them (``"keep"`` keeps them without a word).

    Args:
      path: the trial list.
      known_ids: utterance ids that exist (e.g. the ``utt_id`` of the evaluation set); when
        given, a trial naming any other id is an error.
      drop_duplicates: drop repeated pairs with the same label instead of refusing them.
      self_trials: "error", "warn" or "keep" for trials of an utterance against itself.

    Raises:
      TrialListError naming file and line for a malformed line, a label of the wrong kind,
      an id not in ``known_ids``, self trials, duplicates, contradictory labels; naming the
      file for a list without any target or without any non-target trial.
    """
    if self_trials not in ("error", "warn", "keep"):
        raise ValueError(f"self_trials must be 'error', 'warn' or 'keep', got {self_trials!r}")
    known = None if known_ids is None else set(known_ids)
    trials = []
    kind = None
    first_line: dict[tuple[str, str], int] = {}
    labels: dict[frozenset, tuple[int, int]] = {}  # pair -> (first line, label)
    self_lines, duplicates, contradictions = [], [], []
    for number, fields in read_table(path, 3, error=TrialListError):
        if kind is None:
            kind = "kaldi" if fields[2] in _KALDI_LABELS else "voxceleb"
        trial = _parse(fields, kind, path, number)
        if known is not None:
            for utt_id in (trial.enroll, trial.test):
                if utt_id not in known:
                    raise TrialListError(f"unknown utterance id {utt_id!r}", path, number)
        if trial.enroll == trial.test:
            self_lines.append(number)
            if self_trials == "error":
                continue
        pair = frozenset((trial.enroll, trial.test))
        if pair in labels and labels[pair][1] != trial.label:
            contradictions.append((number, labels[pair][0], trial))
            continue
        labels.setdefault(pair, (number, trial.label))
        key = (trial.enroll, trial.test)
        if key in first_line:
            duplicates.append((number, first_line[key]))
            continue
        first_line[key] = number
        trials.append(trial)
    _refuse_bad_pairs(path, self_lines if self_trials == "error" else [], duplicates,
                      contradictions, drop_duplicates)
    if self_lines and self_trials == "warn":
        _log.warning("%s: %d trial(s) of an utterance against itself on line(s) %s (kept; "
                     "they are certain targets)", path, len(self_lines),
                     ", ".join(map(str, self_lines[:_MAX_LISTED]))
                     + (" ..." if len(self_lines) > _MAX_LISTED else ""))
    num_targets = sum(trial.label for trial in trials)
    if num_targets == 0 or num_targets == len(trials):
        missing = "target" if num_targets == 0 else "non-target"
        raise TrialListError(f"no {missing} trials among {len(trials)}: EER and DCF need "
                             "both", path)
    return trials


def _refuse_bad_pairs(path, self_trials, duplicates, contradictions,
                      drop_duplicates: bool) -> None:
    def lines(numbers):
        shown = ", ".join(str(n) for n in numbers[:_MAX_LISTED])
        return shown + (f" (and {len(numbers) - _MAX_LISTED} more)"
                        if len(numbers) > _MAX_LISTED else "")

    problems = []
    first = None
    if self_trials:
        first = first or self_trials[0]
        problems.append(f"{len(self_trials)} trial(s) of an utterance against itself on "
                        f"line(s) {lines(self_trials)}")
    if contradictions:
        number, earlier, trial = contradictions[0]
        first = min(first or number, number)
        problems.append(
            f"{len(contradictions)} pair(s) with contradictory labels: line {number} "
            f"labels {trial.enroll!r} vs {trial.test!r} {trial.label}, line {earlier} "
            f"{1 - trial.label}" + ("" if len(contradictions) == 1 else
                                     "; also lines " + lines([c[0] for c in contradictions[1:]])))
    if duplicates and not drop_duplicates:
        first = min(first or duplicates[0][0], duplicates[0][0])
        problems.append(
            f"{len(duplicates)} duplicate trial(s): line(s) "
            f"{lines([f'{n} (= line {e})' for n, e in duplicates])}; pass drop_duplicates "
            "(--drop_duplicate_trials) to keep only the first of each")
    if problems:
        raise TrialListError("; ".join(problems), path, first)
    if duplicates:
        _log.warning("%s: dropped %d duplicate trial(s) (lines %s)", path, len(duplicates),
                     lines([n for n, _ in duplicates]))


def _parse(fields: list[str], kind: str, path, number: int) -> Trial:
    if kind == "kaldi":
        enroll, test, label = fields
        if label not in _KALDI_LABELS:
            raise TrialListError(f"Kaldi trial label must be 'target' or 'nontarget', got "
                                 f"{label!r}", path, number)
        return Trial(_KALDI_LABELS[label], _strip_audio_extension(enroll),
                     _strip_audio_extension(test), enroll, test)
    label, enroll, test = fields
    if label not in _VOXCELEB_LABELS:
        raise TrialListError(f"VoxCeleb trial label must be 0 or 1, got {label!r}", path,
                             number)
    return Trial(_VOXCELEB_LABELS[label], _strip_audio_extension(enroll),
                 _strip_audio_extension(test), enroll, test)


def _strip_audio_extension(name: str) -> str:
    stem, extension = os.path.splitext(name)
    return stem if extension.lower() in AUDIO_EXTENSIONS else name


def write_voxceleb_trials(path: os.PathLike | str, trials: Sequence[Trial]) -> None:
    """Writes `label enroll test` lines (VoxCeleb's `veri_test.txt` format)."""
    for trial in trials:
        for utt_id in (trial.enroll, trial.test):
            if not utt_id or any(c.isspace() for c in utt_id):
                raise ValueError(f"utterance id {utt_id!r} is empty or holds whitespace: "
                                 "it cannot be written to a trial list")
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        stream.writelines(f"{t.label} {t.enroll} {t.test}\n" for t in trials)
