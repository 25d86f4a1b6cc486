"""What every executor's ``run`` shares: one run at a time, a way to stop it, and the loop
that hands queued work to worker tasks as slots free up."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

from .wakeup import Wakeup

__all__ = ["RunOnce", "dispatch"]

_T = TypeVar("_T")


class RunOnce:
    """The lifecycle of an executor's ``run``.

    A subclass's ``run`` calls ``_begin_run()`` first and ``_end_run()`` in its
    ``finally``, and does its dispatching inside ``with trio.CancelScope() as
    self._dispatch_scope``, skipping it when ``self._stopping`` is already set (``aclose``
    came before the dispatching started).

    Locking: none; an executor belongs to the one trio run its ``run`` is active in.
    """

    def __init__(self) -> None:
        self._stopping = False
        self._dispatch_scope: trio.CancelScope | None = None
        self._done: trio.Event | None = None

    def _begin_run(self) -> None:
        """Raises RuntimeError when ``run`` is already active."""
        if self._done is not None:
            raise RuntimeError(f"{type(self).__name__}.run is already active")
        self._done = trio.Event()
        self._stopping = False

    def _end_run(self) -> None:
        self._dispatch_scope = None
        if self._done is not None:
            self._done.set()
            self._done = None

    async def aclose(self) -> None:
        """Stop dispatching, and return when ``run`` has returned (what happens to the
        work in flight is the executor's: see its docstring). Idempotent; returns at
        once when not running."""
        done = self._done
        self._stopping = True
        if done is None:
            return
        if self._dispatch_scope is not None:
            self._dispatch_scope.cancel()
        await done.wait()


async def dispatch(slots: int, take: Callable[[], _T | None], wakeup: Wakeup,
                   start: Callable[[_T, trio.Semaphore], None]) -> None:
    """Hand each item ``take`` returns to ``start``, with the semaphore whose slot it holds
    (``start`` releases it when the item is done), at most ``slots`` at a time; wait on
    ``wakeup`` when nothing is queued. Never returns: cancel it."""
    free = trio.Semaphore(slots)
    while True:
        await free.acquire()
        while (item := take()) is None:
            await wakeup.wait()
        start(item, free)
