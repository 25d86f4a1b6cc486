"""ExecutorManager: runs a set of executors, in the caller's trio run or on its own thread.

Any object with an async ``run(task_status)`` (started with ``nursery.start``) is an
executor; one with an async ``aclose()`` too is stopped gracefully with it, the others are
cancelled. The executors are trio code (the WebSocket and Nostr ones use
``websockets.trio``), so they run in a trio run: the caller's, or one on the manager's
own thread. Four ways to run them::

    async with manager.running():            # in the caller's trio run
        ...
    await nursery.start(manager.run)         # in the caller's nursery; stop: await aclose()
    async with manager.in_thread():          # any event loop (asyncio too): a trio run on
        ...                                  # a thread, started and stopped off the loop
    manager.start_thread(); ...; manager.stop()   # sync callers: a trio run on a thread

``running`` and ``run`` under another event loop (asyncio) raise a ``RuntimeError`` that
names ``in_thread``.

Locking: a lock guards the thread state; ``run`` may be active once at a time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

import anyio
import anyio.to_thread
import trio

__all__ = ["Executor", "ExecutorManager"]


class Executor(Protocol):
    """What the manager runs: ``await nursery.start(executor.run)``."""

    async def run(self, task_status: trio.TaskStatus[None] = ...) -> None: ...


E = TypeVar("E", bound=Executor)


class ExecutorManager:
    """Starts its executors together and stops them together (see the module docstring)."""

    def __init__(self, *executors: Executor) -> None:
        self._executors: list[Executor] = list(executors)
        self._lock = threading.Lock()
        self._stop: trio.Event | None = None
        self._done: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: threading.Thread | None = None

    def register(self, executor: E) -> E:
        """Add ``executor`` (before starting) and return it."""
        with self._lock:
            if self._done is not None:
                raise RuntimeError("register executors before the manager starts")
            self._executors.append(executor)
        return executor

    @property
    def executors(self) -> list[Executor]:
        """The registered executors, in registration order."""
        with self._lock:
            return list(self._executors)

    # -- in a trio run --------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every executor, report started, and run until ``aclose()``.

        Raises:
            RuntimeError: the manager is already running, or the caller is not in a trio
                run (see ``in_thread``).
        """
        _require_trio("run")
        with self._lock:
            if self._done is not None:
                raise RuntimeError("ExecutorManager is already running")
            self._done, self._stop = trio.Event(), trio.Event()
            self._token = trio.lowlevel.current_trio_token()
            executors = list(self._executors)
        try:
            async with trio.open_nursery() as nursery:
                for ex in executors:
                    await nursery.start(ex.run)
                task_status.started()
                await self._stop.wait()
                async with trio.open_nursery() as closing:
                    for ex in executors:
                        aclose = getattr(ex, "aclose", None)
                        if aclose is not None:
                            closing.start_soon(aclose)
                nursery.cancel_scope.cancel()
        finally:
            with self._lock:
                done, self._done, self._stop, self._token = self._done, None, None, None
            done.set()

    async def aclose(self) -> None:
        """Stop every executor gracefully and wait until ``run`` has returned."""
        with self._lock:
            stop, done = self._stop, self._done
        if stop is None or done is None:
            return
        stop.set()
        await done.wait()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ExecutorManager]:
        """Run the executors in the caller's trio run for the duration of an ``async with``
        block (under asyncio: ``in_thread``)."""
        _require_trio("running")
        async with trio.open_nursery() as nursery:
            await nursery.start(self.run)
            try:
                yield self
            finally:
                with trio.CancelScope(shield=True):
                    await self.aclose()

    # -- on a thread ------------------------------------------------------------------------

    @asynccontextmanager
    async def in_thread(self) -> AsyncIterator[ExecutorManager]:
        """Run the executors on the manager's own thread (``start_thread``) for the
        duration of an ``async with`` block, under any event loop (asyncio, trio):
        starting and stopping wait in a worker thread, so the caller's loop goes on. The
        stop is shielded: a cancelled block still waits for the executors to close.

        Raises:
            RuntimeError: see ``start_thread``.
        """
        await anyio.to_thread.run_sync(self.start_thread)
        try:
            yield self
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.stop)

    def start_thread(self) -> None:
        """Run the executors in a trio run on a new daemon thread; returns once started.

        Raises:
            RuntimeError: already running; or an executor failed to start (chained).
        """
        started = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.run)
                started.set()

        def target() -> None:
            try:
                trio.run(main)
            except BaseException as e:  # reported to start_thread or swallowed at stop
                failure.append(e)
            finally:
                started.set()

        with self._lock:
            if self._thread is not None or self._done is not None:
                raise RuntimeError("ExecutorManager is already running")
            self._thread = thread = threading.Thread(target=target, name="oanix-executors",
                                                     daemon=True)
        thread.start()
        started.wait()
        if failure:
            thread.join()
            with self._lock:
                self._thread = None
            raise RuntimeError("executors failed to start") from failure[0]

    def stop(self, timeout: float | None = None) -> None:
        """Stop a ``start_thread`` run gracefully and join its thread (no-op if none)."""
        with self._lock:
            thread, token = self._thread, self._token
        if thread is None:
            return
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run(self.aclose, trio_token=token)
        thread.join(timeout)
        with self._lock:
            if not thread.is_alive():
                self._thread = None


def _require_trio(what: str) -> None:
    """Raise a clear error when ``what`` is called outside a trio run (e.g. under asyncio,
    where trio's own message, "must be called from async context", says nothing)."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        raise RuntimeError(
            f"ExecutorManager.{what} runs trio executors and needs a trio run; from asyncio "
            "or a thread use `async with manager.in_thread():` (or start_thread/stop)"
        ) from None
