"""The README demo: the whole job end to end on the built-in synthetic corpus.

    python -m tfspk.demo --output_dir=demo_out

Every stage runs the same command a user would type (printed before it runs):
synthetic VoxCeleb-, TIMIT- and MUSAN/RIR-layout corpora -> sharded TFRecords ->
training with configs/demo.flags -> SavedModel export (fc1, fc2) -> embeddings ->
cosine and PLDA scoring next to the MFCC mean+std baseline -> Table 4-style report ->
frame-level probes on the TIMIT-layout corpus. Finished stages are skipped on a rerun.
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
             seed: int = 0, probes: bool = True) -> dict:
    """Runs every stage into `output_dir`; returns the headline numbers."""
    out = os.path.abspath(output_dir)
    corpora, data = os.path.join(out, "corpora"), os.path.join(out, "data")
    vox, timit, aug = (os.path.join(corpora, k) for k in ("voxceleb", "timit", "augmentation"))
    model_dir, exports = os.path.join(out, "model"), os.path.join(out, "exports")
    emb, scores = os.path.join(out, "embeddings"), os.path.join(out, "scores")

    # 1. Corpora.
    common = [f"--seed={seed}", f"--num_workers={num_workers}"]
    _run(_py("tfrecords_tools.synth", "--kind=voxceleb", f"--output_dir={vox}",
             f"--num_speakers={num_speakers}", f"--utts_per_speaker={utts_per_speaker}",
             *common), os.path.join(vox, "summary.json"))
    _run(_py("tfrecords_tools.synth", "--kind=timit", f"--output_dir={timit}",
             f"--num_speakers={timit_speakers}", "--utts_per_speaker=10", *common),
         os.path.join(timit, "summary.json"))
    _run(_py("tfrecords_tools.synth", "--kind=augmentation", f"--output_dir={aug}",
             "--num_speakers=8", "--utts_per_speaker=4", *common),
         os.path.join(aug, "summary.json"))

    # 2. TFRecords: training speakers (VoxCeleb1 "dev") and disjoint test speakers.
    for split, subset, shards in (("train", "dev", 4), ("test", "test", 2)):
        _run(_py("tfrecords_tools.build", "--input_format=voxceleb", f"--input={vox}",
                 f"--voxceleb_subset={subset}", f"--output_dir={data}", f"--split={split}",
                 f"--num_shards={shards}", f"--num_workers={num_workers}"),
             os.path.join(data, f"{split}.metadata.json"))
    train_glob = os.path.join(data, "train-*.tfrecord")
    test_glob = os.path.join(data, "test-*.tfrecord")
    trials = os.path.join(vox, "veri_test.txt")

    # 3. Training.
    train_args = [f"--flagfile={os.path.join(REPO_ROOT, 'configs', 'demo.flags')}",
                  f"--model_dir={model_dir}", f"--train_data={train_glob}",
                  f"--validation_data={test_glob}", f"--validation_trials={trials}",
                  f"--augmentation_data={aug}", f"--seed={seed}"]
    if max_steps:
        train_args.append(f"--max_steps={max_steps}")
    _run(_py("tfspk.train", *train_args), os.path.join(model_dir, "last_metrics.json"))

    # 4. Export both embeddings for TF Serving.
    for layer in ("fc1", "fc2"):
        _run(_py("tfspk.export", f"--model_dir={model_dir}",
                 f"--export_dir={os.path.join(exports, f'demo_{layer}')}",
                 f"--embedding_layer={layer}", "--version=1"),
             os.path.join(exports, f"demo_{layer}", "1", "saved_model.pb"))

    # 5. Embeddings: training speakers train the PLDA backend, test speakers are scored.
    systems = {}
    for layer in ("fc1", "fc2"):
        saved_model = os.path.join(exports, f"demo_{layer}", "1")
        for split, pattern in (("train", train_glob), ("test", test_glob)):
            path = os.path.join(emb, f"{layer}_{split}.npz")
            _run(_py("eval.extract", f"--saved_model={saved_model}",
                     "--input_format=tfrecords", f"--input={pattern}", f"--output={path}"),
                 path)
        systems[f"CNN {layer}"] = layer
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
        _run(_py("probes.run", f"--saved_model={os.path.join(exports, 'demo_fc2', '1')}",
                 f"--model_dir={model_dir}", f"--timit_dir={timit}",
                 f"--output_dir={probes_dir}"),
             os.path.join(probes_dir, "results.json"))

    summary = {"training": json.load(open(os.path.join(model_dir, "last_metrics.json"))),
               "report": os.path.join(report_dir, "table.md"),
               "probes": os.path.join(probes_dir, "report.md") if probes else None}
    print("\n==== tfspk demo ====")
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
    flags.DEFINE_integer("max_steps", None, "Override demo.flags' training steps.",
                         flag_values=flag_values)
    flags.DEFINE_integer("num_workers", 2, "Processes for synthesis and shard builds.",
                         lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Seed for the corpora and training.",
                         flag_values=flag_values)
    flags.DEFINE_bool("probes", True, "Run the frame-level probes.", flag_values=flag_values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    run_demo(FLAGS.output_dir, FLAGS.num_speakers, FLAGS.utts_per_speaker,
             FLAGS.timit_speakers, FLAGS.max_steps, FLAGS.num_workers, FLAGS.seed,
             FLAGS.probes)


if __name__ == "__main__":
    define_flags()
    app.run(main)
