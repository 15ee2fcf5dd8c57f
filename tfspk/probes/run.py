"""Runs every probe on one model and writes `report.md` and `results.json`.

`python -m probes.run --saved_model=DIR [--model_dir=RUN] --timit_dir=DIR --output_dir=OUT
[--quick]`: broad-class accuracy, phone recognition, t-SNE, critical phones and similarity
matrices from the SavedModel (or from `--model_dir` + `--checkpoint` without one), and, when
`--model_dir` is given, the same over every checkpoint of the run. `OUT/report.md` links
every figure and table with one line each; `OUT/results.json` holds per-layer broad-class
accuracy and PER and the critical-phone summary.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

from tfspk.probes import (broad_class, checks, critical_phones, over_training,
                          phone_recognition, similarity_matrix, tsne)
from tfspk.probes.frames import FrameEmbedder
from tfspk.probes.report import REPORT_FILENAME, Artifact, update_report, write_json

PROBE = "run"
#: --quick: a few speakers, a small recognizer on the first and last layers only.
QUICK_MAX_SPEAKERS = 8
QUICK_RECOGNIZER = phone_recognition.RecognizerConfig(units=32, epochs=3)
QUICK_TSNE_SEGMENTS = 500


@dataclasses.dataclass
class RunOptions:
    recognizer: phone_recognition.RecognizerConfig = dataclasses.field(
        default_factory=phone_recognition.RecognizerConfig)
    per_layers: Optional[Sequence[str]] = None       # default: every layer
    tsne_max_segments: int = 2000
    critical_layer: Optional[str] = None
    critical_min_utterances: int = 10
    critical_exclude: Sequence[str] = critical_phones.DEFAULT_EXCLUDE
    seed: int = 0


def check_run(embedder: FrameEmbedder, train, test, model_dir: Optional[str],
              options: RunOptions) -> None:
    """What each probe of `run_all` would refuse, checked before the first one runs
    (`checks.ProbeOptionError` naming the option, i.e. the `probes.run` flag)."""
    checks.check_layers(embedder, "per_layers", options.per_layers)
    checks.check_positive("tsne_max_segments", options.tsne_max_segments)
    critical_phones.check_options(embedder, test, options.critical_layer,
                                  options.critical_min_utterances, options.critical_exclude)
    similarity_matrix.choose_pairs(test)
    if model_dir:
        checks.check_training_run(model_dir)


def run_all(embedder: FrameEmbedder, train, test, output_dir: str,
            model_dir: Optional[str] = None, options: Optional[RunOptions] = None,
            progress: bool = True) -> dict:
    """All probes; returns the results.json content and writes report.md beside it.

    Every option is checked first (`check_run`): a bad one is refused before any
    embedding, and before an older report in `output_dir` is replaced."""
    options = options or RunOptions()
    check_run(embedder, train, test, model_dir, options)
    os.makedirs(output_dir, exist_ok=True)
    report = os.path.join(output_dir, REPORT_FILENAME)
    if os.path.exists(report):
        os.remove(report)   # a fresh index: no lines left from an older run
    artifacts: list[Artifact] = []

    accuracy, written = broad_class.run(embedder, train, test, output_dir, progress)
    artifacts += written

    per_results = phone_recognition.phone_error_rates(
        embedder, train, test, options.per_layers, options.recognizer, progress)
    artifacts += phone_recognition.write_outputs(per_results, options.recognizer, output_dir)

    coordinates, classes = tsne.segment_tsne(embedder, test,
                                             max_segments=options.tsne_max_segments,
                                             seed=options.seed, progress=progress)
    artifacts += tsne.write_outputs(coordinates, classes, output_dir)

    critical_summary, written = critical_phones.run(
        embedder, test, train, output_dir, options.critical_layer,
        options.critical_min_utterances, options.critical_exclude, progress)
    artifacts += written

    similarity, written = similarity_matrix.run(embedder, test, output_dir)
    artifacts += written

    results = {
        "model": embedder.name,
        "layers": list(embedder.layers),
        "num_utterances": {"TRAIN": len(train), "TEST": len(test)},
        "broad_class_accuracy": accuracy.accuracies(),
        "phone_error_rate": {layer: r.per for layer, r in per_results.items()},
        "critical_phones": critical_summary,
        "similarity": similarity,
    }
    if model_dir:
        rows = over_training.probe_checkpoints(
            model_dir, train, test, list(embedder.layers),
            [embedder.layers[-1]], options.recognizer, progress)
        artifacts += over_training.write_outputs(rows, output_dir)
        results["over_training"] = rows

    path = write_json(os.path.join(output_dir, "results.json"), results)
    artifacts.append(Artifact(PROBE, path, "per-layer broad-class accuracy and PER, "
                              "critical-phone and similarity summaries"))
    update_report(output_dir, artifacts)
    return results
