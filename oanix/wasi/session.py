"""PythonSession: a resident CPython-for-WASI interpreter, state kept between calls.

    with PythonSession(ns, timeout=10) as py:
        py.run("import json; rows = json.load(open('/data/rows.json'))")
        py.run("print(len(rows))").stdout_text        # '3\\n'

One interpreter starts with the session (the cost of one ``run_python``) and then runs
each call's code in one global scope, like a notebook kernel; a call costs a fraction of a
millisecond plus the code's own time. Each call keeps a one-shot run's contract with the
namespace: what the host changed since the previous call is synced in first, and what
the guest changed is in the namespace, and in ``RunResult.changes``, when ``run`` returns.

How: the interpreter runs a small driver (``_DRIVER``) on a thread of the session, with
stdin, stdout and stderr on pipes (FIFOs in a private directory, which wasmtime reads and
writes as streams). A request is a length-prefixed code string on stdin; the driver runs
it, flushes, and ends the call by parking in a host function (``oanix.wasi._park``: a
``posix_fadvise`` on fd 0 whose offset is the status), where it waits, running nothing,
until the next request. The host decides the end of a call by that alone: once the guest
is parked, what is in the pipes is the whole of the call's output. The guest's code runs
with an empty ``sys.stdin``.

What the host guarantees, though the guest's code can do anything the driver does (they
are one program): a call's output is exactly what the guest wrote to stdout and stderr
between the request and the end of the call, nothing it prints ends a call or frames
another; guest code runs only between a request and the end of that call, under that
call's timeout (at the timeout the guest is stopped and the session is over before
anything else is sent); while the host syncs the namespace in and out, the guest is
parked or gone, and a timed-out guest that cannot be shown stopped (stuck in a long host
call) has its staged copies moved out of the way, unread
(``NamespaceStaging.abandon``). Code that parks itself ends its own call early with a
status of its choosing, as ``sys.exit`` would. What it cannot cover: a session is one
program, so code of one call can change what later calls do (replace ``print`` or a
builtin, read the driver's state, read stdin when released), as in any notebook kernel;
code that must not be affected by earlier code needs a session of its own.

Limits. ``timeout`` holds per call. A session has a wasmtime engine of its own whose
epoch only the session advances: a call past its timeout advances it once, which traps
the interpreter, expires the session's ``Deadline`` (a guest waiting in ``poll_oneoff``,
a sleep, wakes and traps) and feeds its stdin (a guest blocked reading it wakes and
traps); that call reports ``Trap("timeout")`` and the session is over (later
calls raise ``WasiError``), since the state a trap cuts through cannot be trusted.
``memory_limit`` holds for the whole session, and a memory trap ends it the same way.
Fuel is not metered (``fuel_consumed`` is 0): wasmtime counts it per store, and the store
is busy on the session's thread.

Writable mounts live in the guest's root (``oanix.wasi.rootview``), so a session sees
them come and go; other preopens (read-only mounts, host directories) are fixed when the
session starts, and a change to them makes the next call raise ``WasiError`` (start a
new session to see it).

Locking: ``run`` calls are serialised by the session's lock; each holds the namespace's
lock from sync-in to write-back, as a one-shot run does. The reader thread hands output
to the call in progress under a small lock of its own, which the end of a call takes to
read what is left in the pipes; the parking state has its lock (``oanix.wasi._park``).
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import os
import select
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Final

import wasmtime

from .._rmtree import remove_tree
from ..changes import Changes
from ..errors import InvalidArgument, WasiError
from ..service import FileService
from ._park import Call, Parking
from .deadline import HELPER_NAME, Deadline, bind_poll
from .live import LiveBridge, LiveViews
from .python import (
    DEFAULT_MEMORY_LIMIT,
    EMBEDDED_DIRS,
    GUEST_SETUP,
    default_runtime,
    python_wasm_path,
)
from .quota import DiskMeter
from .records import DEFAULT_MAX_DISK, DEFAULT_MAX_DISK_FILES, Preopen, RunConfig, RunResult, Trap
from .rootview import unshadowed
from .runtime import (
    UNLIMITED_FUEL,
    CompiledModule,
    WasiRuntime,
    engine_config,
    new_store,
    start_guest,
    wasi_config,
)
from .staging import NamespaceStaging, PreparedPreopen, staging_root

__all__ = ["PythonSession"]

_START_TIMEOUT: Final = 120.0  # seconds for the interpreter to come up
_GRACE: Final = 2.0  # seconds a stopped interpreter gets to unwind before run returns
_METER_TICK: Final = 0.01  # seconds between two measures of a call's writes
_NO_CHANGES: Final = Changes()
_WAKE: Final = b"\xff" * 8  # on stdin: an idle driver quits; a blocked read returns


_open_sessions: weakref.WeakSet[PythonSession] = weakref.WeakSet()


@atexit.register
def _close_open_sessions() -> None:
    for session in list(_open_sessions):
        session.close()


class _Unset(enum.Enum):
    UNSET = enum.auto()  # run(): use the session's value

# The driver: reads length-prefixed code from stdin, runs it in one scope, and ends each
# call by parking with its status (oanix.wasi._park). Its own frame is cut from tracebacks.
_DRIVER: Final = r"""
import io, os, sys, traceback
""" + GUEST_SETUP + r"""

def _oanix_session():
    sys.stdin = io.TextIOWrapper(io.BytesIO(b""))
    scope = {"__name__": "__main__", "__builtins__": __builtins__}

    def take(n):
        parts = []
        while n:
            part = os.read(0, n)
            if not part:
                raise SystemExit(0)
            parts.append(part)
            n -= len(part)
        return b"".join(parts)

    def end(status):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os.posix_fadvise(0, status, 0, 0)  # parks until the next request

    end(0)
    while True:
        head = take(8)
        if head == b"\xff" * 8:  # quit
            return
        code = take(int.from_bytes(head, "little")).decode("utf-8", "surrogateescape")
        status = 0
        try:
            exec(compile(code, "<session>", "exec"), scope)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
            if not isinstance(e.code, int) and e.code is not None:
                print(e.code, file=sys.stderr)
        except BaseException as e:
            traceback.print_exception(type(e), e, e.__traceback__.tb_next)
            status = 1
        end(status if 0 <= status < 1 << 62 else 1)

_oanix_session()
"""


class PythonSession:
    """A resident CPython interpreter in the sandbox; see the module docstring.

    ``namespace``: what the guest sees (its top-level directories preopened, or
    ``preopens``); ``env``, ``cwd``, ``memory_limit`` (default 1 GiB), ``max_disk`` and
    ``max_disk_files`` (see ``RunConfig``: a call whose writes pass a budget ends with
    ``Trap(kind="disk")`` and ends the session) hold for the whole session, ``timeout``
    (seconds, default None) and ``max_output`` (bytes kept of each stream, default
    unlimited) for every call unless ``run`` says otherwise.

    Raises:
        PythonUnavailable, ModuleError: see ``python_wasm_path``.
        WasiError: the interpreter did not come up (the message says why).
    """

    def __init__(self, namespace: FileService | None = None, *,
                 runtime: WasiRuntime | None = None, env: Mapping[str, str] | None = None,
                 cwd: str | None = None, preopens: Mapping[str, str | Preopen] | None = None,
                 memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
                 timeout: float | None = None, max_output: int | None = None,
                 max_disk: int | None = DEFAULT_MAX_DISK,
                 max_disk_files: int | None = DEFAULT_MAX_DISK_FILES) -> None:
        if not hasattr(os, "mkfifo"):
            raise WasiError("PythonSession needs POSIX named pipes (os.mkfifo)")
        rt = runtime if runtime is not None else default_runtime()
        # RunConfig checks every value and gives the errors their usual wording.
        self._config = RunConfig(env={"PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
                                 cwd=cwd, preopens=preopens, memory_limit=memory_limit,
                                 timeout=timeout, max_output=max_output,
                                 max_disk=max_disk, max_disk_files=max_disk_files)
        if preopens is not None and namespace is None:
            raise InvalidArgument("preopens need a namespace")
        self._lock = threading.Lock()
        self._out_lock = threading.Lock()
        self._call: Call | None = None  # where the reader puts output
        self._parking = Parking()
        self._ended: str | None = None  # why the session is over
        self._trap: Trap | None = None  # what ended it, when a trap did
        self._exit_code: int | None = None  # the interpreter's, when it exited
        self._dir = tempfile.mkdtemp(prefix=f"oanix-wasi-{os.getpid()}-session-",
                                     dir=staging_root())
        self._fds: list[int] = []
        self._thread: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._view: FileService | None = None
        self._bridges: list[LiveBridge] = []
        self._staging: NamespaceStaging | None = None
        self._deadline = Deadline()  # expired to stop the interpreter
        _open_sessions.add(self)
        try:
            self._handle = _private_handle(rt, rt.compile(python_wasm_path(), name="python"),
                                           self._parking)
            self._start(rt, namespace)
        except BaseException:
            self.close()
            raise

    # -- starting --------------------------------------------------------------------------

    def _start(self, rt: WasiRuntime, namespace: FileService | None) -> None:
        paths_ = {name: os.path.join(self._dir, name) for name in ("in", "out", "err")}
        for p in paths_.values():
            os.mkfifo(p, 0o600)
        # Our ends first: wasmtime's opens then neither block nor see a closed pipe.
        # O_RDWR: the pipe always has a reader, so writes never fail with EPIPE; they
        # are non-blocking and wait in select, looking at whether the guest is still there.
        self._in = os.open(paths_["in"], os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self._out = os.open(paths_["out"], os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self._err = os.open(paths_["err"], os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self._fds += [self._in, self._out, self._err]
        env = dict(self._config.env)
        argv = ["python", "-c", _DRIVER]
        if self._config.cwd is not None:
            env["PWD"] = self._config.cwd
            argv[2] = f"import os; os.chdir({self._config.cwd!r})\n" + _DRIVER
        preopens: list[PreparedPreopen] = []
        if namespace is not None:
            self._view, self._bridges, self._staging = rt._bind(namespace)
            with self._staging.lock:
                staged = self._staging.prepare(self._config.preopens)
                self._staging.collect(staged)  # nothing ran yet: this just settles it
            self._preopens = staged.preopens
            preopens = staged.preopens
        store = new_store(self._handle.engine, UNLIMITED_FUEL, self._config.memory_limit)
        with unshadowed(preopens, EMBEDDED_DIRS if preopens else {}) as revealed:
            wasi = wasi_config(argv, env, [*preopens, *revealed])  # opened here
        wasi.stdin_file = paths_["in"]
        wasi.stdout_file = paths_["out"]
        wasi.stderr_file = paths_["err"]
        store.set_wasi(wasi)
        store.set_epoch_deadline(1)  # the session's engine moves only to stop it
        boot = Call(None)
        self._call = boot
        self._parking.release(boot)  # the driver's first park ends it
        self._reader = threading.Thread(target=self._read, name="oanix-session-reader",
                                        daemon=True)
        self._reader.start()
        self._thread = threading.Thread(target=self._main, args=(store,),
                                        name="oanix-session", daemon=True)
        self._thread.start()
        if not boot.done.wait(_START_TIMEOUT) or not boot.parked:
            self._drain()
            why = self._ended or "it did not start in time"
            err = boot.stderr.value().decode("utf-8", "replace").strip()
            raise WasiError(f"the Python session did not start: {why}"
                            + (f": {err.splitlines()[-1]}" if err else ""))
        self._drain()
        self._detach()

    def _main(self, store: wasmtime.Store) -> None:
        """The session's thread: the interpreter runs here until the session ends."""
        try:
            code, trap = start_guest(store, self._handle, self._config.memory_limit,
                                     self._deadline)
            self._trap = self._trap or trap
            self._exit_code = code
            self._ended = self._ended or (
                f"the interpreter exited with status {code}" if trap is None
                else f"{trap.kind} trap: {trap.message}")
        except BaseException as e:  # a ModuleError: nothing to run
            self._ended = self._ended or f"the interpreter could not start: {e}"
        finally:
            self._parking.end(self._ended or "the interpreter ended")
            store.close()  # closes the guest's pipe ends: the reader sees the end
            self._parking.guest_ended()

    # -- output --------------------------------------------------------------------------

    def _read(self) -> None:
        """The reader thread: hands the guest's output to the call in progress as it
        comes (the pipes must not fill up while the guest runs)."""
        streams = [self._out, self._err]
        while streams:
            try:
                ready, _, _ = select.select(streams, [], [])
            except (OSError, ValueError):  # closed under us
                break
            with self._out_lock:
                for fd in ready:
                    if not self._move(fd):
                        streams.remove(fd)

    def _move(self, fd: int) -> bool:
        """Move what waits in pipe ``fd`` to the call (``_out_lock`` held); False at its
        end."""
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            if self._call is not None:
                (self._call.stdout if fd == self._out else self._call.stderr).write(data)

    def _drain(self) -> None:
        """Take what is left in the pipes: with the guest parked or gone, that is the
        rest of the call's output."""
        with self._out_lock:
            for fd in (self._out, self._err):
                with contextlib.suppress(OSError):
                    self._move(fd)

    def _detach(self) -> None:
        with self._out_lock:
            self._call = None

    # -- calls ---------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """Whether the interpreter is still there to take calls."""
        return self._ended is None and self._thread is not None

    def run(self, code: str, *, timeout: float | _Unset | None = _Unset.UNSET,
            max_output: int | _Unset | None = _Unset.UNSET) -> RunResult:
        """Run ``code`` in the session's scope; the result of this call alone.

        ``exit_code`` is 0, 1 for an uncaught exception (its traceback is on stderr), or
        the status of a ``SystemExit``, which does not end the session. A call that hits
        its timeout, or a trap, returns with ``trap`` set and ends the session.

        Raises:
            WasiError: the session is over, or the namespace's preopens changed.
            InvalidArgument: a bad timeout or max_output.
        """
        if not isinstance(code, str):
            raise InvalidArgument(f"code must be str, not {type(code).__name__}")
        limits = RunConfig(
            timeout=self._config.timeout if timeout is _Unset.UNSET else timeout,
            max_output=self._config.max_output if max_output is _Unset.UNSET else max_output)
        with self._lock:
            if not self.alive:
                raise WasiError(f"the Python session is over: {self._ended or 'closed'}")
            started = time.perf_counter()
            if self._staging is None:
                call, _ = self._call_guest(code, limits)
                changes = _NO_CHANGES
            else:
                with self._staging.lock:
                    staged = self._staging.prepare(self._config.preopens)
                    stopped = True
                    try:
                        if staged.preopens != self._preopens:
                            raise WasiError("the namespace's preopens changed since the "
                                            "session started: start a new session")
                        meter = self._staging.disk_meter(staged, self._config.max_disk,
                                                         self._config.max_disk_files)
                        with LiveViews.running(self._bridges) as refused:
                            call, stopped = self._call_guest(code, limits, meter)
                    finally:
                        if stopped:
                            changes = self._staging.collect(staged)
                        else:  # it may still write there: its copies are not read
                            changes = self._staging.abandon(
                                "the interpreter did not stop in time")
                if refused:
                    changes = Changes(changes.added, changes.modified, changes.deleted,
                                      (*changes.refused, *refused))
            return self._result(call, started, changes)

    def _call_guest(self, code: str, limits: RunConfig, meter: DiskMeter | None = None
                    ) -> tuple[Call, bool]:
        """Run one call: the call, and whether the guest is now provably not running
        (parked for the next request, or out of the guest)."""
        call = Call(limits.max_output)
        data = code.encode("utf-8", "surrogateescape")
        with self._out_lock:
            self._call = call
        try:
            request = memoryview(len(data).to_bytes(8, "little") + data)
            with contextlib.suppress(BlockingIOError):  # what fits first: there at wake-up
                request = request[os.write(self._in, request):]
            self._parking.release(call)
            self._send(request)
            trap = self._wait(call, limits.timeout, meter)
            if trap is not None:
                self._trap = self._trap or trap
                self._stop(trap.message)
                call.done.wait(_GRACE)  # parking now traps: done means out of the guest
        except OSError as e:  # the guest is gone
            self._ended = self._ended or f"its stdin failed: {e.strerror or e}"
            call.done.wait(_GRACE)
        finally:
            self._drain()
            self._detach()
        return call, call.done.is_set()

    def _stop(self, why: str) -> None:
        """End the session and stop the guest wherever it is: parked (the parking traps),
        in wasm code (the epoch), waiting in ``poll_oneoff`` (the deadline) or reading
        its stdin (a wake-up mark there)."""
        self._ended = self._ended or why
        self._parking.end(why)
        self._handle.engine.increment_epoch()
        self._deadline.expire(why)
        with contextlib.suppress(OSError):
            os.write(self._in, _WAKE)

    @staticmethod
    def _wait(call: Call, timeout: float | None, meter: DiskMeter | None) -> Trap | None:
        """Wait for ``call`` to finish; the trap that must stop it instead: its timeout,
        or its writes passing a disk budget (measured every ``_METER_TICK`` meanwhile)."""
        if meter is None:
            if call.done.wait(timeout):
                return None
        else:
            end = None if timeout is None else time.monotonic() + timeout
            while not call.done.wait(_METER_TICK if end is None
                                     else max(0.0, min(_METER_TICK, end - time.monotonic()))):
                if meter.check():
                    return meter.tripped
                if end is not None and time.monotonic() >= end:
                    break
            else:
                return None
        return Trap("timeout", "INTERRUPT", f"a call ran past its timeout of {timeout} s")

    def _send(self, data: bytes | memoryview) -> None:
        """Write ``data`` to the guest's stdin, a pipe's worth at a time as it reads.

        Raises:
            OSError: the guest is gone (or the session closed) before it took it all.
        """
        view = memoryview(data)
        while view:
            if self._ended is not None:
                raise OSError(f"the interpreter is gone ({self._ended})")
            try:
                view = view[os.write(self._in, view):]
            except BlockingIOError:
                select.select([], [self._in], [], 0.1)

    def _result(self, call: Call, started: float, changes: Changes) -> RunResult:
        exit_code: int | None
        trap = None
        if call.parked and call.status is not None:
            exit_code = call.status
        else:  # the guest ended in this call (os._exit, a trap, the session closed)
            if self._thread is not None and call.done.is_set():
                self._thread.join(_GRACE)
            exit_code = self._exit_code if self._trap is None else None
            if exit_code is None:
                trap = self._trap or Trap("wasm", None,
                                          self._ended or "the interpreter ended")
        return RunResult(exit_code, call.stdout.value(), call.stderr.value(),
                         call.stdout.dropped > 0, call.stderr.dropped > 0,
                         time.perf_counter() - started, 0, trap, changes)

    # -- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """End the interpreter and delete the session's pipes (idempotent). A call in
        progress in another thread returns with a trap; an idle interpreter is stopped
        where it is parked."""
        if self._ended is None:
            self._ended = "the session was closed"
            self._trap = Trap("wasm", "INTERRUPT", "the session was closed during the call")
        if self._thread is not None and self._thread.is_alive():
            self._stop(self._ended)
            self._thread.join(_GRACE)
        if self._reader is not None:
            self._reader.join(_GRACE)
        # Descriptors are closed once no call can use them (a call whose guest could not
        # be stopped holds the lock until it returns; then they stay open until exit).
        if self._lock.acquire(timeout=_GRACE):
            try:
                for fd in self._fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                self._fds.clear()
                remove_tree(self._dir)
            finally:
                self._lock.release()
        _open_sessions.discard(self)

    def __enter__(self) -> PythonSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _private_handle(rt: WasiRuntime, handle: CompiledModule, parking: Parking
                    ) -> CompiledModule:
    """``handle`` loaded into a new engine of the runtime's configuration, with
    ``parking``'s host function and the ``poll_oneoff`` helper (``oanix.wasi.deadline``,
    loaded the same way on first use) linked in."""
    engine = wasmtime.Engine(engine_config())
    module = _private_module(rt, engine, handle.module, handle.sha256)

    def load_helper(wasm: bytes) -> wasmtime.Module:
        return _private_module(rt, engine, *rt.cache.get(wasm, HELPER_NAME))

    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    parking.define(linker)
    bind_poll(linker, load_helper)
    return CompiledModule(handle.name, handle.sha256, module,
                          linker.instantiate_pre(module), engine)


def _private_module(rt: WasiRuntime, engine: wasmtime.Engine, module: wasmtime.Module,
                    sha256: str) -> wasmtime.Module:
    """``module`` (compiled by ``rt``) loaded into ``engine``: from the runtime's disk
    cache when the cache trusts its entry (``ModuleCache.load``, about a millisecond),
    else from the module serialized in memory (tens of milliseconds for CPython)."""
    loaded = rt.cache.load(engine, sha256)
    if loaded is not None:
        return loaded
    return wasmtime.Module.deserialize(engine, module.serialize())
