"""Atomic file writes: a reader or a resumed build never sees a half-written shard.

Every file goes to `<name>.tmp-<pid>` first, is fsynced, then renamed over `<name>`
(rename is atomic on POSIX filesystems), and the directory entry is fsynced too.
A build killed at any moment leaves either the complete file or a `.tmp-` file,
which the next run deletes.
"""
from __future__ import annotations

import hashlib
import os
from typing import BinaryIO, Callable, Iterable

COMPRESSIONS = {"none": "", "gzip": "GZIP"}
_CHUNK = 1 << 20


def sha256_file(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _tmp_path(path: str) -> str:
    return f"{path}.tmp-{os.getpid()}"


def _fsync_file(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(tmp: str, path: str) -> None:
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


def atomic_write_with(path: str, write: Callable[[BinaryIO], object]) -> None:
    """Calls `write(handle)` on a binary file that replaces `path` atomically (tmp file,
    fsync, rename) once `write` returns; if it raises, `path` is left as it was. For large
    outputs written as they are produced (an embedding .npz), without a copy in memory."""
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
        _commit(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` atomically (tmp file, fsync, rename)."""
    atomic_write_with(path, lambda handle: handle.write(data))


def atomic_write_text(path: str, text: str) -> None:
    """UTF-8 text version of `atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_lines(path: str, lines: Iterable[str]) -> None:
    """Writes UTF-8 text from an iterable of strings (newlines included) atomically,
    without holding the whole text in memory (a 1M-utterance plan is 200 MB)."""
    tmp = _tmp_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
        _commit(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_tfrecord_atomically(path: str, records: Iterable[bytes],
                              compression: str = "none") -> tuple[int, str, int]:
    """Writes serialized records as one TFRecord file, atomically.

    Returns (number of records, sha256 of the file as stored, size in bytes).
    `records` may be a generator: records are streamed, not held in memory.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {sorted(COMPRESSIONS)}, "
                         f"got {compression!r}")
    import tensorflow as tf  # deferred: planning and metadata do not need TF

    tmp = _tmp_path(path)
    count = 0
    try:
        options = tf.io.TFRecordOptions(compression_type=COMPRESSIONS[compression])
        with tf.io.TFRecordWriter(tmp, options=options) as writer:
            for record in records:
                writer.write(record)
                count += 1
        checksum = sha256_file(tmp)
        size = os.path.getsize(tmp)
        _commit(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return count, checksum, size


def remove_stale_tmp_files(directory: str, prefix: str) -> list[str]:
    """Deletes `<prefix>*.tmp-<pid>` leftovers of a killed build; returns their names."""
    removed = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(prefix) and ".tmp-" in name:
            os.remove(os.path.join(directory, name))
            removed.append(name)
    return removed
