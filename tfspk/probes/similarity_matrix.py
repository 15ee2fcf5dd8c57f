"""Frame-by-frame cosine similarity between two utterances (paper section 4, Fig. 8).

For a pair from the same speaker and a pair from different speakers, the matrix of cosine
similarities between every frame of one utterance and every frame of the other is drawn
as a heatmap with the phone labels on both axes. A speaker network should make the
same-speaker matrix uniformly brighter; an input layer shows phone-aligned structure.

`python -m probes.similarity_matrix --saved_model=DIR --timit_dir=DIR --output_dir=OUT`
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from tfspk import figures
from tfspk.probes import data
from tfspk.probes.frames import FrameEmbedder
from tfspk.probes.report import Artifact, save_figure, write_json

PROBE = "similarity_matrix"


def choose_pairs(utterances, same: Optional[Sequence[str]] = None,
                 different: Optional[Sequence[str]] = None) -> dict[str, tuple]:
    """`{"same_speaker": (utt_a, utt_b), "different_speakers": (utt_a, utt_c)}`.

    Explicit utterance ids win; otherwise the first two utterances of the first speaker
    with two, against the first utterance of another speaker.
    """
    from tfspk.probes.checks import ProbeOptionError

    by_id = {utt.utt_id: utt for utt in utterances}
    for option, ids in (("same_speaker_pair", same), ("different_speaker_pair", different)):
        for utt_id in ids or ():
            if utt_id not in by_id:
                raise ProbeOptionError(option, ",".join(ids),
                                       f"utterance {utt_id!r} is not in the split")
    groups = data.group_by_speaker(utterances)
    pairs = {}
    if same:
        pairs["same_speaker"] = tuple(by_id[i] for i in same)
    else:
        speaker = next((s for s in sorted(groups) if len(groups[s]) >= 2), None)
        if speaker is None:
            raise ValueError(f"{PROBE}: no speaker has two utterances")
        pairs["same_speaker"] = tuple(groups[speaker][:2])
    if different:
        pairs["different_speakers"] = tuple(by_id[i] for i in different)
    else:
        first = pairs["same_speaker"][0]
        other = next((s for s in sorted(groups) if s != first.speaker), None)
        if other is None:
            raise ValueError(f"{PROBE}: needs utterances of two speakers")
        pairs["different_speakers"] = (first, groups[other][0])
    for name, pair in pairs.items():
        if len(pair) != 2:
            raise ValueError(f"{PROBE}: {name} needs two utterance ids, got {len(pair)}")
    return pairs


def frame_similarity(embedder: FrameEmbedder, utt_a, utt_b, layers: Sequence[str]
                     ) -> dict[str, np.ndarray]:
    """`{layer: [T_a, T_b]}` cosine similarity of every frame pair."""
    (_, a), (_, b) = data.embed_utterances(embedder, [utt_a, utt_b], layers, progress=False)
    return {layer: data.cosine_matrix(a[layer], b[layer]) for layer in layers}


def phone_ticks(embedder: FrameEmbedder, layer: str, utt, num_frames: int):
    """Tick positions (segment centres, in frames) and labels of the phones of `utt`."""
    slices = data.segment_slices(embedder, layer, utt, num_frames)
    return [(piece.start + piece.stop - 1) / 2 for piece in slices], data.phone_labels(utt)


def plot_pair(embedder: FrameEmbedder, pair, matrices: dict[str, np.ndarray],
              title: str, path: str) -> str:
    import seaborn as sns

    figure, axes = figures.subplots(1, len(matrices), figsize=(6.5 * len(matrices), 5.8),
                                    squeeze=False)
    utt_a, utt_b = pair
    for axis, (layer, matrix) in zip(axes[0], matrices.items()):
        sns.heatmap(matrix, vmin=-1.0, vmax=1.0, cmap="RdBu_r", ax=axis,
                    xticklabels=False, yticklabels=False, cbar_kws={"shrink": 0.7})
        x_ticks, x_labels = phone_ticks(embedder, layer, utt_b, matrix.shape[1])
        y_ticks, y_labels = phone_ticks(embedder, layer, utt_a, matrix.shape[0])
        axis.set_xticks(np.array(x_ticks) + 0.5, x_labels, rotation=90, fontsize=6)
        axis.set_yticks(np.array(y_ticks) + 0.5, y_labels, rotation=0, fontsize=6)
        axis.set(title=f"{layer} (mean {matrix.mean():.3f})", xlabel=utt_b.utt_id,
                 ylabel=utt_a.utt_id)
    figure.suptitle(title)
    return save_figure(figure, path)


def run(embedder: FrameEmbedder, utterances, output_dir: str,
        layers: Optional[Sequence[str]] = None, same: Optional[Sequence[str]] = None,
        different: Optional[Sequence[str]] = None) -> tuple[dict, list[Artifact]]:
    """Heatmaps (first and last layer by default) and the mean similarity of each pair."""
    layers = list(layers or dict.fromkeys([embedder.layers[0], embedder.layers[-1]]))
    summary, artifacts = {}, []
    for name, pair in choose_pairs(utterances, same, different).items():
        matrices = frame_similarity(embedder, *pair, layers)
        title = f"{name.replace('_', ' ')}: {pair[0].utt_id} vs {pair[1].utt_id}"
        png = plot_pair(embedder, pair, matrices, title,
                        os.path.join(output_dir, f"similarity_{name}.png"))
        summary[name] = {"utterances": [u.utt_id for u in pair],
                         "mean_similarity": {k: float(m.mean()) for k, m in matrices.items()}}
        artifacts.append(Artifact(PROBE, png, f"frame-by-frame cosine similarity, {title}, "
                                  f"{' vs '.join(layers)} (paper Fig. 8)"))
    table = write_json(os.path.join(output_dir, "similarity_summary.json"), summary)
    artifacts.append(Artifact(PROBE, table, "mean frame similarity per pair and layer"))
    return summary, artifacts
