"""Checkpoints that survive preemption: periodic saves, save-on-signal, resume."""
from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import threading

import tensorflow as tf


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag the loop checks between steps.

    Schedulers (Kubernetes, Slurm, preemptible VMs) send SIGTERM before killing a
    job; saving a checkpoint at the next step boundary loses at most one step.
    """

    def __init__(self, signals=(signal.SIGTERM, signal.SIGINT)):
        self._event = threading.Event()
        self._previous = {}
        self.signal_name = None
        if threading.current_thread() is threading.main_thread():
            for sig in signals:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def checkpoint_directory(model_dir: str, chief: bool, worker_index: int) -> str:
    """Non-chief workers must also save (the save is collective), each to its own place."""
    if chief:
        return os.path.join(model_dir, "checkpoints")
    return os.path.join(model_dir, "workers", f"worker{worker_index}")


_INCOMPLETE_RE = re.compile(r"^(ckpt-\d+_temp.*|checkpoint\.tmp[0-9a-f]*)$")


def remove_incomplete_checkpoints(directory: str) -> list[str]:
    """Deletes what a run killed while saving leaves in a checkpoint directory: the
    `ckpt-N_temp` directory TensorFlow writes shards to before merging them, and a
    `checkpoint.tmp*` state file never renamed. The run holds the directory's lock, so
    no other save can be in progress. Logs one line per removal; returns the names."""
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        if not _INCOMPLETE_RE.match(name):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
        removed.append(name)
        print(f"removed incomplete checkpoint {path} (left by a run killed while "
              "saving)", file=sys.stderr, flush=True)
    return removed


def make_manager(checkpoint: tf.train.Checkpoint, directory: str, max_to_keep: int):
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep,
                                      checkpoint_name="ckpt")


def list_checkpoints(model_dir: str) -> list[tuple[int, str]]:
    """All checkpoints of a run as (step, prefix), oldest first."""
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    if state is None:
        return []
    result = []
    for prefix in state.all_model_checkpoint_paths:
        step = int(prefix.rsplit("-", 1)[-1])
        result.append((step, prefix))
    return sorted(result)
