"""Background jobs: ``cmd &``, ``$!`` and ``wait``.

A list ended by ``&`` runs on a worker thread in a subshell (a copy of the state), with
its standard input empty (POSIX, for a shell without job control), while the script goes
on: its status is 0 at once, ``$!`` names the job, and ``errexit`` ignores how it ends.
``wait`` joins jobs and gives their status; ``kill`` stops one (status ``KILLED``).

A job lives no longer than the command line that started it: the line's cancel scope is
the job's, so its timeout or ``cancel()`` stops it too, and ``Shell.exec`` waits for the
jobs still running before it returns (a command line is done when all its work is). So
``server &`` followed by requests to it behaves as under a real shell while the line
runs, and ``sleep 100 &`` at the end of a line still ends by the line's time limit.

Threads are the shell's processes, and they are counted: pipeline stages and jobs
running at once in one shell take at most ``MAX_THREADS`` (``Threads``). Past it, ``&``
and a pipeline fail at once with a message, as ``fork`` does at a process limit, so a
fork bomb (``b(){ b|b & }; b``) ends in errors and its line's time limit, never in
thousands of threads.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import attrs

from .cancel import Cancelled, CancelScope, entered

__all__ = ["FIRST_JOB_ID", "KILLED", "MAX_THREADS", "Jobs", "Threads"]

FIRST_JOB_ID = 1000
"""The first ``$!``: job ids look like process ids, and are unique within a shell."""

KILLED = 128 + 15
"""The status of a job ``kill`` stopped, as after SIGTERM."""

_KEPT = 1024  # finished jobs whose status is kept for `wait`

MAX_THREADS = 128
"""Pipeline stages and background jobs that may run at once in one shell."""


class Threads:
    """The count of threads a shell's stages and jobs hold, against ``limit``.

    Locking: one lock guards the count.
    """

    def __init__(self, limit: int = MAX_THREADS) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._held = 0

    def take(self, n: int) -> bool:
        """Take ``n`` threads if that stays within the limit; whether it did."""
        with self._lock:
            if self._held + n > self.limit:
                return False
            self._held += n
            return True

    def give(self, n: int) -> None:
        """Give back ``n`` threads taken."""
        with self._lock:
            self._held -= n


@attrs.define
class _Job:
    scope: CancelScope  # the job's own: ``kill`` cancels it
    done: threading.Event = attrs.field(factory=threading.Event)
    status: int = 0


class Jobs:
    """The background jobs of one shell session.

    Locking: one lock guards the table; a job's status is written by its worker before
    its event is set, and read only after the event is set.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count(FIRST_JOB_ID)

    def start(self, run: Callable[[], int], scope: CancelScope | None,
              submit: Callable[[Callable[[], None]], object]) -> int:
        """Run ``run`` (returning the job's status) through ``submit`` under ``scope``;
        the new job's id."""
        job = _Job(CancelScope(scope, reason="killed"))
        with self._lock:
            job_id = next(self._ids)
            self._jobs[job_id] = job
            if len(self._jobs) > _KEPT:  # statuses nobody waited for: the oldest go
                for old in [i for i, j in self._jobs.items() if j.done.is_set()][:_KEPT // 2]:
                    del self._jobs[old]

        def work() -> None:
            try:
                with entered(job.scope):
                    job.status = run()
            except Cancelled:
                job.status = KILLED if job.scope.cancelled else 124
            except BaseException:  # the job's own failure; the script goes on
                job.status = 1
            finally:
                job.done.set()

        submit(work)
        return job_id

    def wait(self, job_id: int | None, scope: CancelScope | None) -> int | None:
        """Wait for job ``job_id`` and forget it: its status, or None for a job this
        shell does not know. With None, wait until no job is left, those the jobs start
        included: 0.

        Raises:
            Cancelled: ``scope`` expired or was cancelled while waiting.
        """
        while True:
            with self._lock:
                if job_id is None:
                    pending = next((j for j in self._jobs.values() if not j.done.is_set()),
                                   None)
                    if pending is None:
                        self._jobs.clear()
                        return 0
                elif job_id in self._jobs:
                    pending = self._jobs[job_id]
                else:
                    return None
            while not pending.done.wait(0.05):
                if scope is not None:
                    scope.check()
            if scope is not None:
                scope.check()  # a job stopped by the scope: the waiter stops too
            if job_id is not None:
                with self._lock:
                    self._jobs.pop(job_id, None)
                return pending.status

    def is_running(self, job_id: int) -> bool:
        """Whether job ``job_id`` is known and has not finished."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job is not None and not job.done.is_set()

    def kill(self, job_id: int) -> bool | None:
        """Stop job ``job_id`` (at its next check, as a timeout would): whether it was
        still running, or None for a job this shell does not know."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return None
        running = not job.done.is_set()
        if running:
            job.scope.cancel("killed")
        return running
