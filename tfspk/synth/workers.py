"""Run synthesis jobs in fresh processes so that each job's output depends only on its input.

espeak-ng carries state from one utterance to the next inside a process (see
`tfspk.synth.espeak`), so a job must start from an engine that has never synthesised. Each
job runs in a child forked from a pool worker; the pool workers come from a `forkserver`
whose process imported this package but never touched espeak-ng, so every job starts from
the same pristine state however many workers there are and whatever the caller did before.
"""
import multiprocessing
import os
import traceback

_PRELOAD = ["tfspk.synth.corpus"]


class SynthJobError(RuntimeError):
    """A synthesis job failed in its child process (the message holds its traceback)."""


def _run_in_fresh_fork(function_and_job):
    function, job = function_and_job
    # A multiprocessing pipe between this worker and its own child: no untrusted data.
    receiver, sender = multiprocessing.Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # child: run the job, send (ok, value) back, exit without cleanup handlers
        receiver.close()
        try:
            try:
                sender.send((True, function(job)))
            except BaseException:  # noqa: BLE001 - everything goes back to the parent
                sender.send((False, traceback.format_exc()))
        finally:
            os._exit(0)
    sender.close()
    try:
        ok, value = receiver.recv()
    except EOFError:
        _, status = os.waitpid(pid, 0)
        raise SynthJobError(f"job {job!r} died without a result (wait status {status})") from None
    os.waitpid(pid, 0)
    receiver.close()
    if not ok:
        raise SynthJobError(f"job {job!r} failed:\n{value}")
    return value


def run_isolated(function, jobs, num_workers=1):
    """Yield `function(job)` for each job, in order, each computed in a fresh process.

    `function` must be a module-level function (it is pickled by reference).
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    jobs = list(jobs)
    if not jobs:
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    with context.Pool(min(num_workers, len(jobs))) as pool:
        yield from pool.imap(_run_in_fresh_fork, [(function, job) for job in jobs])
