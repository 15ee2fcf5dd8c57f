"""Which phones carry the speaker? (paper section 4, Fig. 7).

For every speaker with at least `min_utterances` utterances, each utterance in turn is held
out; the enrollment vector is the mean of the other utterances' embeddings (an utterance
embedding is the mean of its frame embeddings at the chosen layer). Every frame of the
held-out utterance is scored by cosine similarity to the enrollment, each phone segment by
the mean score of its frames, and the utterance's highest- and lowest-scoring phones are
recorded. Their histograms, set against how often each phone occurs in TRAIN, show which
phones a speaker network relies on; the same counts are summarised by broad class.

`python -m probes.critical_phones --saved_model=DIR --timit_dir=DIR --output_dir=OUT`
"""
from __future__ import annotations

import collections
import dataclasses
import os
from typing import Optional, Sequence

import numpy as np

from tfspk import figures, phones

from tfspk.probes import checks, data
from tfspk.probes.frames import FrameEmbedder
from tfspk.probes.report import Artifact, save_figure, write_csv, write_json

PROBE = "critical_phones"
#: Silence says nothing about the speaker and its long h# segments would swamp the counts.
DEFAULT_EXCLUDE = ("h#", "pau", "epi")


@dataclasses.dataclass(frozen=True)
class CriticalPhones:
    utt_id: str
    speaker: str
    highest: str
    highest_similarity: float
    lowest: str
    lowest_similarity: float


def phone_similarities(embedder: FrameEmbedder, layer: str, utt, frames: np.ndarray,
                       enrollment: np.ndarray) -> np.ndarray:
    """Mean cosine similarity to `enrollment` of the frames of each phone of `utt`."""
    frame_scores = data.cosine_matrix(frames, enrollment[None, :])[:, 0]
    return np.array([frame_scores[piece].mean()
                     for piece in data.segment_slices(embedder, layer, utt, len(frames))])


def check_options(embedder: FrameEmbedder, utterances, layer: Optional[str],
                  min_utterances: int, exclude: Sequence[str]) -> None:
    """The checks `critical_phones` runs before embedding anything (`ProbeOptionError`
    naming the `critical_*` option)."""
    if layer is not None:
        checks.check_layers(embedder, "critical_layer", [layer])
    checks.check_min_utterances("critical_min_utterances", utterances, min_utterances)
    checks.check_phone_labels("critical_exclude", exclude)


def critical_phones(embedder: FrameEmbedder, utterances, layer: Optional[str] = None,
                    min_utterances: int = 10, exclude: Sequence[str] = DEFAULT_EXCLUDE,
                    progress: bool = True) -> list[CriticalPhones]:
    """Highest/lowest-similarity phone of every held-out utterance (see module docstring)."""
    check_options(embedder, utterances, layer, min_utterances, exclude)
    layer = layer or embedder.layers[-1]
    excluded = {label.lower() for label in exclude}
    groups = {speaker: utts for speaker, utts in data.group_by_speaker(utterances).items()
              if len(utts) >= min_utterances}
    results = []
    for speaker, utts in sorted(groups.items()):
        embedded = list(data.embed_utterances(embedder, utts, [layer],
                                              f"{PROBE}: {speaker}", progress))
        utterance_means = np.stack([frames[layer].mean(axis=0) for _, frames in embedded])
        for index, (utt, frames) in enumerate(embedded):
            enrollment = np.delete(utterance_means, index, axis=0).mean(axis=0)
            scores = phone_similarities(embedder, layer, utt, frames[layer], enrollment)
            labels = data.phone_labels(utt)
            kept = [i for i, label in enumerate(labels) if label not in excluded]
            if not kept:
                continue
            best = max(kept, key=lambda i: scores[i])
            worst = min(kept, key=lambda i: scores[i])
            results.append(CriticalPhones(utt.utt_id, speaker, labels[best],
                                          float(scores[best]), labels[worst],
                                          float(scores[worst])))
    return results


def phone_frequencies(utterances, exclude: Sequence[str] = DEFAULT_EXCLUDE) -> dict[str, float]:
    """Fraction of phone segments with each label (from the alignments; no audio read)."""
    excluded = {label.lower() for label in exclude}
    counts = collections.Counter(phone.label for utt in utterances for phone in utt.phones
                                 if phone.label not in excluded)
    total = sum(counts.values())
    return {label: count / total for label, count in counts.items()}


def summarise(results: Sequence[CriticalPhones], frequencies: dict[str, float],
              key=lambda label: label) -> dict[str, dict[str, float]]:
    """`{group: {"highest", "lowest", "train"}}` fractions, grouping labels with `key`
    (identity: per phone; `phones.broad_class`: per broad class)."""
    table: dict[str, dict[str, float]] = collections.defaultdict(
        lambda: {"highest": 0.0, "lowest": 0.0, "train": 0.0})
    for label, fraction in frequencies.items():
        table[key(label)]["train"] += fraction
    for result in results:
        table[key(result.highest)]["highest"] += 1 / len(results)
        table[key(result.lowest)]["lowest"] += 1 / len(results)
    return dict(table)


def plot_histograms(table: dict[str, dict[str, float]], path: str, title: str,
                    order: Sequence[str]) -> str:
    import pandas as pd
    import seaborn as sns

    frame = pd.DataFrame([{"group": group, "kind": kind, "fraction": table[group][kind]}
                          for group in order for kind in ("highest", "lowest", "train")])
    frame["kind"] = frame["kind"].map({"highest": "highest-similarity phone",
                                       "lowest": "lowest-similarity phone",
                                       "train": "frequency in TRAIN"})
    figure, axis = figures.subplots(figsize=(max(6.0, 0.38 * len(order) + 2), 4.0))
    sns.barplot(data=frame, x="group", y="fraction", hue="kind", order=list(order), ax=axis)
    axis.set(title=title, xlabel="", ylabel="fraction")
    axis.tick_params(axis="x", labelrotation=90 if len(order) > 10 else 30)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def _table_rows(table):
    return [(group, f"{v['highest']:.6f}", f"{v['lowest']:.6f}", f"{v['train']:.6f}")
            for group, v in table.items()]


def write_outputs(results: Sequence[CriticalPhones], frequencies: dict[str, float],
                  layer: str, output_dir: str) -> tuple[dict, list[Artifact]]:
    """Per-utterance CSV, per-phone and per-broad-class tables and figures; returns the
    broad-class summary for results.json too."""
    per_utt = write_csv(os.path.join(output_dir, "critical_phones_per_utterance.csv"),
                        [f.name for f in dataclasses.fields(CriticalPhones)],
                        [dataclasses.astuple(r) for r in results])
    by_phone = summarise(results, frequencies)
    phone_order = sorted(by_phone, key=lambda label: -by_phone[label]["train"])
    by_class = summarise(results, frequencies, phones.broad_class)
    class_order = [name for name in data.BROAD_CLASSES if name in by_class]
    header = ["group", "highest_fraction", "lowest_fraction", "train_fraction"]
    phone_csv = write_csv(os.path.join(output_dir, "critical_phones_by_phone.csv"), header,
                          _table_rows({k: by_phone[k] for k in phone_order}))
    class_csv = write_csv(os.path.join(output_dir, "critical_phones_by_broad_class.csv"),
                          header, _table_rows({k: by_class[k] for k in class_order}))
    phone_png = plot_histograms(by_phone, os.path.join(output_dir, "critical_phones.png"),
                                f"Highest/lowest-similarity phones ({layer}, "
                                f"{len(results)} held-out utterances)", phone_order)
    class_png = plot_histograms(by_class, os.path.join(output_dir,
                                                       "critical_phones_broad_class.png"),
                                f"... by broad class ({layer})", class_order)
    summary = {"layer": layer, "num_utterances": len(results),
               "broad_class": {k: by_class[k] for k in class_order},
               "top_highest": sorted(by_phone, key=lambda k: -by_phone[k]["highest"])[:5],
               "top_lowest": sorted(by_phone, key=lambda k: -by_phone[k]["lowest"])[:5]}
    summary_json = write_json(os.path.join(output_dir, "critical_phones_summary.json"), summary)
    return summary, [
        Artifact(PROBE, phone_png, "histograms of each utterance's highest- and "
                 "lowest-similarity phone vs phone frequency in TRAIN (paper Fig. 7)"),
        Artifact(PROBE, class_png, "the same by broad class"),
        Artifact(PROBE, phone_csv, "per-phone fractions (highest, lowest, TRAIN frequency)"),
        Artifact(PROBE, class_csv, "per-broad-class fractions"),
        Artifact(PROBE, per_utt, "highest/lowest phone and similarity per held-out utterance"),
        Artifact(PROBE, summary_json, f"summary (top phones: highest "
                 f"{', '.join(summary['top_highest'][:3])}; lowest "
                 f"{', '.join(summary['top_lowest'][:3])})"),
    ]


def run(embedder: FrameEmbedder, utterances, train_utterances, output_dir: str,
        layer: Optional[str] = None, min_utterances: int = 10,
        exclude: Sequence[str] = DEFAULT_EXCLUDE, progress: bool = True):
    layer = layer or embedder.layers[-1]
    results = critical_phones(embedder, utterances, layer, min_utterances, exclude, progress)
    return write_outputs(results, phone_frequencies(train_utterances, exclude), layer,
                         output_dir)
