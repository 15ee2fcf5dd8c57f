"""Re-reads a built split and checks it against its metadata.

Every shard listed in `<split>.metadata.json` must exist, have the recorded sha256,
read without a TFRecord framing/CRC error, and hold exactly the recorded number of
records, each parsing with `tfspk.schema` and agreeing with the split (sample rate,
num_samples, label from speakers.tsv, unique utt_id, the sidecar's example index).
Each problem is reported as a line naming the shard (or file) and what is wrong.

`check_shard_set` is the quick form a long job runs before it starts (training, via
`tfspk.training.trainer.preflight`): only shard files, each of the size (or sha256)
its split's metadata records, and at least one example; `ShardSetError` names the file.
"""
from __future__ import annotations

import dataclasses
import os
import re

from tfspk.shards import metadata as meta
from tfspk.shards.writer import COMPRESSIONS, sha256_file


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """The outcome for one split; `problems` is empty when everything checks out."""

    split: str
    num_shards: int
    num_examples: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def read_records(path: str, compression: str) -> list[bytes]:
    """All records of a TFRecord file; raises ValueError naming the file on a
    truncated or corrupt record (framing or CRC error)."""
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(path, compression_type=COMPRESSIONS[compression])
    records = []
    try:
        for record in dataset.as_numpy_iterator():
            records.append(record)
    except (tf.errors.DataLossError, tf.errors.OpError) as error:
        message = " ".join(str(error.message).split())
        raise ValueError(f"{os.path.basename(path)}: unreadable after record "
                         f"{len(records)} ({message})") from None
    return records


def _check_shard(data_dir: str, entry: dict, metadata: dict, labels: dict[str, int],
                 seen_ids: dict[str, str]) -> tuple[int, list[str]]:
    from tfspk import schema

    name = entry["shard"]
    path = os.path.join(data_dir, name)
    if not os.path.exists(path):
        return 0, [f"{name}: missing"]
    problems = []
    checksum = sha256_file(path)
    if checksum != entry["sha256"]:
        problems.append(f"{name}: sha256 {checksum} does not match metadata {entry['sha256']}")
    try:
        records = read_records(path, metadata["compression"])
    except ValueError as error:
        return 0, problems + [str(error)]
    if len(records) != entry["num_examples"]:
        problems.append(f"{name}: {len(records)} records, metadata says "
                        f"{entry['num_examples']}")
    index = []
    for number, record in enumerate(records):
        where = f"{name}: record {number}"
        try:
            example = schema.parse_example_numpy(record)
        except Exception as error:  # noqa: BLE001 - any parse failure is a finding
            problems.append(f"{where}: does not parse with the schema ({error})")
            continue
        utt_id = example["utt_id"]
        index.append([utt_id, example["speaker"], example["label"], example["num_samples"]])
        if example["num_samples"] != example["pcm16"].shape[0]:
            problems.append(f"{where} ({utt_id}): num_samples {example['num_samples']} != "
                            f"{example['pcm16'].shape[0]} PCM samples")
        if example["sample_rate"] != metadata["sample_rate"]:
            problems.append(f"{where} ({utt_id}): sample rate {example['sample_rate']} != "
                            f"{metadata['sample_rate']}")
        if labels.get(example["speaker"]) != example["label"]:
            problems.append(f"{where} ({utt_id}): label {example['label']} for speaker "
                            f"{example['speaker']!r}, speakers.tsv says "
                            f"{labels.get(example['speaker'])}")
        if utt_id in seen_ids:
            problems.append(f"{where}: utt_id {utt_id!r} also in {seen_ids[utt_id]}")
        seen_ids[utt_id] = name
    sidecar_path = path + ".json"
    if not os.path.exists(sidecar_path):
        problems.append(f"{name}.json: sidecar missing")
    else:
        try:
            sidecar = meta.read_json(sidecar_path)
            if sidecar["examples"] != index and not problems:
                problems.append(f"{name}.json: example index differs from the records")
        except (meta.MetadataError, KeyError) as error:
            problems.append(f"{name}.json: unreadable sidecar ({error})")
    return len(records), problems


def verify_split(data_dir: str, split: str) -> VerifyReport:
    """Checks every shard and file of one split; never raises for a bad split."""
    files = meta.SplitFiles(data_dir, split)
    try:
        metadata = meta.read_json(files.metadata_path)
        labels = meta.read_speakers_tsv(files.speakers_path)
        entries = metadata["shards"]
    except (meta.MetadataError, KeyError) as error:
        return VerifyReport(split, 0, 0, (f"{error}",))
    problems: list[str] = []
    seen_ids: dict[str, str] = {}
    total = 0
    for entry in entries:
        count, found = _check_shard(data_dir, entry, metadata, labels, seen_ids)
        total += count
        problems.extend(found)
    if total != metadata["num_examples"] and not problems:
        problems.append(f"{os.path.basename(files.metadata_path)}: shards hold {total} "
                        f"examples, metadata says {metadata['num_examples']}")
    listed = {entry["shard"] for entry in entries}
    shard_re = re.compile(re.escape(split) + r"-\d{5}-of-\d{5}\.tfrecord(\.gz)?$")
    for name in sorted(os.listdir(data_dir)):
        if shard_re.match(name) and name not in listed:
            problems.append(f"{name}: shard file not listed in {split}.metadata.json")
    if not os.path.exists(files.rejects_path):
        problems.append(f"{os.path.basename(files.rejects_path)}: missing")
    elif len(meta.read_rejects_tsv(files.rejects_path)) != metadata["num_rejected"]:
        problems.append(f"{os.path.basename(files.rejects_path)}: row count differs from "
                        f"num_rejected {metadata['num_rejected']}")
    return VerifyReport(split, len(entries), total, tuple(problems))


def verify_dir(data_dir: str, split: str | None = None) -> list[VerifyReport]:
    """`verify_split` for one split, or every split with metadata in `data_dir`."""
    if not os.path.isdir(data_dir):
        raise ValueError(f"{data_dir}: not a directory")
    splits = [split] if split else meta.splits_in(data_dir)
    if not splits:
        raise ValueError(f"{data_dir}: no <split>.metadata.json found")
    return [verify_split(data_dir, name) for name in splits]


# ------------------------------------------------------------- before training
class ShardSetError(ValueError):
    """Files a training or evaluation glob matches are not a usable set of shards; the
    message names the file(s) and the flag or glob."""


#: Names a shard may have: `*.tfrecord[s]`, `*.tfrec`, optionally `.gz`.
SHARD_NAME_RE = re.compile(r"\.(tfrecord|tfrecords|tfrec)(\.gz)?$")
_BUILT_SHARD_RE = re.compile(r"^(?P<split>.+)-\d{5}-of-\d{5}\.tfrecord(\.gz)?$")
CHECK_LEVELS = ("size", "full")


@dataclasses.dataclass(frozen=True)
class ShardSet:
    """What `check_shard_set` found: the shard paths (sorted) and their example count."""

    files: tuple[str, ...]
    num_examples: int
    examples_per_file: tuple[int, ...]


def compression_of(path: str) -> str:
    """"gzip" for `.gz` shards, else "none"."""
    return "gzip" if path.endswith(".gz") else "none"


def check_shard_set(files, what: str = "--train_data", level: str = "size") -> ShardSet:
    """Checks, before a long job reads them, that `files` (paths or one glob) are whole
    shards holding at least one example.

    - every file must be named like a shard (`SHARD_NAME_RE`): sidecar `.json` files,
      `.tmp-` leftovers or TSVs caught by a loose glob are refused by name;
    - a shard written by `tfrecords_tools.build` is checked against its split's
      `metadata.json` as `verify` does: it must be listed there and have the recorded
      size (`level="size"`, instant) or sha256 (`level="full"`, reads every byte), so a
      truncated or replaced shard is named now, not as a DataLossError mid-run; its
      example count comes from the metadata;
    - a shard without metadata is read through (`read_records`: framing and CRCs) to
      count its records;
    - zero examples in total is an error (training on them would wait forever).

    Raises ShardSetError naming `what`, the glob and the offending files.
    """
    import tensorflow as tf

    if level not in CHECK_LEVELS:
        raise ValueError(f"level must be one of {CHECK_LEVELS}, got {level!r}")
    if isinstance(files, str):
        pattern = files
        paths = sorted(tf.io.gfile.glob(files))
        if not paths:
            raise ShardSetError(f"{what}={pattern}: no files match")
    else:
        pattern = ",".join(map(str, files))
        paths = sorted(map(str, files))
        if not paths:
            raise ShardSetError(f"{what}: no files given")
    not_shards = [p for p in paths if tf.io.gfile.isdir(p) or not SHARD_NAME_RE.search(p)]
    if not_shards:
        names = ", ".join(os.path.basename(p) for p in not_shards[:5])
        more = f" and {len(not_shards) - 5} more" if len(not_shards) > 5 else ""
        raise ShardSetError(
            f"{what}={pattern} matches {len(not_shards)} file(s) that are not TFRecord "
            f"shards: {names}{more}; use a glob that matches only shards, e.g. "
            "'DIR/train-*.tfrecord'")
    metadata_cache: dict[tuple[str, str], dict | None] = {}
    problems, counts = [], []
    for path in paths:
        count, problem = _check_one_shard(path, level, metadata_cache)
        counts.append(count)
        if problem:
            problems.append(problem)
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ShardSetError(f"{what}={pattern}: {len(problems)} bad shard(s): {shown}{more}"
                            "; rebuild them (tfrecords_tools.build resumes) and check with "
                            "tfrecords_tools.verify")
    total = sum(counts)
    if total == 0:
        raise ShardSetError(f"{what}={pattern}: the {len(paths)} shard(s) hold no examples "
                            f"({', '.join(os.path.basename(p) for p in paths[:3])}"
                            f"{', ...' if len(paths) > 3 else ''})")
    return ShardSet(tuple(paths), total, tuple(counts))


def _split_metadata(directory: str, split: str, cache: dict) -> dict | None:
    key = (directory, split)
    if key not in cache:
        import json

        import tensorflow as tf

        path = meta.SplitFiles(directory, split).metadata_path
        if not tf.io.gfile.exists(path):
            cache[key] = None
        else:
            if "://" in path:
                try:
                    with tf.io.gfile.GFile(path) as stream:
                        data = json.load(stream)
                except json.JSONDecodeError as error:
                    raise meta.MetadataError(f"{path}: invalid JSON ({error.msg})") from None
            else:
                data = meta.read_json(path)
            cache[key] = {entry["shard"]: entry for entry in data.get("shards", [])}
    return cache[key]


def _check_one_shard(path: str, level: str, cache: dict) -> tuple[int, str | None]:
    name = os.path.basename(path)
    built = _BUILT_SHARD_RE.match(name)
    entries = (_split_metadata(os.path.dirname(path), built.group("split"), cache)
               if built else None)
    if entries is None:
        try:
            return len(read_records(path, compression_of(path))), None
        except ValueError as error:
            return 0, str(error)
    entry = entries.get(name)
    metadata_name = f"{built.group('split')}.metadata.json"
    if entry is None:
        return 0, f"{name}: not listed in {metadata_name} (left over from another build?)"
    import tensorflow as tf

    size = tf.io.gfile.stat(path).length
    if size != entry.get("bytes", size):
        return 0, (f"{name}: {size} bytes, {metadata_name} says {entry['bytes']} "
                   "(truncated or rewritten)")
    if level == "full":
        checksum = sha256_file(path)
        if checksum != entry["sha256"]:
            return 0, f"{name}: sha256 {checksum} does not match {metadata_name}"
    return int(entry["num_examples"]), None
