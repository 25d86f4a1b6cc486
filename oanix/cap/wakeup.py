"""Wakeup: how a capability service tells its executor that work arrived, without polling.

A service calls ``set()`` from whatever thread wrote the request file (an agent's thread,
a WASI write-back, a trio task); an executor running under trio awaits ``wait()``. A
``set()`` that comes while nobody waits is remembered, so no wakeup is lost.
"""

from __future__ import annotations

import contextlib
import threading

import trio

__all__ = ["Wakeup"]


class Wakeup:
    """A thread-safe signal from any thread to trio tasks.

    Locking: one lock guards the pending flag and the list of waiters; ``set`` hands the
    wakeup to each waiter's trio loop with ``TrioToken.run_sync_soon``, never running trio
    code on the caller's thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = False
        self._waiters: list[tuple[trio.lowlevel.TrioToken, trio.Event]] = []

    def set(self) -> None:
        """Wake every waiter, or the next one to wait. Safe from any thread."""
        with self._lock:
            self._pending = True
            waiters = list(self._waiters)
        if not waiters:
            return
        try:
            here: trio.lowlevel.TrioToken | None = trio.lowlevel.current_trio_token()
        except RuntimeError:  # not in a trio thread
            here = None
        for token, event in waiters:
            if token is here:
                event.set()  # same loop: no need to go through its wakeup socket
                continue
            with contextlib.suppress(trio.RunFinishedError):  # that loop has ended
                token.run_sync_soon(event.set)

    async def wait(self) -> None:
        """Return once ``set`` has been called since the last ``wait`` returned."""
        with self._lock:
            pending, self._pending = self._pending, False
            if not pending:
                entry = (trio.lowlevel.current_trio_token(), trio.Event())
                self._waiters.append(entry)
        if pending:
            await trio.lowlevel.checkpoint()
            return
        try:
            await entry[1].wait()
        finally:
            with self._lock:
                self._waiters.remove(entry)
                self._pending = False
