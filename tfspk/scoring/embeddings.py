"""Embedding files: one `.npz` per set, no pickles.

Keys: `ids` (str [N], utterance ids), `embeddings` (float32 [N, D]) and
optionally `speakers` (str [N]). Written by `eval.extract` (and `tfspk.embed`), read by
`eval.score` (`tfspk.scoring.score`).
Ids are unique, except in enrollment files where `allow_duplicate_ids=True`
lets several rows share an id (one enrollment model from several utterances).
"""
from __future__ import annotations

import dataclasses
import os
import zipfile
from typing import Optional, Sequence

import numpy as np

from tfspk.corpora.records import LocatedError


class EmbeddingFileError(LocatedError):
    """An embedding file is missing, unreadable or inconsistent."""


@dataclasses.dataclass(frozen=True)
class EmbeddingSet:
    """Embeddings with their utterance ids (and speakers when known)."""

    ids: np.ndarray
    embeddings: np.ndarray
    speakers: Optional[np.ndarray] = None
    path: Optional[str] = None

    def rows_by_id(self) -> dict[str, list[int]]:
        """Row numbers of each id, in file order."""
        rows: dict[str, list[int]] = {}
        for row, utt_id in enumerate(self.ids.tolist()):
            rows.setdefault(utt_id, []).append(row)
        return rows


def save_embeddings(path: os.PathLike | str, ids: Sequence[str], embeddings,
                    speakers: Optional[Sequence[str]] = None) -> None:
    """Writes an embedding file (creating its folder), validating shapes first."""
    embedding_set = _validated(np.asarray(ids), np.asarray(embeddings),
                               None if speakers is None else np.asarray(speakers),
                               os.fspath(path), allow_duplicate_ids=False)
    arrays = {"ids": embedding_set.ids, "embeddings": embedding_set.embeddings}
    if embedding_set.speakers is not None:
        arrays["speakers"] = embedding_set.speakers
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    from tfspk.shards.writer import atomic_write_with

    # Atomic: a kill or a full disk leaves the previous file, never half of one. (A file
    # object also keeps numpy from appending ".npz" to the name.)
    atomic_write_with(os.fspath(path), lambda stream: np.savez(stream, **arrays))


def load_embeddings(path: os.PathLike | str, *, require_speakers: bool = False,
                    allow_duplicate_ids: bool = False) -> EmbeddingSet:
    """Reads and validates an embedding file.

    Raises:
      EmbeddingFileError naming the file: missing or not an npz, pickled or
      missing arrays, mismatched lengths, non-finite values, duplicate ids, or
      no `speakers` when `require_speakers`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EmbeddingFileError("file not found", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise EmbeddingFileError(f"not a readable .npz without pickles ({error})", path) from None
    for key in ("ids", "embeddings"):
        if key not in arrays:
            raise EmbeddingFileError(f"missing array {key!r} (found {sorted(arrays)})", path)
    if require_speakers and "speakers" not in arrays:
        raise EmbeddingFileError("needs a 'speakers' array (speaker of each embedding) "
                                 "to train a backend", path)
    return _validated(arrays["ids"], arrays["embeddings"], arrays.get("speakers"), path,
                      allow_duplicate_ids)


def _validated(ids, embeddings, speakers, path, allow_duplicate_ids) -> EmbeddingSet:
    if ids.ndim != 1 or ids.dtype.kind not in "US":
        raise EmbeddingFileError(f"'ids' must be a 1-D string array, got {ids.dtype} "
                                 f"of shape {ids.shape}", path)
    if embeddings.ndim != 2 or embeddings.dtype.kind not in "fiu":
        raise EmbeddingFileError(f"'embeddings' must be a 2-D numeric array, got "
                                 f"{embeddings.dtype} of shape {embeddings.shape}", path)
    if embeddings.shape[0] != ids.shape[0]:
        raise EmbeddingFileError(f"{ids.shape[0]} ids but {embeddings.shape[0]} embeddings", path)
    if ids.size == 0:
        raise EmbeddingFileError("no embeddings", path)
    embeddings = embeddings.astype(np.float32, copy=False)
    bad_rows = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
    if bad_rows.size:
        raise EmbeddingFileError(f"{bad_rows.size} embeddings contain NaN or Inf (first: id "
                                 f"{str(ids[bad_rows[0]])!r})", path)
    ids = ids.astype(str)
    if not allow_duplicate_ids:
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise EmbeddingFileError(f"duplicate id {str(unique[counts > 1][0])!r}", path)
    if speakers is not None:
        if speakers.shape != ids.shape or speakers.dtype.kind not in "US":
            raise EmbeddingFileError(f"'speakers' must be strings, one per id; got "
                                     f"{speakers.dtype} of shape {speakers.shape}", path)
        speakers = speakers.astype(str)
    return EmbeddingSet(ids, embeddings, speakers, path)
