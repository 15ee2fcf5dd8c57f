"""One writer per directory: an advisory lock file naming its holder.

`DirectoryLock(directory)` holds `fcntl.flock` on `<directory>/tfspk.lock` for as long as
it is entered, and writes the holder into the file as JSON: pid, host, start time (UTC)
and command line. A second process that asks for the same directory is refused at once
with `LockHeldError`, whose message names the directory, the lock file and the holder,
e.g.::

    data/vox1: in use by pid 4242 on host gpu3 since 2026-12-02T21:40:00+00:00
    (python -m tfrecords_tools.build ...); lock file data/vox1/tfspk.lock

The kernel drops a flock when its process dies, however it dies (SIGKILL, OOM, power
loss of a local disk), so a crashed run never blocks the next one: the next holder finds
the dead run's record still in the file, takes the lock over and logs a warning naming
the old pid. On a filesystem without flock (`ENOLCK`, some network mounts) the record
decides instead: a live pid on this host, or any record from another host, refuses; a
dead pid on this host is taken over with the same warning.

A clean release deletes the lock file (a finished build or run leaves no trace). A
process that opened the file just before it was deleted would lock an orphan: after
taking the flock every holder checks that the path still names the inode it locked,
and starts again if not.

Within one process the lock is re-entrant (the CLI takes it before writing flags.txt
and the library function it calls takes it again); nested holds share the one flock.

Used by the shard build (one per output directory) and by training (one per model_dir).
"""
from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import threading
from typing import Optional, Sequence

LOCK_FILENAME = "tfspk.lock"

_log = logging.getLogger("tfspk.locking")
_held: dict[str, list] = {}  # realpath of lock file -> [fd, depth]
_held_guard = threading.Lock()


class LockHeldError(RuntimeError):
    """Another process holds the directory's lock; `holder` is its record (or {})."""

    def __init__(self, directory: str, path: str, holder: dict):
        self.directory = directory
        self.path = path
        self.holder = dict(holder)
        super().__init__(f"{directory}: in use by {describe_holder(holder)}; lock file "
                         f"{path} (wait for that run to finish, or use another directory)")


def describe_holder(holder: dict) -> str:
    """`pid 4242 on host gpu3 since <time> (<command>)` from a lock record."""
    if not holder:
        return "another process (no holder record)"
    text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
    if holder.get("started_utc"):
        text += f" since {holder['started_utc']}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


def read_holder(path: str) -> dict:
    """The record in a lock file ({} when empty, missing or unreadable)."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read().strip()
    except OSError:
        return {}
    if not text:
        return {}
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return {"pid": text.split()[0] if text.split() else "?"}
    return record if isinstance(record, dict) else {}


def pid_alive(pid) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _record(command: Optional[Sequence[str]]) -> dict:
    if command is None:
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:  # python -m package.module
            name = spec.name[: -len(".__main__")] if spec.name.endswith(".__main__") else spec.name
            command = ["python", "-m", name] + list(sys.argv[1:])
        else:
            command = ["python"] + list(sys.argv)
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "command": " ".join(str(part) for part in command)}


class DirectoryLock:
    """Context manager holding `<directory>/tfspk.lock` (created with the directory).

    Raises `LockHeldError` on entry when another live process holds it.
    `took_over` is the stale record a successful entry replaced, if any.
    """

    def __init__(self, directory: str, command: Optional[Sequence[str]] = None,
                 filename: str = LOCK_FILENAME):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, filename)
        self.command = command
        self.took_over: dict = {}
        self._key: Optional[str] = None

    def acquire(self) -> "DirectoryLock":
        os.makedirs(self.directory, exist_ok=True)
        key = os.path.realpath(self.path)
        with _held_guard:
            if key in _held:
                _held[key][1] += 1
                self._key = key
                return self
            fd = self._open_locked()
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(_record(self.command)) + "\n").encode("utf-8"), 0)
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
            _held[key] = [fd, 1]
            self._key = key
        if self.took_over:
            _log.warning("%s: took over a stale lock left by %s (that process is gone)",
                         self.directory, describe_holder(self.took_over))
        return self

    def _open_locked(self) -> int:
        """Opens and locks the lock file, retrying while it is replaced under us."""
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                took_over = self._lock(fd)
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
            except BaseException:
                os.close(fd)
                raise
            if same:
                self.took_over = took_over
                return fd
            os.close(fd)  # locked a file a releasing holder had just deleted
        raise OSError(f"{self.path}: lock file keeps being replaced")

    def _lock(self, fd: int) -> dict:
        """flocks `fd`; returns the stale record found (or {}); raises LockHeldError."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            flock_works = True
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise LockHeldError(self.directory, self.path, read_holder(self.path)) from None
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            flock_works = False
        previous = read_holder(self.path)
        if not previous:
            return {}
        if not flock_works:
            same_host = previous.get("host") == socket.gethostname()
            if not same_host or pid_alive(previous.get("pid")):
                raise LockHeldError(self.directory, self.path, previous)
        return previous

    def release(self) -> None:
        key, self._key = self._key, None
        if key is None:
            return
        with _held_guard:
            entry = _held.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _held[key]
            fd = entry[0]
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)  # releases the flock

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
