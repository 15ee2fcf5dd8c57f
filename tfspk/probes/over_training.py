"""Phonetic information over the course of training (paper section 4, Figs. 3 and 4).

Every checkpoint a training run saved is restored in turn; broad-class accuracy (all
layers) and phone error rate (the `per_layers`, by default the last layer) are measured
and plotted against the training step.

`python -m probes.over_training --model_dir=RUN --timit_dir=DIR --output_dir=OUT`
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

from tfspk import figures
from tfspk.probes import broad_class, checks, phone_recognition
from tfspk.probes.frames import FrameEmbedder
from tfspk.probes.report import Artifact, save_figure, write_csv

PROBE = "over_training"


def probe_checkpoints(model_dir: str, train, test, layers: Optional[Sequence[str]] = None,
                      per_layers: Optional[Sequence[str]] = None,
                      config: Optional[phone_recognition.RecognizerConfig] = None,
                      progress: bool = True) -> list[dict]:
    """One row per (checkpoint, layer): `{"step", "layer", "broad_class_accuracy", "per"}`
    (`per` None for layers without a recognizer). `per_layers=[]` skips PER."""
    checkpoints = checks.check_training_run(model_dir)
    rows = []
    for index, (step, prefix) in enumerate(checkpoints):
        embedder = FrameEmbedder.from_checkpoint(model_dir, prefix, layers=layers)
        if index == 0:   # before any work, as the first checkpoint is the first model
            checks.check_layers(embedder, "per_layers", per_layers)
        accuracies = broad_class.broad_class_confusion(embedder, train, test,
                                                       progress=progress).accuracies()
        chosen = [embedder.layers[-1]] if per_layers is None else list(per_layers)
        pers = phone_recognition.phone_error_rates(embedder, train, test, chosen, config,
                                                   progress) if chosen else {}
        for layer in embedder.layers:
            rows.append({"step": step, "layer": layer,
                         "broad_class_accuracy": accuracies[layer],
                         "per": pers[layer].per if layer in pers else None})
    return rows


def plot_against_step(rows: Sequence[dict], metric: str, ylabel: str, title: str,
                      path: str) -> str:
    import seaborn as sns

    kept = [row for row in rows if row[metric] is not None]
    figure, axis = figures.subplots(figsize=(6.4, 4.0))
    sns.lineplot(x=[r["step"] for r in kept], y=[r[metric] for r in kept],
                 hue=[r["layer"] for r in kept], marker="o", ax=axis)
    axis.set(xlabel="training step", ylabel=ylabel, title=title)
    return save_figure(figure, path)


def write_outputs(rows: Sequence[dict], output_dir: str) -> list[Artifact]:
    table = write_csv(os.path.join(output_dir, "over_training.csv"),
                      ["step", "layer", "broad_class_accuracy", "per"],
                      [(r["step"], r["layer"], f"{r['broad_class_accuracy']:.6f}",
                        "" if r["per"] is None else f"{r['per']:.6f}") for r in rows])
    steps = sorted({r["step"] for r in rows})
    artifacts = [
        Artifact(PROBE, plot_against_step(
            rows, "broad_class_accuracy", "broad-class accuracy",
            "Broad-class accuracy during training",
            os.path.join(output_dir, "over_training_broad_class.png")),
            f"broad-class accuracy per layer at {len(steps)} checkpoints (paper Fig. 3)")]
    if any(r["per"] is not None for r in rows):
        artifacts.append(Artifact(PROBE, plot_against_step(
            rows, "per", "PER", "Phone error rate during training",
            os.path.join(output_dir, "over_training_per.png")),
            "PER during training (paper Fig. 4)"))
    artifacts.append(Artifact(PROBE, table, f"per checkpoint (steps {steps[0]}..{steps[-1]}) "
                              "and layer: broad-class accuracy and PER"))
    return artifacts
