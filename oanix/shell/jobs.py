"""Background jobs: ``cmd &``, ``$!`` and ``wait``.

A list ended by ``&`` runs on a worker thread in a subshell (a copy of the state), with
its standard input empty (POSIX, for a shell without job control), while the script goes
on: its status is 0 at once, ``$!`` names the job, and ``errexit`` ignores how it ends.
``wait`` joins jobs and gives their status.

A job lives no longer than the command line that started it: the line's cancel scope is
the job's, so its timeout or ``cancel()`` stops it too, and ``Shell.exec`` waits for the
jobs still running before it returns (a command line is done when all its work is). So
``server &`` followed by requests to it behaves as under a real shell while the line
runs, and ``sleep 100 &`` at the end of a line still ends by the line's time limit.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import attrs

from .cancel import Cancelled, CancelScope, entered

__all__ = ["FIRST_JOB_ID", "Jobs"]

FIRST_JOB_ID = 1000
"""The first ``$!``: job ids look like process ids, and are unique within a shell."""


@attrs.define
class _Job:
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
        job = _Job()
        with self._lock:
            job_id = next(self._ids)
            self._jobs[job_id] = job

        def work() -> None:
            try:
                if scope is None:
                    job.status = run()
                else:
                    with entered(scope):
                        job.status = run()
            except Cancelled:
                job.status = 124
            except BaseException:  # the job's own failure; the script goes on
                job.status = 1
            finally:
                job.done.set()

        submit(work)
        return job_id

    def wait(self, job_id: int | None, scope: CancelScope | None) -> int | None:
        """Wait for job ``job_id`` (None: every job) and forget it: its status (0 for
        every job), or None for a job this shell does not know.

        Raises:
            Cancelled: ``scope`` expired or was cancelled while waiting.
        """
        with self._lock:
            if job_id is None:
                waiting = list(self._jobs.items())
            elif job_id in self._jobs:
                waiting = [(job_id, self._jobs[job_id])]
            else:
                return None
        for _, job in waiting:
            while not job.done.wait(0.05):
                if scope is not None:
                    scope.check()
        if scope is not None:
            scope.check()  # a job stopped by the scope: the waiter stops too
        with self._lock:
            for i, _ in waiting:
                self._jobs.pop(i, None)
        return 0 if job_id is None else waiting[0][1].status

    def running(self) -> bool:
        """Whether a job has not finished yet."""
        with self._lock:
            return any(not j.done.is_set() for j in self._jobs.values())
