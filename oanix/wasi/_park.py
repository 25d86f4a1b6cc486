"""Where a resident guest waits between calls: a host function it parks in.

A ``PythonSession``'s driver and the guest's code are one program (one interpreter):
whatever the driver can write, the guest's code can write too, so no marker in the output
can tell the host that a call ended. The driver ends a call by calling a host function
instead, and the host sees where the guest is: ``fd_advise`` (``os.posix_fadvise``) on fd
0 parks the guest there, its offset being the call's status. While parked the guest's
thread waits inside the host and runs no guest code; it leaves only to take the next
request (``release``), or, once the session is over (``end``), by a trap, so not one more
instruction of it runs. ``fd_advise`` on any other descriptor is accepted and ignored,
as advice may be.

A guest's code that parks itself (calling ``posix_fadvise(0, ...)``) only ends its own
call early, with a status of its choosing, as ``sys.exit`` would; it is stopped all the
same.

Locking: one condition variable guards the call in progress, the release and the end;
the guest's thread waits on it while parked.
"""

from __future__ import annotations

import threading

import wasmtime

from .output import _Capture

__all__ = ["Call", "Parking"]


class Call:
    """The output and outcome of one call.

    ``done`` is set when the guest parked (the call's end; ``parked`` is then True and
    ``status`` what it parked with) or left the guest altogether.
    """

    def __init__(self, limit: int | None) -> None:
        self.stdout = _Capture(limit)
        self.stderr = _Capture(limit)
        self.status: int | None = None
        self.parked = False
        self.done = threading.Event()


class Parking:
    """The parking host function of one guest; see the module docstring."""

    def __init__(self) -> None:
        self.cv = threading.Condition()
        self.call: Call | None = None
        self.ended: str | None = None  # set by ``end``: a parked guest traps
        self._released = False

    def define(self, linker: wasmtime.Linker) -> None:
        """Shadow WASI's ``fd_advise`` in ``linker`` (which has WASI defined)."""
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        linker.allow_shadowing = True
        linker.define_func("wasi_snapshot_preview1", "fd_advise",
                           wasmtime.FuncType([i32, i64, i64, i32], [i32]), self._fd_advise)

    def release(self, call: Call) -> None:
        """Make ``call`` the call in progress and let the parked guest go on."""
        with self.cv:
            self.call = call
            self._released = True
            self.cv.notify_all()

    def end(self, why: str) -> None:
        """The session is over: a parked guest (now or later) traps instead of going on."""
        with self.cv:
            if self.ended is None:
                self.ended = why
            self.cv.notify_all()

    def guest_ended(self) -> None:
        """The guest's thread left the guest: the call in progress is over."""
        with self.cv:
            if self.call is not None:
                self.call.done.set()

    def _fd_advise(self, fd: int, offset: int, _length: int, _advice: int) -> int:
        """The host function, on the guest's thread."""
        if fd != 0:
            return 0  # advice: accepted, ignored
        with self.cv:
            call = self.call
            if call is not None and not call.done.is_set():
                call.status, call.parked = offset, True
                call.done.set()
            self._released = False
            while not self._released and self.ended is None:
                self.cv.wait()
            if self.ended is not None:
                raise wasmtime.Trap(f"the session is over: {self.ended}")
            self._released = False
        return 0
