"""An enrolled-speaker database: a directory of npz + JSON, crash-safe, one writer at a time.

Layout of `DB/`:

* `db.json`: format version, the model that made the embeddings (`export` path and
  `fingerprint`, see `tfspk.inference.fingerprint`), the generation number and the name
  of the current embeddings file. Replacing it (write temp, fsync, `os.replace`) is the
  commit point, so a reader sees either the old or the new state, never a mix.
* `embeddings-<generation>.npz`: `speakers` (str [N]), `ids` (str [N]) and
  `embeddings` (float32 [N, D]), one row per enrolled utterance; no pickles.
* `db.lock`: held with `flock` by the writer (the kernel releases it when the process
  dies, so a killed enroll never leaves a stale lock); it holds the writer's pid, which a
  refused second writer names.

Enrolling a speaker again adds utterances to that speaker; the speaker model is the mean
of the length-normalised utterance embeddings.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import time
import zipfile
from typing import Optional, Sequence

import numpy as np

FORMAT_VERSION = 1
META_FILENAME = "db.json"
LOCK_FILENAME = "db.lock"


class SpeakerDbError(ValueError):
    """The database is missing, unreadable or inconsistent; the message names it."""


class ModelMismatchError(SpeakerDbError):
    """Embeddings from a different model than the one the database was built with."""


class DbLockedError(SpeakerDbError):
    """Another process holds the write lock (its pid is `holder`)."""

    def __init__(self, directory: str, holder: Optional[int], waited: float):
        self.holder = holder
        super().__init__(f"{directory}: locked by pid {holder} (waited {waited:.1f} s)")


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


@dataclasses.dataclass
class State:
    """What one generation of the database holds."""

    model: dict
    speakers: np.ndarray
    ids: np.ndarray
    embeddings: np.ndarray
    generation: int = 0

    def speaker_names(self) -> list[str]:
        return sorted(set(self.speakers.tolist()))

    def means(self) -> tuple[list[str], np.ndarray]:
        """(names, [S, D] means of the length-normalised utterance embeddings)."""
        names = self.speaker_names()
        normalised = _normalised(self.embeddings.astype(np.float64))
        means = np.stack([normalised[self.speakers == name].mean(axis=0) for name in names]) \
            if names else np.zeros((0, self.embeddings.shape[1] if self.embeddings.ndim == 2
                                    else 0))
        return names, means.astype(np.float32)


class SpeakerDB:
    """A speaker database directory (see the module docstring)."""

    def __init__(self, directory: os.PathLike | str):
        self.directory = os.fspath(directory)

    # ------------------------------------------------------------------ reading
    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.directory, META_FILENAME))

    def load(self) -> State:
        meta_path = os.path.join(self.directory, META_FILENAME)
        if not os.path.isfile(meta_path):
            raise SpeakerDbError(f"{self.directory}: not a speaker database (no {META_FILENAME})")
        try:
            with open(meta_path, encoding="utf-8") as stream:
                meta = json.load(stream)
        except (OSError, json.JSONDecodeError) as error:
            raise SpeakerDbError(f"{meta_path}: unreadable ({error})") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise SpeakerDbError(f"{meta_path}: format_version {meta.get('format_version')}, "
                                 f"expected {FORMAT_VERSION}")
        path = os.path.join(self.directory, meta["embeddings"])
        try:
            with np.load(path, allow_pickle=False) as data:
                speakers, ids, embeddings = data["speakers"], data["ids"], data["embeddings"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise SpeakerDbError(f"{path}: unreadable ({error})") from None
        if not (len(speakers) == len(ids) == len(embeddings)) or embeddings.ndim != 2:
            raise SpeakerDbError(f"{path}: inconsistent arrays ({speakers.shape}, {ids.shape}, "
                                 f"{embeddings.shape})")
        if len(speakers) != meta.get("num_utterances", len(speakers)):
            raise SpeakerDbError(f"{path}: {len(speakers)} rows but {meta_path} says "
                                 f"{meta['num_utterances']}")
        return State(meta["model"], speakers.astype(str), ids.astype(str),
                     embeddings.astype(np.float32), int(meta["generation"]))

    # ------------------------------------------------------------------ locking
    @contextlib.contextmanager
    def lock(self, timeout: float = 0.0, poll: float = 0.05):
        """Exclusive write lock; waits up to `timeout` s, then raises DbLockedError."""
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, LOCK_FILENAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        started = time.monotonic()
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    waited = time.monotonic() - started
                    if waited >= timeout:
                        raise DbLockedError(self.directory, self._holder(path),
                                            waited) from None
                    time.sleep(poll)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            os.fsync(fd)
            yield
        finally:
            os.close(fd)  # releases the flock

    @staticmethod
    def _holder(path: str) -> Optional[int]:
        try:
            with open(path, encoding="utf-8") as stream:
                return int(stream.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------------ writing
    def _commit(self, state: State) -> None:
        generation = state.generation + 1
        name = f"embeddings-{generation}.npz"
        temporary = os.path.join(self.directory, f".{name}.tmp")
        with open(temporary, "wb") as stream:
            np.savez(stream, speakers=state.speakers.astype(str), ids=state.ids.astype(str),
                     embeddings=state.embeddings.astype(np.float32))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, os.path.join(self.directory, name))
        meta = {"format_version": FORMAT_VERSION, "model": state.model,
                "generation": generation, "embeddings": name,
                "num_utterances": int(len(state.ids)),
                "num_speakers": len(state.speaker_names())}
        meta_path = os.path.join(self.directory, META_FILENAME)
        with open(meta_path + ".tmp", "w", encoding="utf-8") as stream:
            json.dump(meta, stream, indent=2)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(meta_path + ".tmp", meta_path)  # the commit point
        _fsync_directory(self.directory)
        for old in os.listdir(self.directory):  # earlier generations, leftovers of crashes
            if old != name and (old.startswith("embeddings-") or old.endswith(".npz.tmp")):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(self.directory, old))
        state.generation = generation

    def enroll(self, speaker: str, ids: Sequence[str], embeddings, model: dict,
               timeout: float = 10.0) -> State:
        """Adds utterance embeddings to `speaker` (creating the db and the speaker).

        `model` is `{"export": path, "fingerprint": sha256}`; a database made with a
        different fingerprint raises ModelMismatchError. Utterance ids the speaker
        already has are skipped.
        """
        if not speaker or speaker.strip() != speaker:
            raise ValueError(f"speaker name must be non-empty without surrounding spaces, "
                             f"got {speaker!r}")
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or len(embeddings) != len(ids):
            raise ValueError(f"need one [D] embedding per id, got {embeddings.shape} for "
                             f"{len(ids)} ids")
        if not np.isfinite(embeddings).all():
            raise ValueError("embeddings contain NaN or Inf")
        with self.lock(timeout):
            if self.exists():
                state = self.load()
                self.check_model(state, model)
                if state.embeddings.shape[1] != embeddings.shape[1]:
                    raise ModelMismatchError(
                        f"{self.directory}: embeddings of dimension {embeddings.shape[1]}, "
                        f"the database holds {state.embeddings.shape[1]}")
            else:
                state = State(dict(model), np.zeros(0, str), np.zeros(0, str),
                              np.zeros((0, embeddings.shape[1]), np.float32))
            known = set(state.ids[state.speakers == speaker].tolist())
            keep = [i for i, utt in enumerate(ids) if utt not in known]
            if keep:
                state.speakers = np.concatenate([state.speakers,
                                                 np.array([speaker] * len(keep))])
                state.ids = np.concatenate([state.ids, np.array([ids[i] for i in keep])])
                state.embeddings = np.concatenate([state.embeddings, embeddings[keep]])
                self._commit(state)
            return state

    def check_model(self, state: State, model: dict) -> None:
        if state.model.get("fingerprint") != model.get("fingerprint"):
            raise ModelMismatchError(
                f"{self.directory}: built with model {state.model.get('export')} "
                f"(fingerprint {str(state.model.get('fingerprint'))[:12]}), not "
                f"{model.get('export')} (fingerprint {str(model.get('fingerprint'))[:12]})")

    # ------------------------------------------------------------------ scoring
    def identify(self, embedding, model: dict, top_k: int = 5,
                 threshold: Optional[float] = None) -> dict:
        """Top-k speakers by cosine to their means; `speaker` is "unknown" below threshold."""
        state = self.load()
        self.check_model(state, model)
        names, means = state.means()
        if not names:
            raise SpeakerDbError(f"{self.directory}: no speakers enrolled")
        query = np.asarray(embedding, np.float64)
        if query.shape != (means.shape[1],):
            raise ModelMismatchError(f"{self.directory}: query embedding of shape "
                                     f"{query.shape}, the database holds [{means.shape[1]}] "
                                     "embeddings")
        if not np.isfinite(query).all():
            raise ValueError("query embedding contains NaN or Inf")
        query = _normalised(query[None])[0]
        scores = _normalised(means.astype(np.float64)) @ query
        order = np.argsort(-scores, kind="stable")[:max(1, top_k)]
        ranked = [{"speaker": names[i], "score": float(scores[i])} for i in order]
        best = ranked[0]
        accepted = threshold is None or best["score"] >= threshold
        return {"speaker": best["speaker"] if accepted else "unknown",
                "threshold": threshold, "top_k": ranked}


def model_record(model) -> dict:
    """The `model` entry for a tfspk.inference.SpeakerModel."""
    return {"export": os.path.abspath(model.path), "fingerprint": model.fingerprint}
