"""Fine-tuning gain on real speech: a trained model before, fine-tuned, and from scratch.

    python benchmarks/finetune_gain.py --init_from=demo_out/model \
        --output_dir=/tmp/finetune_gain [--max_steps=1000] [--adapt_speakers=151]

    # the real-speech README demo's model; its training speakers stay out of both sets:
    python benchmarks/finetune_gain.py --init_from=demo_out/model \
        --exclude_speakers=demo_out/corpora/sessions/speakers.tsv \
        --output_dir=/tmp/finetune_gain_real --adapt_speakers=60

Issue 12's fine-tuning check. `../shared/data/librispeech-251` holds one recording per
speaker. Its speakers (less `--exclude_speakers`, the source model's training speakers)
are split at random (`--seed`, stratified by sex from
`SPEAKERS.TXT`) into an adaptation set (`--adapt_speakers`) and a disjoint held-out set.
The adaptation speakers' recordings become training shards (`tfrecords_tools.build`,
manifest input); two runs train on them with the same flags for `--max_steps` steps
(the fine-tuned one adds `--finetune_flags`):

* `finetuned`: `tfspk.train --init_from=INIT_FROM` (the layers up to the embedding from
  the source model, a new head for the adaptation speakers);
* `scratch`: the same command without `--init_from` (same architecture, random init).

The flags are `--train_flagfile` (default `configs/demo.flags`, the demo model's architecture
and front end) followed by the adaptation recipe's (`recipes/adapt/run.sh`): constant
learning rate `--learning_rate`, no warm-up, no augmentation, no validation; then
`--train_flags`. The source model itself is the third system, `before`.

Evaluation, on held-out speakers only: each recording is cut into non-overlapping
`--segment_seconds` segments (a shorter tail is dropped) and every pair of distinct
segments is a trial (a target when both come from one speaker: same recording, never the
same audio); a segment `tfspk.audio.check_audio` refuses (silence) is left out and
listed in the JSON. With `--segment_seconds=0` each recording is cut in halves instead and
every first half is tried against every second half (`eval.halves`, as
`benchmarks/librispeech_verification.py` does). Backends (`eval.score`): cosine, and
mean + LDA + length norm + PLDA trained on the adaptation speakers' segments.

Writes to `--output_dir`: `data/` (shards), `models/{finetuned,scratch}/` (runs),
`exports/{before,finetuned,scratch}/1/`, `embeddings/`, `scores/<system>_<backend>/`,
`trials.txt`, `speakers.tsv` (speaker, sex, set), and `finetune_gain.json` (settings, the
exact train flags of both runs, speaker/segment/trial counts, EER and minDCF of every
system and backend, seconds); the table is printed. Every step is skipped on a rerun
when its output exists (a training run resumes from its checkpoints).

About 2 s per step with the demo architecture on 2 busy CPU cores.
"""
from __future__ import annotations

import json
import os
import pathlib
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from eval import halves  # noqa: E402
from eval.embeddings import save_embeddings  # noqa: E402
from tfspk import audio, trials as trials_lib  # noqa: E402
from tfspk.corpora import librispeech  # noqa: E402
from tfspk.corpora.records import CorpusFormatError  # noqa: E402
from tfspk.corpora.speaker_sets import read_training_speakers  # noqa: E402
from tfspk.trials import Trial  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_LIBRISPEECH_DIR = REPO_ROOT.parent / "shared" / "data" / "librispeech-251"
SAMPLE_RATE = 16000
SYSTEMS = ("before", "finetuned", "scratch")
BACKENDS = ("cosine", "plda")
TRAINED = ("finetuned", "scratch")
MIN_DCF = "min_dcf_p0.01"  # the table's minDCF column


def adaptation_flags(model_dir, train_data, max_steps, learning_rate):
    """The adaptation recipe's stage-2 flags (recipes/adapt/run.sh), after --flagfile:
    the new data and model dir, a constant learning rate, no augmentation, no
    validation (the held-out speakers are only for the final comparison)."""
    return [f"--model_dir={model_dir}", f"--train_data={train_data}", "--speakers_tsv=",
            "--num_speakers=0", f"--max_steps={max_steps}",
            f"--learning_rate={learning_rate}", "--lr_schedule=constant", "--warmup_steps=0",
            "--augmentation_data=", "--augment_probability=0", "--augment_reverb=0",
            "--augment_noise=0", "--augment_music=0", "--augment_babble=0",
            "--validation_data=", "--validation_trials=", f"--validate_every={max_steps}",
            f"--checkpoint_every={max_steps}"]


def train_run(args: list[str]) -> dict:
    """Parses `tfspk.train` arguments (flag files included) exactly as the CLI does and
    trains; returns the trainer's last metrics."""
    from tfspk import train as train_cli
    from tfspk.training import trainer

    flag_values = flags.FlagValues()
    train_cli.define_flags(flag_values)
    flag_values(["tfspk.train", *args])
    config = train_cli.config_from_flags(flag_values)
    return trainer.train(config, trainer.preflight(config))


def segments_of(utterance, waveform, segment_samples):
    """`LoadedUtterance`s of `waveform` cut into `segment_samples` pieces (tail dropped),
    ids `<utt_id>/<k>`."""
    from eval.extract import LoadedUtterance

    count = len(waveform) // segment_samples
    return [LoadedUtterance(f"{utterance.utt_id}/{k}", utterance.speaker,
                            waveform[k * segment_samples:(k + 1) * segment_samples],
                            utterance.path) for k in range(count)]


def pair_trials(segments) -> list[Trial]:
    """Every unordered pair of distinct segments; target when the speakers match."""
    trials = [Trial(int(a.speaker == b.speaker), a.utt_id, b.utt_id)
              for i, a in enumerate(segments) for b in segments[i + 1:]]
    targets = sum(t.label for t in trials)
    if targets == 0 or targets == len(trials):
        raise ValueError(f"{len(segments)} held-out segments give no "
                         f"{'target' if targets == 0 else 'non-target'} trial: use shorter "
                         "--segment_seconds or more speakers")
    return trials


def usable(segments, dropped: list):
    """The segments `tfspk.audio.check_audio` accepts (a 3-s cut can be all silence);
    the ids of the others are appended to `dropped`."""
    kept = []
    for segment in segments:
        try:
            audio.check_audio(segment.waveform, SAMPLE_RATE, segment.path or segment.utt_id)
        except audio.AudioError:
            dropped.append(segment.utt_id)
            continue
        kept.append(segment)
    return kept


def cut_held_out(loaded, segment_seconds, dropped: list):
    """(segments to embed, trials) of the held-out recordings; unusable segments are
    left out (their ids appended to `dropped`)."""
    if segment_seconds > 0:
        segment_samples = int(round(segment_seconds * SAMPLE_RATE))
        segments = usable([s for utt, wave in loaded
                           for s in segments_of(utt, wave, segment_samples)], dropped)
        return segments, pair_trials(segments)
    from eval.extract import LoadedUtterance

    utterances = [LoadedUtterance(u.utt_id, u.speaker, w, u.path) for u, w in loaded]
    enrollment, test = halves.split_in_halves(utterances, SAMPLE_RATE // 2)
    return enrollment + test, halves.all_pairs_trials(enrollment, test)


def _load(utterances):
    return [(u, audio.load_audio(u.path, SAMPLE_RATE)[0]) for u in utterances]


def _export(model_dir, export_base, embedding_layer, checkpoint=None):
    from tfspk import export

    path = os.path.join(export_base, "1")
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        export.export_saved_model(model_dir, export_base, version=1, checkpoint=checkpoint,
                                  embedding_layer=embedding_layer, warmup=False)
    return path


def run(init_from, output_dir, librispeech_dir=DEFAULT_LIBRISPEECH_DIR, *,
        flagfile=None, adapt_speakers=151, max_steps=1000, learning_rate=5e-4,
        segment_seconds=3.0, embedding_layer="fc2", lda_dim=200, seed=0, train_flags=(),
        finetune_flags=(), max_files=0, num_shards=4, exclude_speakers=None) -> dict:
    """The benchmark (module docstring); returns what `finetune_gain.json` holds.

    `exclude_speakers`: speakers (the source model's training speakers) left out of
    both the adaptation and the held-out set. `finetune_flags`: appended to the
    fine-tuned run's flags only (e.g. a lower learning rate or `--freeze_until`, which
    mean nothing for random weights)."""
    from eval import extract
    from tfspk import configs
    from tfspk.scoring import score
    from tfspk.shards.build import BuildConfig, build_from_corpus
    from tfspk.training import finetune

    started = time.monotonic()
    if segment_seconds < 0:
        raise ValueError(f"--segment_seconds must be >= 0, got {segment_seconds}")
    source = finetune.resolve_source(init_from)  # refuses a bad --init_from up front
    flagfile = flagfile or configs.path("demo.flags")
    if not os.path.isfile(flagfile):
        raise ValueError(f"--flagfile={flagfile}: file not found")
    out = pathlib.Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)

    utterances = librispeech.read_librispeech_folder(librispeech_dir, max_files)
    excluded = set(exclude_speakers or ())
    utterances = [u for u in utterances if u.speaker not in excluded]
    sexes = {u.speaker: u.meta["sex"] for u in utterances}
    if len(sexes) < 4:
        raise ValueError(f"only {len(sexes)} speakers are left after excluding "
                         f"{len(excluded)}: too few for adaptation and held-out sets")
    adapt, held_out = halves.split_speakers(sorted(sexes), adapt_speakers, seed,
                                            strata=sexes)
    adapt_set = set(adapt)
    with open(out / "speakers.tsv", "w", encoding="utf-8") as stream:
        stream.writelines(f"{s}\t{sexes[s]}\t{'adapt' if s in adapt_set else 'held_out'}\n"
                          for s in sorted(sexes))

    # Adaptation shards: the adaptation speakers' whole recordings.
    data = out / "data"
    manifest = out / "adapt_manifest.tsv"
    manifest.write_text("".join(f"{u.path}\t{u.speaker}\t{u.utt_id}\n" for u in utterances
                                if u.speaker in adapt_set), encoding="utf-8")
    if not (data / "train.metadata.json").exists():
        build_from_corpus("manifest", str(manifest),
                          BuildConfig(output_dir=str(data), split="train",
                                      num_shards=num_shards))
    train_data = str(data / "train-*.tfrecord")

    # Fine-tuned and from-scratch runs: the same flags but --init_from.
    runs = {}
    for system in TRAINED:
        model_dir = out / "models" / system
        args = [f"--flagfile={flagfile}",
                *adaptation_flags(model_dir, train_data, max_steps, learning_rate),
                *(["--init_from=" + os.path.abspath(init_from)] if system == "finetuned"
                  else []), *train_flags,
                *(finetune_flags if system == "finetuned" else ())]
        last = model_dir / "last_metrics.json"
        begun = time.monotonic()
        done = last.exists() and json.loads(last.read_text()).get("step") == max_steps
        metrics = json.loads(last.read_text()) if done else train_run(args)
        runs[system] = {"args": args, "step": int(metrics["step"]),
                        "loss": float(metrics["loss"]),
                        "seconds": None if done else round(time.monotonic() - begun, 1)}

    if source.kind == "saved_model":
        exports = {"before": source.path}
    else:  # a run dir or checkpoint prefix: export that very checkpoint
        run_dir = os.path.dirname(os.path.dirname(os.path.abspath(source.prefix)))
        exports = {"before": _export(run_dir, str(out / "exports" / "before"),
                                     embedding_layer, checkpoint=source.prefix)}
    for system in TRAINED:
        exports[system] = _export(str(out / "models" / system),
                                  str(out / "exports" / system), embedding_layer)

    # Held-out trials and the PLDA training segments (adaptation speakers).
    dropped = {"held_out": [], "backend": []}
    held_segments, trials = cut_held_out(_load(u for u in utterances
                                               if u.speaker not in adapt_set),
                                         segment_seconds, dropped["held_out"])
    trials_path = out / "trials.txt"
    trials_lib.write_voxceleb_trials(trials_path, trials)
    backend_seconds = segment_seconds or 3.0
    backend_segments = usable(
        [s for utt, wave in _load(u for u in utterances if u.speaker in adapt_set)
         for s in segments_of(utt, wave, int(backend_seconds * SAMPLE_RATE))],
        dropped["backend"])

    results = {}
    for system, saved_model in exports.items():
        paths = {}
        for part, items in (("test", held_segments), ("backend", backend_segments)):
            paths[part] = out / "embeddings" / f"{system}_{part}.npz"
            if not paths[part].exists():
                ids, speakers, matrix = extract.extract_embeddings(saved_model, items)
                save_embeddings(paths[part], ids, matrix, speakers)
        results[system] = {}
        for backend in BACKENDS:
            training = ({"backend_train": str(paths["backend"]), "lda_dim": lda_dim}
                        if backend == "plda" else {})
            metrics = score.score_trials(str(trials_path), str(paths["test"]),
                                         str(out / "scores" / f"{system}_{backend}"),
                                         backend=backend, **training)
            results[system][backend] = {
                key: value for key, value in metrics.items()
                if key in ("eer", "num_target", "num_nontarget") or key.startswith("min_dcf")}

    targets = sum(t.label for t in trials)
    summary = {
        "init_from": os.path.abspath(init_from), "flagfile": os.path.abspath(flagfile),
        "librispeech_dir": os.path.abspath(librispeech_dir), "seed": seed,
        "max_steps": max_steps, "learning_rate": learning_rate,
        "embedding_layer": embedding_layer, "segment_seconds": segment_seconds,
        "lda_dim": lda_dim, "exports": exports,
        "speakers": {"adapt": len(adapt), "held_out": len(held_out),
                     "excluded": len(excluded),
                     "adapt_female": sum(sexes[s] == "F" for s in adapt),
                     "held_out_female": sum(sexes[s] == "F" for s in held_out)},
        "segments": {"held_out": len(held_segments), "backend": len(backend_segments),
                     "dropped": dropped},
        "trials": {"target": targets, "nontarget": len(trials) - targets},
        "training": runs, "results": results,
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / "finetune_gain.json").write_text(json.dumps(summary, indent=2) + "\n",
                                            encoding="utf-8")
    return summary


def table(summary) -> str:
    """Markdown: one row per system, EER and minDCF per backend."""
    head = "| system | " + " | ".join(f"{b} EER | {b} {MIN_DCF}" for b in BACKENDS) + " |"
    rows = [head, "| --- |" + " ---: |" * (2 * len(BACKENDS))]
    for system, by_backend in summary["results"].items():
        cells = []
        for backend in BACKENDS:
            metrics = by_backend[backend]
            cells += [f"{100 * metrics['eer']:.2f}%", f"{metrics[MIN_DCF]:.3f}"]
        rows.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def define_flags(flag_values=flags.FLAGS):
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("init_from", None, "The model to start from: a tfspk training "
                        "directory (its latest checkpoint) or export.", **define)
    flags.DEFINE_string("output_dir", None, "Where everything goes.", **define)
    flags.DEFINE_string("librispeech_dir", str(DEFAULT_LIBRISPEECH_DIR),
                        "Folder of LibriSpeech FLAC files and SPEAKERS.TXT (read only).",
                        **define)
    flags.DEFINE_string("train_flagfile", None, "tfspk.train flag file with the "
                        "source's architecture and front end (default configs/demo.flags).",
                        **define)
    flags.DEFINE_integer("adapt_speakers", 151, "Speakers to fine-tune on; the rest are "
                         "held out for evaluation.", lower_bound=2, **define)
    flags.DEFINE_integer("max_steps", 1000, "Training steps of both runs.", lower_bound=1,
                         **define)
    flags.DEFINE_float("learning_rate", 5e-4, "Constant learning rate of both runs.",
                       lower_bound=0.0, **define)
    flags.DEFINE_float("segment_seconds", 3.0, "Held-out segment length (0: halves).",
                       lower_bound=0.0, **define)
    flags.DEFINE_enum("embedding_layer", "fc2", ["fc1", "fc2"], "Layer exported.", **define)
    flags.DEFINE_integer("lda_dim", 200, "LDA dimension before PLDA.", lower_bound=1,
                         **define)
    flags.DEFINE_integer("seed", 0, "Speaker split.", **define)
    flags.DEFINE_string("exclude_speakers", None, "Speakers the source model was trained "
                        "on (a shard set's <split>.speakers.tsv or a sessions corpus's "
                        "speakers.tsv, e.g. demo_out/corpora/sessions/speakers.tsv): left "
                        "out of both sets, so neither fine-tuning nor evaluation reuses "
                        "them.", **define)
    flags.DEFINE_string("train_flags", "", "More tfspk.train flags for both runs, "
                        "whitespace-separated (shell quoting), appended last.", **define)
    flags.DEFINE_string("finetune_flags", "", "More tfspk.train flags for the fine-tuned "
                        "run only (after --train_flags), e.g. '--learning_rate=1e-4' or "
                        "'--freeze_until=conv4'.", **define)
    flags.DEFINE_integer("max_files", 0, "Use only the first N recordings (quick checks).",
                         lower_bound=0, **define)
    flags.mark_flags_as_required(["init_from", "output_dir"], **define)


def main(argv, flag_values=flags.FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flag_values
    try:
        summary = run(f.init_from, f.output_dir, f.librispeech_dir,
                      flagfile=f.train_flagfile, adapt_speakers=f.adapt_speakers,
                      max_steps=f.max_steps, learning_rate=f.learning_rate,
                      segment_seconds=f.segment_seconds, embedding_layer=f.embedding_layer,
                      lda_dim=f.lda_dim, seed=f.seed, train_flags=tuple(shlex.split(f.train_flags)),
                      finetune_flags=tuple(shlex.split(f.finetune_flags)),
                      max_files=f.max_files,
                      exclude_speakers=(read_training_speakers(f.exclude_speakers)
                                        if f.exclude_speakers else None))
    except (ValueError, audio.AudioError, CorpusFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps({k: summary[k] for k in ("speakers", "segments", "trials")}))
    print(table(summary))


if __name__ == "__main__":
    from tfspk import flagfiles

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
