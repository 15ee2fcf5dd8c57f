"""Duration-balanced assignment of utterances to shards, fixed in a plan file.

The plan is computed once per split from audio headers (no decoding) and saved as
`<split>.plan.json` next to the shards. Every later step (the local multiprocess
build, a resumed build, the Beam pipeline) reads the shard contents from the plan,
so reruns and different runners put the same utterances in the same shard, in the
same order.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import heapq
import json
import os
from typing import Any, Iterable, Mapping, Sequence

import soundfile

PLAN_VERSION = 1


@dataclasses.dataclass(frozen=True)
class PlanItem:
    """One input utterance as the build sees it.

    `position` is the utterance's index in the reader's output (the order used in
    rejects.tsv); `start`/`end` are samples at the file's own rate (half-open; `end`
    None means to the end of the file); `phones` are `(start, end, label)` in the
    same coordinates. `reject` is a reason known before any audio is read (duplicate
    utt_id, speaker missing from a fixed map); such items are rejected, not encoded.
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

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["phones"] = [list(p) for p in self.phones]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PlanItem":
        fields = dict(data)
        fields["phones"] = tuple((int(s), int(e), str(lab)) for s, e, lab in fields["phones"])
        return cls(**fields)


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
        return by_shard

    @functools.cached_property
    def _digests(self) -> list[str]:
        settings = dict(self.settings)
        return [hashlib.sha256(json.dumps(
            {"settings": settings, "items": [i.to_json() for i in items]},
            sort_keys=True).encode("utf-8")).hexdigest() for items in self._items_by_shard]

    def shard_items(self, shard: int) -> list[PlanItem]:
        """The items of one shard in plan order (input position)."""
        return list(self._items_by_shard[shard])

    def shard_digest(self, shard: int) -> str:
        """A sha256 over the shard's items and the settings; a sidecar records it so
        a finished shard from another plan is never taken as done."""
        return self._digests[shard]

    def to_json(self) -> dict[str, Any]:
        return {"plan_version": PLAN_VERSION, "split": self.split,
                "num_shards": self.num_shards, "settings": dict(self.settings),
                "speakers": dict(self.speakers),
                "items": [item.to_json() for item in self.items]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ShardPlan":
        if data.get("plan_version") != PLAN_VERSION:
            raise ValueError(f"unsupported plan version {data.get('plan_version')!r}")
        return cls(split=data["split"], num_shards=int(data["num_shards"]),
                   items=tuple(PlanItem.from_json(i) for i in data["items"]),
                   settings=dict(data["settings"]),
                   speakers={str(k): int(v) for k, v in data["speakers"].items()})


def header_seconds(path: str, start: int = 0, end: int | None = None) -> float:
    """Duration in seconds from the audio header (no decoding); 0.0 when the header
    cannot be read: such files are still planned and get rejected with a reason
    when the shard is written."""
    try:
        info = soundfile.info(path)
    except Exception:  # noqa: BLE001 - any unreadable header is planned as empty
        return 0.0
    if info.samplerate <= 0:
        return 0.0
    stop = info.frames if end is None else min(int(end), info.frames)
    return max(stop - int(start), 0) / float(info.samplerate)


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


def make_plan(utterances: Iterable[Any], split: str, num_shards: int,
              labels: Mapping[str, int], settings: Mapping[str, Any]) -> ShardPlan:
    """Plans one split from `tfspk.corpora` Utterances.

    `labels` maps speaker -> integer label; a speaker absent from it makes the
    utterance a planned reject. A repeated utt_id is a planned reject too (the first
    occurrence is kept), so every input appears exactly once in the output.
    """
    items = []
    seen_ids: set[str] = set()
    for position, utt in enumerate(utterances):
        reject = None
        if utt.utt_id in seen_ids:
            reject = f"duplicate_utt_id: {utt.utt_id!r} occurs earlier in the input"
        elif utt.speaker not in labels:
            reject = f"unknown_speaker: {utt.speaker!r} is not in the speakers map"
        seen_ids.add(utt.utt_id)
        phones = tuple((int(p.start), int(p.end), str(p.label)) for p in (utt.phones or ()))
        start = int(utt.start or 0)
        end = None if utt.end is None else int(utt.end)
        items.append(PlanItem(
            position=position, utt_id=str(utt.utt_id), path=os.fspath(utt.path),
            speaker=str(utt.speaker), label=int(labels.get(utt.speaker, -1)),
            start=start, end=end, phones=phones,
            seconds=0.0 if reject else header_seconds(os.fspath(utt.path), start, end),
            reject=reject))
    shards = assign_shards([item.seconds for item in items], num_shards)
    items = [dataclasses.replace(item, shard=shard) for item, shard in zip(items, shards)]
    return ShardPlan(split=split, num_shards=num_shards, items=tuple(items),
                     settings=dict(settings), speakers=dict(labels))
