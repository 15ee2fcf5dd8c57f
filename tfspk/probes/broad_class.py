"""Broad phone-class classification from segment embeddings (paper section 4, Fig. 5).

A phone segment's embedding is the mean of the layer's frame embeddings over the segment.
Each broad class's centroid is the mean segment embedding over the TRAIN split; a TEST
segment is assigned the class whose centroid has the highest cosine similarity. Accuracy
per layer shows how much phonetic information each layer of a speaker network keeps.

`python -m probes.broad_class --saved_model=DIR --timit_dir=DIR --output_dir=OUT`
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import numpy as np

from tfspk import figures
from tfspk.probes import data
from tfspk.probes.frames import FrameEmbedder
from tfspk.probes.report import Artifact, save_figure, write_csv, write_json

PROBE = "broad_class"


@dataclasses.dataclass
class BroadClassResult:
    """Confusion counts per layer (rows: true class, columns: predicted class)."""

    classes: tuple[str, ...]
    confusion: dict[str, np.ndarray]

    @property
    def layers(self) -> list[str]:
        return list(self.confusion)

    def accuracy(self, layer: str) -> float:
        counts = self.confusion[layer]
        return float(np.trace(counts) / max(counts.sum(), 1))

    def accuracies(self) -> dict[str, float]:
        return {layer: self.accuracy(layer) for layer in self.layers}

    def num_segments(self, layer: str) -> int:
        return int(self.confusion[layer].sum())


def class_centroids(embedder: FrameEmbedder, utterances, layers: Sequence[str],
                    progress: bool = True) -> dict[str, np.ndarray]:
    """`{layer: [num_classes, D]}` mean segment embedding per broad class (NaN rows for a
    class with no segment)."""
    sums: dict[str, np.ndarray] = {}
    counts = np.zeros(len(data.BROAD_CLASSES))
    for utt, frames in data.embed_utterances(embedder, utterances, layers,
                                             "broad_class: train centroids", progress):
        classes = data.broad_class_indices(data.phone_labels(utt))
        np.add.at(counts, classes, 1)
        for layer in layers:
            means = data.segment_means(embedder, layer, utt, frames[layer])
            if layer not in sums:
                sums[layer] = np.zeros((len(data.BROAD_CLASSES), means.shape[1]))
            np.add.at(sums[layer], classes, means)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {layer: total / counts[:, None] for layer, total in sums.items()}


def classify(segments: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the centroid with the highest cosine similarity, for each segment row.
    Classes without a centroid (NaN rows) are never chosen."""
    scores = data.cosine_matrix(segments, np.nan_to_num(centroids))
    scores[:, np.isnan(centroids).any(axis=1)] = -np.inf
    return np.argmax(scores, axis=1)


def broad_class_confusion(embedder: FrameEmbedder, train, test,
                          layers: Optional[Sequence[str]] = None,
                          progress: bool = True) -> BroadClassResult:
    """Centroids from `train` utterances, confusion counts on `test` utterances."""
    layers = list(layers or embedder.layers)
    centroids = class_centroids(embedder, train, layers, progress)
    size = len(data.BROAD_CLASSES)
    confusion = {layer: np.zeros((size, size), np.int64) for layer in layers}
    for utt, frames in data.embed_utterances(embedder, test, layers,
                                             "broad_class: test segments", progress):
        truth = data.broad_class_indices(data.phone_labels(utt))
        for layer in layers:
            predicted = classify(data.segment_means(embedder, layer, utt, frames[layer]),
                                 centroids[layer])
            np.add.at(confusion[layer], (truth, predicted), 1)
    return BroadClassResult(data.BROAD_CLASSES, confusion)


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows without segments stay zero)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


def plot_accuracy(accuracies: dict[str, float], path: str, title: str,
                  ylabel: str = "broad-class accuracy") -> str:
    import seaborn as sns

    figure, axis = figures.subplots(figsize=(1.0 + 0.9 * len(accuracies), 3.6))
    sns.barplot(x=list(accuracies), y=list(accuracies.values()), color="#4c72b0", ax=axis)
    axis.plot(range(len(accuracies)), list(accuracies.values()), "o-", color="#c44e52")
    for index, value in enumerate(accuracies.values()):
        axis.annotate(f"{value:.2f}", (index, value), ha="center", va="bottom", fontsize=8)
    axis.set(xlabel="layer", ylabel=ylabel, title=title)
    return save_figure(figure, path)


def plot_confusions(result: BroadClassResult, layers: Sequence[str], path: str) -> str:
    import seaborn as sns

    figure, axes = figures.subplots(1, len(layers), figsize=(6.2 * len(layers), 5.2),
                                    squeeze=False)
    for axis, layer in zip(axes[0], layers):
        sns.heatmap(row_normalised(result.confusion[layer]), annot=True, fmt=".2f",
                    vmin=0.0, vmax=1.0, cmap="Blues", cbar=False, ax=axis,
                    xticklabels=result.classes, yticklabels=result.classes,
                    annot_kws={"fontsize": 7})
        axis.set(title=f"{layer} (accuracy {result.accuracy(layer):.3f})",
                 xlabel="predicted", ylabel="true")
        axis.tick_params(axis="x", labelrotation=45)
    return save_figure(figure, path)


def write_outputs(result: BroadClassResult, output_dir: str) -> list[Artifact]:
    """accuracy CSV + PNG, confusion matrices JSON, first/last layer heatmaps (Fig. 5)."""
    accuracies = result.accuracies()
    csv_path = write_csv(os.path.join(output_dir, "broad_class_accuracy.csv"),
                         ["layer", "accuracy", "num_test_segments"],
                         [(layer, f"{acc:.6f}", result.num_segments(layer))
                          for layer, acc in accuracies.items()])
    json_path = write_json(os.path.join(output_dir, "broad_class_confusion.json"),
                           {"classes": list(result.classes),
                            "confusion": {layer: counts.tolist()
                                          for layer, counts in result.confusion.items()}})
    png_path = plot_accuracy(accuracies, os.path.join(output_dir, "broad_class_accuracy.png"),
                             "Broad-class accuracy per layer (nearest centroid, cosine)")
    ends = list(dict.fromkeys([result.layers[0], result.layers[-1]]))
    heatmap = plot_confusions(result, ends, os.path.join(output_dir, "broad_class_confusion.png"))
    best = max(accuracies, key=accuracies.get)
    return [
        Artifact(PROBE, csv_path, f"broad-class accuracy per layer (best {best}: "
                 f"{accuracies[best]:.3f})"),
        Artifact(PROBE, png_path, "broad-class accuracy per layer (paper Fig. 5 numbers)"),
        Artifact(PROBE, heatmap, f"row-normalised confusion matrices, {' vs '.join(ends)} "
                 "(paper Fig. 5)"),
        Artifact(PROBE, json_path, "confusion counts per layer"),
    ]


def run(embedder: FrameEmbedder, train, test, output_dir: str,
        progress: bool = True) -> tuple[BroadClassResult, list[Artifact]]:
    result = broad_class_confusion(embedder, train, test, progress=progress)
    return result, write_outputs(result, output_dir)
