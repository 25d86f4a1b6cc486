"""Deadlines inside host calls: a guest waiting in WASI stops at its run's time limit.

Wasmtime's epoch interruption, which timeouts are counted in, is checked only while wasm
code runs; a guest blocked in a host call (``time.sleep(10**6)``, ``select`` with a long
timeout) would outlive its limit by as long as the call lasts. ``poll_oneoff`` is the one
WASI preview 1 call a guest waits in, so ``bind_poll`` shadows wasmtime's with one that
waits on the run's ``Deadline``:

* clock subscriptions (sleep, timeouts) sleep until their time, or until the deadline,
  whichever comes first; at the deadline the call raises ``DeadlinePassed``, which ends
  the run (``start_guest`` reports ``Trap("timeout")``);
* fd subscriptions are answered by wasmtime's own ``poll_oneoff``, asked through a tiny
  helper module with a zero timeout added (so it never waits), every few milliseconds
  until something is ready, a clock is due or the deadline passes. Files, the in-memory
  stdin and the output files are always ready, so the answer is usually immediate.

Its answers are wasmtime's (``tests/wasi/test_wasi_deadline.py`` compares them), but for
a subscription or event array outside the guest's memory: EFAULT where wasmtime traps.

The other WASI calls do not wait on anything a guest controls: files are regular files,
a one-shot run's stdin is in memory. A ``PythonSession``'s stdin is a pipe; the session
feeds it when it stops the interpreter.

Locking: see ``Deadline``; ``guard`` sets the deadline of the calling thread (a
thread-local), which is the thread that runs the store.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from typing import Final

import wasmtime

__all__ = ["HELPER_NAME", "HELPER_WASM", "Deadline", "DeadlinePassed", "bind_poll",
           "guard"]

_WASI: Final = "wasi_snapshot_preview1"
# WASI preview 1 errno values.
_EFAULT: Final = 21
_EINVAL: Final = 28
_ENOMEM: Final = 48
_SUB: Final = 48  # sizeof(subscription)
_EVENT: Final = 32  # sizeof(event)
_CLOCK, _FD_READ, _FD_WRITE = 0, 1, 2
_REALTIME, _MONOTONIC = 0, 1
_ABSTIME: Final = 1
_PROBE_ID: Final = (1 << 64) - 1  # the userdata of the zero-timeout clock of a probe
_FIRST_SLICE: Final = 0.001  # seconds between two probes of fd subscriptions, doubling...
_LAST_SLICE: Final = 0.05  # ... up to this
_PAGE: Final = 65536

# Calls wasmtime's poll_oneoff and clock_time_get with the helper's own memory: a WASI
# function called from the host needs a caller that exports one.
_HELPER_WAT: Final = """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "poll") (param i32 i32 i32 i32) (result i32)
    (call $poll (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "now") (param i32) (result i64)
    (if (call $clock (local.get 0) (i64.const 1) (i32.const 0))
      (then (return (i64.const -1))))
    (i64.load (i32.const 0))))
"""
HELPER_WASM: Final = bytes(wasmtime.wat2wasm(_HELPER_WAT))
HELPER_NAME: Final = "oanix-poll-helper.wasm"


class DeadlinePassed(Exception):
    """Raised inside ``poll_oneoff`` when the run's deadline passes: it ends the run."""


class Deadline:
    """When one run must stop: ``timeout`` seconds from now (None: no time limit), or
    as soon as ``expire()`` is called, from any thread (a session's timeout, a runtime
    closing). ``tripped`` says whether a host call stopped the guest for it; ``reason``
    is what ``expire`` was told.

    Locking: ``expire`` may be called from any thread; it and ``wait`` hand over under
    ``_wake_lock`` (the event a waiter sleeps on is made only when a guest waits, so a
    run that never does costs no more than a small object). The rest is used by the
    thread that runs the deadline's store.
    """

    __slots__ = ("_event", "_expired", "at", "helper", "reason", "timeout", "tripped")

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout
        self.at = None if timeout is None else time.monotonic() + timeout
        self._expired = False
        self._event: threading.Event | None = None
        self.reason = ""
        self.tripped = False
        self.helper: wasmtime.Instance | None = None  # the store's, made on first use

    @property
    def expired(self) -> bool:
        """Whether ``expire()`` was called."""
        return self._expired

    def expire(self, reason: str = "") -> None:
        """Stop the run now: a guest waiting in ``poll_oneoff`` wakes and traps."""
        with _wake_lock:
            if not self._expired:
                self.reason = reason
            self._expired = True
            event = self._event
        if event is not None:
            event.set()

    def wait(self, until: float | None) -> bool:
        """Sleep until ``time.monotonic()`` reaches ``until`` (None: for ever): True then,
        False as soon as the deadline passes or ``expire()`` is called."""
        with _wake_lock:
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        while True:
            if self._expired:
                return False
            now = time.monotonic()
            if self.at is not None and now >= self.at:
                return False
            if until is not None and now >= until:
                return True
            ends = [t for t in (until, self.at) if t is not None]
            event.wait(min(ends) - now if ends else None)


_wake_lock = threading.Lock()
_current = threading.local()


def guard(deadline: Deadline | None) -> Deadline | None:
    """Make ``deadline`` the one ``poll_oneoff`` honours in this thread (the thread that
    runs the store); the one it replaces, to put back after the run (a plain function,
    not a context manager: it is on every run's path)."""
    previous: Deadline | None = getattr(_current, "deadline", None)
    _current.deadline = deadline
    return previous


def bind_poll(linker: wasmtime.Linker,
              load: Callable[[bytes], wasmtime.Module] | None = None) -> None:
    """Replace ``poll_oneoff`` in ``linker`` (which has WASI defined) by one that honours
    the deadline ``guard`` set in the calling thread (none: it waits as wasmtime's).

    ``load`` turns ``HELPER_WASM`` into a module of the linker's engine (by default it is
    compiled); it is called once, when a guest first needs the helper. Pass a cache's:
    wasmtime cannot compile in a forked child (its compiler threads stay in the parent),
    while loading a precompiled module works.
    """
    helper = _Helper(linker.engine, load)
    i32 = wasmtime.ValType.i32()

    def poll_oneoff(caller: wasmtime.Caller, subs: int, events: int, count: int,
                    nevents: int) -> int:
        deadline = getattr(_current, "deadline", None) or Deadline()
        return _Poll(caller, helper, deadline).run(subs, events, count, nevents)

    linker.allow_shadowing = True
    try:
        linker.define_func(_WASI, "poll_oneoff", wasmtime.FuncType([i32] * 4, [i32]),
                           poll_oneoff, access_caller=True)
    finally:
        linker.allow_shadowing = False


class _Helper:
    """The helper module of one linker, loaded on first use. Locking: one lock guards
    the loading."""

    def __init__(self, engine: wasmtime.Engine,
                 load: Callable[[bytes], wasmtime.Module] | None) -> None:
        self._engine = engine
        self._load = load
        self._lock = threading.Lock()
        self._pre: wasmtime.InstancePre | None = None

    def instantiate(self, store: wasmtime.Caller) -> wasmtime.Instance:
        pre = self._pre
        if pre is None:
            with self._lock:
                if self._pre is None:
                    module = (self._load(HELPER_WASM) if self._load is not None
                              else wasmtime.Module(self._engine, HELPER_WASM))
                    plain = wasmtime.Linker(self._engine)
                    plain.define_wasi()
                    self._pre = plain.instantiate_pre(module)
                pre = self._pre
        return pre.instantiate(store)


class _Poll:
    """One ``poll_oneoff`` call."""

    def __init__(self, caller: wasmtime.Caller, helper: _Helper,
                 deadline: Deadline) -> None:
        self.caller = caller
        self.helper = helper
        self.deadline = deadline

    def run(self, subs_ptr: int, events_ptr: int, count: int, nevents_ptr: int) -> int:
        caller = self.caller
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            return _EFAULT
        if count == 0:
            return _EINVAL
        size = memory.data_len(caller)
        if (subs_ptr + _SUB * count > size or events_ptr + _EVENT * count > size
                or nevents_ptr + 4 > size):
            return _EFAULT
        raw = bytes(memory.read(caller, subs_ptr, subs_ptr + _SUB * count))
        clocks: list[tuple[int, int, float]] = []  # (index, userdata, when due)
        fds: list[int] = []
        for i in range(count):
            userdata, tag = struct.unpack_from("<QB", raw, _SUB * i)
            if tag == _CLOCK:
                clock, timeout, _precision, flags = struct.unpack_from("<I4xQQH", raw,
                                                                       _SUB * i + 16)
                if clock not in (_REALTIME, _MONOTONIC):
                    return _EINVAL
                if flags & _ABSTIME:
                    timeout -= (time.time_ns() if clock == _REALTIME
                                else self._guest_monotonic())
                clocks.append((i, userdata, time.monotonic() + max(0, timeout) / 1e9))
            elif tag in (_FD_READ, _FD_WRITE):
                fds.append(i)
            else:
                return _EINVAL
        due_at = min((c[2] for c in clocks), default=None)
        found: list[tuple[int, bytes]] = []  # (index, event)
        pause = _FIRST_SLICE
        while True:
            if fds:
                err = self._probe(raw, fds, found)
                if err:
                    return err
            now = time.monotonic()
            found += [(i, _clock_event(ud)) for i, ud, due in clocks if due <= now]
            if found:
                break
            until = due_at
            if fds:  # probe again after a pause
                until = now + pause if due_at is None else min(due_at, now + pause)
            if not self.deadline.wait(until):
                self.deadline.tripped = True
                raise DeadlinePassed("the time limit passed while the guest waited in "
                                     "poll_oneoff")
            pause = min(pause * 2, _LAST_SLICE)
        found.sort()
        out = b"".join(e for _i, e in found)
        memory.write(caller, out, events_ptr)
        memory.write(caller, struct.pack("<I", len(found)), nevents_ptr)
        return 0

    def _helper(self) -> wasmtime.Instance:
        d = self.deadline
        if d.helper is None:
            d.helper = self.helper.instantiate(self.caller)
        return d.helper

    def _export(self, name: str) -> wasmtime.Func:
        f = self._helper().exports(self.caller)[name]
        assert isinstance(f, wasmtime.Func)
        return f

    def _guest_monotonic(self) -> int:
        """The guest's monotonic clock (wasmtime counts it from the run's start)."""
        now = self._export("now")(self.caller, _MONOTONIC)
        assert isinstance(now, int)
        return now if now >= 0 else 0

    def _probe(self, raw: bytes, fds: list[int], found: list[tuple[int, bytes]]) -> int:
        """Ask wasmtime, without waiting, which fd subscriptions are ready; append their
        events to ``found``. The WASI errno of the call (0: success)."""
        caller = self.caller
        subs = bytearray()
        for i in fds:
            sub = bytearray(raw[_SUB * i:_SUB * (i + 1)])
            struct.pack_into("<Q", sub, 0, i)  # our userdata: the index
            subs += sub
        subs += struct.pack("<QB7xI4xQQH6x", _PROBE_ID, _CLOCK, _MONOTONIC, 0, 0, 0)
        n = len(fds) + 1
        events_at = len(subs)
        nevents_at = events_at + _EVENT * n
        memory = self._helper().exports(caller)["memory"]
        assert isinstance(memory, wasmtime.Memory)
        missing = nevents_at + 4 - memory.data_len(caller)
        if missing > 0 and memory.grow(caller, -(-missing // _PAGE)) < 0:
            return _ENOMEM
        memory.write(caller, bytes(subs), 0)
        err = self._export("poll")(caller, 0, events_at, n, nevents_at)
        assert isinstance(err, int)
        if err:
            return err
        got = struct.unpack("<I", memory.read(caller, nevents_at, nevents_at + 4))[0]
        events = bytes(memory.read(caller, events_at, events_at + _EVENT * got))
        for k in range(got):
            event = bytearray(events[_EVENT * k:_EVENT * (k + 1)])
            index = struct.unpack_from("<Q", event, 0)[0]
            if index == _PROBE_ID:
                continue
            struct.pack_into("<Q", event, 0, struct.unpack_from("<Q", raw, _SUB * index)[0])
            found.append((index, bytes(event)))
        return 0


def _clock_event(userdata: int) -> bytes:
    """A clock subscription's event: userdata, no error, type clock, no fd fields."""
    return struct.pack("<QHB5xQH6x", userdata, 0, _CLOCK, 0, 0)
