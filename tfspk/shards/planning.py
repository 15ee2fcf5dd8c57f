"""Duration-balanced, speaker-mixed assignment of utterances to shards, fixed in a plan.

The plan is computed once per split from audio headers (no decoding; m4a/aac through
PyAV's demuxer) or from durations the caller supplies, and saved as `<split>.plan.json`
next to the shards. Every later step (the local multiprocess build, a resumed build,
the Beam pipeline) reads the shard contents from the plan, so reruns and different
runners put the same utterances in the same shard, in the same order.

Corpus readers list utterances speaker by speaker. Written in that order, a shard is a
run of a few speakers and training, which reads a handful of shards at a time through a
shuffle buffer of a few thousand examples, would see a fraction of the speakers in any
stretch of batches. So the plan spreads every speaker over the shards
(`assign_mixed_shards`) and fixes a seeded random order inside each shard
(`PlanItem.order`): a shard read front to back is then a uniform sample of the split.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import heapq
import json
import os
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import soundfile

#: 2: items carry `order` (their place in the shard) and shards are speaker-mixed.
PLAN_VERSION = 2
#: Extensions whose duration comes from PyAV (libsndfile cannot open them).
PYAV_EXTENSIONS = (".m4a", ".aac", ".mp4")
#: Seed of the speaker mixing and of the order inside each shard, unless one is given.
DEFAULT_PLAN_SEED = 0


class PlanningError(ValueError):
    """The split cannot be planned (names the file or setting and the reason)."""


class PlanItem(NamedTuple):
    """One input utterance as the build sees it.

    `position` is the utterance's index in the reader's output (the order used in
    rejects.tsv); `start`/`end` are samples at the file's own rate (half-open; `end`
    None means to the end of the file); `phones` are `(start, end, label)` in the
    same coordinates. `reject` is a reason known before any audio is read (duplicate
    utt_id, speaker missing from a fixed map); such items are rejected, not encoded.
    `order` is the item's place inside its shard (0 first): the shard is written in
    that order, a seeded shuffle of its items.

    A named tuple: a 1M-utterance plan builds, compares and JSON-encodes its items at
    C speed (json writes a tuple as the plan file's row), where frozen dataclasses
    took several times longer.
    """

    position: int
    utt_id: str
    path: str
    speaker: str
    label: int
    start: int = 0
    end: int | None = None
    phones: tuple[tuple[int, int, str], ...] = ()
    seconds: float = 0.0
    shard: int = 0
    reject: str | None = None
    order: int = 0

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "PlanItem":
        if len(row) != len(ITEM_FIELDS):
            raise ValueError(f"plan item {row!r}: expected {len(ITEM_FIELDS)} fields "
                             f"{ITEM_FIELDS}")
        phones = row[_PHONES]
        if phones or not isinstance(phones, tuple):  # JSON lists -> the planner's tuples
            row = list(row)
            row[_PHONES] = tuple((int(s), int(e), str(lab)) for s, e, lab in phones)
        return tuple.__new__(cls, row)

    def to_json(self) -> dict[str, Any]:
        data = self._asdict()
        data["phones"] = [list(p) for p in self.phones]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PlanItem":
        return cls.from_row([data[name] for name in ITEM_FIELDS])


#: The order of a PlanItem's fields in the plan file's rows.
ITEM_FIELDS = PlanItem._fields
_PHONES = ITEM_FIELDS.index("phones")


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    """The fixed assignment of one split's utterances to `num_shards` shards.

    `settings` holds every option that changes shard contents (sample rate,
    compression, ...); a rerun with different settings must not resume this plan.
    `speakers` is the full speaker -> label map written to speakers.tsv.
    """

    split: str
    num_shards: int
    items: tuple[PlanItem, ...]
    settings: Mapping[str, Any]
    speakers: Mapping[str, int] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def _items_by_shard(self) -> list[list[PlanItem]]:
        by_shard: list[list[PlanItem]] = [[] for _ in range(self.num_shards)]
        for item in self.items:
            by_shard[item.shard].append(item)
        for items in by_shard:
            items.sort(key=lambda item: (item.order, item.position))
        return by_shard

    @functools.cached_property
    def _digests(self) -> list[str]:
        settings = json.dumps(dict(self.settings), sort_keys=True)
        # One C-encoded dump of the shard's rows (in write order) per shard.
        return [hashlib.sha256(f'{{"settings": {settings}, "items": {json.dumps(rows)}}}'
                               .encode("utf-8")).hexdigest()
                for rows in self._items_by_shard]

    def shard_items(self, shard: int) -> list[PlanItem]:
        """The items of one shard in the order they are written (`PlanItem.order`)."""
        return list(self._items_by_shard[shard])

    def shard_digest(self, shard: int) -> str:
        """A sha256 over the shard's items and the settings; a sidecar records it so
        a finished shard from another plan is never taken as done."""
        return self._digests[shard]

    def to_json_header(self) -> dict[str, Any]:
        """`to_json` without the items."""
        return {"plan_version": PLAN_VERSION, "split": self.split,
                "num_shards": self.num_shards, "settings": dict(self.settings),
                "speakers": dict(self.speakers), "item_fields": list(ITEM_FIELDS)}

    def to_json(self) -> dict[str, Any]:
        """The plan file's content; `items` are rows (the item tuples) in input order,
        their field names in `item_fields`."""
        return dict(self.to_json_header(), items=[list(item) for item in self.items])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ShardPlan":
        version = data.get("plan_version")
        if version != PLAN_VERSION:
            older = isinstance(version, int) and version < PLAN_VERSION
            raise ValueError(
                f"plan version {version!r} is not {PLAN_VERSION}"
                + (" (written by an older tfspk, whose shards are not speaker-mixed): "
                   "pass --overwrite to rebuild the split" if older else ""))
        if list(data.get("item_fields", ITEM_FIELDS)) != list(ITEM_FIELDS):
            raise ValueError(f"item_fields {data['item_fields']} are not {list(ITEM_FIELDS)}")
        return cls(split=data["split"], num_shards=int(data["num_shards"]),
                   items=tuple(map(PlanItem.from_row, data["items"])),
                   settings=dict(data["settings"]),
                   speakers={str(k): int(v) for k, v in data["speakers"].items()})


def header_seconds(path: str, start: int = 0, end: int | None = None) -> float:
    """Duration in seconds of [start, end) samples of `path` from its header, without
    decoding; 0.0 when the header cannot be read: such files are still planned and get
    rejected with a reason when the shard is written.

    m4a/aac/mp4 (VoxCeleb2) are read with PyAV (`pip install 'tfspk[m4a]'`); without it
    a `PlanningError` says so, rather than planning every such file as empty (which
    would put all of them in one shard).
    """
    if path.lower().endswith(PYAV_EXTENSIONS):
        frames, rate = pyav_frames(path)
    else:
        try:
            info = soundfile.info(path)
        except (soundfile.SoundFileError, RuntimeError, UnicodeEncodeError):
            # Not audio, truncated, missing, a directory (libsndfile's errors; RuntimeError
            # from soundfile < 0.11), or a name with undecodable bytes: planned as empty.
            return 0.0
        except Exception as error:  # a bug, not bad input: it stops the plan, but says where
            error.add_note(f"while reading the audio header of {path}")
            raise
        frames, rate = info.frames, info.samplerate
    if rate <= 0:
        return 0.0
    stop = frames if end is None else min(int(end), frames)
    return max(stop - int(start), 0) / float(rate)


def pyav_frames(path: str) -> tuple[int, int]:
    """(samples per channel, sample rate) of an m4a/mp4/aac file without decoding it;
    (0, 0) when it cannot be opened.

    MP4 declares its audio length (the track duration after the encoder's priming is
    cut by the edit list); a raw ADTS .aac stream declares none (FFmpeg estimates one
    from the bit rate, tens of ms off), so its packets are demuxed, not decoded, and
    their durations summed. Either way the figure matches what `tfspk.audio` decodes to
    within one AAC frame (1024 samples, 64 ms at 16 kHz; within a few samples for MP4).
    """
    try:
        import av  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise PlanningError(
            f"{path}: planning {os.path.splitext(path)[1]} files needs their durations, "
            "read with PyAV, which is not installed: pip install 'tfspk[m4a]' (or "
            "pip install av)") from None
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                return 0, 0
            stream = container.streams.audio[0]
            rate = int(stream.rate or 0)
            time_base = stream.time_base
            is_mp4 = any(name in container.format.name.split(",")
                         for name in ("mov", "mp4", "m4a"))
            if is_mp4 and stream.duration:
                ticks = int(stream.duration)
            else:
                ticks = sum(int(packet.duration or 0) for packet in container.demux(stream))
    except (av.FFmpegError, OSError, ValueError):
        return 0, 0
    if rate <= 0 or time_base is None:
        return 0, 0
    return int(round(ticks * time_base * rate)), rate


def assign_shards(seconds: Sequence[float], num_shards: int) -> list[int]:
    """Greedy longest-processing-time assignment: longest item first, each to the
    shard with the least total so far (ties: lowest shard index; equal durations:
    input order). Deterministic, and the spread between the fullest and emptiest
    shard never exceeds the longest single item."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    order = sorted(range(len(seconds)), key=lambda i: (-float(seconds[i]), i))
    loads = [(0.0, shard) for shard in range(num_shards)]
    heapq.heapify(loads)
    assignment = [0] * len(seconds)
    for index in order:
        total, shard = heapq.heappop(loads)
        assignment[index] = shard
        heapq.heappush(loads, (total + float(seconds[index]), shard))
    return assignment


def assign_mixed_shards(seconds: Sequence[float], speakers: Sequence[str],
                        num_shards: int, seed: int = DEFAULT_PLAN_SEED) -> list[int]:
    """Duration-balanced assignment that spreads every speaker over the shards.

    Items are dealt in rounds: round k holds every speaker's k-th utterance (utterances
    of a speaker in a seeded random order, speakers in a fresh seeded order each round),
    and each item goes to the shard with the least total duration so far (ties: fewest
    items, then lowest index). Consecutive items of one speaker are thus a whole round
    apart, and a speaker with n utterances lands on about min(n, num_shards) shards
    instead of one. Items of zero duration (unreadable headers, planned rejects) are
    dealt last; the item-count tie-break spreads them over the shards that are still
    equally loaded, so no shard is left empty while another holds two of them.

    Greedy list scheduling keeps the spread between the fullest and the emptiest
    shard within the longest single item, as longest-first (`assign_shards`) does.
    Deterministic for a given seed.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    count = len(seconds)
    if count == 0:
        return []
    durations = np.asarray(seconds, np.float64)
    _, speaker_ids = np.unique(np.asarray(speakers, dtype=object).astype(str),
                               return_inverse=True)
    rng = np.random.default_rng([int(seed), 1])
    # Rank of each item among its speaker's items, in a random order.
    by_speaker = np.lexsort((rng.random(count), speaker_ids))
    group_starts = np.r_[0, np.flatnonzero(np.diff(speaker_ids[by_speaker])) + 1]
    sizes = np.diff(np.r_[group_starts, count])
    rank = np.empty(count, np.int64)
    rank[by_speaker] = np.arange(count) - np.repeat(group_starts, sizes)
    empty = durations <= 0
    order = np.lexsort((rng.random(count), rank, empty))
    loads = [(0.0, 0, shard) for shard in range(num_shards)]
    heapq.heapify(loads)
    assignment = np.zeros(count, np.int64)
    for index in order.tolist():
        total, items, shard = heapq.heappop(loads)
        assignment[index] = shard
        heapq.heappush(loads, (total + float(durations[index]), items + 1, shard))
    return assignment.tolist()


def order_within_shards(shards: Sequence[int], seed: int = DEFAULT_PLAN_SEED) -> list[int]:
    """Each item's place inside its shard: a seeded uniform shuffle of every shard."""
    shards = np.asarray(shards, np.int64)
    count = len(shards)
    if count == 0:
        return []
    keys = np.random.default_rng([int(seed), 2]).random(count)
    by_shard = np.lexsort((keys, shards))
    starts = np.r_[0, np.flatnonzero(np.diff(shards[by_shard])) + 1]
    sizes = np.diff(np.r_[starts, count])
    order = np.empty(count, np.int64)
    order[by_shard] = np.arange(count) - np.repeat(starts, sizes)
    return order.tolist()


def make_plan(utterances: Iterable[Any], split: str, num_shards: int,
              labels: Mapping[str, int], settings: Mapping[str, Any], *,
              seconds: Sequence[float] | Callable[[Any], float] | None = None,
              seed: int = DEFAULT_PLAN_SEED) -> ShardPlan:
    """Plans one split from `tfspk.corpora` Utterances.

    `labels` maps speaker -> integer label; a speaker absent from it makes the
    utterance a planned reject. A repeated utt_id is a planned reject too (the first
    occurrence is kept), so every input appears exactly once in the output.

    `seconds` gives the durations instead of reading audio headers: one per utterance
    in input order (e.g. from Kaldi's utt2dur), or a function of the Utterance. `seed`
    fixes the speaker mixing and the order inside every shard (`assign_mixed_shards`,
    `order_within_shards`).
    """
    utterances = list(utterances)
    if seconds is not None and not callable(seconds) and len(seconds) != len(utterances):
        raise PlanningError(f"split {split!r}: {len(seconds)} durations given for "
                            f"{len(utterances)} utterances")
    # First pass: rejects and durations only; the items are built once the shards are
    # known (frozen items cannot be updated, and a copy of 1M of them costs 0.5 GB).
    rejects: list[str | None] = []
    durations: list[float] = []
    seen_ids: set[str] = set()
    for position, utt in enumerate(utterances):
        reject = None
        if utt.utt_id in seen_ids:
            reject = f"duplicate_utt_id: {utt.utt_id!r} occurs earlier in the input"
        elif utt.speaker not in labels:
            reject = f"unknown_speaker: {utt.speaker!r} is not in the speakers map"
        seen_ids.add(utt.utt_id)
        if reject:
            duration = 0.0
        elif seconds is None:
            duration = header_seconds(os.fspath(utt.path), int(utt.start or 0),
                                      None if utt.end is None else int(utt.end))
        else:
            duration = float(seconds(utt) if callable(seconds) else seconds[position])
        rejects.append(reject)
        durations.append(duration)
    del seen_ids
    shards = assign_mixed_shards(durations, [str(u.speaker) for u in utterances],
                                 num_shards, seed)
    orders = order_within_shards(shards, seed)
    plan_items = tuple(
        PlanItem(position=position, utt_id=str(utt.utt_id), path=os.fspath(utt.path),
                 speaker=str(utt.speaker), label=int(labels.get(utt.speaker, -1)),
                 start=int(utt.start or 0), end=None if utt.end is None else int(utt.end),
                 phones=tuple((int(p.start), int(p.end), str(p.label))
                              for p in (utt.phones or ())),
                 seconds=duration, shard=shard, reject=reject, order=order)
        for position, (utt, duration, reject, shard, order) in enumerate(
            zip(utterances, durations, rejects, shards, orders)))
    return ShardPlan(split=split, num_shards=num_shards, items=plan_items,
                     settings=dict(settings), speakers=dict(labels))
