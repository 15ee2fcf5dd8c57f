"""Speaker verification on real speech: LibriSpeech recordings cut in halves.

    python benchmarks/librispeech_verification.py \
        --saved_models="CNN fc2=$DEMO/exports/demo_fc2/1,CNN fc1=$DEMO/exports/demo_fc1/1" \
        --output_dir=/tmp/libri_verification

The sample in `../shared/data/librispeech-251` holds one recording per speaker. Each is
cut in two (`eval.halves`): the first half enrolls, the second half tests. Speakers are
split at random (stratified by sex from `SPEAKERS.TXT`) into `--backend_speakers` that
train the PLDA backend (both halves: two utterances per speaker) and the rest, whose
enrollment halves are all tried against all their test halves (one target trial per test
speaker). Systems: every SavedModel in `--saved_models` (waveform -> embedding) and the
MFCC mean+std baseline (`eval.baseline`); backends: cosine, and mean + LDA + length norm
+ PLDA trained on the backend speakers (`eval.score`). Writes to `--output_dir`:

* `trials.txt` (VoxCeleb format), `speakers.tsv` (speaker, sex, set);
* `embeddings/<system>_{backend,test}.npz`, `scores/<system>_<backend>/` (eval.score runs);
* `table.md`, `table.csv`, `det.png` (`eval.report`), printed to stdout;
* `benchmark.json`: settings, speaker and trial counts, seconds taken.

`--training_speakers=NAME=speakers.tsv` names the speakers a system's model was trained
on; a model trained on any test speaker of this split is refused. A model trained by
`benchmarks/cross_session.py --test_speakers=126 --seed=S` holds out exactly this
benchmark's test speakers of `--seed=S` (the same `eval.halves.split_speakers` call), so
its `corpus/speakers.tsv` passes.

About 1-2 minutes with two small SavedModels on 2 cores.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from tqdm import tqdm  # noqa: E402

from eval import baseline, extract, halves, report, score  # noqa: E402
from eval.embeddings import save_embeddings  # noqa: E402
from tfspk import audio, trials as trials_lib  # noqa: E402
from tfspk.corpora.records import CorpusFormatError  # noqa: E402
from tfspk.corpora.speaker_sets import read_training_speakers  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_LIBRISPEECH_DIR = REPO_ROOT.parent / "shared" / "data" / "librispeech-251"
BASELINE_NAME = "MFCC mean+std"
SAMPLE_RATE = 16000
# Half a second: fewer frames than this and the CNN's receptive field (and MFCC
# statistics) say little about the speaker.
MIN_HALF_SAMPLES = SAMPLE_RATE // 2
_FILE_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)\.flac$")


def read_speaker_sexes(path: os.PathLike | str) -> dict[str, str]:
    """Speaker id -> 'F' or 'M' from LibriSpeech's pipe-separated `SPEAKERS.TXT`.

    Lines starting with ';' are comments. Raises CorpusFormatError naming file and line.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CorpusFormatError("file not found", path)
    sexes = {}
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip() or line.lstrip().startswith(";"):
                continue
            fields = [field.strip() for field in line.split("|")]
            if len(fields) < 2 or not fields[0].isdigit():
                raise CorpusFormatError(f"expected 'ID | SEX | ...', got {line.strip()!r}",
                                        path, number)
            if fields[1] not in ("F", "M"):
                raise CorpusFormatError(f"sex must be F or M, got {fields[1]!r}", path, number)
            sexes[fields[0]] = fields[1]
    return sexes


def read_librispeech(directory: os.PathLike | str, max_speakers: int = 0
                     ) -> tuple[list[extract.LoadedUtterance], dict[str, str]]:
    """Loads `SPEAKER-CHAPTER-UTT.flac` files (sorted) and each speaker's sex.

    `max_speakers` > 0 keeps the first that many files (for quick checks).

    Raises:
      CorpusFormatError naming the folder or file: no FLAC files, a name not in
      LibriSpeech's pattern, or a speaker missing from SPEAKERS.TXT.
    """
    directory = pathlib.Path(directory)
    paths = sorted(directory.glob("*.flac"))
    if not paths:
        raise CorpusFormatError("no .flac files", directory)
    if max_speakers > 0:
        paths = paths[:max_speakers]
    sexes = read_speaker_sexes(directory / "SPEAKERS.TXT")
    utterances = []
    for path in tqdm(paths, desc="reading audio", unit="file", file=sys.stderr):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise CorpusFormatError("name is not SPEAKER-CHAPTER-UTTERANCE.flac", path)
        speaker = match.group(1)
        if speaker not in sexes:
            raise CorpusFormatError(f"speaker {speaker} is not in SPEAKERS.TXT", path)
        waveform, _ = audio.load_audio(path, SAMPLE_RATE)
        utterances.append(extract.LoadedUtterance(path.stem, speaker, waveform))
    return utterances, {u.speaker: sexes[u.speaker] for u in utterances}


def parse_saved_models(spec: str) -> dict[str, str]:
    """`name=path,name=path` -> {name: path}; raises ValueError on a malformed item."""
    models = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ValueError(f"--saved_models item {item!r} is not name=path")
        if name in models or name == BASELINE_NAME:
            raise ValueError(f"--saved_models names system {name!r} twice (or as the "
                             "baseline)")
        models[name] = path
    return models


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "system"


def run_benchmark(librispeech_dir, saved_models: dict[str, str], output_dir,
                  backend_speakers: int = 125, seed: int = 0, lda_dim: int = 200,
                  max_speakers: int = 0, training_speakers: dict | None = None) -> dict:
    """Runs the whole benchmark (see the module docstring); returns `benchmark.json`'s
    contents, with the `eval.report` results under `results`.

    `training_speakers`: {system name: speakers its model was trained on}; a system
    trained on any test speaker is refused (ValueError naming the system and speakers)
    before anything is computed."""
    started = time.monotonic()
    output = pathlib.Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    utterances, sexes = read_librispeech(librispeech_dir, max_speakers)
    backend_set, test_set = halves.split_speakers(sorted(sexes), backend_speakers, seed,
                                                  strata=sexes)
    for name, trained_on in (training_speakers or {}).items():
        seen = sorted(set(trained_on) & set(test_set))
        if seen:
            raise ValueError(f"system {name!r} was trained on {len(seen)} of the "
                             f"{len(test_set)} test speakers of seed {seed} (e.g. "
                             f"{', '.join(seen[:5])}): train it on the backend speakers only")
    enrollment, test = halves.split_in_halves(utterances, MIN_HALF_SAMPLES)
    backend_ids = set(backend_set)
    backend_halves = [u for u in enrollment + test if u.speaker in backend_ids]
    test_enrollment = [u for u in enrollment if u.speaker not in backend_ids]
    test_halves = [u for u in test if u.speaker not in backend_ids]
    trials = halves.all_pairs_trials(test_enrollment, test_halves)
    trials_path = output / "trials.txt"
    trials_lib.write_voxceleb_trials(trials_path, trials)
    with open(output / "speakers.tsv", "w", encoding="utf-8") as stream:
        stream.writelines(f"{s}\t{sexes[s]}\t{'backend' if s in backend_ids else 'test'}\n"
                          for s in sorted(sexes))

    all_halves = backend_halves + test_enrollment + test_halves
    systems = {name: (lambda path=path: extract.extract_embeddings(path, all_halves))
               for name, path in saved_models.items()}
    systems[BASELINE_NAME] = lambda: baseline.baseline_embeddings(all_halves, SAMPLE_RATE)
    runs = []
    for name, embed in systems.items():
        ids, speakers, matrix = embed()
        in_backend = [speaker in backend_ids for speaker in speakers]
        paths = {}
        for part, keep in (("backend", True), ("test", False)):
            rows = [i for i, flag in enumerate(in_backend) if flag == keep]
            paths[part] = output / "embeddings" / f"{_slug(name)}_{part}.npz"
            save_embeddings(paths[part], [ids[i] for i in rows], matrix[rows],
                            [speakers[i] for i in rows])
        for backend in score.BACKENDS:
            run_dir = output / "scores" / f"{_slug(name)}_{backend}"
            training = ({"backend_train": str(paths["backend"]), "lda_dim": lda_dim}
                        if backend == "plda" else {})
            score.score_trials(str(trials_path), str(paths["test"]), str(run_dir),
                               backend=backend, **training)
            runs.append(report.Run(name, run_dir))
    results = report.make_report(runs, output)

    num_targets = sum(t.label for t in trials)
    speaker_of = {u.utt_id: u.speaker for u in all_halves}
    summary = {
        "librispeech_dir": os.fspath(librispeech_dir), "saved_models": saved_models,
        "seed": seed, "lda_dim": lda_dim,
        "training_speakers_checked": {name: len(trained_on) for name, trained_on in
                                      (training_speakers or {}).items()},
        "speakers": {"backend": len(backend_set), "test": len(test_set),
                     "backend_female": sum(sexes[s] == "F" for s in backend_set),
                     "test_female": sum(sexes[s] == "F" for s in test_set)},
        "trials": {"target": num_targets, "nontarget": len(trials) - num_targets,
                   "same_sex_nontarget": sum(
                       sexes[speaker_of[t.enroll]] == sexes[speaker_of[t.test]]
                       for t in trials if not t.label)},
        "half_seconds": {"min": min(len(u.waveform) for u in all_halves) / SAMPLE_RATE,
                         "mean": sum(len(u.waveform) for u in all_halves)
                         / len(all_halves) / SAMPLE_RATE},
        "seconds": round(time.monotonic() - started, 1),
    }
    (output / "benchmark.json").write_text(json.dumps(summary, indent=2) + "\n",
                                           encoding="utf-8")
    return summary | {"results": results}


FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the CLI's flags; called only when run as a program, so tests can import
    this module's functions without defining flags."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("saved_models", "", "Comma-separated name=SavedModel pairs "
                        "(signature serving_default: waveform, lengths -> embedding). The "
                        "MFCC mean+std baseline is always added.", **define)
    flags.DEFINE_string("librispeech_dir", str(DEFAULT_LIBRISPEECH_DIR),
                        "Folder of SPEAKER-CHAPTER-UTT.flac files (one per speaker) and "
                        "SPEAKERS.TXT.", **define)
    flags.DEFINE_string("output_dir", None, "Where trials, embeddings, scores and the "
                        "report go.", **define)
    flags.DEFINE_integer("backend_speakers", 125, "Speakers that train the PLDA backend; "
                         "the rest are test speakers.", lower_bound=2, **define)
    flags.DEFINE_integer("lda_dim", 200, "LDA dimension before PLDA (capped by the number "
                         "of backend speakers - 1 and the embedding dimension).",
                         lower_bound=0, **define)
    flags.DEFINE_list("training_speakers", [], "name=speakers.tsv pairs: the speakers "
                      "each --saved_models system was trained on (a shard set's "
                      "train.speakers.tsv or a tfrecords_tools.sessions speakers.tsv); a "
                      "system trained on a test speaker is refused.", **define)
    flags.DEFINE_integer("max_speakers", 0, "Use only the first N files (0: all); for "
                         "quick checks.", lower_bound=0, **define)
    flags.DEFINE_integer("seed", 0, "Seed of the backend/test speaker split.", **define)
    flags.mark_flag_as_required("output_dir", **define)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        saved_models = parse_saved_models(FLAGS.saved_models)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    for name, path in saved_models.items():
        if not os.path.isdir(path):
            raise app.UsageError(f"--saved_models {name}: {path} is not a directory")
    training_speakers = {}
    for item in FLAGS.training_speakers:
        name, sep, path = item.partition("=")
        if not sep or name not in saved_models:
            raise app.UsageError(f"--training_speakers item {item!r} is not name=path with "
                                 f"a name of --saved_models ({', '.join(saved_models)})")
        try:
            training_speakers[name] = read_training_speakers(path)
        except CorpusFormatError as error:
            raise app.UsageError(str(error)) from None
    try:
        summary = run_benchmark(FLAGS.librispeech_dir, saved_models, FLAGS.output_dir,
                                FLAGS.backend_speakers, FLAGS.seed, FLAGS.lda_dim,
                                FLAGS.max_speakers, training_speakers)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    output = pathlib.Path(FLAGS.output_dir)
    speakers, trials = summary["speakers"], summary["trials"]
    print(f"LibriSpeech halves: {speakers['backend']} backend speakers "
          f"({speakers['backend_female']} F), {speakers['test']} test speakers "
          f"({speakers['test_female']} F); {trials['target'] + trials['nontarget']} trials "
          f"({trials['target']} target, {trials['nontarget']} non-target, of which "
          f"{trials['same_sex_nontarget']} same-sex); halves {summary['half_seconds']['min']:.2f}"
          f" s shortest, {summary['half_seconds']['mean']:.2f} s mean")
    print((output / "table.md").read_text(encoding="utf-8"), end="")
    print(f"DET curves: {output / 'det.png'}; took {summary['seconds']:.0f} s")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
