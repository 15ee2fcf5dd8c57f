"""Checks a VoxCeleb1 tree before any work is spent on it: known counts and trial ids.

A week of training should not end at the first validation because one test utterance is
missing, so the recipe runs this in its first minute. ``check_voxceleb1`` lists every
problem at once (counts per part, trial ids absent from the test audio); the CLI prints
them and exits 1 when there is any::

    python -m tfspk.corpora.check --dev_root=$VOX1/vox1_dev_wav --test_root=$VOX1/vox1_test_wav \
        --meta=$VOX1/vox1_meta.csv --trials=$VOX1/veri_test.txt,$VOX1/veri_test2.txt \
        --expect=voxceleb1
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Optional, Sequence

from tfspk.corpora import voxceleb
from tfspk.corpora.records import CorpusFormatError
from tfspk.trials import TrialListError, read_trials


@dataclasses.dataclass(frozen=True)
class PartCounts:
    speakers: int
    utterances: int


#: Nagrani et al. (2017), VoxCeleb1 verification split: dev and test parts.
KNOWN_COUNTS = {
    "voxceleb1": {"dev": PartCounts(speakers=1211, utterances=148642),
                  "test": PartCounts(speakers=40, utterances=4874)},
}

#: How many missing ids a message names before it only counts the rest.
_NAMED_IDS = 10


def count_part(utterances) -> PartCounts:
    return PartCounts(speakers=len({utt.speaker for utt in utterances}),
                      utterances=len(utterances))


def check_voxceleb1(dev_root: str, test_root: str, meta_path: Optional[str],
                    trial_paths: Sequence[str], expect: Optional[str] = None) -> list[str]:
    """Returns every problem found (empty when the corpus is usable).

    Args:
      dev_root, test_root: trees holding ``wav/`` for the dev and test parts (may be the same).
      meta_path: ``vox1_meta.csv`` (default: looked for beside the roots).
      trial_paths: trial lists whose every id must be a test utterance.
      expect: a key of ``KNOWN_COUNTS`` whose speaker and utterance counts must match, or
        None to check trial ids only (synthetic or partial corpora).
    """
    problems: list[str] = []
    parts = {}
    for subset, root in (("dev", dev_root), ("test", test_root)):
        try:
            parts[subset] = voxceleb.read_voxceleb(root, subset=subset, meta_path=meta_path)
        except (CorpusFormatError, ValueError) as error:
            problems.append(f"{subset} part: {error}")
    if expect is not None:
        for subset, utterances in parts.items():
            found, wanted = count_part(utterances), KNOWN_COUNTS[expect][subset]
            if found != wanted:
                problems.append(
                    f"{subset} part at {dev_root if subset == 'dev' else test_root}: "
                    f"{found.speakers} speakers / {found.utterances} utterances, {expect} has "
                    f"{wanted.speakers} / {wanted.utterances}")
    if "test" in parts:
        test_ids = {utt.utt_id for utt in parts["test"]}
        for path in trial_paths:
            problems.extend(_check_trial_ids(path, test_ids))
    return problems


def _check_trial_ids(path: str, known_ids: set[str]) -> list[str]:
    try:
        trials = read_trials(path)
    except (TrialListError, OSError) as error:
        return [str(error)]
    missing = sorted({utt_id for trial in trials for utt_id in (trial.enroll, trial.test)
                      if utt_id not in known_ids})
    if not missing:
        return []
    named = ", ".join(missing[:_NAMED_IDS])
    more = f" and {len(missing) - _NAMED_IDS} more" if len(missing) > _NAMED_IDS else ""
    return [f"{path}: {len(missing)} trial ids have no test audio: {named}{more}"]


def define_flags(flag_values) -> None:
    from absl import flags
    flags.DEFINE_string("dev_root", None, "Tree holding wav/ of the dev part.",
                        flag_values=flag_values, required=True)
    flags.DEFINE_string("test_root", None, "Tree holding wav/ of the test part.",
                        flag_values=flag_values, required=True)
    flags.DEFINE_string("meta", None, "vox1_meta.csv (default: found beside the roots).",
                        flag_values=flag_values)
    flags.DEFINE_list("trials", [], "Trial lists whose ids must all be test utterances.",
                      flag_values=flag_values)
    flags.DEFINE_enum("expect", None, list(KNOWN_COUNTS),
                      "Known corpus whose speaker/utterance counts must match.",
                      flag_values=flag_values)


def main(argv, flag_values=None) -> int:
    from absl import flags
    flag_values = flag_values or flags.FLAGS
    del argv
    problems = check_voxceleb1(flag_values.dev_root, flag_values.test_root, flag_values.meta,
                               flag_values.trials, flag_values.expect)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"ok: {flag_values.dev_root} and {flag_values.test_root}"
              + (f" match {flag_values.expect}'s counts" if flag_values.expect else "")
              + (f"; every id of {', '.join(flag_values.trials)} has test audio"
                 if flag_values.trials else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    from absl import app, flags

    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback
    define_flags(flags.FLAGS)
    app.run(lambda argv: sys.exit(main(argv)), flags_parser=flagfiles.parse_flags_with_usage)
