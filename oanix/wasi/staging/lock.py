"""The per-namespace lock: runs over one namespace are serialised, runs over different
namespaces proceed in parallel.

Locking: ``namespace_lock`` hands out one ``NamespaceLock`` per namespace object,
process-wide, its table guarded by a re-entrant lock (a GC callback drops entries); a run
holds its namespace's lock from sync-in to write-back.
"""

from __future__ import annotations

import functools
import threading
import weakref

from ...errors import WasiError

__all__ = ["NamespaceLock", "namespace_lock"]


class NamespaceLock:
    """Serialises the runs over one namespace; refuses a nested run in the same thread.

    A run over a namespace may call back into a service of that namespace (a FuncFs
    write-file gets the guest's bytes); if that callback started another run over the
    same namespace it would wait for itself forever, so that raises ``WasiError`` instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None

    def __enter__(self) -> NamespaceLock:
        me = threading.get_ident()
        if self._owner == me:
            raise WasiError("a run over this namespace is already in progress in this "
                            "thread (a run started from a callback of its own run)")
        self._lock.acquire()
        self._owner = me
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, timeout: float) -> bool:
        """Take the lock if it comes free within ``timeout`` seconds (for a caller that
        must not wait for ever on a stuck run); ``release`` it after."""
        if not self._lock.acquire(timeout=timeout):
            return False
        self._owner = threading.get_ident()
        return True

    def release(self) -> None:
        self._owner = None
        self._lock.release()


_locks_guard = threading.RLock()  # re-entrant: a GC callback (_drop_lock) may take it
_locks: dict[int, tuple[weakref.ref[object] | None, NamespaceLock]] = {}


def namespace_lock(ns: object) -> NamespaceLock:
    """The lock that serialises runs over ``ns`` (one per namespace object, process-wide)."""
    key = id(ns)
    with _locks_guard:
        hit = _locks.get(key)
        if hit is not None and (hit[0] is None or hit[0]() is ns):
            return hit[1]
        lock = NamespaceLock()
        try:
            ref: weakref.ref[object] | None = weakref.ref(ns, functools.partial(_drop_lock, key))
        except TypeError:
            ref = None
        _locks[key] = (ref, lock)
        return lock


def _drop_lock(key: int, _ref: object = None) -> None:
    with _locks_guard:
        hit = _locks.get(key)
        if hit is not None and hit[0] is not None and hit[0]() is None:
            del _locks[key]
