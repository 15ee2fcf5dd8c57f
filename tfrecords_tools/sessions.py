r"""Cross-session corpus and trials: recordings cut into segments, one session each.

    python -m tfrecords_tools.sessions --input_format=librispeech \
        --input=../shared/data/librispeech-251 --output_dir=data/libri_sessions \
        --test_speakers=100 --segment_seconds=3 --max_segments=4 --train_renders=2

Speakers are split first (`eval.halves.split_speakers`, stratified by sex when it is
known, seeded) into train speakers and disjoint test speakers, so nothing derived from a
test speaker's audio reaches training or the backend. Each recording is cut into up to
`--max_segments` non-overlapping segments of `--segment_seconds`, and every segment is
recorded in its own random session (`tfspk.sessions`: room, noise at an SNR, microphone
EQ, telephone band, level, codec). Train speakers' segments may be rendered
`--train_renders` times, each in a new session (more channel variety per word); test
segments are rendered once. Written to `--output_dir`:

* `audio/<speaker>/<utt_id>.flac`, 16-bit;
* `train.tsv`, `test.tsv`: manifests (`path<TAB>speaker<TAB>utt_id`, paths relative);
* `sessions.jsonl`: per segment its id, speaker, split, source file and span, render and
  channel (`SessionChannel.dumps`), enough to re-render it bit for bit;
* `trials.txt` (VoxCeleb format): every pair of test segments; enrollment and test always
  come from different sessions and different audio;
* `speakers.tsv` (speaker, sex, set) and `summary.json` (counts, settings).

The same flags give the same bytes whatever `--num_workers`.
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import pathlib
import sys
import time
from typing import Mapping, Optional, Sequence

import numpy as np
import soundfile
from absl import app, flags
from tqdm import tqdm

from tfspk import audio, sessions
from tfspk.corpora import librispeech, manifest
from tfspk.corpora.records import CorpusFormatError, Utterance
from tfspk.trials import Trial, write_voxceleb_trials

INPUT_FORMATS = ("librispeech", "manifest")
SAMPLE_RATE = 16000


@dataclasses.dataclass(frozen=True)
class Segment:
    """One rendered segment: `[start, end)` samples of `source` recorded in `channel`."""
    utt_id: str
    speaker: str
    split: str
    source_utt: str
    source_path: str
    start: int
    end: int
    render: int
    channel: sessions.SessionChannel

    @property
    def audio_path(self) -> str:
        return f"audio/{self.speaker}/{self.utt_id.split('/')[-1]}.flac"

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["channel"] = self.channel.to_json()
        return data


def plan_segments(utterances: Sequence[Utterance], lengths: Sequence[int],
                  train_speakers: set, *, segment_samples: int, max_segments: int,
                  train_renders: int, seed: int, session_options: Mapping | None = None,
                  train_segment_samples: int | None = None) -> list[Segment]:
    """Segments and their sessions, in input order. Segment k of an utterance of
    `n` samples is `[k L, (k + 1) L)` for k < min(max_segments, n // L), with L =
    `segment_samples` for test speakers and `train_segment_samples` (default the same)
    for train speakers; each (utterance, segment, render) draws its session from its own
    seeded generator, so the plan does not depend on the order work is done in."""
    options = dict(session_options or {})
    planned = []
    for index, (utt, length) in enumerate(zip(utterances, lengths)):
        split = "train" if utt.speaker in train_speakers else "test"
        renders = train_renders if split == "train" else 1
        if split == "train" and train_segment_samples:
            segment_samples_here = train_segment_samples
        else:
            segment_samples_here = segment_samples
        for k in range(min(max_segments, length // segment_samples_here)):
            for render in range(renders):
                suffix = f"-seg{k}" + (f"-r{render}" if renders > 1 else "")
                utt_id = f"{utt.speaker}/{utt.utt_id.replace('/', '_')}{suffix}"
                rng = np.random.default_rng([seed, index, k, render])
                channel = sessions.random_session(rng, utt_id, **options)
                planned.append(Segment(utt_id, utt.speaker, split, utt.utt_id, utt.path,
                                       utt.start + k * segment_samples_here,
                                       utt.start + (k + 1) * segment_samples_here, render,
                                       channel))
    return planned


def cross_session_trials(segments: Sequence[Segment]) -> list[Trial]:
    """Every unordered pair of segments (earlier one enrolls) whose sessions and source
    spans differ: same-speaker pairs are targets."""
    trials = []
    for i, first in enumerate(segments):
        for second in segments[i + 1:]:
            if first.channel.session_id == second.channel.session_id or (
                    first.source_utt == second.source_utt and first.start == second.start):
                continue
            trials.append(Trial(int(first.speaker == second.speaker), first.utt_id,
                                second.utt_id))
    return trials


def _render(task) -> int:
    """Worker: loads one source recording and writes its planned segments."""
    output_dir, source_path, segments = task
    waveform, _ = audio.load_audio(source_path, SAMPLE_RATE)
    for segment in segments:
        rendered = sessions.apply_session(waveform[segment.start:segment.end], SAMPLE_RATE,
                                          segment.channel)
        path = pathlib.Path(output_dir) / segment.audio_path
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.flac")
        soundfile.write(temporary, rendered, SAMPLE_RATE, subtype="PCM_16")
        os.replace(temporary, path)  # a killed build never leaves half a file
    return len(segments)


def read_input(input_format: str, path: os.PathLike | str, max_files: int = 0
               ) -> tuple[list[Utterance], Optional[dict[str, str]]]:
    """Utterances and, for LibriSpeech, speaker -> sex (the split's strata)."""
    if input_format == "librispeech":
        utterances = librispeech.read_librispeech_folder(path, max_files)
        return utterances, {u.speaker: u.meta["sex"] for u in utterances}
    if input_format == "manifest":
        utterances = manifest.read_manifest(path)
        return (utterances[:max_files] if max_files > 0 else utterances), None
    raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")


def build_session_corpus(utterances: Sequence[Utterance], output_dir: os.PathLike | str, *,
                         test_speakers: Optional[int], seed: int = 0,
                         strata: Optional[Mapping[str, str]] = None,
                         segment_seconds: float = 3.0, max_segments: int = 4,
                         train_renders: int = 1, train_segment_seconds: float = 0.0,
                         session_options: Mapping | None = None,
                         num_workers: int = 1, progress: bool = False,
                         held_out: Optional[Sequence[str]] = None) -> dict:
    """Builds the corpus described in the module docstring; returns `summary.json`'s
    contents.

    `held_out`, when given, is the test set itself (at least 2 of the utterances'
    speakers, all others train; `test_speakers` must then be None or its size), for
    callers that split by something other than chance, e.g. the voice-production method
    (`benchmarks/cross_method.py`).

    Raises:
      ValueError (CorpusFormatError for input files) naming the file or argument: bad
      sizes, unreadable audio, or a test set without target or non-target trials.
    """
    from eval.halves import split_speakers  # the split shared with the halves benchmark

    started = time.monotonic()
    if segment_seconds <= 0 or max_segments < 1 or train_renders < 1 or (
            train_segment_seconds < 0):
        raise ValueError(f"segment_seconds={segment_seconds}, max_segments={max_segments}, "
                         f"train_segment_seconds={train_segment_seconds} (0: same), "
                         f"train_renders={train_renders}: all must be positive")
    segment_samples = int(round(segment_seconds * SAMPLE_RATE))
    train_segment_samples = int(round(train_segment_seconds * SAMPLE_RATE)) or None
    output = pathlib.Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    speakers = sorted({u.speaker for u in utterances})
    if held_out is None:
        train_set, test_set = split_speakers(speakers, len(speakers) - test_speakers, seed,
                                             strata=strata)
    else:
        test_set = sorted(set(held_out))
        unknown = sorted(set(test_set) - set(speakers))
        if unknown or len(test_set) < 2 or len(test_set) > len(speakers) - 2 or (
                test_speakers not in (None, len(test_set))):
            raise ValueError(f"held_out: {len(test_set)} speakers (test_speakers="
                             f"{test_speakers}) of {len(speakers)}, unknown {unknown[:5]}: "
                             "need at least 2 known speakers on each side")
        train_set = sorted(set(speakers) - set(test_set))
    lengths = []
    for utt in utterances:
        try:
            frames = soundfile.info(utt.path).frames
            rate = soundfile.info(utt.path).samplerate
        except (RuntimeError, soundfile.LibsndfileError) as error:
            raise CorpusFormatError(f"unreadable audio: {error}", utt.path) from None
        end = utt.end if utt.end is not None else frames
        lengths.append(int((end - utt.start) * SAMPLE_RATE // rate))
    planned = plan_segments(utterances, lengths, set(train_set),
                            segment_samples=segment_samples, max_segments=max_segments,
                            train_renders=train_renders, seed=seed,
                            session_options=session_options,
                            train_segment_samples=train_segment_samples)
    test_segments = [s for s in planned if s.split == "test"]
    trials = cross_session_trials(test_segments)
    num_targets = sum(t.label for t in trials)
    if num_targets == 0 or num_targets == len(trials):
        raise ValueError(f"the {len(test_segments)} test segments of {len(test_set)} test "
                         f"speakers give {num_targets} target trials of {len(trials)}: "
                         "need both kinds (longer recordings or shorter --segment_seconds)")

    by_source: dict[str, list[Segment]] = {}
    for segment in planned:
        by_source.setdefault(segment.source_path, []).append(segment)
    tasks = [(str(output), path, group) for path, group in by_source.items()]
    bar = tqdm(total=len(planned), desc="rendering sessions", unit="segment",
               file=sys.stderr, disable=not progress)
    if num_workers > 1:
        # spawn: the parent may hold TensorFlow or other threads that fork would copy.
        with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
            for done in pool.imap_unordered(_render, tasks):
                bar.update(done)
    else:
        for task in tasks:
            bar.update(_render(task))
    bar.close()

    for split in ("train", "test"):
        with open(output / f"{split}.tsv", "w", encoding="utf-8") as stream:
            stream.write("\t".join(manifest.HEADER) + "\n")
            stream.writelines(f"{s.audio_path}\t{s.speaker}\t{s.utt_id}\n"
                              for s in planned if s.split == split)
    with open(output / "sessions.jsonl", "w", encoding="utf-8") as stream:
        stream.writelines(json.dumps(s.to_json(), sort_keys=True) + "\n" for s in planned)
    write_voxceleb_trials(output / "trials.txt", trials)
    train_ids = set(train_set)
    with open(output / "speakers.tsv", "w", encoding="utf-8") as stream:
        stream.writelines(f"{s}\t{(strata or {}).get(s, '-')}\t"
                          f"{'train' if s in train_ids else 'test'}\n" for s in speakers)
    segmented = {s.speaker for s in planned}
    summary = {
        "seed": seed, "segment_seconds": segment_seconds, "max_segments": max_segments,
        "train_segment_seconds": train_segment_seconds or segment_seconds,
        "train_renders": train_renders, "session_options": dict(session_options or {}),
        "speakers": {"train": len(train_set), "test": len(test_set),
                     "train_without_segments": len(set(train_set) - segmented),
                     "test_without_segments": len(set(test_set) - segmented)},
        "segments": {"train": len(planned) - len(test_segments),
                     "test": len(test_segments)},
        "trials": {"target": num_targets, "nontarget": len(trials) - num_targets},
        "seconds": round(time.monotonic() - started, 1),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n",
                                         encoding="utf-8")
    return summary


FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """CLI flags; defined when run as a program, so importing this module defines none."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_enum("input_format", "librispeech", INPUT_FORMATS,
                      "librispeech: a folder of SPEAKER-CHAPTER-UTT.flac and SPEAKERS.TXT "
                      "(split stratified by sex); manifest: path<TAB>speaker[<TAB>utt_id].",
                      **define)
    flags.DEFINE_string("input", None, "LibriSpeech folder or manifest TSV.", **define)
    flags.DEFINE_string("output_dir", None, "Where the corpus goes.", **define)
    flags.DEFINE_integer("test_speakers", 100, "Held-out test speakers; the rest train.",
                         lower_bound=2, **define)
    flags.DEFINE_float("segment_seconds", 3.0, "Segment length (s).", lower_bound=0.5,
                       **define)
    flags.DEFINE_float("train_segment_seconds", 0.0, "Segment length (s) of train "
                       "speakers (0: --segment_seconds); longer segments give training "
                       "more crop positions per session.", lower_bound=0.0, **define)
    flags.DEFINE_integer("max_segments", 4, "Segments per recording at most.",
                         lower_bound=1, **define)
    flags.DEFINE_integer("train_renders", 1, "Sessions each train segment is rendered in.",
                         lower_bound=1, **define)
    flags.DEFINE_float("reverb_probability", 0.5, "Sessions in a simulated room.",
                       lower_bound=0.0, upper_bound=1.0, **define)
    flags.DEFINE_float("noise_probability", 0.7, "Sessions with background noise.",
                       lower_bound=0.0, upper_bound=1.0, **define)
    flags.DEFINE_list("snr_range", ["5", "25"], "Uniform SNR range (dB) of the noise.",
                      **define)
    flags.DEFINE_float("telephone_probability", 0.2, "Sessions through the telephone band.",
                       lower_bound=0.0, upper_bound=1.0, **define)
    flags.DEFINE_float("codec_probability", 0.4, "Sessions through OGG Vorbis or MP3.",
                       lower_bound=0.0, upper_bound=1.0, **define)
    flags.DEFINE_integer("max_files", 0, "Use only the first N recordings (0: all); for "
                         "quick checks.", lower_bound=0, **define)
    flags.DEFINE_integer("seed", 0, "Seed of the speaker split and of every session.",
                         lower_bound=0, **define)
    flags.DEFINE_integer("num_workers", 1, "Rendering processes.", lower_bound=1, **define)
    flags.mark_flags_as_required(["input", "output_dir"], **define)


def session_options_from_flags(flag_values: flags.FlagValues = FLAGS) -> dict:
    try:
        snr = tuple(float(v) for v in flag_values.snr_range)
    except ValueError:
        snr = ()
    if len(snr) != 2 or snr[0] > snr[1]:
        raise app.UsageError(f"--snr_range must be two numbers low,high; got "
                             f"{','.join(flag_values.snr_range)}")
    return {"reverb_probability": flag_values.reverb_probability,
            "noise_probability": flag_values.noise_probability, "snr_range": snr,
            "telephone_probability": flag_values.telephone_probability,
            "codec_probability": flag_values.codec_probability}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    options = session_options_from_flags()
    try:
        utterances, strata = read_input(FLAGS.input_format, FLAGS.input, FLAGS.max_files)
        summary = build_session_corpus(
            utterances, FLAGS.output_dir, test_speakers=FLAGS.test_speakers,
            seed=FLAGS.seed, strata=strata, segment_seconds=FLAGS.segment_seconds,
            train_segment_seconds=FLAGS.train_segment_seconds,
            max_segments=FLAGS.max_segments, train_renders=FLAGS.train_renders,
            session_options=options, num_workers=FLAGS.num_workers, progress=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
