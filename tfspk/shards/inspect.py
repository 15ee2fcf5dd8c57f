"""Summaries of a built split: speakers, utterances, hours, duration histogram.

Reads only metadata and the shards' sidecar indexes (utt_id, speaker, label,
num_samples per example), never the audio, so it is instant on large corpora.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from tfspk.shards import metadata as meta


@dataclasses.dataclass(frozen=True)
class SplitSummary:
    """Counts and per-utterance durations (seconds, plan order) of one split."""

    split: str
    num_speakers: int
    num_utterances: int
    num_rejected: int
    hours: float
    durations: np.ndarray
    utterances_per_speaker: dict[str, int]


def summarize_split(data_dir: str, split: str) -> SplitSummary:
    """Reads `<split>.metadata.json` and the sidecars of its shards."""
    files = meta.SplitFiles(data_dir, split)
    metadata = meta.read_json(files.metadata_path)
    rate = float(metadata["sample_rate"])
    durations, per_speaker = [], {}
    for entry in metadata["shards"]:
        sidecar = meta.read_json(os.path.join(data_dir, entry["shard"] + ".json"))
        for _, speaker, _, num_samples in sidecar["examples"]:
            durations.append(num_samples / rate)
            per_speaker[speaker] = per_speaker.get(speaker, 0) + 1
    durations = np.asarray(durations, np.float64)
    return SplitSummary(split=split, num_speakers=len(per_speaker),
                        num_utterances=len(durations),
                        num_rejected=int(metadata["num_rejected"]),
                        hours=float(durations.sum()) / 3600.0, durations=durations,
                        utterances_per_speaker=per_speaker)


def duration_histogram(durations: np.ndarray, num_bins: int = 10
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(bin edges in seconds, counts) over [min, max] of the durations."""
    if len(durations) == 0:
        return np.zeros(1), np.zeros(0, np.int64)
    low, high = float(np.min(durations)), float(np.max(durations))
    if high <= low:
        high = low + 1e-3
    counts, edges = np.histogram(durations, bins=num_bins, range=(low, high))
    return edges, counts


def format_summary(summary: SplitSummary, num_bins: int = 10, width: int = 40) -> str:
    """Plain-text report with a histogram drawn in '#' characters."""
    per_speaker = np.asarray(sorted(summary.utterances_per_speaker.values()) or [0])
    lines = [
        f"split {summary.split}: {summary.num_speakers} speakers, "
        f"{summary.num_utterances} utterances, {summary.hours:.3f} hours "
        f"({summary.num_rejected} rejected)",
        f"utterances per speaker: min {per_speaker.min()}, "
        f"median {float(np.median(per_speaker)):g}, max {per_speaker.max()}",
    ]
    if summary.num_utterances:
        d = summary.durations
        lines.append(f"duration (s): min {d.min():.2f}, mean {d.mean():.2f}, "
                     f"max {d.max():.2f}")
        edges, counts = duration_histogram(d, num_bins)
        peak = max(int(counts.max()), 1)
        for low, high, count in zip(edges[:-1], edges[1:], counts):
            bar = "#" * int(round(width * count / peak))
            lines.append(f"  {low:8.2f}-{high:8.2f} s {count:8d} {bar}")
    return "\n".join(lines)


def plot_histogram(summary: SplitSummary, path: str, num_bins: int = 30) -> None:
    """Writes the duration histogram as a PNG."""
    from tfspk import figures

    figure, axes = figures.subplots(figsize=(6, 3.5), dpi=100)
    axes.hist(summary.durations, bins=num_bins, color="tab:blue")
    axes.set_xlabel("utterance duration (s)")
    axes.set_ylabel("utterances")
    axes.set_title(f"{summary.split}: {summary.num_utterances} utterances, "
                   f"{summary.hours:.2f} h, {summary.num_speakers} speakers")
    figure.tight_layout()
    figure.savefig(path)
