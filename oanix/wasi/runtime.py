"""WasiRuntime: run WASI preview 1 command modules over an oanix namespace.

One runtime owns one wasmtime engine (fuel and epoch interruption always on, so one
compiled module serves runs with and without limits), a ``ModuleCache``, the memory files
runs write their output to (``oanix.wasi.output``) and a clock thread for timeouts. Each
run gets its own store, so runs proceed in parallel from several
threads; runs over one namespace are serialised (see ``oanix.wasi.staging``).

    rt = WasiRuntime()
    res = rt.run("hello.wasm", ns, RunConfig(argv=["x"], timeout=5, fuel=10**9))
    res.exit_code, res.stdout_text, res.trap, res.changes

A limit hit, a trap or a bad module never leaves the runtime unusable: the store of a run
is dropped when the run ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

import attrs
import wasmtime

from .._rmtree import remove_tree
from ..changes import Changes
from ..errors import InvalidArgument, ModuleError, WasiError
from ..service import FileService
from . import receipt
from ._stopper import Stopper
from ._wasmtime_compat import set_stdin_bytes
from .cache import DEFAULT_MAX_BYTES, ModuleCache, wasmtime_message
from .cancel import current as current_canceller
from .cancel import run_stoppable
from .deadline import HELPER_NAME, Deadline, DeadlinePassed, bind_poll, guard
from .live import LiveBridge, LiveViews
from .output import Captured, OutputPool, wait_for_output_release
from .quota import DiskMeter
from .records import NamespacePath, RunConfig, RunResult, Trap
from .rootview import unshadowed
from .staging import (
    DEFAULT_SCAN_LIMIT,
    NamespaceStaging,
    PreparedPreopen,
    namespace_lock,
    staging_root,
)

__all__ = ["ENGINE_FINGERPRINT", "CompiledModule", "WasiRuntime", "wait_for_output_release"]

ENGINE_FINGERPRINT: Final = "consume_fuel=1;epoch_interruption=1"
UNLIMITED_FUEL: Final = (1 << 63) - 1
_NO_DEADLINE: Final = 1 << 62
_LINGER: Final = 1.0  # seconds the clock thread waits for another run before it exits
CLOSE_WAIT: Final = 5.0
"""Seconds ``WasiRuntime.close`` waits for the runs it stopped to end."""
_MAX_HURRY: Final = 1 << 20  # epoch ticks close() advances at most to stop timed runs
_DEFAULT_CONFIG: Final = RunConfig()
log = logging.getLogger(__name__)
MEMORY_SLACK: Final = 2 << 20
"""A run that ends abnormally with less than this much memory left under its limit is
reported as a memory trap (see ``WasiRuntime``)."""


# -- timeouts ------------------------------------------------------------------------------


class _Clock:
    """The runtime's clock thread. Every ``interval`` seconds while runs that need it are
    active (timed runs, runs whose capped output goes to memory files, runs whose
    writable preopens are measured), it measures those preopens (``DiskMeter.check``),
    advances the engine's epoch, which timeouts are counted in (``epoch`` counts the
    advances), and trims the capped outputs (``OutputPool.trim``).

    The thread starts with the first such run and exits after ``_LINGER`` seconds without
    one, so a series of short runs does not start a thread each. Locking: one lock guards
    the count of active runs and the thread handle; another the meters, held while they
    are checked (so a meter released is no longer being checked).
    """

    def __init__(self, engine: wasmtime.Engine, outputs: OutputPool, interval: float) -> None:
        self._engine = engine
        self._outputs = outputs
        self.interval = interval
        self._lock = threading.Lock()
        self._active = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.epoch = 0
        self._meter_lock = threading.Lock()
        self._meters: list[DiskMeter] = []

    def ticks(self, seconds: float) -> int:
        return max(1, math.ceil(seconds / self.interval))

    def acquire(self, meter: DiskMeter | None = None) -> None:
        if meter is not None:
            with self._meter_lock:
                self._meters.append(meter)
        with self._lock:
            self._active += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="oanix-wasi-clock",
                                                daemon=True)
                self._thread.start()

    def release(self, meter: DiskMeter | None = None) -> None:
        if meter is not None:
            with self._meter_lock:
                self._meters.remove(meter)
        with self._lock:
            self._active -= 1

    def _check_meters(self) -> None:
        with self._meter_lock:
            for meter in self._meters:
                meter.check()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(1.0)

    def _loop(self) -> None:
        idle_since = time.monotonic()
        while not self._stop.wait(self.interval):
            with self._lock:
                if self._active == 0:
                    if time.monotonic() - idle_since < _LINGER:
                        continue
                    self._thread = None
                    return
            idle_since = time.monotonic()
            if self._meters:  # a list read is atomic: checked under the lock
                self._check_meters()
            self.epoch += 1
            self._engine.increment_epoch()
            self._outputs.trim()
        with self._lock:
            self._thread = None


# -- modules -----------------------------------------------------------------------------


@attrs.frozen(eq=False)
class CompiledModule:
    """A module compiled and linked for one runtime; pass it to ``run`` in place of a path.

    ``name`` is the default ``argv[0]``; ``sha256`` identifies the wasm bytes.
    """

    name: str
    sha256: str
    module: wasmtime.Module = attrs.field(repr=False)
    pre: wasmtime.InstancePre = attrs.field(repr=False)
    engine: wasmtime.Engine = attrs.field(repr=False)


ModuleSource = str | os.PathLike[str] | bytes | bytearray | CompiledModule


class _Outcome(NamedTuple):
    exit_code: int | None
    trap: Trap | None
    output: Captured
    fuel_consumed: int


class WasiRuntime:
    """Runs WASI preview 1 command modules over namespaces, with limits.

    ``cache_dir``: where precompiled modules are kept (``None``: ``default_cache_dir()``);
    ``disk_cache=False`` keeps them in memory only. ``staging_dir``: where namespace
    subtrees are copied for the guest (default: ``/dev/shm`` if writable, else the temp
    dir). ``tick``: the epoch interval that timeouts are measured in. ``scan_limit``: the
    largest host directory (entries) whose changes are reported after a run.
    ``watch_changes=False``: find the guest's changes by scanning every staged tree after
    a run rather than asking inotify which files it touched.

    Memory limits: ``memory_limit`` caps the store's linear memory; a ``memory.grow``
    beyond it returns -1 to the guest, which usually fails an allocation. The run is
    reported as ``Trap(kind="memory")`` when (a) instantiation fails because the module's
    initial memory exceeds the limit, or (b) the run ends with a wasm trap (other than fuel
    or timeout) or a non-zero exit while less than ``MEMORY_SLACK`` (2 MiB) is left below
    the limit: the typical shape of a refused grow (a guest that fails a large allocation
    with plenty of memory left is not detected; ``run_python`` also detects Python's
    ``MemoryError``). A guest that exits on its own keeps its ``exit_code``.

    Time limits: ``timeout`` holds in wasm code (epoch interruption) and in the host calls
    a guest waits in (``poll_oneoff``: sleep, select, poll; see ``oanix.wasi.deadline``).

    Locking: the engine, the linker and the module cache are shared and thread-safe; each
    run has its own store, output files, WASI context and ``Deadline``. A lock guards the
    table of per-namespace staging state and the set of running deadlines; a run over a
    namespace holds that namespace's lock from sync-in to write-back. ``close()`` stops
    the runs in progress and waits (boundedly) for them before deleting their staging
    directories; runs started after ``close()`` raise. A runtime
    belongs to the process that made it: after ``os.fork`` make a new one in the child
    (its threads, staging directories and output files are the parent's).
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, *,
                 disk_cache: bool = True, max_cache_bytes: int = DEFAULT_MAX_BYTES,
                 staging_dir: str | os.PathLike[str] | None = None, tick: float = 0.01,
                 scan_limit: int = DEFAULT_SCAN_LIMIT, watch_changes: bool = True) -> None:
        self._engine = wasmtime.Engine(engine_config())
        self._linker = wasmtime.Linker(self._engine)
        self._linker.define_wasi()
        self.cache = ModuleCache(self._engine, cache_dir, max_cache_bytes,
                                 fingerprint=ENGINE_FINGERPRINT, disk=disk_cache)
        bind_poll(self._linker, lambda wasm: self.cache.get(wasm, HELPER_NAME)[0])
        self._outputs = OutputPool()
        self._clock = _Clock(self._engine, self._outputs, tick)
        self._lock = threading.RLock()  # re-entrant: a GC callback (_forget) may take it
        self._handles: dict[str, CompiledModule] = {}
        self._stagings: dict[int, tuple[weakref.ref[FileService] | None,
                                        NamespaceStaging]] = {}
        self._staging_parent = os.fspath(staging_dir) if staging_dir else None
        # id(namespace) -> the directories of the run in progress over it (dict operations
        # are atomic; a run adds and removes its own entry).
        self._run_preopens: dict[int, Sequence[PreparedPreopen]] = {}
        self._staging_base: str | None = None
        self._scan_limit = scan_limit
        self._watch_changes = watch_changes
        self._live: LiveViews | None = None
        self._running: set[Deadline] = set()
        self._idle = threading.Condition(self._lock)  # notified when a run ends
        self._closed = False

    @property
    def engine(self) -> wasmtime.Engine:
        """The wasmtime engine every run of this runtime uses."""
        return self._engine

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Stop the runs in progress, the clock, and delete every staging directory
        (idempotent).

        A run waiting in a host call (a sleep, a poll) stops at once, a timed run in wasm
        code at its next epoch check; both report ``Trap("timeout")``. ``close`` waits up
        to ``wait`` seconds for them to end; a run still going then (an untimed guest
        spinning in wasm code, which nothing can interrupt) is left to finish on its own
        with its staging directory in place, and ``close`` warns (``RuntimeWarning``)
        instead of waiting for ever.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            stagings = list(self._stagings.values())
            self._stagings.clear()
            base = self._staging_base
            live, self._live = self._live, None
            running = list(self._running)
        self._stop_runs(running)
        until = time.monotonic() + wait
        with self._lock:
            self._idle.wait_for(lambda: not self._running, wait)
            stuck = len(self._running)
        busy = 0
        for ref, staging in stagings:
            ns = ref() if ref is not None else None
            lock = namespace_lock(ns) if ns is not None else None
            if lock is not None and not lock.acquire(max(0.0, until - time.monotonic())):
                busy += 1  # its run still uses it: left as it is
                continue
            try:
                staging.close()
            finally:
                if lock is not None:
                    lock.release()
        stuck = max(stuck, busy)
        if stuck:
            warnings.warn(f"WasiRuntime.close: {stuck} run(s) still going after {wait:g} s "
                          "(untimed guests in a loop?); their staging directories are "
                          "left in place", RuntimeWarning, stacklevel=2)
        else:
            if live is not None:
                live.close()
            if base is not None:
                remove_tree(base)
        self._clock.close()
        self._outputs.close()

    def _stop_runs(self, running: list[Deadline]) -> None:
        """Expire the runs' deadlines, and advance the epoch past the timed ones' (a run's
        epoch deadline is at most ``ticks(timeout)`` after the epoch now)."""
        ticks = 0
        for d in running:
            d.expire("the WasiRuntime was closed during the run")
            if d.timeout is not None:
                ticks = max(ticks, self._clock.ticks(d.timeout) + 1)
        for _ in range(min(ticks, _MAX_HURRY)):
            self._engine.increment_epoch()

    def __enter__(self) -> WasiRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise WasiError("this WasiRuntime is closed")

    # -- modules -----------------------------------------------------------------------------

    def compile(self, module: ModuleSource, name: str | None = None) -> CompiledModule:
        """Compile (or fetch from the cache) and link a module.

        Raises:
            ModuleError: missing or invalid module, an import WASI does not provide, or a
                CompiledModule from another runtime.
        """
        self._check_open()
        if isinstance(module, CompiledModule):
            if module.engine is not self._engine:
                raise ModuleError(f"{module.name}: compiled by another WasiRuntime")
            return module
        if isinstance(module, bytes | bytearray):
            label = name or "module.wasm"
        elif isinstance(module, str | os.PathLike):
            label = name or os.path.basename(os.fspath(module))
        else:
            raise InvalidArgument(f"module must be a path, bytes or a CompiledModule, not "
                                  f"{type(module).__name__}")
        compiled, sha = self.cache.get(module, None if isinstance(module, str | os.PathLike)
                                       else label)
        return self._link(label, sha, compiled)

    def _link(self, label: str, sha: str, compiled: wasmtime.Module) -> CompiledModule:
        """The linked handle of a compiled module (one per module and name, reused)."""
        key = f"{sha}:{label}"
        with self._lock:
            handle = self._handles.get(key)
            if handle is not None and handle.module is compiled:
                return handle
        try:
            pre = self._linker.instantiate_pre(compiled)
        except wasmtime.WasmtimeError as e:
            raise ModuleError(f"{label}: cannot link: {wasmtime_message(e)}") from None
        handle = CompiledModule(label, sha, compiled, pre, self._engine)
        with self._lock:
            if len(self._handles) > 256:
                self._handles.clear()
            self._handles[key] = handle
        return handle

    def compile_digest(self, sha256: str, name: str | None = None) -> CompiledModule:
        """The module whose wasm bytes have sha256 ``sha256``, from the module cache (in
        memory, or precompiled on disk): how a receipt's module is found again.

        Raises:
            ModuleError: no module with that digest is in the cache (the message names
                the digest).
        """
        self._check_open()
        compiled = self.cache.by_digest(sha256)
        if compiled is None:
            raise ModuleError(f"no module with sha256 {sha256} in the module cache "
                              f"({self.cache.directory})")
        return self._link(name or f"{sha256[:12]}.wasm", sha256, compiled)

    # -- running -----------------------------------------------------------------------------

    def run(self, module: ModuleSource, namespace: FileService | None = None,
            config: RunConfig | None = None) -> RunResult:
        """Run ``module``'s ``_start`` over ``namespace`` and return what happened.

        The guest's exit, trap and limits are reported in the result, never raised.

        Raises:
            ModuleError: the module is missing, invalid or not a WASI command.
            InvalidArgument: preopens or a ``NamespacePath`` stdin without a namespace.
            FsError: a preopen or the stdin path does not exist in the namespace.
            WasiError: the runtime is closed, or wasmtime refused the configuration.
        """
        return self._run(module, namespace, config or _DEFAULT_CONFIG, ())

    async def arun(self, module: ModuleSource, namespace: FileService | None = None,
                   config: RunConfig | None = None) -> RunResult:
        """``run`` awaited under asyncio or trio (through anyio): the run goes on in a
        worker thread, and cancelling the awaiting task stops the guest (at its next epoch
        tick, or at once if it waits in ``poll_oneoff``) and waits for the run to end,
        write-back included, before the cancellation is raised. Same errors as ``run``.
        """
        return await run_stoppable(functools.partial(self.run, module, namespace, config))

    def _run(self, module: ModuleSource, namespace: FileService | None, config: RunConfig,
             extra: Sequence[PreparedPreopen],
             shadowed: Mapping[str, frozenset[str]] | None = None) -> RunResult:
        """``run``, with ``extra`` preopens, and the guest directories the module itself
        provides (``shadowed``: see ``rootview.unshadowed``)."""
        started = time.perf_counter()
        handle = self.compile(module)
        argv = [config.argv0 if config.argv0 is not None else handle.name, *config.argv]
        env = dict(config.env)
        if config.cwd is not None:
            env["PWD"] = config.cwd
        wall = receipt.now_utc() if config.receipt else ""
        if namespace is None:
            if config.preopens:
                raise InvalidArgument("preopens need a namespace")
            stdin = self._stdin(config, None)
            out = self._execute(handle, argv, env, stdin, list(extra), config)
            result = self._result(handle, config, out, started, Changes())
            if config.receipt:
                result = attrs.evolve(result, receipt=receipt.record(
                    handle.name, handle.sha256, argv, env, config, stdin, ((), True), (),
                    result, wall))
            return result
        seen = (receipt.digest_inputs(namespace, receipt.input_roots(namespace,
                                                                     config.preopens))
                if config.receipt else ((), True))
        key = id(namespace)
        namespace, bridges, staging = self._bind(namespace)
        with staging.lock, contextlib.ExitStack() as revealed:
            stdin = self._stdin(config, namespace)
            staged = staging.prepare(config.preopens)
            preopens = [*staged.preopens, *extra] if extra else staged.preopens
            if shadowed:
                preopens = [*preopens,
                            *revealed.enter_context(unshadowed(preopens, shadowed))]
            refused: list[tuple[str, str]] = []
            self._run_preopens[key] = preopens
            try:
                meter = staging.disk_meter(staged, config.max_disk, config.max_disk_files)
                if bridges:
                    with LiveViews.running(bridges) as refused:
                        out = self._execute(handle, argv, env, stdin, preopens, config,
                                            meter)
                else:
                    out = self._execute(handle, argv, env, stdin, preopens, config, meter)
            finally:
                del self._run_preopens[key]
                changes = staging.collect(staged)
        if refused:
            changes = attrs.evolve(changes, refused=(*changes.refused, *refused))
        result = self._result(handle, config, out, started, changes)
        if config.receipt:
            result = attrs.evolve(result, receipt=receipt.record(
                handle.name, handle.sha256, argv, env, config, stdin, seen,
                receipt.digest_outputs(namespace, changes), result, wall))
        return result

    def running_preopens(self, namespace: FileService) -> Sequence[PreparedPreopen] | None:
        """The directories the run in progress over ``namespace`` was given (None when
        none is): what a process that run starts must see, to share its files."""
        return self._run_preopens.get(id(namespace))

    def _bind(self, namespace: FileService
              ) -> tuple[FileService, list[LiveBridge], NamespaceStaging]:
        """What a run over ``namespace`` goes through: the namespace as the guest sees it
        (its live mounts bridged), the bridges, and its staging (with its lock)."""
        view, bridges = self._live_views().view(namespace)
        return view, bridges, self._staging(view)

    def _live_views(self) -> LiveViews:
        live = self._live
        if live is not None and not self._closed:
            return live  # set once: no lock needed to read it
        with self._lock:
            self._check_open()
            if self._live is None:
                self._live = LiveViews(self._base_dir())
            return self._live

    @staticmethod
    def _result(handle: CompiledModule, config: RunConfig, out: _Outcome, started: float,
                changes: Changes) -> RunResult:
        o = out.output
        result = RunResult(out.exit_code, o.stdout, o.stderr, o.stdout_truncated,
                           o.stderr_truncated, time.perf_counter() - started,
                           out.fuel_consumed, out.trap, changes)
        _log_run(handle.name, config, result)
        return result

    @staticmethod
    def _stdin(config: RunConfig, namespace: FileService | None) -> bytes:
        s = config.stdin
        if s is None:
            return b""
        if isinstance(s, bytes):
            return s
        if isinstance(s, str):
            return s.encode("utf-8")
        assert isinstance(s, NamespacePath)
        if namespace is None:
            raise InvalidArgument(f"stdin {s.path!r} is a namespace path but the run has no "
                                  "namespace")
        return namespace.read_bytes(s.path)

    def _staging(self, ns: FileService) -> NamespaceStaging:
        key = id(ns)
        hit = self._stagings.get(key)  # a dict read is atomic; a closed staging refuses
        if hit is not None and (hit[0] is None or hit[0]() is ns):
            return hit[1]
        with self._lock:
            self._check_open()
            hit = self._stagings.get(key)
            if hit is not None and (hit[0] is None or hit[0]() is ns):
                return hit[1]
            base = self._base_dir()
            staging = NamespaceStaging(ns, tempfile.mkdtemp(prefix="ns-", dir=base),
                                       self._scan_limit, self._watch_changes)
            try:
                ref: weakref.ref[FileService] | None = weakref.ref(
                    ns, functools.partial(self._forget, key))
            except TypeError:
                ref = None
            self._stagings[key] = (ref, staging)
            return staging

    def _forget(self, key: int, _ref: object = None) -> None:
        with self._lock:
            hit = self._stagings.get(key)
            if hit is None or hit[0] is None or hit[0]() is not None:
                return
            del self._stagings[key]
        hit[1].close()

    def _base_dir(self) -> str:
        if self._staging_base is None or not os.path.isdir(self._staging_base):
            parent = self._staging_parent or staging_root()
            _remove_dead_stagings(parent)
            self._staging_base = tempfile.mkdtemp(prefix=f"oanix-wasi-{os.getpid()}-",
                                                  dir=parent)
        return self._staging_base

    def _execute(self, handle: CompiledModule, argv: list[str], env: dict[str, str],
                 stdin: bytes, preopens: list[PreparedPreopen], config: RunConfig,
                 meter: DiskMeter | None = None) -> _Outcome:
        fuel = config.fuel if config.fuel is not None else UNLIMITED_FUEL
        deadline = Deadline(config.timeout)
        canceller = current_canceller()
        with self._lock:
            self._check_open()
            self._running.add(deadline)
        store = None
        output = None
        clocked = False
        stopper = None
        try:
            store = new_store(self._engine, fuel, config.memory_limit)
            wasi = wasi_config(argv, env, preopens)
            if stdin:
                set_stdin_bytes(wasi, stdin)  # otherwise wasmtime's default: an empty stdin
            output = self._outputs.attach(wasi, config.max_output)
            # Always before anything runs: a WASI call in a store without a WASI context
            # aborts the whole process.
            store.set_wasi(wasi)
            if (config.timeout is not None or output.trimmed or meter is not None
                    or canceller is not None):
                self._clock.acquire(meter)
                clocked = True
            if meter is not None or canceller is not None:
                stopper = self._stopper(meter, deadline)
                stopper.install(store)
            else:
                store.set_epoch_deadline(_NO_DEADLINE if config.timeout is None
                                         else self._clock.ticks(config.timeout))
            with (contextlib.nullcontext() if canceller is None
                  else canceller.watching(deadline)):
                exit_code, trap = start_guest(store, handle, config.memory_limit, deadline)
            if meter is not None and meter.tripped is not None and (
                    trap is not None and trap.code == "INTERRUPT"):
                trap = meter.tripped
            try:
                consumed = fuel - store.get_fuel()
            except wasmtime.WasmtimeError:
                consumed = 0
        finally:
            if stopper is not None:
                stopper.remove()
            with self._lock:
                self._running.discard(deadline)
                if self._closed:
                    self._idle.notify_all()  # close() waits for the last run
            if clocked:
                self._clock.release(meter)
            if store is not None:
                store.close()
            if output is not None:
                captured = self._outputs.finish(output)
        return _Outcome(exit_code, trap, captured, consumed)


    def _stopper(self, meter: DiskMeter | None, deadline: Deadline) -> Stopper:
        """What stops a run whose preopens ``meter`` measures (None: none): the meter, its
        deadline expired (the runtime closing, a ``RunCanceller``), or its timeout
        (counted in the clock's epochs, as a plain epoch deadline would be)."""
        clock = self._clock
        if meter is None:
            def tripped() -> bool:
                return False
        else:
            def tripped() -> bool:
                return meter.tripped is not None
        if deadline.timeout is None:
            return Stopper(tripped, lambda: deadline.expired)
        end = clock.epoch + clock.ticks(deadline.timeout)
        return Stopper(tripped, lambda: deadline.expired or clock.epoch >= end)


def _log_run(name: str, config: RunConfig, result: RunResult) -> None:
    """One INFO record per run (what ran, how it ended, how long it took), its limits at
    DEBUG, and a WARNING per change the namespace refused to take back."""
    if log.isEnabledFor(logging.INFO):
        ended = (f"trap {result.trap.kind}: {result.trap.message}" if result.trap is not None
                 else f"exit {result.exit_code}")
        log.info("wasm %s: %s in %.3f s", name, ended, result.duration)
        log.debug("wasm %s limits: fuel=%s memory_limit=%s timeout=%s max_output=%s",
                  name, config.fuel, config.memory_limit, config.timeout, config.max_output)
    for path, reason in result.changes.refused:
        log.warning("wasm %s: %s not written back: %s", name, path, reason)


def start_guest(store: wasmtime.Store, handle: CompiledModule, limit: int | None,
                deadline: Deadline | None = None) -> tuple[int | None, Trap | None]:
    """Instantiate ``handle`` in ``store`` and run ``_start``: the exit code, or the trap
    (classified against the memory ``limit``). ``deadline`` is the one the guest's
    ``poll_oneoff`` waits on (``oanix.wasi.deadline``; None: none).

    Raises:
        ModuleError: no ``_start``, or the module cannot be instantiated.
    """
    instance: wasmtime.Instance | None = None
    if deadline is None:
        deadline = Deadline()
    try:
        instance = handle.pre.instantiate(store)
        start = instance.exports(store).get("_start")
        if not isinstance(start, wasmtime.Func):
            raise ModuleError(f"{handle.name}: no _start function: not a WASI command")
        previous = guard(deadline)
        try:
            start(store)
        finally:
            guard(previous)
    except DeadlinePassed:
        return None, _deadline_trap(deadline)
    except wasmtime.ExitTrap as e:
        code = e.code
        if code != 0 and limit is not None and _near_limit(store, instance, limit):
            return code, Trap("memory", None, f"exit status {code} with the memory "
                              f"limit ({limit} bytes) reached", str(e))
        return code, None
    except wasmtime.Trap as e:
        if deadline.tripped:  # wasmtime-py passes a host call's exception in a global
            return None, _deadline_trap(deadline)
        return None, _classify(e, store, instance, limit)
    except wasmtime.WasmtimeError as e:
        if deadline.tripped:
            return None, _deadline_trap(deadline)
        text = wasmtime_message(e)
        if instance is None:
            if limit is not None and "exceeds memory limits" in text:
                return None, Trap("memory", None, text)
            raise ModuleError(f"{handle.name}: cannot instantiate: {text}") from None
        return None, Trap("wasm", None, text, str(e))
    return 0, None


def _deadline_trap(deadline: Deadline) -> Trap:
    return Trap("timeout", "INTERRUPT", deadline.reason or "the time limit passed while the "
                "guest waited in a host call (poll_oneoff)")


def engine_config() -> wasmtime.Config:
    """The configuration of every engine oanix runs guests in (``ENGINE_FINGERPRINT``);
    a Config is consumed by its Engine, so each engine gets a new one."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    return config


def new_store(engine: wasmtime.Engine, fuel: int, memory_limit: int | None
              ) -> wasmtime.Store:
    """A store for one run: ``fuel`` to burn, linear memory up to ``memory_limit``."""
    store = wasmtime.Store(engine)
    store.set_fuel(fuel)
    if memory_limit is not None:
        store.set_limits(memory_size=memory_limit)
    return store


def wasi_config(argv: list[str], env: Mapping[str, str],
                preopens: Sequence[PreparedPreopen]) -> wasmtime.WasiConfig:
    """A WASI context with ``argv``, ``env`` and ``preopens``; stdio is the caller's."""
    wasi = wasmtime.WasiConfig()
    wasi.argv = argv
    if env:
        wasi.env = list(env.items())
    for p in preopens:
        try:
            wasi.preopen_dir(p.host, p.guest, p.writable)
        except wasmtime.WasmtimeError:
            raise WasiError(f"cannot preopen {p.guest}: its staging directory is missing"
                            ) from None
    return wasi


def _classify(e: wasmtime.Trap, store: wasmtime.Store, instance: wasmtime.Instance | None,
              limit: int | None) -> Trap:
    code = e.trap_code
    name = code.name if code is not None else None
    text = wasmtime_message(e)
    backtrace = e.message
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return Trap("fuel", name, text, backtrace)
    if code == wasmtime.TrapCode.INTERRUPT:
        return Trap("timeout", name, text, backtrace)
    if limit is not None and _near_limit(store, instance, limit):
        return Trap("memory", name, f"{text} (memory limit of {limit} bytes reached)",
                    backtrace)
    return Trap("wasm", name, text, backtrace)


def _near_limit(store: wasmtime.Store, instance: wasmtime.Instance | None, limit: int
                ) -> bool:
    if instance is None:
        return False
    try:
        memory = instance.exports(store).get("memory")
        if not isinstance(memory, wasmtime.Memory):
            return False
        return memory.data_len(store) + MEMORY_SLACK > limit
    except (wasmtime.WasmtimeError, ValueError):
        return False


_STAGING_NAME = re.compile(r"oanix-wasi-(\d+)-")


def _remove_dead_stagings(parent: str) -> None:
    """Delete staging dirs left by processes that no longer exist (a crash, a kill).

    Never raises: a tree of any depth is removed without recursion, and what cannot be
    removed (a mount point, a file the host keeps) is logged and left for later.
    """
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        m = _STAGING_NAME.match(name)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            remove_tree(os.path.join(parent, name))
        except OSError:
            continue
