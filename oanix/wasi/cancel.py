"""Stopping runs from outside: a ``RunCanceller`` entered on a thread stops the wasm runs
that thread starts when ``cancel()`` is called from any other thread.

A run started while a canceller is entered (``with canceller.entered():``) is checked at
every epoch tick and registers its ``Deadline``: ``cancel()`` expires it, so a guest in
wasm code traps at the next tick and one waiting in ``poll_oneoff`` wakes at once; both
end with ``Trap("timeout")`` naming the reason. This is how ``WasiRuntime.arun`` and the
environment's async calls make an ``anyio`` cancellation stop the guest in its worker
thread.

Locking: one lock guards the flag and the set of deadlines of the runs in progress;
``cancel`` may be called from any thread, ``entered`` affects the calling thread only.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from .._threads import run_sync
from .deadline import Deadline

__all__ = ["RunCanceller", "current", "run_stoppable"]

T = TypeVar("T")


class RunCanceller:
    """A switch that stops every run started under it (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: set[Deadline] = set()
        self.cancelled = False
        self.reason = ""

    def cancel(self, reason: str = "the run was cancelled") -> None:
        """Stop the runs in progress under this canceller, and those started later."""
        with self._lock:
            if self.cancelled:
                return
            self.cancelled, self.reason = True, reason
            deadlines = list(self._deadlines)
        for d in deadlines:
            d.expire(reason)

    @contextmanager
    def watching(self, deadline: Deadline) -> Iterator[None]:
        """Expire ``deadline`` when this canceller is cancelled, for the block."""
        with self._lock:
            self._deadlines.add(deadline)
            cancelled = self.cancelled
        if cancelled:
            deadline.expire(self.reason)
        try:
            yield
        finally:
            with self._lock:
                self._deadlines.discard(deadline)

    @contextmanager
    def entered(self) -> Iterator[RunCanceller]:
        """Make this the canceller of the runs the calling thread starts, for the block."""
        saved = current()
        _local.canceller = self
        try:
            yield self
        finally:
            _local.canceller = saved


_local = threading.local()


def current() -> RunCanceller | None:
    """The canceller entered on this thread, or None."""
    canceller: RunCanceller | None = getattr(_local, "canceller", None)
    return canceller


def run_stoppable(fn: Callable[[], T], *, also: Callable[[], None] | None = None
                  ) -> Awaitable[T]:
    """Await ``fn()`` in a worker thread under a fresh ``RunCanceller`` (asyncio or trio):
    a cancellation of the awaiting task cancels the runs ``fn`` starts (and calls
    ``also``, to stop other work) and waits until ``fn`` has returned."""
    canceller = RunCanceller()

    def call() -> T:
        with canceller.entered():
            return fn()

    def stop() -> None:
        if also is not None:
            also()
        canceller.cancel()

    return run_sync(call, stop)
