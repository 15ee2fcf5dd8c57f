"""Names and contents of the files that describe a split next to its shards.

Several splits may share one output directory, so every file carries the split name:

| file                                   | contents                                        |
| -------------------------------------- | ----------------------------------------------- |
| `<split>-00000-of-00004.tfrecord[.gz]` | the examples (`tfspk.schema`)                   |
| `<shard file>.json`                    | sidecar: counts, rejects, sha256, example index |
| `<split>.plan.json`                    | the fixed shard assignment and build settings   |
| `<split>.speakers.tsv`                 | `label<TAB>speaker`, one line per label          |
| `<split>.rejects.tsv`                  | `path<TAB>reason<TAB>utt_id`, in input order     |
| `<split>.metadata.json`                | totals, command, flags, shard list + checksums  |

TSV files have no header line; tabs and newlines inside fields are replaced by spaces.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Iterable, Mapping, Sequence

from tfspk.shards import planning
from tfspk.shards.writer import atomic_write_lines, atomic_write_text

SIDECAR_VERSION = 1


class MetadataError(ValueError):
    """A metadata, sidecar or TSV file is missing or malformed; names the file."""


@dataclasses.dataclass(frozen=True)
class SplitFiles:
    """Paths of every file of one split in `output_dir`."""

    output_dir: str
    split: str
    num_shards: int = 0
    compression: str = "none"

    def shard_name(self, shard: int) -> str:
        suffix = ".tfrecord.gz" if self.compression == "gzip" else ".tfrecord"
        return f"{self.split}-{shard:05d}-of-{self.num_shards:05d}{suffix}"

    def shard_path(self, shard: int) -> str:
        return os.path.join(self.output_dir, self.shard_name(shard))

    def sidecar_path(self, shard: int) -> str:
        return self.shard_path(shard) + ".json"

    def _file(self, suffix: str) -> str:
        return os.path.join(self.output_dir, f"{self.split}.{suffix}")

    @property
    def plan_path(self) -> str:
        return self._file("plan.json")

    @property
    def metadata_path(self) -> str:
        return self._file("metadata.json")

    @property
    def speakers_path(self) -> str:
        return self._file("speakers.tsv")

    @property
    def rejects_path(self) -> str:
        return self._file("rejects.tsv")

    def existing_files(self) -> list[str]:
        """Every file on disk that belongs to this split (any shard count), including
        `.tmp-<pid>` leftovers."""
        if not os.path.isdir(self.output_dir):
            return []
        found = []
        for name in sorted(os.listdir(self.output_dir)):
            shard = _SHARD_FILE_RE.match(name)
            split_file = _SPLIT_FILE_RE.match(name)
            if ((shard and shard.group("split") == self.split)
                    or (split_file and split_file.group("split") == self.split)):
                found.append(os.path.join(self.output_dir, name))
        return found


_SHARD_FILE_RE = re.compile(
    r"^(?P<split>.+)-\d{5}-of-\d{5}\.tfrecord(\.gz)?(\.json)?(\.tmp-\d+)?$")
_SPLIT_FILE_RE = re.compile(
    r"^(?P<split>.+)\.(plan\.json|metadata\.json|speakers\.tsv|rejects\.tsv|"
    r"durations\.png)(\.tmp-\d+)?$")


def splits_in(data_dir: str) -> list[str]:
    """Names of the splits with a metadata file in `data_dir`."""
    suffix = ".metadata.json"
    return sorted(name[: -len(suffix)] for name in os.listdir(data_dir)
                  if name.endswith(suffix))


def _clean_field(value: Any) -> str:
    return re.sub(r"[\t\r\n]+", " ", str(value)).strip()


def read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise MetadataError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise MetadataError(f"{path}: line {error.lineno}: invalid JSON ({error.msg})") from None


def write_json(path: str, data: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def save_plan(path: str, plan: planning.ShardPlan) -> None:
    """Writes the plan as JSON with one item row per line (field names in
    `item_fields`): readable and diffable, streamed to disk, and written by json's C
    encoder (an indented dump goes through the pure-Python one, 10x slower on a
    1M-utterance plan)."""
    head = plan.to_json_header()
    encode = json.JSONEncoder(ensure_ascii=True).encode

    def lines():
        yield json.dumps(head, sort_keys=True)[:-1] + ', "items": [\n'
        for index, item in enumerate(plan.items):
            yield ("" if index == 0 else ",\n") + encode(item)
        yield "\n]}\n"

    atomic_write_lines(path, lines())


def load_plan(path: str) -> planning.ShardPlan:
    try:
        return planning.ShardPlan.from_json(read_json(path))
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, MetadataError):
            raise
        raise MetadataError(f"{path}: malformed plan ({error})") from None


# ----------------------------------------------------------------- speakers.tsv
def read_speakers_tsv(path: str) -> dict[str, int]:
    """Reads `label<TAB>speaker` lines into {speaker: label}."""
    labels: dict[str, int] = {}
    try:
        handle = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise MetadataError(f"{path}: file not found") from None
    with handle:
        for line_number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0].lstrip("-").isdigit():
                raise MetadataError(f"{path}: line {line_number}: expected "
                                    f"'label<TAB>speaker', got {line!r}")
            label, speaker = int(fields[0]), fields[1]
            if speaker in labels:
                raise MetadataError(f"{path}: line {line_number}: speaker {speaker!r} "
                                    "listed twice")
            if label in labels.values():
                raise MetadataError(f"{path}: line {line_number}: label {label} used twice")
            labels[speaker] = label
    return labels


def write_speakers_tsv(path: str, labels: Mapping[str, int]) -> None:
    lines = [f"{label}\t{_clean_field(speaker)}\n"
             for speaker, label in sorted(labels.items(), key=lambda kv: kv[1])]
    atomic_write_text(path, "".join(lines))


def assign_labels(speakers: Iterable[str], existing: Mapping[str, int] | None = None,
                  unseen: str = "append") -> dict[str, int]:
    """Integer speaker labels, stable across splits.

    Without `existing`, labels are 0..N-1 over the sorted speaker names. With an
    existing map, its labels are kept; speakers it lacks are appended after its
    largest label in sorted order (`unseen="append"`) or left out
    (`unseen="reject"`: their utterances become rejects).
    """
    if unseen not in ("append", "reject"):
        raise ValueError(f"unseen must be 'append' or 'reject', got {unseen!r}")
    labels = dict(existing or {})
    if existing is not None and unseen == "reject":
        return labels
    next_label = max(labels.values(), default=-1) + 1
    for speaker in sorted(set(speakers) - set(labels)):
        labels[speaker] = next_label
        next_label += 1
    return labels


# ------------------------------------------------------------------ rejects.tsv
def write_rejects_tsv(path: str, rejects: Sequence[Sequence[str]]) -> None:
    """Writes (path, reason, utt_id[, ...]) rows; fields after the third are dropped."""
    lines = ["\t".join(_clean_field(f) for f in row[:3]) + "\n" for row in rejects]
    atomic_write_text(path, "".join(lines))


def read_rejects_tsv(path: str) -> list[tuple[str, str, str]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 3:
                raise MetadataError(f"{path}: line {line_number}: expected "
                                    "'path<TAB>reason<TAB>utt_id'")
            rows.append((fields[0], fields[1], fields[2]))
    return rows


# --------------------------------------------------------------------- sidecars
def make_sidecar(*, shard_name: str, plan_digest: str, num_examples: int, sha256: str,
                 num_bytes: int, sample_rate: int, examples: Sequence[Sequence[Any]],
                 rejects: Sequence[Sequence[str]]) -> dict[str, Any]:
    """A shard's sidecar. `examples` rows are (utt_id, speaker, label, num_samples),
    `rejects` rows are (path, reason, utt_id, input position), both in plan order."""
    total_samples = sum(int(row[3]) for row in examples)
    return {
        "sidecar_version": SIDECAR_VERSION,
        "shard": shard_name,
        "plan_digest": plan_digest,
        "num_examples": int(num_examples),
        "num_rejected": len(rejects),
        "num_samples": total_samples,
        "seconds": total_samples / float(sample_rate),
        "sha256": sha256,
        "bytes": int(num_bytes),
        "examples": [list(row) for row in examples],
        "rejects": [list(row) for row in rejects],
    }


def finished_sidecar(files: SplitFiles, shard: int, plan_digest: str) -> dict | None:
    """The sidecar of a shard that is complete: sidecar present, written for this
    plan, and the shard file's sha256 equal to the recorded one. None otherwise."""
    from tfspk.shards.writer import sha256_file

    sidecar_path, shard_path = files.sidecar_path(shard), files.shard_path(shard)
    if not (os.path.exists(sidecar_path) and os.path.exists(shard_path)):
        return None
    try:
        sidecar = read_json(sidecar_path)
    except MetadataError:
        return None
    if (sidecar.get("sidecar_version") != SIDECAR_VERSION
            or sidecar.get("plan_digest") != plan_digest):
        return None
    if sha256_file(shard_path) != sidecar.get("sha256"):
        return None
    return sidecar
