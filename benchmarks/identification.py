"""Speaker identification on real speech: enroll held-out LibriSpeech speakers, identify.

    python benchmarks/identification.py --model=EXPORT_DIR \
        [--exclude_speakers=DATA/train.speakers.tsv] [--num_enrolled=40] \
        [--num_impostors=40] [--threshold=far_0.01] [--output=identification.json]

`../shared/data/librispeech-251` holds one recording per speaker. Speakers the model
was trained on (`--exclude_speakers`: a `<split>.speakers.tsv` of the training shards,
or any file with the speaker id as the last field of each line) are left out; the rest
are shuffled (`--seed`) and dealt into three disjoint groups:

* enrolled (`--num_enrolled`): the first `--enroll_fraction` of each recording is
  enrolled into a `tfspk.speaker_db` database; the rest is cut into test segments of
  `--test_seconds` (the whole rest when 0), each identified among the enrolled speakers;
* impostors (`--num_impostors`): never enrolled; their test segments must come out
  "unknown" (open-set rejection);
* calibration (`--calibration_speakers`): used only when the threshold must be fitted
  (see below): their recordings are cut in halves, every first half scored against every
  second half, and `tfspk.calibration.fit_calibration` fitted on those trials.

Enrollment and test audio of a speaker come from one recording (the corpus holds no
other), never overlapping: same session and channel, so the accuracies are those of a
matched-condition test.

The open-set threshold (`--threshold`): a number (raw cosine), or the name of an
operating point (`far_0.01`, `bayes_p0.01`, ...) of the export's `calibration.json`;
when the export has none, or not that point, it is fitted on the calibration group.
Reported (stdout and `--output` JSON): closed-set top-1 and top-5 accuracy of the
enrolled speakers' segments, the impostor rejection rate and the open-set
identification rate (segments both accepted and attributed to the right speaker) at
the threshold, where the threshold came from, counts and seconds taken.

A few seconds with a small model on 2 cores, plus the model load.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from tfspk import audio, calibration, speaker_db  # noqa: E402
from tfspk.inference import SpeakerModel  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_LIBRISPEECH_DIR = REPO_ROOT.parent / "shared" / "data" / "librispeech-251"
FILE_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)\.flac$")
TOP_K = 5


def read_excluded(path) -> set[str]:
    """Speaker ids, the last tab/space-separated field of each non-empty line."""
    if not os.path.isfile(path):
        raise ValueError(f"--exclude_speakers={path}: file not found")
    with open(path, encoding="utf-8") as stream:
        return {line.split()[-1] for line in stream if line.strip()}


def list_speakers(directory) -> dict[str, str]:
    """Speaker id -> its recording (one per speaker in librispeech-251)."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise ValueError(f"--librispeech_dir={directory}: not a directory")
    files = {}
    for path in sorted(directory.glob("*.flac")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path}: name is not SPEAKER-CHAPTER-UTTERANCE.flac")
        files.setdefault(match.group(1), str(path))
    if not files:
        raise ValueError(f"--librispeech_dir={directory}: no .flac files")
    return files


def assign_groups(speakers, num_enrolled, num_impostors, num_calibration, seed):
    """Shuffled, disjoint (enrolled, impostors, calibration) speaker lists."""
    order = sorted(speakers)
    np.random.default_rng(seed).shuffle(order)
    needed = num_enrolled + num_impostors + num_calibration
    if needed > len(order):
        raise ValueError(f"--num_enrolled={num_enrolled} + --num_impostors={num_impostors} + "
                         f"--calibration_speakers={num_calibration} need {needed} speakers, "
                         f"{len(order)} are available after --exclude_speakers")
    enrolled = order[:num_enrolled]
    impostors = order[num_enrolled:num_enrolled + num_impostors]
    calibration_group = order[num_enrolled + num_impostors:needed]
    return enrolled, impostors, calibration_group


def cut(waveform, enroll_fraction, test_samples, min_samples):
    """(enrollment part, [test segments]) of one recording; segments below the model
    minimum are dropped."""
    split = int(len(waveform) * enroll_fraction)
    enrollment, rest = waveform[:split], waveform[split:]
    if test_samples <= 0:
        segments = [rest]
    else:
        segments = [rest[i:i + test_samples] for i in range(0, len(rest), test_samples)]
    return enrollment, [s for s in segments if len(s) >= min_samples]


def fit_threshold(model, files, speakers, name, far):
    """Fits a calibration on all-vs-all halves of `speakers`; returns (threshold, cal)."""
    halves = []
    for speaker in speakers:
        waveform = model.load_waveform(files[speaker])
        middle = len(waveform) // 2
        halves.append((waveform[:middle], waveform[middle:]))
    first = model.embed_waveforms([h[0] for h in halves])
    second = model.embed_waveforms([h[1] for h in halves])

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    scores = (unit(first) @ unit(second).T).ravel()
    labels = np.eye(len(speakers), dtype=bool).ravel()
    fitted = calibration.fit_calibration(scores, labels, 0.5, fars=(far,),
                                         default_threshold=calibration.far_name(far))
    key = name if name in fitted.thresholds else calibration.far_name(far)
    return fitted.threshold(key), fitted, key


def run(model_dir, librispeech_dir=DEFAULT_LIBRISPEECH_DIR, *, exclude_speakers=None,
        num_enrolled=40, num_impostors=40, calibration_speakers=40, enroll_fraction=0.5,
        test_seconds=0.0, threshold="far_0.01", far=0.01, seed=0, batch_size=16,
        db_dir=None) -> dict:
    """The benchmark; returns the results dict (what --output holds)."""
    if not 0.0 < enroll_fraction < 1.0:
        raise ValueError(f"--enroll_fraction must be in (0, 1), got {enroll_fraction}")
    if num_enrolled < 2:
        raise ValueError(f"--num_enrolled must be at least 2, got {num_enrolled}")
    started = time.monotonic()
    model = SpeakerModel.load_for_cli(model_dir)
    files = list_speakers(librispeech_dir)
    excluded = read_excluded(exclude_speakers) if exclude_speakers else set()
    available = [s for s in files if s not in excluded]
    try:
        value = float(threshold)
    except ValueError:
        value = None
    needs_fit = value is None and (model.calibration is None
                                   or threshold not in model.calibration.thresholds)
    enrolled, impostors, calibration_group = assign_groups(
        available, num_enrolled, num_impostors, calibration_speakers if needs_fit else 0,
        seed)

    if value is not None:
        chosen, source = value, "--threshold"
    elif not needs_fit:
        chosen, source = model.calibration.threshold(threshold), \
            f"{threshold} of {model_dir}/calibration.json"
    else:
        chosen, _, key = fit_threshold(model, files, calibration_group, threshold, far)
        source = (f"{key} fitted on {len(calibration_group)} calibration speakers "
                  f"({len(calibration_group) ** 2 - len(calibration_group)} non-target "
                  "trials)")

    test_samples = int(test_seconds * model.sample_rate)
    enrollment, tests = {}, []
    for speaker in enrolled + impostors:
        waveform = model.load_waveform(files[speaker])
        part, segments = cut(waveform, enroll_fraction, test_samples, model.min_samples)
        if speaker in enrolled:
            if len(part) < model.min_samples or not segments:
                raise ValueError(f"{files[speaker]}: too short to enroll and test "
                                 f"(--enroll_fraction={enroll_fraction})")
            enrollment[speaker] = part
        tests += [(speaker, segment) for segment in segments]

    record = speaker_db.model_record(model)
    with tempfile.TemporaryDirectory() as scratch:
        db = speaker_db.SpeakerDB(db_dir or os.path.join(scratch, "db"))
        embeddings = model.embed_waveforms(list(enrollment.values()), batch_size)
        for speaker, embedding in zip(enrollment, embeddings):
            db.enroll(speaker, [f"{speaker}/enroll"], embedding[None], record)
        queries = model.embed_waveforms([segment for _, segment in tests], batch_size)
        results = [db.identify(query, record, TOP_K, chosen) for query in queries]

    enrolled_set = set(enrolled)
    genuine = [(speaker, r) for (speaker, _), r in zip(tests, results)
               if speaker in enrolled_set]
    impostor = [r for (speaker, _), r in zip(tests, results) if speaker not in enrolled_set]
    top1 = np.mean([r["top_k"][0]["speaker"] == s for s, r in genuine])
    top5 = np.mean([s in [e["speaker"] for e in r["top_k"]] for s, r in genuine])
    open_set_identified = np.mean([r["speaker"] == s for s, r in genuine])
    rejected = np.mean([r["speaker"] == "unknown" for r in impostor]) if impostor else None
    return {
        "model": os.path.abspath(model.path), "fingerprint": model.fingerprint,
        "librispeech_dir": os.path.abspath(librispeech_dir),
        "num_enrolled_speakers": len(enrolled), "num_impostor_speakers": len(impostors),
        "num_calibration_speakers": len(calibration_group),
        "num_excluded_speakers": len(excluded & set(files)),
        "num_genuine_segments": len(genuine), "num_impostor_segments": len(impostor),
        "enroll_fraction": enroll_fraction, "test_seconds": test_seconds, "seed": seed,
        "top1_accuracy": float(top1), f"top{TOP_K}_accuracy": float(top5),
        "threshold": float(chosen), "threshold_source": source,
        "impostor_rejection_rate": None if rejected is None else float(rejected),
        "open_set_identification_rate": float(open_set_identified),
        "seconds": round(time.monotonic() - started, 1),
    }


def define_flags(flag_values=flags.FLAGS):
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("model", None, "tfspk export (BASE/NAME or BASE/NAME/<version>).",
                        **define)
    flags.DEFINE_string("librispeech_dir", str(DEFAULT_LIBRISPEECH_DIR),
                        "Folder of LibriSpeech FLAC files (read only).", **define)
    flags.DEFINE_string("exclude_speakers", None, "Speakers the model was trained on "
                        "(e.g. the training shards' <split>.speakers.tsv).", **define)
    flags.DEFINE_integer("num_enrolled", 40, "Speakers enrolled.", lower_bound=2, **define)
    flags.DEFINE_integer("num_impostors", 40, "Speakers never enrolled (open-set).",
                         lower_bound=0, **define)
    flags.DEFINE_integer("calibration_speakers", 40, "Speakers that fit the threshold when "
                         "the export's calibration lacks it.", lower_bound=2, **define)
    flags.DEFINE_float("enroll_fraction", 0.5, "Leading part of a recording enrolled.",
                       **define)
    flags.DEFINE_float("test_seconds", 0.0, "Test segment length (0: the whole rest).",
                       lower_bound=0.0, **define)
    flags.DEFINE_string("threshold", "far_0.01", "Raw cosine threshold, or an operating "
                        "point name of the export's calibration.json.", **define)
    flags.DEFINE_float("far", 0.01, "False-accept rate of a fitted threshold.",
                       lower_bound=1e-6, upper_bound=0.5, **define)
    flags.DEFINE_integer("seed", 0, "Speaker shuffle.", **define)
    flags.DEFINE_string("output", None, "Write the results JSON here.", **define)
    flags.mark_flag_as_required("model", **define)


def main(argv, flag_values=flags.FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flag_values
    try:
        results = run(f.model, f.librispeech_dir, exclude_speakers=f.exclude_speakers,
                      num_enrolled=f.num_enrolled, num_impostors=f.num_impostors,
                      calibration_speakers=f.calibration_speakers,
                      enroll_fraction=f.enroll_fraction, test_seconds=f.test_seconds,
                      threshold=f.threshold, far=f.far, seed=f.seed)
    except (ValueError, audio.AudioError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    text = json.dumps(results, indent=2)
    print(text)
    if f.output:
        pathlib.Path(f.output).write_text(text + "\n")


if __name__ == "__main__":
    from tfspk import flagfiles

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
