"""File patterns: the one glob helper every reader of shard or audio globs uses."""
from __future__ import annotations

import os
from typing import Sequence

import tensorflow as tf


class NoMatchingFilesError(ValueError):
    """A glob (or list of globs) matched no file; the message names the patterns."""


def list_files(pattern: str | os.PathLike | Sequence[str], what: str = "files", *,
               error: type[Exception] = NoMatchingFilesError) -> list[str]:
    """Sorted, de-duplicated files matching one glob or a list of globs (any filesystem
    `tf.io.gfile` reads); raises `error` naming the patterns when none match, so each
    caller reports the failure in its own terms (a shard error, a source error)."""
    patterns = [pattern] if isinstance(pattern, (str, os.PathLike)) else list(pattern)
    files = sorted({f for p in patterns for f in tf.io.gfile.glob(os.fspath(p))})
    if not files:
        raise error(f"{', '.join(map(str, patterns))}: no {what} match")
    return files
