"""Guest output: where a run's stdout and stderr go, and how much of them is kept.

wasmtime-py's callback outputs call into Python from a wasmtime worker thread: once per
write, and once per stream when the store is dropped, which happens on that thread after
the run has returned. Each call has to take the GIL from the thread that started the run;
in a hello-world run these hand-overs cost about twice the run itself. So where Linux
allows it, a run writes into two memory files (``memfd_create``) that wasmtime opens
through ``/proc/self/fd``: the guest's writes never enter Python, and each stream is read
with one ``pread`` when the run is over. Elsewhere (no memfd, no ``/proc``, or wasmtime
refusing the path), the callbacks are used.

The cap (``max_output``): callbacks keep the first bytes and count the rest. A memory file
cannot refuse bytes, so while a capped run is active the runtime's clock calls
``OutputPool.trim`` every tick, which cuts each capped file back to its cap and remembers
how far it had grown. The guest writes at its own file offset, so what it writes after a
cut lands beyond a hole that costs no memory: bytes past the cap live for one tick at most.

Locking: an OutputPool's lock guards its free list and its table of capped files (``trim``
runs on the clock thread); a ``RunOutput`` belongs to one run from ``attach`` to ``finish``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
from typing import Final, NamedTuple

import wasmtime

from ._wasmtime_compat import held_output_callbacks

__all__ = ["Captured", "OutputPool", "RunOutput", "wait_for_output_release"]

_PROBE: Final = 1 << 16  # the first read of a stream: most outputs fit
_KEEP: Final = 1 << 20  # a memory file larger than this is emptied once read


class Captured(NamedTuple):
    """What a run wrote: the bytes kept of each stream, and whether some were dropped."""

    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool


# -- memory files --------------------------------------------------------------------------


class _MemoryFile:
    """One memfd a guest stream is written to, reused run after run."""

    __slots__ = ("fd", "grown", "path")

    def __init__(self, name: str) -> None:
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self.path = f"/proc/self/fd/{self.fd}"
        self.grown = 0  # the largest size a trim saw during this run

    def trim(self, limit: int) -> None:
        size = os.fstat(self.fd).st_size
        if size > limit:
            self.grown = max(self.grown, size)
            os.ftruncate(self.fd, limit)

    def read(self, limit: int | None) -> tuple[bytes, bool]:
        """The first ``limit`` bytes written (all: None), and whether more were."""
        probe = _PROBE if limit is None else min(limit, _PROBE)
        data = os.pread(self.fd, probe, 0)
        if len(data) < probe:
            return data, False  # all of it: a regular file reads short only at its end
        size = max(os.fstat(self.fd).st_size, self.grown)
        self.grown = 0
        end = size if limit is None else min(size, limit)
        parts = [data]
        pos = len(data)
        while pos < end:
            chunk = os.pread(self.fd, min(end - pos, 1 << 30), pos)
            if not chunk:
                break
            parts.append(chunk)
            pos += len(chunk)
        if size > _KEEP:
            os.ftruncate(self.fd, 0)  # an idle file should not hold a large output
        return b"".join(parts), size > pos

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _memory_files_work() -> bool:
    if not (hasattr(os, "memfd_create") and sys.platform.startswith("linux")):
        return False
    try:
        probe = _MemoryFile("oanix-probe")
    except OSError:
        return False
    try:
        return os.path.exists(probe.path)
    finally:
        probe.close()


# -- callbacks -----------------------------------------------------------------------------


class _Capture:
    """What a guest wrote to one stream through callbacks: up to ``limit`` bytes, the rest
    counted. Locking: one lock, as wasmtime calls from a thread of its own."""

    def __init__(self, limit: int | None) -> None:
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._room = limit
        self.dropped = 0

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._room is None:
                self._chunks.append(data)
            elif self._room > 0 or not data:
                keep = data[: self._room]
                self._chunks.append(keep)
                self._room -= len(keep)
                self.dropped += len(data) - len(keep)
            else:
                self.dropped += len(data)

    def value(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)


class _Sink:
    """The callable given to ``WasiConfig.stdout_custom``; runs on a wasmtime thread.

    wasmtime calls it, and finally releases it, on a worker thread of its own. If the
    interpreter exits while wasmtime still holds one, that thread dies in the middle of a
    call into Python and prints a panic message. So every run closes its store when it
    ends, and an ``atexit`` hook waits (briefly) until wasmtime has released every sink.
    """

    __slots__ = ("capture",)
    _hooked = False

    def __init__(self, capture: _Capture) -> None:
        self.capture = capture
        if not _Sink._hooked:
            _Sink._hooked = True
            atexit.register(wait_for_output_release)

    def __call__(self, data: bytes) -> None:
        self.capture.write(data)


def _sinks_held() -> bool:
    return any(isinstance(v, _Sink) for v in held_output_callbacks())


def wait_for_output_release(timeout: float = 2.0) -> None:
    """Wait until wasmtime has released the output callbacks of finished runs (called at
    exit when callbacks were used; tests call it too)."""
    deadline = time.monotonic() + timeout
    waited = False
    while _sinks_held() and time.monotonic() < deadline:
        waited = True
        time.sleep(0.002)
    if waited:
        time.sleep(0.01)  # let the worker thread return from its last call


# -- one run's output ----------------------------------------------------------------------


class RunOutput:
    """Where one run's stdout and stderr go: a pair of memory files, or callbacks."""

    __slots__ = ("captures", "files", "limit")

    def __init__(self, limit: int | None, files: tuple[_MemoryFile, _MemoryFile] | None
                 ) -> None:
        self.limit = limit
        self.files = files
        self.captures: tuple[_Capture, _Capture] | None = None

    @property
    def trimmed(self) -> bool:
        """Whether the clock must trim this output while the run is active."""
        return self.captures is None and self.files is not None and self.limit is not None

    def collect(self) -> Captured:
        """What the guest wrote; call once, after the store that wrote it is closed."""
        if self.captures is not None:
            out_cap, err_cap = self.captures
            return Captured(out_cap.value(), err_cap.value(), out_cap.dropped > 0,
                            err_cap.dropped > 0)
        if self.files is None:
            return Captured(b"", b"", False, False)  # never attached
        out, out_cut = self.files[0].read(self.limit)
        err, err_cut = self.files[1].read(self.limit)
        return Captured(out, err, out_cut, err_cut)


class OutputPool:
    """The memory files of one runtime's runs, reused from run to run (or callbacks,
    where memory files do not work). See the module docstring."""

    _files_work: bool | None = None  # per process, found out once

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[tuple[_MemoryFile, _MemoryFile]] = []
        self._trimmed: dict[int, RunOutput] = {}
        self._closed = False
        if OutputPool._files_work is None:
            OutputPool._files_work = _memory_files_work()
        self._use_files = OutputPool._files_work

    def attach(self, wasi: wasmtime.WasiConfig, limit: int | None) -> RunOutput:
        """Send the guest's stdout and stderr of a run about to start to a ``RunOutput``,
        keeping up to ``limit`` bytes of each; hand it to ``finish`` when the run is over."""
        files = None
        if self._use_files:
            with self._lock:
                files = self._free.pop() if self._free else None
            if files is None:
                try:
                    files = (_MemoryFile("oanix-stdout"), _MemoryFile("oanix-stderr"))
                except OSError:  # out of descriptors: this run uses callbacks
                    files = None
        out = RunOutput(limit, files)
        if files is not None:
            try:
                wasi.stdout_file = files[0].path  # opened here, emptied (O_TRUNC)
                wasi.stderr_file = files[1].path
            except wasmtime.WasmtimeError:
                self._use_files = False  # wasmtime would not open a memory file
            else:
                if limit is not None:
                    with self._lock:
                        self._trimmed[id(out)] = out  # only now: the files are empty
                return out
        out.captures = (_Capture(limit), _Capture(limit))
        wasi.stdout_custom = _Sink(out.captures[0])
        wasi.stderr_custom = _Sink(out.captures[1])
        return out

    def finish(self, out: RunOutput) -> Captured:
        """What the run wrote (see ``RunOutput.collect``); its files go back to the pool."""
        if out.limit is not None and out.captures is None:
            with self._lock:
                self._trimmed.pop(id(out), None)
        try:
            return out.collect()
        finally:
            files = out.files
            if files is not None:
                with self._lock:
                    if not self._closed and self._use_files:
                        self._free.append(files)
                        files = None
                if files is not None:
                    for f in files:
                        f.close()

    def trim(self) -> None:
        """Cut every capped file of an active run back to its cap (the clock calls this)."""
        with self._lock:
            for out in self._trimmed.values():
                assert out.files is not None and out.limit is not None
                for f in out.files:
                    with contextlib.suppress(OSError):
                        f.trim(out.limit)

    def close(self) -> None:
        """Close the idle memory files; those of running runs close when they finish."""
        with self._lock:
            self._closed = True
            free, self._free = self._free, []
        for pair in free:
            for f in pair:
                f.close()
