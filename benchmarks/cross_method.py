r"""Cross-method generalization: one voice-production method held out of training entirely.

    python benchmarks/cross_method.py --held_out=klatt --work_dir=exp/cross_method/klatt

Methods: `espeak` (espeak-ng's own formant engine), `klatt` (espeak-ng's Klatt
cascade/parallel synthesizer, `--klatt_variant`) and `real` (LibriSpeech speakers from
`--librispeech_dir`). Every method but `--held_out` contributes `--train_speakers`
training speakers; the held-out method contributes `--test_speakers` speakers that are
the whole test set, so the CNN, the LDA+PLDA backends and the MFCC baseline's backend
never see a speaker, a recording or a voice of that method. Stages, each skipped when
its outputs exist (rerun the same command to resume; training resumes from its last
checkpoint):

1. `sources`: per synthetic method, `tfspk.synth.corpus.generate_voxceleb` with that
   engine and its own seed (so no two methods share a voice or a sentence draw), each
   speaker's `--utts_per_speaker` sentences joined into one recording, like a
   LibriSpeech file; for `real`, a seeded sex-stratified choice of speakers. Speaker ids
   are `<method>-<id>`.
2. `corpus`: every method's recordings in one manifest (`sources/sources.tsv`), then
   `tfrecords_tools.sessions.build_session_corpus` with the held-out method's speakers as
   the test set: recordings cut into `--segment_seconds` segments, each
   rendered in its own random recording session (training segments `--train_renders`
   times); trials pair every two test segments from different sessions.
3.-6. As `benchmarks/cross_session.py` (its stage functions): shards, `tfspk.train
   --flagfile=configs/cross_session_real.flags` (+ `--train_flags`), fc2 export, CNN fc2
   and MFCC mean+std embeddings, cosine and mean + LDA + PLDA scoring with the backend
   fitted on the training speakers' segments, `eval.report` table and DET.

`--work_dir/report.json` holds the rows, the methods and their speaker counts, the
corpus summary, the commands and timings, and `check`: the CNN's best EER against MFCC
+ PLDA on the held-out method (met when CNN <= `--target_ratio` x MFCC + PLDA).
`table.md`/`table.csv` and `det.png` are beside it. `settings.json` records the
arguments that shape the data; a rerun with different ones is refused (use another
`--work_dir`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from absl import app, flags  # noqa: E402

from benchmarks import cross_session  # noqa: E402

METHODS = ("espeak", "klatt", "real")
SYNTHETIC_METHODS = {"espeak": 1, "klatt": 2}  # method -> its seed stream
SYSTEMS = {key: cross_session.SYSTEMS[key] for key in ("cnn_fc2", "mfcc")}
# Arguments a rerun may change without rebuilding anything (training resumes).
_RESUMABLE = ("train_flags", "num_workers")


def method_of(speaker: str) -> str:
    """The method a `<method>-<id>` speaker id belongs to."""
    return speaker.split("-", 1)[0]


def _engine(method: str, klatt_variant: int) -> str:
    return "espeak" if method == "espeak" else f"klatt{klatt_variant}"


def write_manifest(path, utterances) -> None:
    """`path<TAB>speaker<TAB>utt_id` manifest (`tfspk.corpora.manifest`), atomically."""
    from tfspk.corpora import manifest
    from tfspk.shards.writer import atomic_write_text

    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(str(path), "\t".join(manifest.HEADER) + "\n" + "".join(
        f"{u.path}\t{u.speaker}\t{u.utt_id}\n" for u in utterances))


def synthetic_sources(method: str, output_dir, num_speakers: int, *, utts_per_speaker: int,
                      seed: int, klatt_variant: int = 1, spread: float | None = None,
                      num_workers: int = 1):
    """`num_speakers` speakers of a synthetic method, one recording each (their
    sentences joined in order). Returns `Utterance`s (speaker = utt_id = `<method>-<id>`);
    `recordings.tsv` (a manifest, written last) marks the stage done."""
    import numpy as np
    import soundfile

    from tfspk.corpora import manifest
    from tfspk.corpora.records import Utterance
    from tfspk.synth import corpus

    output = pathlib.Path(output_dir)
    listing = output / "recordings.tsv"
    if listing.exists():
        return manifest.read_manifest(listing)
    # Each method its own seed stream: espeak and Klatt speakers never share a voice's
    # parameters or sentences, so the held-out method's voices are new ones, not new
    # renderings of training voices.
    corpus.generate_voxceleb(
        str(output / "corpus"), num_speakers, utts_per_speaker,
        seed=seed * len(SYNTHETIC_METHODS) + SYNTHETIC_METHODS[method],
        spread=corpus.DEFAULT_SPREAD if spread is None else spread,
        num_test_speakers=2, sessions_per_speaker=utts_per_speaker,
        num_workers=num_workers, progress=True, engine=_engine(method, klatt_variant))
    utterances = []
    for speaker_dir in sorted((output / "corpus" / "wav").iterdir()):
        name = f"{method}-{speaker_dir.name}"
        pieces = [soundfile.read(path, dtype="int16")[0]
                  for path in sorted(speaker_dir.glob("*/*.wav"))]
        path = output / "recordings" / f"{name}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, np.concatenate(pieces), corpus.SAMPLE_RATE, subtype="PCM_16")
        utterances.append(Utterance(name, str(path), name))
    write_manifest(listing, utterances)
    return utterances


def real_sources(librispeech_dir, num_speakers: int, *, seed: int, held_out: bool):
    """`num_speakers` LibriSpeech speakers (all their recordings), chosen by the seeded
    sex-stratified split `benchmarks/cross_session.py` uses: its held-out side when
    `held_out`, else its training side. Speakers and ids get the `real-` prefix."""
    from eval.halves import split_speakers
    from tfrecords_tools import sessions as sessions_tool

    utterances, strata = sessions_tool.read_input("librispeech", librispeech_dir)
    speakers = sorted(strata)
    if not 2 <= num_speakers <= len(speakers) - 2:
        raise ValueError(f"{num_speakers} real speakers asked of {len(speakers)} in "
                         f"{librispeech_dir}: need 2 .. {len(speakers) - 2}")
    train, test = split_speakers(speakers, len(speakers) - num_speakers if held_out
                                 else num_speakers, seed, strata=strata)
    chosen = set(test if held_out else train)
    return [dataclasses.replace(u, speaker=f"real-{u.speaker}", utt_id=f"real-{u.utt_id}")
            for u in utterances if u.speaker in chosen]


def _check_settings(work: pathlib.Path, settings: dict) -> None:
    path = work / "settings.json"
    fixed = {k: v for k, v in settings.items() if k not in _RESUMABLE}
    if path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in fixed if before.get(k) != fixed[k])
        if changed:
            raise ValueError(f"{work} was built with other settings ({', '.join(changed)}: "
                             f"{[before.get(k) for k in changed]} now "
                             f"{[fixed[k] for k in changed]}); use another work_dir")
    else:
        work.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fixed, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def run_benchmark(work_dir, held_out: str, librispeech_dir=cross_session.DEFAULT_LIBRISPEECH_DIR,
                  *, train_speakers: int = 120, test_speakers: int = 60,
                  utts_per_speaker: int = 8, klatt_variant: int = 1,
                  spread: float | None = None, max_segments: int = 5,
                  segment_seconds: float = 3.0, train_renders: int = 6,
                  flagfile: str = "cross_session_real.flags", train_flags=(),
                  lda_dim: int = 200, num_workers: int = 2, seed: int = 0,
                  target_ratio: float = 1.0) -> dict:
    """Runs (or resumes) every stage in `work_dir`; returns `report.json`'s contents."""
    from eval import report
    from tfrecords_tools import sessions as sessions_tool
    if held_out not in METHODS:
        raise ValueError(f"held_out must be one of {METHODS}, got {held_out!r}")
    if not 1 <= klatt_variant <= 4:
        raise ValueError(f"klatt_variant must be 1..4, got {klatt_variant}")
    started = time.monotonic()
    flagfile = cross_session.resolve_flagfile(flagfile)
    work = pathlib.Path(work_dir).resolve()
    _check_settings(work, {
        "held_out": held_out, "librispeech_dir": os.fspath(librispeech_dir),
        "train_speakers": train_speakers, "test_speakers": test_speakers,
        "utts_per_speaker": utts_per_speaker, "klatt_variant": klatt_variant,
        "spread": spread, "max_segments": max_segments, "segment_seconds": segment_seconds,
        "train_renders": train_renders, "flagfile": flagfile, "seed": seed,
        "train_flags": list(train_flags), "num_workers": num_workers})
    corpus, shards = work / "corpus", work / "shards"
    model_dir, export_dir = work / "model", work / "export" / "fc2"
    emb, scores = work / "embeddings", work / "scores"
    commands: list = []
    counts = {m: test_speakers if m == held_out else train_speakers for m in METHODS}

    # 1-2. Sources per method, then the session corpus with the held-out method as the
    # whole test set (the sources are needed only to build it).
    if not (corpus / "summary.json").exists():
        utterances = []
        for method in METHODS:
            print(f"\n== sources: {method} ({counts[method]} "
                  f"{'held-out' if method == held_out else 'training'} speakers)",
                  flush=True)
            step = time.monotonic()
            if method == "real":
                utterances += real_sources(librispeech_dir, counts[method], seed=seed,
                                           held_out=method == held_out)
            else:
                utterances += synthetic_sources(
                    method, work / "sources" / method, counts[method],
                    utts_per_speaker=utts_per_speaker, seed=seed,
                    klatt_variant=klatt_variant, spread=spread, num_workers=num_workers)
            commands.append({"command": f"sources {method}",
                             "seconds": round(time.monotonic() - step, 1)})
        # The corpus is built from one manifest of every method's recordings, as
        # `tfrecords_tools.sessions --input_format=manifest` reads it.
        sources = work / "sources" / "sources.tsv"
        write_manifest(sources, utterances)
        utterances, _ = sessions_tool.read_input("manifest", sources)
        print("\n== corpus: sessions and cross-session trials", flush=True)
        step = time.monotonic()
        sessions_tool.build_session_corpus(
            utterances, corpus, test_speakers=None, seed=seed,
            held_out=sorted({u.speaker for u in utterances if method_of(u.speaker) == held_out}),
            segment_seconds=segment_seconds, max_segments=max_segments,
            train_renders=train_renders, num_workers=num_workers, progress=True)
        commands.append({"command": "tfrecords_tools.sessions (build_session_corpus)",
                         "seconds": round(time.monotonic() - step, 1)})
    summary = json.loads((corpus / "summary.json").read_text(encoding="utf-8"))
    trials = corpus / "trials.txt"
    manifests = {split: corpus / f"{split}.tsv" for split in ("train", "test")}

    # 3-6. The cross-session stages, unchanged.
    cross_session.build_shards(manifests, shards, commands)
    cross_session.train_model(flagfile, model_dir, shards, trials, seed, train_flags,
                              commands)
    cross_session.export_fc2(model_dir, export_dir, commands)
    cross_session.embed_systems(manifests, emb, export_dir, commands)
    runs, rows = cross_session.score_systems(SYSTEMS, trials, emb, scores, lda_dim)
    report.make_report(runs, work)

    check = cross_session.check_target(rows, target_ratio, baselines=("mfcc",))
    speakers = {}
    for line in (corpus / "speakers.tsv").read_text(encoding="utf-8").splitlines():
        speaker, _, role = line.split("\t")
        speakers.setdefault(method_of(speaker), {}).setdefault(role, 0)
        speakers[method_of(speaker)][role] += 1
    result = {"held_out": held_out, "methods": {
                  m: {"role": "test" if m == held_out else "train",
                      "engine": None if m == "real" else _engine(m, klatt_variant),
                      "speakers": speakers.get(m, {})} for m in METHODS},
              "librispeech_dir": os.fspath(librispeech_dir), "corpus": summary,
              "flagfile": str(flagfile), "train_flags": list(train_flags),
              "lda_dim": lda_dim, "rows": rows, "check": check,
              "steps_this_run": commands,
              "seconds_this_run": round(time.monotonic() - started, 1)}
    return cross_session.write_report(work, result, model_dir)


FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """CLI flags; defined only when run as a program, so tests can import the module."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_enum("held_out", None, METHODS, "Voice-production method kept out of "
                      "training: its speakers are the whole test set.", **define)
    flags.DEFINE_string("work_dir", None, "Where every stage writes (resumable).", **define)
    flags.DEFINE_string("librispeech_dir", str(cross_session.DEFAULT_LIBRISPEECH_DIR),
                        "Folder of SPEAKER-CHAPTER-UTT.flac files and SPEAKERS.TXT "
                        "(the `real` method).", **define)
    flags.DEFINE_integer("train_speakers", 120, "Training speakers of each method that is "
                         "not held out.", lower_bound=2, **define)
    flags.DEFINE_integer("test_speakers", 60, "Speakers of the held-out method (the test "
                         "set).", lower_bound=2, **define)
    flags.DEFINE_integer("utts_per_speaker", 8, "Synthetic sentences (about 2.7 s each) "
                         "per speaker, joined into one recording.", lower_bound=1,
                         **define)
    flags.DEFINE_integer("klatt_variant", 1, "espeak-ng Klatt variant (`klatt N`) of the "
                         "klatt method.", lower_bound=1, upper_bound=4, **define)
    cross_session.define_session_flags(flag_values)
    flags.DEFINE_integer("lda_dim", 200, "LDA dimension before PLDA (capped).",
                         lower_bound=0, **define)
    flags.DEFINE_integer("num_workers", 2, "Synthesis and session-rendering processes.",
                         lower_bound=1, **define)
    flags.DEFINE_integer("seed", 0, "Seed of the voices, the real speakers, the sessions "
                         "and training.", lower_bound=0, **define)
    flags.DEFINE_float("target_ratio", 1.0, "Check: CNN best EER <= this x MFCC + PLDA "
                       "EER on the held-out method.", lower_bound=0.0, **define)
    flags.mark_flags_as_required(["held_out", "work_dir"], **define)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not os.path.isdir(FLAGS.librispeech_dir):
        raise app.UsageError(f"--librispeech_dir={FLAGS.librispeech_dir}: not a directory")
    try:
        result = run_benchmark(
            FLAGS.work_dir, FLAGS.held_out, FLAGS.librispeech_dir,
            train_speakers=FLAGS.train_speakers, test_speakers=FLAGS.test_speakers,
            utts_per_speaker=FLAGS.utts_per_speaker, klatt_variant=FLAGS.klatt_variant,
            max_segments=FLAGS.max_segments, segment_seconds=FLAGS.segment_seconds,
            train_renders=FLAGS.train_renders, flagfile=FLAGS.flagfile_name,
            train_flags=shlex.split(FLAGS.train_flags), lda_dim=FLAGS.lda_dim,
            num_workers=FLAGS.num_workers, seed=FLAGS.seed,
            target_ratio=FLAGS.target_ratio)
    except ValueError as error:  # sizes the data cannot give, a changed work_dir
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    corpus = result["corpus"]
    roles = ", ".join(f"{m} {info['role']} {sum(info['speakers'].values())}"
                      for m, info in result["methods"].items())
    print(f"\nheld out: {result['held_out']} ({roles} speakers); "
          f"{corpus['trials']['target']} target / {corpus['trials']['nontarget']} "
          f"non-target cross-session trials; {corpus['segments']['train']} training "
          f"sessions")
    print((pathlib.Path(FLAGS.work_dir) / "table.md").read_text(encoding="utf-8"), end="")
    check = result["check"]
    mfcc = check["baseline_plda_eer"][SYSTEMS["mfcc"]]
    print(f"check (CNN best <= {check['target_ratio']}x MFCC + PLDA on "
          f"{result['held_out']}): {'met' if check['met'] else 'missed'}: "
          f"{100 * check['cnn_best_eer']:.2f}% / {100 * mfcc:.2f}% = "
          f"{check['ratio'][SYSTEMS['mfcc']]:.2f}x")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
