"""Verification trials from one recording per speaker: cut each in two halves.

A corpus with a single utterance per speaker (such as the 251-speaker LibriSpeech
sample in `shared/data`) still yields a proper verification test: the first half of
each recording enrolls its speaker, the second half is a test segment, and every
enrollment half is tried against every test half. Same-speaker pairs are the target
trials; they share recording conditions but never audio.

Speakers are split first into a backend-training set (both halves kept as two
utterances per speaker, enough to estimate within-speaker variability for LDA and
PLDA) and a disjoint test set, so no backend parameter has seen a test speaker.

Utterances are `eval.extract.LoadedUtterance`-like objects (`utt_id`, `speaker`,
`waveform`); trials are `tfspk.trials.Trial`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

import numpy as np

from tfspk.trials import Trial

if TYPE_CHECKING:  # type hints only: importing eval.extract would import TensorFlow,
    # which the corpus builders' worker processes should not pay for.
    from eval.extract import LoadedUtterance

ENROLL_SUFFIX = "/enroll"
TEST_SUFFIX = "/test"


def split_in_halves(utterances: Sequence[LoadedUtterance], min_half_samples: int = 1
                    ) -> tuple[list[LoadedUtterance], list[LoadedUtterance]]:
    """Cuts every utterance into an enrollment half and a test half.

    The enrollment half is `waveform[:n // 2]` and the test half `waveform[n // 2:]`
    (the test half gets the extra sample of an odd length), so the two halves tile the
    recording without overlap. Their ids are the utterance id with `ENROLL_SUFFIX` or
    `TEST_SUFFIX` appended; the speaker is kept.

    Returns:
      (enrollment halves, test halves), both in the order of `utterances`.

    Raises:
      ValueError naming the utterance when a half would be shorter than
      `min_half_samples`, or when two utterances share an id.
    """
    if min_half_samples < 1:
        raise ValueError(f"min_half_samples must be at least 1, got {min_half_samples}")
    enrollment, test, seen = [], [], set()
    for utt in utterances:
        if utt.utt_id in seen:
            raise ValueError(f"utterance id {utt.utt_id!r} occurs twice")
        seen.add(utt.utt_id)
        waveform = np.asarray(utt.waveform)
        if waveform.ndim != 1:
            raise ValueError(f"utterance {utt.utt_id!r}: expected a 1-D waveform, got shape "
                             f"{waveform.shape}")
        middle = len(waveform) // 2
        if middle < min_half_samples:
            raise ValueError(f"utterance {utt.utt_id!r}: {len(waveform)} samples give halves "
                             f"shorter than the {min_half_samples} samples required")
        enrollment.append(dataclasses.replace(utt, utt_id=utt.utt_id + ENROLL_SUFFIX,
                                              waveform=waveform[:middle]))
        test.append(dataclasses.replace(utt, utt_id=utt.utt_id + TEST_SUFFIX,
                                        waveform=waveform[middle:]))
    return enrollment, test


def split_speakers(speakers: Sequence[str], num_backend: int, seed: int = 0,
                   strata: Optional[Mapping[str, str]] = None) -> tuple[list[str], list[str]]:
    """Randomly splits speakers into a backend-training set and a disjoint test set.

    With `strata` (speaker -> group, e.g. sex), each group is shared between the two
    sets in proportion to its size (largest remainders settle the rounding), so a
    random split cannot leave, say, the test set nearly all female.

    Returns:
      (backend speakers, test speakers), each sorted; `num_backend` backend speakers.

    Raises:
      ValueError when a speaker repeats, `num_backend` leaves either set with fewer
      than two speakers, or `strata` lacks a speaker.
    """
    unique = sorted(set(speakers))
    if len(unique) != len(speakers):
        raise ValueError("speakers must be distinct")
    if not 2 <= num_backend <= len(unique) - 2:
        raise ValueError(f"num_backend={num_backend} must leave at least 2 speakers on each "
                         f"side of {len(unique)} speakers")
    if strata is None:
        strata = {}
    else:
        missing = [s for s in unique if s not in strata]
        if missing:
            raise ValueError(f"no stratum for speakers {missing[:5]}")
    groups: dict[str, list[str]] = {}
    for speaker in unique:
        groups.setdefault(strata.get(speaker, ""), []).append(speaker)
    names = sorted(groups)
    exact = np.array([num_backend * len(groups[g]) / len(unique) for g in names])
    quota = np.floor(exact).astype(int)
    # Largest remainder: hand the leftover slots to the groups rounded down most.
    for index in np.argsort(-(exact - quota), kind="stable")[:num_backend - quota.sum()]:
        quota[index] += 1
    rng = np.random.default_rng(seed)
    backend = []
    for name, count in zip(names, quota):
        backend.extend(rng.permutation(groups[name])[:count].tolist())
    chosen = set(backend)
    return sorted(backend), [s for s in unique if s not in chosen]


def all_pairs_trials(enrollment: Sequence[LoadedUtterance], test: Sequence[LoadedUtterance]
                     ) -> list[Trial]:
    """Every enrollment utterance against every test utterance, enrollment-major.

    A trial is a target (label 1) when both sides have the same speaker.

    Raises:
      ValueError when the pairs hold no target or no non-target trial (EER needs both).
    """
    trials = [Trial(int(e.speaker == t.speaker), e.utt_id, t.utt_id)
              for e in enrollment for t in test]
    num_targets = sum(trial.label for trial in trials)
    if num_targets == 0 or num_targets == len(trials):
        missing = "target" if num_targets == 0 else "non-target"
        raise ValueError(f"no {missing} trials among the {len(trials)} pairs of "
                         f"{len(enrollment)} enrollment and {len(test)} test utterances")
    return trials
