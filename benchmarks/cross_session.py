r"""Held-out cross-session verification on real speech: CNN vs MFCC and i-vector baselines.

    python benchmarks/cross_session.py --work_dir=exp/cross_session

From `--librispeech_dir` (default `../shared/data/librispeech-251`), in stages that are
skipped when their outputs exist (rerun the same command to resume; the training stage
resumes from its last checkpoint):

1. `corpus`: `tfrecords_tools.sessions` splits the speakers (seeded, stratified by sex)
   into `--test_speakers` held-out speakers and training speakers, cuts each recording
   into 3-s segments and records every segment in its own random session (room, noise
   at an SNR, microphone EQ, telephone band, level, codec). Training segments are
   rendered `--train_renders` times, each in a new session. Trials: every pair of test
   segments, enrollment and test from different sessions (and different audio).
2. `shards`: `tfrecords_tools.build` over the train and test manifests.
3. `train`: `tfspk.train --flagfile=configs/cross_session_real.flags` on the training
   speakers' sessions only (extra flags: `--train_flags`).
4. `export`: `tfspk.export` of the fc2 embedding.
5. `embed`: for the training segments (backend training) and the test segments:
   CNN fc2 (`eval.extract`), MFCC mean+std (`eval.baseline`) and i-vectors (`eval.ivector`
   front end; UBM and T trained on the training segments only, never the test set).
6. `score`: cosine, and mean + LDA + length norm + PLDA fitted on the training
   segments' embeddings (`eval.score`), for every system; `eval.report` table and DET.

`--work_dir/report.json` holds every row (EER, minDCF, trial counts), the corpus summary,
the commands and timings, and the check of the target: the CNN's best backend at most
`--target_ratio` x the EER of both MFCC + PLDA and i-vector + PLDA. `table.md`/`table.csv`
and `det.png` are beside it. Nothing derived from a test speaker reaches training, the
UBM, T or any backend.
"""
from __future__ import annotations

import json
import os
import pathlib
import shlex
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from absl import app, flags  # noqa: E402

DEFAULT_LIBRISPEECH_DIR = REPO_ROOT.parent / "shared" / "data" / "librispeech-251"
SYSTEMS = {"cnn_fc2": "CNN fc2", "mfcc": "MFCC mean+std", "ivector": "i-vector"}
BACKENDS = ("cosine", "plda")


def _run(command: list[str], log: list) -> None:
    """Runs one CLI stage (echoed, timed, recorded in `log`); raises on failure."""
    print(f"\n$ {shlex.join(command)}", flush=True)
    started = time.monotonic()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    subprocess.run(command, check=True, env=env, cwd=REPO_ROOT)
    log.append({"command": shlex.join(command),
                "seconds": round(time.monotonic() - started, 1)})


def _py(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _cached_frames(manifest, cache):
    """`eval.ivector.corpus_frames` of a manifest, kept in `cache` (npz) for reruns."""
    import numpy as np

    from eval.extract import read_corpus
    from eval.ivector import corpus_frames

    cache = pathlib.Path(cache)
    if cache.exists():
        with np.load(cache) as data:
            lengths = np.cumsum(data["lengths"])[:-1]
            return (list(data["ids"]), list(data["speakers"]),
                    np.split(data["frames"], lengths))
    ids, speakers, frames = corpus_frames(read_corpus("manifest", str(manifest)))
    cache.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_suffix(".tmp.npz")
    np.savez(temporary, ids=np.array(ids), speakers=np.array(speakers),
             lengths=np.array([len(f) for f in frames]), frames=np.concatenate(frames))
    os.replace(temporary, cache)
    return ids, speakers, frames


def ivector_embeddings(train_manifest, test_manifest, train_out, test_out, *,
                       num_components: int, ivector_dim: int, tv_iters: int = 5,
                       ubm_max_frames: int = 300000, seed: int = 0,
                       cache_dir=None) -> None:
    """UBM and T on the training manifest's utterances only; i-vectors of both sets.

    Features (`eval.ivector.ivector_frames`) are computed once per utterance (and kept
    in `cache_dir` when given, so a rerun after an interruption skips them)."""
    import numpy as np

    from tfspk.ivector import gmm, stats, total_variability
    from tfspk.scoring.embeddings import save_embeddings

    cache = pathlib.Path(cache_dir or pathlib.Path(train_out).parent)
    train_ids, train_speakers, train_frames = _cached_frames(
        train_manifest, cache / "ivector_frames_train.npz")
    test_ids, test_speakers, test_frames = _cached_frames(
        test_manifest, cache / "ivector_frames_test.npz")
    ubm = gmm.train_ubm(np.concatenate(train_frames), num_components,
                        max_frames=ubm_max_frames, seed=seed)
    zeroth, first = stats.baum_welch(ubm, train_frames, top_k=20, progress=True)
    model = total_variability.train_tv(ubm, zeroth, first, ivector_dim, tv_iters, seed)
    save_embeddings(train_out, train_ids, model.extract(zeroth, first), train_speakers)
    test_stats = stats.baum_welch(ubm, test_frames, top_k=20)
    save_embeddings(test_out, test_ids, model.extract(*test_stats), test_speakers)


def resolve_flagfile(flagfile: str) -> str:
    """A training flag file: a path, else a name among the shipped `configs/`."""
    from tfspk import configs

    return flagfile if os.path.isfile(flagfile) else str(configs.path(flagfile))


def build_shards(manifests, shards, commands: list) -> None:
    """Stage 2: `tfrecords_tools.build` of the train (4 shards) and test (1) manifests;
    skipped per split when its metadata exists."""
    for split, num_shards in (("train", 4), ("test", 1)):
        if not (pathlib.Path(shards) / f"{split}.metadata.json").exists():
            _run(_py("tfrecords_tools.build", "--input_format=manifest",
                     f"--input={manifests[split]}", f"--output_dir={shards}",
                     f"--split={split}", f"--num_shards={num_shards}"), commands)


def train_model(flagfile, model_dir, shards, trials, seed: int, train_flags,
                commands: list) -> None:
    """Stage 3: `tfspk.train` on the training shards only (the test shards and trials
    are its validation set). Resumes from its checkpoints; a run stopped by a signal also
    writes last_metrics.json, so that file alone does not mean done."""
    last = pathlib.Path(model_dir) / "last_metrics.json"
    if not last.exists() or json.loads(last.read_text()).get("stopped_by_signal"):
        _run(_py("tfspk.train", f"--flagfile={flagfile}",
                 f"--model_dir={model_dir}", f"--train_data={shards}/train-*.tfrecord",
                 f"--validation_data={shards}/test-*.tfrecord",
                 f"--validation_trials={trials}", f"--seed={seed}", *train_flags), commands)


def export_fc2(model_dir, export_dir, commands: list) -> None:
    """Stage 4: `tfspk.export` of the fc2 embedding as `export_dir/1`."""
    if not (pathlib.Path(export_dir) / "1" / "saved_model.pb").exists():
        _run(_py("tfspk.export", f"--model_dir={model_dir}", f"--export_dir={export_dir}",
                 "--embedding_layer=fc2", "--version=1"), commands)


def embed_systems(manifests, emb, export_dir, commands: list) -> None:
    """Stage 5 for the CNN fc2 (`eval.extract`) and MFCC mean+std (`eval.baseline`):
    `emb/<system>_<split>.npz` for every split of `manifests` ({split: manifest TSV});
    each file is skipped when it exists."""
    from eval import baseline, extract
    from tfspk.scoring.embeddings import save_embeddings

    emb = pathlib.Path(emb)
    for split, manifest in manifests.items():
        cnn, mfcc = emb / f"cnn_fc2_{split}.npz", emb / f"mfcc_{split}.npz"
        if not cnn.exists():
            step = time.monotonic()
            ids, speakers, matrix = extract.extract_embeddings(
                str(pathlib.Path(export_dir) / "1"),
                extract.read_corpus("manifest", str(manifest)))
            save_embeddings(cnn, ids, matrix, speakers)
            commands.append({"command": f"eval.extract --saved_model={export_dir}/1 "
                             f"--input_format=manifest --input={manifest}",
                             "seconds": round(time.monotonic() - step, 1)})
        if not mfcc.exists():
            step = time.monotonic()
            ids, speakers, matrix = baseline.baseline_embeddings(
                extract.read_corpus("manifest", str(manifest)))
            save_embeddings(mfcc, ids, matrix, speakers)
            commands.append({"command": f"eval.baseline --input_format=manifest "
                             f"--input={manifest}",
                             "seconds": round(time.monotonic() - step, 1)})


def score_systems(systems, trials, emb, scores, lda_dim: int):
    """Stage 6: every system of `systems` ({key: table name}) under cosine and under mean +
    LDA + length norm + PLDA fitted on `emb/<key>_train.npz` only (`eval.score`; a run
    dir with metrics.json is reused). Returns (`eval.report.Run`s, table rows)."""
    from eval import report, score

    emb, scores = pathlib.Path(emb), pathlib.Path(scores)
    runs, rows = [], []
    for system, name in systems.items():
        for backend in BACKENDS:
            run_dir = scores / f"{system}_{backend}"
            if not (run_dir / "metrics.json").exists():
                training = ({"backend_train": str(emb / f"{system}_train.npz"),
                             "lda_dim": lda_dim} if backend == "plda" else {})
                score.score_trials(str(trials), str(emb / f"{system}_test.npz"),
                                   str(run_dir), backend=backend, **training)
            metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
            runs.append(report.Run(name, run_dir))
            rows.append({"system": name, "backend": metrics["backend_label"],
                         "eer": metrics["eer"],
                         "min_dcf_p0.01": metrics["min_dcf_p0.01"],
                         "min_dcf_p0.001": metrics["min_dcf_p0.001"],
                         "num_target": metrics["num_target"],
                         "num_nontarget": metrics["num_nontarget"]})
    return runs, rows


def check_target(rows, target_ratio: float = 0.5, baselines=("mfcc", "ivector")) -> dict:
    """The must-show: the CNN's best EER over its backends against each baseline's
    PLDA EER (`baselines`: keys of SYSTEMS). `rows`: dicts with system, backend (label:
    'cosine' or '...PLDA') and eer."""
    def eer(system, plda_only):
        values = [r["eer"] for r in rows if r["system"] == system and (
            not plda_only or r["backend"].endswith("PLDA"))]
        if not values:
            raise ValueError(f"no {'PLDA ' if plda_only else ''}row for {system!r}")
        return min(values)

    cnn = eer(SYSTEMS["cnn_fc2"], False)
    baselines = {SYSTEMS[key]: eer(SYSTEMS[key], True) for key in baselines}
    return {"cnn_best_eer": cnn, "baseline_plda_eer": baselines,
            "ratio": {name: cnn / value for name, value in baselines.items()},
            "target_ratio": target_ratio,
            "met": all(cnn <= target_ratio * value for value in baselines.values())}


def run_benchmark(work_dir, librispeech_dir=DEFAULT_LIBRISPEECH_DIR, *,
                  test_speakers: int = 80, max_segments: int = 5,
                  segment_seconds: float = 3.0, train_renders: int = 6,
                  flagfile: str = "cross_session_real.flags", train_flags=(),
                  ivector_components: int = 256, ivector_dim: int = 200,
                  lda_dim: int = 200, num_workers: int = 2, seed: int = 0,
                  target_ratio: float = 0.5) -> dict:
    """Runs (or resumes) every stage in `work_dir`; returns `report.json`'s contents."""
    from eval import report
    from tfrecords_tools import sessions as sessions_tool

    started = time.monotonic()
    flagfile = resolve_flagfile(flagfile)
    work = pathlib.Path(work_dir).resolve()
    corpus, shards = work / "corpus", work / "shards"
    model_dir, export_dir = work / "model", work / "export" / "fc2"
    emb, scores = work / "embeddings", work / "scores"
    commands: list = []

    # 1. Corpus: speaker split, segments, sessions, trials.
    if not (corpus / "summary.json").exists():
        utterances, strata = sessions_tool.read_input("librispeech", librispeech_dir)
        sessions_tool.build_session_corpus(
            utterances, corpus, test_speakers=test_speakers, seed=seed, strata=strata,
            segment_seconds=segment_seconds, max_segments=max_segments,
            train_renders=train_renders, num_workers=num_workers, progress=True)
    summary = json.loads((corpus / "summary.json").read_text(encoding="utf-8"))
    trials = corpus / "trials.txt"
    manifests = {split: corpus / f"{split}.tsv" for split in ("train", "test")}

    build_shards(manifests, shards, commands)
    train_model(flagfile, model_dir, shards, trials, seed, train_flags, commands)
    export_fc2(model_dir, export_dir, commands)
    embed_systems(manifests, emb, export_dir, commands)

    def npz(system, split):
        return emb / f"{system}_{split}.npz"

    if not npz("ivector", "test").exists():
        step = time.monotonic()
        ivector_embeddings(manifests["train"], manifests["test"], npz("ivector", "train"),
                           npz("ivector", "test"), num_components=ivector_components,
                           ivector_dim=ivector_dim, seed=seed)
        commands.append({"command": f"i-vector: UBM {ivector_components}, T "
                         f"{ivector_dim} on {manifests['train']}; extract train and test",
                         "seconds": round(time.monotonic() - step, 1)})

    # 6. Scoring and report.
    runs, rows = score_systems(SYSTEMS, trials, emb, scores, lda_dim)
    report.make_report(runs, work)

    target = check_target(rows, target_ratio)
    result = {"librispeech_dir": os.fspath(librispeech_dir), "corpus": summary,
              "flagfile": str(flagfile), "train_flags": list(train_flags),
              "ivector": {"components": ivector_components, "dim": ivector_dim},
              "lda_dim": lda_dim, "rows": rows, "target": target,
              "steps_this_run": commands,
              "seconds_this_run": round(time.monotonic() - started, 1)}
    return write_report(work, result, model_dir)


def write_report(work, result: dict, model_dir) -> dict:
    """Writes `report.json`: `result` plus the training run's last metrics, when there
    are any; returns what was written."""
    last = pathlib.Path(model_dir) / "last_metrics.json"
    if last.exists():
        result["training"] = json.loads(last.read_text())
    (pathlib.Path(work) / "report.json").write_text(json.dumps(result, indent=2) + "\n",
                                                    encoding="utf-8")
    return result


FLAGS = flags.FLAGS


def define_session_flags(flag_values: flags.FlagValues) -> None:
    """The session-corpus and training flags shared with `benchmarks/cross_method.py`."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_integer("max_segments", 5, "Segments per recording at most.",
                         lower_bound=1, **define)
    flags.DEFINE_float("segment_seconds", 3.0, "Segment length (s).", lower_bound=0.5,
                       **define)
    flags.DEFINE_integer("train_renders", 6, "Sessions each training segment is recorded "
                         "in.", lower_bound=1, **define)
    flags.DEFINE_string("flagfile_name", "cross_session_real.flags", "Training flag file "
                        "(a name in configs/, or a path).", **define)
    flags.DEFINE_string("train_flags", "", "More tfspk.train flags, space-separated "
                        "(appended last, so they win).", **define)


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """CLI flags; defined only when run as a program, so tests can import the module."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("work_dir", None, "Where every stage writes (resumable).", **define)
    flags.DEFINE_string("librispeech_dir", str(DEFAULT_LIBRISPEECH_DIR),
                        "Folder of SPEAKER-CHAPTER-UTT.flac files and SPEAKERS.TXT.",
                        **define)
    flags.DEFINE_integer("test_speakers", 80, "Held-out test speakers.", lower_bound=2,
                         **define)
    define_session_flags(flag_values)
    flags.DEFINE_integer("ivector_components", 256, "UBM components.", lower_bound=1,
                         **define)
    flags.DEFINE_integer("ivector_dim", 200, "i-vector dimension.", lower_bound=1, **define)
    flags.DEFINE_integer("lda_dim", 200, "LDA dimension before PLDA (capped).",
                         lower_bound=0, **define)
    flags.DEFINE_integer("num_workers", 2, "Session-rendering processes.", lower_bound=1,
                         **define)
    flags.DEFINE_integer("seed", 0, "Seed of the split, the sessions and training.",
                         lower_bound=0, **define)
    flags.DEFINE_float("target_ratio", 0.5, "Target: CNN best EER <= this x each "
                       "baseline's PLDA EER.", lower_bound=0.0, **define)
    flags.mark_flag_as_required("work_dir", **define)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not os.path.isdir(FLAGS.librispeech_dir):
        raise app.UsageError(f"--librispeech_dir {FLAGS.librispeech_dir} is not a directory")
    result = run_benchmark(
        FLAGS.work_dir, FLAGS.librispeech_dir, test_speakers=FLAGS.test_speakers,
        max_segments=FLAGS.max_segments, segment_seconds=FLAGS.segment_seconds,
        train_renders=FLAGS.train_renders, flagfile=FLAGS.flagfile_name,
        train_flags=shlex.split(FLAGS.train_flags),
        ivector_components=FLAGS.ivector_components, ivector_dim=FLAGS.ivector_dim,
        lda_dim=FLAGS.lda_dim, num_workers=FLAGS.num_workers, seed=FLAGS.seed,
        target_ratio=FLAGS.target_ratio)
    corpus = result["corpus"]
    print(f"\n{corpus['speakers']['test']} held-out speakers, "
          f"{corpus['trials']['target']} target / {corpus['trials']['nontarget']} "
          f"non-target cross-session trials; {corpus['speakers']['train']} training "
          f"speakers, {corpus['segments']['train']} training sessions")
    print((pathlib.Path(FLAGS.work_dir) / "table.md").read_text(encoding="utf-8"), end="")
    target = result["target"]
    ratios = ", ".join(f"{100 * target['cnn_best_eer'] / 1:.2f}% / {name} PLDA "
                       f"{100 * target['baseline_plda_eer'][name]:.2f}% = {ratio:.2f}x"
                       for name, ratio in target["ratio"].items())
    print(f"target (CNN best <= {target['target_ratio']}x each baseline + PLDA): "
          f"{'met' if target['met'] else 'missed'}: {ratios}")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
