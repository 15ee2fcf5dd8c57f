"""The README demo: the whole job end to end, on real speech when it is there.

    python -m tfspk.demo --output_dir=demo_out
    python -m tfspk.demo --librispeech_dir=    # force the synthetic corpus

Every stage runs the same command a user would type (printed before it runs). Finished
stages are skipped on a rerun.

* With a LibriSpeech folder (`--librispeech_dir`, default `../shared/data/librispeech-251`
  beside the repository when it exists): `tfrecords_tools.sessions` splits its speakers
  into training and held-out test speakers and records every 3-s segment in its own
  random session (room, noise, microphone, telephone band, codec); enrollment and test
  of every trial come from different sessions. -> sharded TFRecords -> training with
  configs/demo_real.flags on the training speakers' sessions -> SavedModel export (fc1,
  fc2) -> embeddings -> cosine and PLDA (fitted on the training sessions) next to the
  MFCC mean+std baseline -> Table 4-style report -> frame-level probes on a synthetic
  TIMIT-layout corpus.
* Without one: synthetic VoxCeleb-, TIMIT- and MUSAN/RIR-layout corpora (espeak-ng) and
  configs/demo.flags; the same stages.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

from absl import app, flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRISPEECH_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data",
                               "librispeech-251")


def default_librispeech_dir() -> str:
    """`../shared/data/librispeech-251` beside the repository if it exists, else ''."""
    return LIBRISPEECH_DIR if os.path.isdir(LIBRISPEECH_DIR) else ""


def flagfile_value(path: str, name: str) -> str | None:
    """The value of `--name=value` in a flag file (the last one wins, as in absl)."""
    value = None
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            line = line.strip()
            if line.startswith(f"--{name}="):
                value = line.split("=", 1)[1]
    return value


def schedule_args(flagfile: str, max_steps: int | None) -> list[str]:
    """`--max_steps` and a warm-up that fits it: the flag file's warm-up scaled by
    max_steps / its own max_steps (never more than the file's), so a short run keeps
    the shape of the schedule and always warms up for fewer steps than it trains."""
    if not max_steps:
        return []
    warmup = int(flagfile_value(flagfile, "warmup_steps") or 0)
    file_steps = int(flagfile_value(flagfile, "max_steps") or max_steps)
    scaled = min(warmup, warmup * max_steps // max(file_steps, 1), max_steps - 1)
    return [f"--max_steps={max_steps}", f"--warmup_steps={max(scaled, 0)}"]


def _run(command: list[str], done_marker: str | None = None) -> None:
    """Runs one CLI stage, echoing it; skipped when `done_marker` exists."""
    if done_marker and os.path.exists(done_marker):
        print(f"[skip, done] {shlex.join(command)}", flush=True)
        return
    print(f"\n$ {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    subprocess.run(command, check=True, env=env, cwd=REPO_ROOT)
    print(f"[{time.perf_counter() - start:.0f} s]", flush=True)


def _py(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def run_demo(output_dir: str, num_speakers: int = 60, utts_per_speaker: int = 12,
             timit_speakers: int = 24, max_steps: int | None = None, num_workers: int = 2,
             seed: int = 0, probes: bool = True, librispeech_dir: str = "",
             test_speakers: int = 100, train_renders: int = 3) -> dict:
    """Runs every stage into `output_dir`; returns the headline numbers.

    `librispeech_dir` non-empty: real speech in cross-session trials (`test_speakers`
    held out, each training segment recorded in `train_renders` sessions); empty: the
    synthetic corpus (`num_speakers` x `utts_per_speaker`)."""
    from tfspk import configs

    out = os.path.abspath(output_dir)
    corpora, data = os.path.join(out, "corpora"), os.path.join(out, "data")
    vox, timit, aug = (os.path.join(corpora, k) for k in ("voxceleb", "timit", "augmentation"))
    model_dir, exports = os.path.join(out, "model"), os.path.join(out, "exports")
    emb, scores = os.path.join(out, "embeddings"), os.path.join(out, "scores")
    real = bool(librispeech_dir)
    if real and not os.path.isdir(librispeech_dir):
        raise ValueError(f"--librispeech_dir {librispeech_dir} is not a directory (pass "
                         "--librispeech_dir= for the synthetic demo)")
    marker = os.path.join(out, "corpus.json")
    if os.path.exists(marker):  # a rerun must not mix the two corpora in one output dir
        with open(marker, encoding="utf-8") as stream:
            previous = json.load(stream)["corpus"]
        if previous != ("librispeech" if real else "synthetic"):
            raise ValueError(f"{out} holds a {previous} demo; use another --output_dir")
    else:
        os.makedirs(out, exist_ok=True)
        with open(marker, "w", encoding="utf-8") as stream:
            json.dump({"corpus": "librispeech" if real else "synthetic",
                       "librispeech_dir": librispeech_dir}, stream)

    # 1. Corpora.
    common = [f"--seed={seed}", f"--num_workers={num_workers}"]
    if real:
        sessions = os.path.join(corpora, "sessions")
        _run(_py("tfrecords_tools.sessions", f"--input={librispeech_dir}",
                 f"--output_dir={sessions}", f"--test_speakers={test_speakers}",
                 "--segment_seconds=3", "--max_segments=5",
                 f"--train_renders={train_renders}", *common),
             os.path.join(sessions, "summary.json"))
    else:
        _run(_py("tfrecords_tools.synth", "--kind=voxceleb", f"--output_dir={vox}",
                 f"--num_speakers={num_speakers}", f"--utts_per_speaker={utts_per_speaker}",
                 *common), os.path.join(vox, "summary.json"))
    if probes:
        _run(_py("tfrecords_tools.synth", "--kind=timit", f"--output_dir={timit}",
                 f"--num_speakers={timit_speakers}", "--utts_per_speaker=10", *common),
             os.path.join(timit, "summary.json"))
    if not real:
        _run(_py("tfrecords_tools.synth", "--kind=augmentation", f"--output_dir={aug}",
                 "--num_speakers=8", "--utts_per_speaker=4", *common),
             os.path.join(aug, "summary.json"))

    # 2. TFRecords: training speakers and disjoint test speakers.
    for split, subset, shards in (("train", "dev", 4), ("test", "test", 2)):
        source = (["--input_format=manifest", f"--input={sessions}/{split}.tsv"] if real
                  else ["--input_format=voxceleb", f"--input={vox}",
                        f"--voxceleb_subset={subset}"])
        _run(_py("tfrecords_tools.build", *source, f"--output_dir={data}", f"--split={split}",
                 f"--num_shards={shards}", f"--num_workers={num_workers}"),
             os.path.join(data, f"{split}.metadata.json"))
    train_glob = os.path.join(data, "train-*.tfrecord")
    test_glob = os.path.join(data, "test-*.tfrecord")
    trials = os.path.join(sessions, "trials.txt") if real else os.path.join(vox, "veri_test.txt")

    # 3. Training (the sessions are the real demo's augmentation: no MUSAN/RIR needed).
    flagfile = configs.path("demo_real.flags" if real else "demo.flags")
    train_args = [f"--flagfile={flagfile}", f"--model_dir={model_dir}",
                  f"--train_data={train_glob}", f"--validation_data={test_glob}",
                  f"--validation_trials={trials}", f"--seed={seed}"]
    if not real:
        train_args.append(f"--augmentation_data={aug}")
    train_args += schedule_args(flagfile, max_steps)
    _run(_py("tfspk.train", *train_args), os.path.join(model_dir, "last_metrics.json"))

    # 4. Export both embeddings for TF Serving.
    for layer in ("fc1", "fc2"):
        _run(_py("tfspk.export", f"--model_dir={model_dir}",
                 f"--export_dir={os.path.join(exports, f'demo_{layer}')}",
                 f"--embedding_layer={layer}", "--version=1"),
             os.path.join(exports, f"demo_{layer}", "1", "saved_model.pb"))

    # 5. Embeddings: training speakers train the PLDA backend, test speakers are scored.
    # Both layers from one run of the network per split (the export's `embeddings`
    # signature); fc2's npz is written last, so it marks the step done.
    for split, pattern in (("train", train_glob), ("test", test_glob)):
        _run(_py("eval.extract", f"--saved_model={os.path.join(exports, 'demo_fc2', '1')}",
                 "--layers=fc1,fc2", "--input_format=tfrecords", f"--input={pattern}",
                 f"--output={os.path.join(emb, '{layer}_' + split + '.npz')}"),
             os.path.join(emb, f"fc2_{split}.npz"))
    systems = {"CNN fc1": "fc1", "CNN fc2": "fc2"}
    for split, pattern in (("train", train_glob), ("test", test_glob)):
        path = os.path.join(emb, f"baseline_{split}.npz")
        _run(_py("eval.baseline", "--input_format=tfrecords", f"--input={pattern}",
                 f"--output={path}"), path)
    systems["MFCC mean+std"] = "baseline"

    # 6. Scoring: cosine and mean + LDA + length norm + PLDA.
    runs = []
    for system, prefix in systems.items():
        for backend in ("cosine", "plda"):
            run_dir = os.path.join(scores, f"{prefix}_{backend}")
            args = [f"--trials={trials}", f"--embeddings={os.path.join(emb, prefix + '_test.npz')}",
                    f"--backend={backend}", f"--output_dir={run_dir}"]
            if backend == "plda":
                args += [f"--backend_train={os.path.join(emb, prefix + '_train.npz')}",
                         "--lda_dim=200"]
            _run(_py("eval.score", *args), os.path.join(run_dir, "metrics.json"))
            runs.append(f"{system}={run_dir}")

    # 7. Table 4-style report with DET curves.
    report_dir = os.path.join(out, "report")
    _run(_py("eval.report", f"--runs={','.join(runs)}", f"--output_dir={report_dir}"))

    # 8. Frame-level probes on the TIMIT-layout corpus.
    probes_dir = os.path.join(out, "probes")
    if probes:
        # The real-speech demo spends its time budget on training: the probes' quick
        # settings (first and last layers, a small recognizer) cut the probes to ~2-3 min.
        _run(_py("probes.run", f"--saved_model={os.path.join(exports, 'demo_fc2', '1')}",
                 f"--model_dir={model_dir}", f"--timit_dir={timit}",
                 f"--output_dir={probes_dir}", *(["--quick"] if real else [])),
             os.path.join(probes_dir, "results.json"))

    summary = {"training": json.load(open(os.path.join(model_dir, "last_metrics.json"))),
               "report": os.path.join(report_dir, "table.md"),
               "probes": os.path.join(probes_dir, "report.md") if probes else None}
    print("\n==== tfspk demo ====")
    if real:
        with open(os.path.join(sessions, "summary.json"), encoding="utf-8") as f:
            corpus = json.load(f)
        print(f"LibriSpeech, cross-session trials: {corpus['speakers']['test']} held-out "
              f"speakers, {corpus['trials']['target']} target and "
              f"{corpus['trials']['nontarget']} non-target trials; "
              f"{corpus['speakers']['train']} training speakers in "
              f"{corpus['segments']['train']} sessions")
    print(f"validation EER (cosine, fc2) after {summary['training']['step']} steps: "
          f"{100 * summary['training'].get('validation_eer', float('nan')):.2f}%")
    with open(summary["report"], encoding="utf-8") as f:
        print(f.read())
    if probes:
        with open(os.path.join(probes_dir, "results.json"), encoding="utf-8") as f:
            results = json.load(f)
        print("| layer | broad-class accuracy | phone error rate |\n| --- | ---: | ---: |")
        for layer in results["layers"]:
            accuracy = results["broad_class_accuracy"].get(layer)
            per = results["phone_error_rate"].get(layer)
            print(f"| {layer} | {accuracy:.3f} | " + (f"{per:.3f} |" if per is not None else "- |"))
        print(f"probe figures and tables: {summary['probes']}")
    print(f"TensorBoard: tensorboard --logdir={model_dir}")
    return summary


FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    flags.DEFINE_string("output_dir", "demo_out", "Where everything goes.",
                        flag_values=flag_values)
    flags.DEFINE_integer("num_speakers", 60, "Synthetic VoxCeleb speakers (a fifth are test).",
                         lower_bound=10, flag_values=flag_values)
    flags.DEFINE_integer("utts_per_speaker", 12, "Utterances per speaker.", lower_bound=4,
                         flag_values=flag_values)
    flags.DEFINE_integer("timit_speakers", 24, "Synthetic TIMIT speakers.", lower_bound=4,
                         flag_values=flag_values)
    flags.DEFINE_integer("max_steps", None, "Override the flag file's training steps "
                         "(its warm-up is scaled to fit).", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_string("librispeech_dir", default_librispeech_dir(),
                        "LibriSpeech folder (SPEAKER-CHAPTER-UTT.flac + SPEAKERS.TXT): train "
                        "and test on its speakers in cross-session trials; empty: the "
                        "synthetic espeak-ng corpus. Default: ../shared/data/librispeech-251 "
                        "beside the repository when it exists.", flag_values=flag_values)
    flags.DEFINE_integer("test_speakers", 100, "Real demo: held-out test speakers.",
                         lower_bound=2, flag_values=flag_values)
    flags.DEFINE_integer("train_renders", 3, "Real demo: sessions each training segment "
                         "is recorded in.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("num_workers", 2, "Processes for synthesis and shard builds.",
                         lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Seed for the corpora and training.",
                         flag_values=flag_values)
    flags.DEFINE_bool("probes", True, "Run the frame-level probes.", flag_values=flag_values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        run_demo(FLAGS.output_dir, FLAGS.num_speakers, FLAGS.utts_per_speaker,
                 FLAGS.timit_speakers, FLAGS.max_steps, FLAGS.num_workers, FLAGS.seed,
                 FLAGS.probes, FLAGS.librispeech_dir, FLAGS.test_speakers,
                 FLAGS.train_renders)
    except ValueError as error:
        raise app.UsageError(str(error)) from None


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
