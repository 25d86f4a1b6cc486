"""Blocking work in a worker thread, awaited under asyncio or trio (through anyio), with a
cancellation that stops the work rather than leaving it running in the thread.

A thread cannot be killed: the work must have its own way to stop (a shell ``CancelScope``,
a wasm run's ``Deadline``). ``run_sync`` awaits ``fn`` in a worker thread; when the caller
is cancelled it calls ``stop()`` and then waits (shielded) until ``fn`` has returned, so
the cancellation is raised only once the work has really ended.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

__all__ = ["run_sync"]

T = TypeVar("T")

_POLL = 0.005  # seconds between two looks at an abandoned call that is stopping


async def run_sync(fn: Callable[[], T], stop: Callable[[], None]) -> T:
    """``fn()`` in a worker thread; on cancellation ``stop()``, wait for ``fn`` to return,
    then re-raise the cancellation (``fn``'s result or exception is dropped)."""
    ended = threading.Event()
    lock = threading.Lock()
    state = ["new"]  # -> "running" (in the thread) or "skipped" (cancelled before that)

    def call() -> T:
        with lock:
            if state[0] == "skipped":
                raise RuntimeError("cancelled before it started")  # nobody reads this
            state[0] = "running"
        try:
            return fn()
        finally:
            ended.set()

    try:
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        with lock:
            started = state[0] == "running"
            state[0] = "running" if started else "skipped"
        if started:
            stop()
            with anyio.CancelScope(shield=True):
                while not ended.is_set():
                    await anyio.sleep(_POLL)
        raise
