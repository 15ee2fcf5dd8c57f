"""Runs every probe on one model and writes `report.md` and `results.json`.

`python -m probes.run --saved_model=DIR [--model_dir=RUN] --timit_dir=DIR --output_dir=OUT
[--quick]`

Flags and `main` only; the probe itself, and its description, is `tfspk.probes.run`.
"""
from __future__ import annotations

import dataclasses
import os

from absl import app, flags

from probes import (broad_class, cli, critical_phones, over_training, phone_recognition,
                    similarity_matrix, tsne)
from tfspk import flagfiles
from tfspk.probes.report import REPORT_FILENAME
from tfspk.probes.run import (PROBE, QUICK_MAX_SPEAKERS,  # noqa: F401 - old names
                              QUICK_RECOGNIZER, QUICK_TSNE_SEGMENTS, RunOptions, run_all)

FLAGS = flags.FLAGS


def options_from_flags(flag_values=FLAGS) -> RunOptions:
    values = flag_values
    config = phone_recognition.config_from_flags(values)
    per_layers, tsne_segments = values.per_layers, values.tsne_max_segments
    if values.quick:
        config = dataclasses.replace(QUICK_RECOGNIZER, loss=config.loss, seed=values.seed)
        tsne_segments = min(tsne_segments, QUICK_TSNE_SEGMENTS)
    return RunOptions(recognizer=config, per_layers=per_layers,
                      tsne_max_segments=tsne_segments, critical_layer=values.critical_layer,
                      critical_min_utterances=values.critical_min_utterances,
                      critical_exclude=values.critical_exclude, seed=values.seed)


def define_flags(flag_values=FLAGS) -> None:
    """Every probe's flags plus --quick."""
    for probe in (broad_class, phone_recognition, tsne, critical_phones, similarity_matrix,
                  over_training):
        probe.define_flags(flag_values)
    cli.define_once(flags.DEFINE_bool, "quick", False,
                    f"At most {QUICK_MAX_SPEAKERS} speakers per split, a small recognizer "
                    f"({QUICK_RECOGNIZER.units} units, {QUICK_RECOGNIZER.epochs} epochs) on "
                    "the first and last layers.", flag_values)


@cli.probe_main
def main(argv, flag_values=FLAGS):
    values = flag_values
    cli.check_common(argv, values)
    # --quick caps the speakers without writing to the flags.
    max_speakers = values.max_speakers
    if values.quick and max_speakers is None:
        max_speakers = QUICK_MAX_SPEAKERS
    embedder = cli.embedder_from_flags(values)
    options = options_from_flags(values)
    if values.quick and options.per_layers is None:
        options.per_layers = list(dict.fromkeys([embedder.layers[0], embedder.layers[-1]]))
    results = run_all(embedder, cli.split_from_flags("TRAIN", values, max_speakers),
                      cli.split_from_flags("TEST", values, max_speakers),
                      values.output_dir, values.model_dir, options)
    print(os.path.join(values.output_dir, REPORT_FILENAME))
    for layer in results["layers"]:
        per = results["phone_error_rate"].get(layer)
        print(f"{layer:>8}: broad-class accuracy {results['broad_class_accuracy'][layer]:.3f}"
              + ("" if per is None else f", PER {per:.3f}"))


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
