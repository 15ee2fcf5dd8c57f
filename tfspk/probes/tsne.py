"""t-SNE of phone-segment embeddings coloured by broad class (paper section 4, Fig. 6).

Segment embeddings (mean frame embedding over each phone) of the first and the last layer
are embedded in 2-D with scikit-learn's t-SNE and drawn side by side: clusters by broad
class in the first layer that dissolve in the last show the network discarding phonetic
information.

`python -m probes.tsne --saved_model=DIR --timit_dir=DIR --output_dir=OUT`
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
from sklearn.manifold import TSNE

from tfspk import figures
from tfspk.probes import checks, data
from tfspk.probes.frames import FrameEmbedder
from tfspk.probes.report import Artifact, save_figure, write_csv

PROBE = "tsne"


def collect_segments(embedder: FrameEmbedder, utterances, layers: Sequence[str],
                     progress: bool = True) -> tuple[dict[str, np.ndarray], list[str]]:
    """`({layer: [N, D]}, labels)` for every phone segment of `utterances`."""
    means: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    labels: list[str] = []
    for utt, frames in data.embed_utterances(embedder, utterances, layers,
                                             f"{PROBE}: segments", progress):
        labels.extend(data.phone_labels(utt))
        for layer in layers:
            means[layer].append(data.segment_means(embedder, layer, utt, frames[layer]))
    return {layer: np.concatenate(parts) for layer, parts in means.items()}, labels


def tsne_2d(points: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """`[N, 2]` t-SNE coordinates; perplexity is capped below N / 3 for small sets."""
    if len(points) < 4:
        raise ValueError(f"t-SNE needs at least 4 segments, got {len(points)}")
    perplexity = min(perplexity, (len(points) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed
                ).fit_transform(np.asarray(points, np.float64))


def segment_tsne(embedder: FrameEmbedder, utterances, layers: Optional[Sequence[str]] = None,
                 max_segments: int = 2000, seed: int = 0, progress: bool = True
                 ) -> tuple[dict[str, np.ndarray], list[str]]:
    """t-SNE coordinates per layer (default: first and last) of at most `max_segments`
    randomly chosen phone segments, and the broad class of each."""
    checks.check_layers(embedder, "layers", layers)
    checks.check_positive("tsne_max_segments", max_segments)
    layers = list(layers or dict.fromkeys([embedder.layers[0], embedder.layers[-1]]))
    segments, labels = collect_segments(embedder, utterances, layers, progress)
    chosen = np.arange(len(labels))
    if len(labels) > max_segments:
        chosen = np.sort(np.random.default_rng(seed).choice(len(labels), max_segments,
                                                            replace=False))
    classes = [data.BROAD_CLASSES[i] for i in data.broad_class_indices(
        labels[i] for i in chosen)]
    return {layer: tsne_2d(segments[layer][chosen], seed) for layer in layers}, classes


def plot_tsne(coordinates: dict[str, np.ndarray], classes: Sequence[str], path: str) -> str:
    import seaborn as sns

    figure, axes = figures.subplots(1, len(coordinates), figsize=(6 * len(coordinates), 5.4),
                                    squeeze=False)
    order = [name for name in data.BROAD_CLASSES if name in set(classes)]
    for index, (axis, (layer, points)) in enumerate(zip(axes[0], coordinates.items())):
        sns.scatterplot(x=points[:, 0], y=points[:, 1], hue=list(classes), hue_order=order,
                        palette="tab10", s=10, linewidth=0, ax=axis,
                        legend=index == len(coordinates) - 1)
        axis.set(title=f"{layer}: phone segments by broad class", xticks=[], yticks=[])
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return save_figure(figure, path)


def write_outputs(coordinates: dict[str, np.ndarray], classes: Sequence[str],
                  output_dir: str) -> list[Artifact]:
    png = plot_tsne(coordinates, classes, os.path.join(output_dir, "tsne_broad_class.png"))
    layers = list(coordinates)
    header = ["broad_class"] + [f"{layer}_{axis}" for layer in layers for axis in "xy"]
    rows = [[name] + [f"{coordinates[layer][i, k]:.4f}" for layer in layers for k in (0, 1)]
            for i, name in enumerate(classes)]
    table = write_csv(os.path.join(output_dir, "tsne_broad_class.csv"), header, rows)
    return [Artifact(PROBE, png, f"t-SNE of {len(classes)} phone segments, "
                     f"{' vs '.join(layers)}, coloured by broad class (paper Fig. 6)"),
            Artifact(PROBE, table, "t-SNE coordinates per segment")]
