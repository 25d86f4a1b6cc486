"""Cancellation of shell work: one ``CancelScope`` chain per running command line.

A scope has an optional deadline and can be cancelled from any thread; a child scope
(``timeout N cmd``, one ``exec`` under an environment's scope) is cancelled when it or any
ancestor is. Work checks its scope at every command, loop iteration and blocking wait, and
inside long builtins (``Ctx.check()``), so a runaway command line stops within one check
interval. Waits (``sleep``, a full or empty pipe) wake when the deadline comes, and at once
when a scope is cancelled from outside.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["CancelScope", "Cancelled", "check", "current", "entered", "remaining", "wait"]


class Cancelled(BaseException):
    """Raised inside the shell when ``scope`` (or an ancestor) expired or was cancelled.

    A ``BaseException``, like ``KeyboardInterrupt``: ``except Exception`` in a command
    does not swallow it; the scope that started the work catches it and reports status
    124.
    """

    def __init__(self, scope: CancelScope) -> None:
        super().__init__(scope.reason)
        self.scope = scope


class CancelScope:
    """A deadline (``time.monotonic()`` seconds, or None) and a cancel flag.

    ``fired`` is shared by the whole chain: ``cancel()`` on any scope sets it, so waits
    anywhere in the chain wake at once; each waiter then checks its own scopes.

    Locking: ``cancel`` may be called from any thread; the flag is a plain attribute
    written once (a bool store is atomic), the event is thread-safe; the rest is
    immutable after construction.
    """

    def __init__(self, parent: CancelScope | None = None, timeout: float | None = None,
                 reason: str = "cancelled") -> None:
        self.parent = parent
        self.deadline: float | None = (None if timeout is None
                                       else time.monotonic() + max(timeout, 0.0))
        if parent is not None and parent.deadline is not None and (
                self.deadline is None or parent.deadline < self.deadline):
            self.effective = parent.deadline
        else:
            self.effective = self.deadline if self.deadline is not None else math.inf
        self.fired: threading.Event = parent.fired if parent is not None else threading.Event()
        self.cancelled = False
        self.reason = reason

    def cancel(self, reason: str | None = None) -> None:
        """Cancel this scope (and so its children) now; idempotent."""
        if reason is not None:
            self.reason = reason
        self.cancelled = True
        self.fired.set()

    def expired_scope(self) -> CancelScope | None:
        """The outermost scope of the chain that has expired or been cancelled, if any."""
        now = time.monotonic()
        found: CancelScope | None = None
        s: CancelScope | None = self
        while s is not None:
            if s.cancelled or (s.deadline is not None and now >= s.deadline):
                found = s
            s = s.parent
        return found

    def check(self) -> None:
        """Raise ``Cancelled`` if this scope or an ancestor expired or was cancelled."""
        if self.effective <= time.monotonic() or self.fired.is_set():
            hit = self.expired_scope()
            if hit is not None:
                raise Cancelled(hit)

    def remaining(self) -> float | None:
        """Seconds left before the nearest deadline of the chain, or None for none."""
        return None if self.effective == math.inf else max(
            self.effective - time.monotonic(), 0.0)

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, waking at once when the chain is cancelled or expires."""
        end = time.monotonic() + seconds
        while True:
            self.check()
            left = min(end, self.effective) - time.monotonic()
            if left <= 0 and end <= time.monotonic():
                return
            self.fired.wait(max(left, 0.0))
            if self.fired.is_set() and self.expired_scope() is None:
                # another branch of the chain was cancelled: poll instead of spinning
                time.sleep(min(0.05, max(end - time.monotonic(), 0.0)))

    def wait(self, cond: threading.Condition, interval: float = 0.05) -> None:
        """One bounded wait on ``cond`` (held by the caller), then a check."""
        left = self.remaining()
        cond.wait(interval if left is None else min(interval, left))
        self.check()


# The scope of the shell work running on each thread: an exec call's thread, and each
# pipeline stage's thread, enter theirs; ``timeout`` enters a child for its command.
_local = threading.local()


def current() -> CancelScope | None:
    """The cancel scope of the shell work on this thread, or None outside any."""
    scope: CancelScope | None = getattr(_local, "scope", None)
    return scope


@contextmanager
def entered(scope: CancelScope) -> Iterator[CancelScope]:
    """Make ``scope`` this thread's current scope for the block."""
    saved = current()
    _local.scope = scope
    try:
        yield scope
    finally:
        _local.scope = saved


def check() -> None:
    """Raise ``Cancelled`` if this thread's scope expired or was cancelled."""
    scope = current()
    if scope is not None:
        scope.check()


def remaining() -> float | None:
    """Seconds left to this thread's scope, or None (no deadline, or no scope)."""
    scope = current()
    return None if scope is None else scope.remaining()


def wait(cond: threading.Condition) -> None:
    """One bounded wait on ``cond`` (held) under this thread's scope, then a check."""
    scope = current()
    if scope is None:
        cond.wait(0.05)
    else:
        scope.wait(cond)
