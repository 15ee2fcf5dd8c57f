"""Local multiprocess build of one split: corpus -> plan -> shards -> metadata.

Steps (`build_split`):
1. `prepare_plan`: read audio headers, assign labels and shards, save
   `<split>.plan.json` and `<split>.speakers.tsv`. An existing plan is resumed only if
   the new one is identical; otherwise `overwrite=True` is required.
2. Write every shard that is not finished (a shard is finished when its sidecar
   exists, was written for this plan, and the shard's sha256 matches it), one shard
   per task in a spawn-context process pool, with a tqdm bar.
3. `finalize_split`: check that inputs = examples + rejects, write
   `<split>.rejects.tsv` and `<split>.metadata.json`.

A build killed at any point is finished by running the same command again.

Refusals (`BuildError`, a ValueError, raised before anything is written unless noted):
another build holds the output directory (`tfspk.locking.DirectoryLock`, the holder is
named); more shards than utterances to encode (no shard may be empty by construction);
a settings value out of range. A build whose every input is rejected writes
`<split>.rejects.tsv`, deletes its (empty) shards and raises, so no `metadata.json`
ever describes a split without examples. A file listed in a manifest but missing on
disk is a reject (reason `missing`), not an abort.
"""
from __future__ import annotations

import dataclasses
import datetime
import multiprocessing
import os
import re
import sys
from typing import Any, Callable, Iterable, Mapping, Sequence

from tfspk.locking import DirectoryLock
from tfspk.shards import metadata as meta
from tfspk.shards import planning
from tfspk.shards.encode import EncodedUtterance, EncodeOptions, encode_utterance
from tfspk.shards.writer import remove_stale_tmp_files, write_tfrecord_atomically

INPUT_FORMATS = ("voxceleb", "kaldi", "timit", "manifest")


class BuildError(ValueError, RuntimeError):
    """The build cannot start or its outputs do not add up; the message names the file,
    directory or setting (a ValueError, so CLIs report it as a user error)."""


_SPLIT_RE = re.compile(r"^[^./\\\s][^/\\\s]*$")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Everything that decides a split's outputs, plus how to run.

    `speakers_tsv`: an existing `label<TAB>speaker` map to keep labels stable across
    splits; speakers missing from it are appended after its largest label
    (`unseen_speakers="append"`) or their utterances rejected ("reject").
    `command`/`flags` are recorded verbatim in metadata.json.
    """

    output_dir: str
    split: str
    num_shards: int
    num_workers: int = 1
    compression: str = "none"
    encode: EncodeOptions = EncodeOptions()
    max_reject_fraction: float = 0.05
    speakers_tsv: str | None = None
    unseen_speakers: str = "append"
    overwrite: bool = False
    command: Sequence[str] = ()
    flags: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        problems = []
        if not isinstance(self.split, str) or not _SPLIT_RE.match(self.split):
            problems.append(f"split (--split) must be a non-empty name without '/', "
                            f"whitespace or a leading '.', got {self.split!r}")
        if not 0.0 <= self.max_reject_fraction <= 1.0:
            problems.append("max_reject_fraction (--max_reject_fraction) must be in "
                            f"[0, 1], got {self.max_reject_fraction}")
        if self.num_workers < 1:
            problems.append(f"num_workers (--num_workers) must be >= 1, got {self.num_workers}")
        if self.compression not in ("none", "gzip"):
            problems.append(f"compression (--compression) must be 'none' or 'gzip', got "
                            f"{self.compression!r}")
        if self.unseen_speakers not in ("append", "reject"):
            problems.append("unseen_speakers (--unseen_speakers) must be 'append' or "
                            f"'reject', got {self.unseen_speakers!r}")
        if not self.encode.sample_rate > 0:
            problems.append(f"sample_rate (--sample_rate) must be > 0, got "
                            f"{self.encode.sample_rate}")
        if not self.encode.min_seconds >= 0:
            problems.append(f"min_seconds (--min_duration) must be >= 0, got "
                            f"{self.encode.min_seconds}")
        if problems:
            raise ValueError("; ".join(problems))

    def files(self) -> meta.SplitFiles:
        return meta.SplitFiles(self.output_dir, self.split, self.num_shards,
                               self.compression)

    def settings(self) -> dict[str, Any]:
        """The options that change shard contents (part of every shard's digest)."""
        return {"sample_rate": self.encode.sample_rate, "resample": self.encode.resample,
                "downmix": self.encode.downmix, "min_seconds": self.encode.min_seconds,
                "compression": self.compression}


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What a build produced; `metadata` is the content of `<split>.metadata.json`."""

    metadata: dict[str, Any]
    shards_written: int
    shards_reused: int

    @property
    def reject_fraction(self) -> float:
        return self.metadata["reject_fraction"]

    @property
    def too_many_rejects(self) -> bool:
        return self.reject_fraction > self.metadata["max_reject_fraction"]


def read_corpus(input_format: str, input_path: str, sample_rate: int = 16000, *,
                voxceleb_subset: str | None = None,
                voxceleb_meta: str | None = None) -> list:
    """Utterances of a corpus through the `tfspk.corpora` reader for its format
    (`sample_rate` converts Kaldi `segments` times to sample positions).

    `voxceleb_subset` ("dev" or "test") keeps the speakers `vox1_meta.csv` puts in that
    subset (`voxceleb_meta`, default: beside or above `input_path`); voxceleb only.
    """
    if (voxceleb_subset or voxceleb_meta) and input_format != "voxceleb":
        raise ValueError(f"voxceleb_subset/voxceleb_meta apply to input_format 'voxceleb', "
                         f"not {input_format!r}")
    if input_format == "voxceleb":
        from tfspk.corpora.voxceleb import read_voxceleb
        return read_voxceleb(input_path, subset=voxceleb_subset, meta_path=voxceleb_meta)
    if input_format == "kaldi":
        from tfspk.corpora.kaldi import read_data_dir
        return read_data_dir(input_path, sample_rate=sample_rate)
    if input_format == "timit":
        from tfspk.corpora.timit import read_timit
        return read_timit(input_path)
    if input_format == "manifest":
        from tfspk.corpora.manifest import read_manifest
        # A listed file that is missing becomes a reject (reason `missing`) when its
        # shard is written, like any other unusable audio, instead of aborting.
        return read_manifest(input_path, check_exists=False)
    raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")


def prepare_plan(utterances: Sequence[Any], config: BuildConfig) -> planning.ShardPlan:
    """Plans the split, or resumes the identical plan already in `output_dir`."""
    os.makedirs(config.output_dir, exist_ok=True)
    files = config.files()
    existing = files.existing_files()
    if config.overwrite:
        for path in existing:
            os.remove(path)
        existing = []
    old_labels = (meta.read_speakers_tsv(config.speakers_tsv)
                  if config.speakers_tsv else None)
    labels = meta.assign_labels((u.speaker for u in utterances), old_labels,
                                config.unseen_speakers)
    plan = planning.make_plan(utterances, config.split, config.num_shards, labels,
                              config.settings())
    to_encode = sum(1 for item in plan.items if item.reject is None)
    if to_encode == 0:
        raise BuildError(
            f"split {config.split!r}: none of the {len(plan.items)} inputs can be encoded "
            f"({plan.items[0].reject if plan.items else 'the corpus is empty'}); "
            "nothing written")
    if config.num_shards > to_encode:
        raise BuildError(
            f"--num_shards={config.num_shards} but split {config.split!r} has only "
            f"{to_encode} utterances to encode: some shards would be empty; pass "
            f"--num_shards={to_encode} or fewer")
    if os.path.exists(files.plan_path):
        previous = meta.load_plan(files.plan_path)
        if previous != plan:  # field by field; 1M items compare in about a second
            raise BuildError(
                f"{files.plan_path}: split {config.split!r} was started with different "
                "inputs or settings; rerun with the same ones to resume, or pass "
                "--overwrite to rebuild it")
        plan = previous
    elif existing:
        raise BuildError(
            f"{config.output_dir}: holds files of split {config.split!r} "
            f"({os.path.basename(existing[0])}, ...) but no plan; pass --overwrite")
    remove_stale_tmp_files(config.output_dir, config.split)
    meta.save_plan(files.plan_path, plan)
    meta.write_speakers_tsv(files.speakers_path, plan.speakers)
    return plan


@dataclasses.dataclass(frozen=True)
class ShardTask:
    """One shard's work; picklable, so it can cross to a spawned process."""

    files: meta.SplitFiles
    shard: int
    plan_digest: str
    items: tuple[planning.PlanItem, ...]
    options: EncodeOptions


def write_encoded_shard(files: meta.SplitFiles, shard: int, plan_digest: str,
                        encoded: Iterable[EncodedUtterance], sample_rate: int) -> dict:
    """Writes a shard from encoded utterances (streamed, in plan order), then its
    sidecar; both atomically, the sidecar last so it only ever describes a complete
    shard. Returns the sidecar."""
    examples: list[tuple] = []
    rejects: list[tuple] = []

    def records():
        for utt in encoded:
            if utt.rejected:
                rejects.append((utt.path, utt.reason, utt.utt_id, utt.position))
            else:
                examples.append((utt.utt_id, utt.speaker, utt.label, utt.num_samples))
                yield utt.serialized

    count, checksum, size = write_tfrecord_atomically(
        files.shard_path(shard), records(), files.compression)
    sidecar = meta.make_sidecar(
        shard_name=files.shard_name(shard), plan_digest=plan_digest, num_examples=count,
        sha256=checksum, num_bytes=size, sample_rate=sample_rate, examples=examples,
        rejects=rejects)
    meta.write_json(files.sidecar_path(shard), sidecar)
    return sidecar


def run_shard_task(task: ShardTask) -> dict:
    """Encodes and writes one shard (the unit of work of the process pool)."""
    encoded = (encode_utterance(item, task.options) for item in task.items)
    return write_encoded_shard(task.files, task.shard, task.plan_digest, encoded,
                               task.options.sample_rate)


def pending_shards(plan: planning.ShardPlan, files: meta.SplitFiles
                   ) -> tuple[list[int], dict[int, dict]]:
    """(shards still to write, {shard: sidecar} of finished ones)."""
    pending, finished = [], {}
    for shard in range(plan.num_shards):
        sidecar = meta.finished_sidecar(files, shard, plan.shard_digest(shard))
        if sidecar is None:
            pending.append(shard)
        else:
            finished[shard] = sidecar
    return pending, finished


def finalize_split(plan: planning.ShardPlan, config: BuildConfig,
                   sidecars: Mapping[int, dict]) -> dict[str, Any]:
    """Checks inputs = examples + rejects (per shard and per utterance), writes
    rejects.tsv and metadata.json, returns the metadata."""
    files = config.files()
    missing = [s for s in range(plan.num_shards) if s not in sidecars]
    if missing:
        raise BuildError(f"split {plan.split!r}: shards {missing} were not written")
    accounted: list[str] = []
    for shard in range(plan.num_shards):
        sidecar = sidecars[shard]
        planned = [item.utt_id for item in plan.shard_items(shard)]
        got = [row[0] for row in sidecar["examples"]] + [row[2] for row in sidecar["rejects"]]
        if sorted(got) != sorted(planned):
            raise BuildError(
                f"{files.shard_name(shard)}: {len(planned)} utterances planned but "
                f"{sidecar['num_examples']} written + {sidecar['num_rejected']} rejected")
        accounted.extend(got)
    num_examples = sum(s["num_examples"] for s in sidecars.values())
    num_rejected = sum(s["num_rejected"] for s in sidecars.values())
    if num_examples + num_rejected != len(plan.items) or len(accounted) != len(plan.items):
        raise BuildError(f"split {plan.split!r}: {len(plan.items)} inputs != "
                         f"{num_examples} examples + {num_rejected} rejects")

    rejects = sorted((tuple(row) for s in sidecars.values() for row in s["rejects"]),
                     key=lambda row: row[3])
    meta.write_rejects_tsv(files.rejects_path, rejects)
    if num_examples == 0:
        for shard in range(plan.num_shards):
            for path in (files.shard_path(shard), files.sidecar_path(shard)):
                if os.path.exists(path):
                    os.remove(path)
        if os.path.exists(files.metadata_path):
            os.remove(files.metadata_path)
        counts: dict[str, int] = {}
        for row in rejects:
            code = str(row[1]).split(":", 1)[0]
            counts[code] = counts.get(code, 0) + 1
        summary = ", ".join(f"{code} x{n}" for code, n in sorted(counts.items()))
        raise BuildError(
            f"split {plan.split!r}: all {num_rejected} inputs were rejected ({summary}); "
            f"no shards kept; reasons per file in {files.rejects_path}")
    seconds = sum(s["seconds"] for s in sidecars.values())
    speakers = {row[1] for s in sidecars.values() for row in s["examples"]}
    num_inputs = len(plan.items)
    from tfspk import __version__, schema
    metadata = {
        "split": plan.split,
        "schema_version": schema.SCHEMA_VERSION,
        "tfspk_version": __version__,
        "sample_rate": config.encode.sample_rate,
        "compression": config.compression,
        "num_inputs": num_inputs,
        "num_examples": num_examples,
        "num_rejected": num_rejected,
        "reject_fraction": num_rejected / num_inputs if num_inputs else 0.0,
        "max_reject_fraction": config.max_reject_fraction,
        "num_speakers": len(speakers),
        "num_labels": len(plan.speakers),
        "total_seconds": seconds,
        "total_hours": seconds / 3600.0,
        "command": list(config.command),
        "flags": dict(config.flags),
        "settings": dict(plan.settings),
        "files": {"plan": os.path.basename(files.plan_path),
                  "speakers": os.path.basename(files.speakers_path),
                  "rejects": os.path.basename(files.rejects_path)},
        "shards": [{key: sidecars[s][key] for key in
                    ("shard", "num_examples", "num_rejected", "num_samples", "seconds",
                     "sha256", "bytes")} for s in range(plan.num_shards)],
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }
    meta.write_json(files.metadata_path, metadata)
    return metadata


def _run_tasks(tasks: list[ShardTask], num_workers: int, desc: str,
               initial: int, total: int,
               on_finished: Callable[[], None] | None = None) -> Iterable[dict]:
    from tqdm import tqdm

    with tqdm(total=total, initial=initial, desc=desc, unit="shard",
              file=sys.stderr, dynamic_ncols=True) as bar:
        if num_workers <= 1 or len(tasks) <= 1:
            results = map(run_shard_task, tasks)
            pool = None
        else:
            # spawn: TensorFlow is not fork-safe, and spawn behaves the same on every OS.
            pool = multiprocessing.get_context("spawn").Pool(min(num_workers, len(tasks)))
            results = pool.imap_unordered(run_shard_task, tasks)
        try:
            for sidecar in results:
                bar.update(1)
                bar.set_postfix(rejects=sidecar["num_rejected"], refresh=False)
                yield sidecar
                if on_finished is not None:
                    on_finished()
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()


def output_lock(config: BuildConfig) -> DirectoryLock:
    """The lock one build holds on its output directory for its whole run."""
    return DirectoryLock(config.output_dir, command=list(config.command) or None)


def build_split(utterances: Sequence[Any], config: BuildConfig, *,
                on_shard_finished: Callable[[], None] | None = None) -> BuildResult:
    """Builds (or finishes) one split from `tfspk.corpora` Utterances, holding the
    output directory's lock (`LockHeldError` names another build that holds it).

    `on_shard_finished()` is called after each shard's sidecar is written (the kill
    tests use it to SIGKILL the build at a known point)."""
    if config.num_shards < 1:
        raise ValueError(f"num_shards (--num_shards) must be >= 1, got {config.num_shards}")
    with output_lock(config):
        return _build_split_locked(utterances, config, on_shard_finished)


def _build_split_locked(utterances: Sequence[Any], config: BuildConfig,
                        on_shard_finished=None) -> BuildResult:
    plan = prepare_plan(utterances, config)
    files = config.files()
    pending, sidecars = pending_shards(plan, files)
    tasks = [ShardTask(files, s, plan.shard_digest(s), tuple(plan.shard_items(s)),
                       config.encode) for s in pending]
    for sidecar in _run_tasks(tasks, config.num_workers, f"{config.split} shards",
                              initial=len(sidecars), total=plan.num_shards,
                              on_finished=on_shard_finished):
        sidecars[_shard_index(files, sidecar["shard"])] = sidecar
    metadata = finalize_split(plan, config, sidecars)
    return BuildResult(metadata, shards_written=len(pending),
                       shards_reused=plan.num_shards - len(pending))


def _shard_index(files: meta.SplitFiles, name: str) -> int:
    for shard in range(files.num_shards):
        if files.shard_name(shard) == name:
            return shard
    raise BuildError(f"sidecar names unknown shard {name!r}")


def build_from_corpus(input_format: str, input_path: str, config: BuildConfig,
                      **reader_options) -> BuildResult:
    """`read_corpus` (with `reader_options`, e.g. `voxceleb_subset`) + `build_split`."""
    return build_split(read_corpus(input_format, input_path, config.encode.sample_rate,
                                   **reader_options), config)
