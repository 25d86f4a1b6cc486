"""Stopping a running guest for a reason found on another thread (a disk budget passed).

A store cannot be touched while its guest runs, but wasmtime calls a store's epoch
deadline callback (C API ``wasmtime_store_epoch_deadline_callback``, which wasmtime-py
does not wrap; reached through ``oanix.wasi._wasmtime_compat``) on the guest's own thread
when the deadline is reached. A run with a ``Stopper`` gets a deadline of one tick and
this callback: every tick it checks the stopper, and either extends the deadline by one
tick or stops the guest with the same trap a plain deadline gives
(``TrapCode.INTERRUPT``), so a timeout is reported as before. The caller tells a stop for
its own reason from a timeout by ``Stopper.stop``.

The trap returned is made by ``wasmtime_trap_new_code``; the callback's return type is
``wasmtime_error_t*``, and both C types are a box around one ``anyhow::Error`` (one
field, ``repr(C)``), so wasmtime takes it as the error that traps the guest.

Locking: the table of active stoppers is a dict changed by ``install``/``remove`` on the
run's thread and read by the callback on the same thread (a dict access is atomic); a
stopper's ``stop`` is set by one thread and read by the guest's.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Final

import wasmtime

from ._wasmtime_compat import EPOCH_CALLBACK_TYPES, set_epoch_deadline_callback, trap_new_code

__all__ = ["Stopper"]

_SIGNATURE: Final = EPOCH_CALLBACK_TYPES
_CONTINUE: Final = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE


class Stopper:
    """Stops one run's guest at the tick after ``stop()`` returns True, or once
    ``expired()`` says its time is up."""

    def __init__(self, stop: Callable[[], bool], expired: Callable[[], bool]) -> None:
        self.stop = stop
        self.expired = expired
        self._key = 0

    def install(self, store: wasmtime.Store) -> None:
        """Check this stopper every tick of ``store``'s run (call before it starts)."""
        self._key = next(_keys)
        _active[self._key] = self
        set_epoch_deadline_callback(store, _CALLBACK, self._key, _NO_FINALIZER)
        store.set_epoch_deadline(1)

    def remove(self) -> None:
        """Forget this stopper (after the run)."""
        _active.pop(self._key, None)


_keys = itertools.count(1)
_active: dict[int, Stopper] = {}


def _on_deadline(_ctx: Any, data: int | None, delta: Any, kind: Any) -> int:
    stopper = _active.get(data or 0)
    try:
        if stopper is None or stopper.stop() or stopper.expired():
            return trap_new_code(wasmtime.TrapCode.INTERRUPT)
    except Exception:  # never let an exception cross into wasmtime: check next tick
        pass
    delta[0] = 1
    kind[0] = _CONTINUE
    return 0


_CALLBACK: Final = _SIGNATURE[1](_on_deadline)
_NO_FINALIZER: Final = _SIGNATURE[3]()
