"""Outputs shared by the probes: figure saving and the `report.md` index.

Every probe returns the files it wrote as `Artifact`s; `update_report` keeps one line per
file in `<output_dir>/report.md`, replacing the line of a file written again, so probes can
be run one by one or all together by `probes.run`.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import sys
from typing import Iterable, Sequence

from tfspk.shards.writer import atomic_write_bytes, atomic_write_text

REPORT_FILENAME = "report.md"
REPORT_TITLE = "# Frame-level probes"
_LINE = re.compile(r"^- \*\*(?P<probe>[^*]+)\*\* \[(?P<name>[^\]]+)\]\((?P<path>[^)]+)\): ")


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A file a probe wrote and the one line that says what it shows."""

    probe: str
    path: str
    description: str


# Every output is written atomically (`tfspk.shards.writer`): a probe killed mid-write
# leaves the previous run's file or the new one, never half of one.
def save_figure(figure, path: str) -> str:
    """Writes `figure` (made by `tfspk.figures.subplots`) to `path`, format from its
    extension. A figure a caller made with pyplot is closed there too, as before."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=os.path.splitext(path)[1].lstrip(".") or "png", dpi=110,
                   bbox_inches="tight")
    pyplot = sys.modules.get("matplotlib.pyplot")  # never imported here just to close
    if pyplot is not None:
        pyplot.close(figure)  # no-op for a figure pyplot does not hold
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_csv(path: str, header: Sequence[str], rows: Iterable[Sequence]) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())
    return path


def write_json(path: str, value) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True))
    return path


def update_report(output_dir: str, artifacts: Sequence[Artifact]) -> str:
    """Adds one line per artifact to `report.md`, replacing older lines for the same file."""
    path = os.path.join(output_dir, REPORT_FILENAME)
    entries: dict[str, str] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                match = _LINE.match(line)
                if match:
                    entries[match["path"]] = line.rstrip("\n")
    for artifact in artifacts:
        relative = os.path.relpath(artifact.path, output_dir)
        entries[relative] = (f"- **{artifact.probe}** [{os.path.basename(relative)}]"
                             f"({relative}): {artifact.description}")
    os.makedirs(output_dir, exist_ok=True)
    atomic_write_text(path, REPORT_TITLE + "\n\n" + "\n".join(entries.values()) + "\n")
    return path
