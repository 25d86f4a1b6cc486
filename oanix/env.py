"""OanixEnv: one agent's environment, a namespace with the standard layout and a way to run
things in it.

The standard namespace::

    /task        the task's agent view (read-only but for result.json)    if a task is given
    /workspace   the agent's files (or any other path: ``workspace_at="/app"``)
    /logs        a LogsFs: stdout.log, stderr.log, events.jsonl
    /tmp         scratch space in memory, with a quota
    /bin         a union: harnesses bind more programs into it
    /cap/<name>  capabilities (HttpFs, WsFs, NostrFs, ...)
    /cap/proc    processes: sandboxed Python's ``subprocess`` runs commands through it

``env.exec("...")`` runs a shell command line as a fresh ``sh -c`` would (in the working
directory, with the environment's variables); wasm programs in ``/bin`` and, with the
``oanix[python]`` extra, ``python3`` run in the WASI sandbox under the environment's
limits. A wasm program gets the shell's exported variables and its working directory as
``PWD``; wasi-libc starts every program at ``/`` and reads no ``PWD``, so the sandbox's
Python and oanix's C fixtures chdir to ``PWD`` first. A program that does not writes its
relative paths beside the mounts at the guest root: such a write is never kept, and the
command fails (status 1) with one line on stderr naming the path and why.
``env.run_wasi(module, ...)`` runs one module. ``env.fork()`` branches the agent:
two copy-on-write snapshots that diverge without touching each other.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import logging
import os
import shlex
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import attrs

from . import paths
from .errors import (
    CommandFailed,
    FsError,
    IllegalTransition,
    InvalidArgument,
    OanixError,
    PythonUnavailable,
    TimedOut,
)
from .fs.cow import CowFs
from .fs.mem import MemFs
from .fs.workspace import WorkspaceFs
from .limits import Limits
from .manifest import Manifest
from .namespace import Namespace
from .service import FileService
from .services.logs import LogsFs
from .services.proc import ProcFs, ProcRequest, ProcResult
from .services.task import TaskFs
from .shell import ExecResult, Shell, cancel
from .shell.cancel import CancelScope
from .shell.context import Ctx
from .values import dumps_pretty
from .venv import make_venv
from .wasi import PythonSession, RunResult, WasiRuntime
from .wasi.cancel import run_stoppable
from .wasi.python import PYTHON_USER_BASE, run_python
from .wasi.rootview import OUTSIDE_MOUNTS
from .wasi.staging import PreparedPreopen

if TYPE_CHECKING:
    from .cap import CapabilityPolicy

__all__ = ["EnvStatus", "Limits", "OanixEnv"]

DEFAULT_TMP_BYTES = 256 << 20
PROC_AT = "/cap/proc"
RECEIPTS_AT = "/logs/receipts"
"""Where the process service is mounted: sandboxed Python's ``subprocess`` asks it."""
MAX_PROCESS_DEPTH = 4
"""How deep processes may start processes (a guest's child is depth 1)."""
_MAX_VIEWS = 8  # process views kept (one per run's set of directories, the newest)
log = logging.getLogger(__name__)


class EnvStatus(enum.Enum):
    """created -> running -> completed | failed -> closed (failed also from created)."""

    CREATED = "created"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CLOSED = "closed"


_ALLOWED = {
    EnvStatus.RUNNING: {EnvStatus.CREATED},
    EnvStatus.COMPLETED: {EnvStatus.RUNNING},
    EnvStatus.FAILED: {EnvStatus.CREATED, EnvStatus.RUNNING},
}


class _Executors:
    """The capability executors of a family of environments (one and its forks, which
    share its capability services): started by the first member to start, stopped when
    the last member closes, so a fork's requests are still served after its parent
    closed.

    Locking: one lock guards the member count and the manager; the manager is started
    and stopped outside it.
    """

    def __init__(self, executors: Sequence[Any]) -> None:
        self._executors = list(executors)
        self._members = 1
        self._manager: Any = None
        self._stopped = False
        self._lock = threading.Lock()

    def join(self) -> None:
        """One more member (a fork) shares these executors."""
        with self._lock:
            self._members += 1

    def start(self) -> None:
        """Start the executors on their own thread, once (nothing if there are none)."""
        if not self._executors:
            return
        from .cap.manager import ExecutorManager

        with self._lock:
            if self._manager is not None or self._stopped:
                return
            manager = self._manager = ExecutorManager(*self._executors)
        manager.start_thread()

    def leave(self) -> None:
        """A member closed; the last one stops the executors."""
        with self._lock:
            self._members -= 1
            if self._members > 0:
                return
            self._stopped = True
            manager, self._manager = self._manager, None
        if manager is not None:
            manager.stop()


class OanixEnv:
    """One agent's environment.

    ``workspace``: the service at ``workspace_at`` (a new MemFs by default); ``cow=True``
    puts a CowFs over it so ``changes()`` tells what the agent did. ``task``: a TaskFs
    whose agent view appears at ``/task``. ``capabilities`` mount at ``/cap/<name>``, and
    ``executors`` serve them while the environment runs; ``network``: a CapabilityPolicy,
    mounts an HttpFs at ``/cap/http`` with an HttpExecutor under that policy (the one-call
    way to give an agent the network). ``mounts`` add any other services. ``env`` and
    ``cwd`` are what ``exec`` starts with (``cwd`` defaults to ``workspace_at``).
    ``runtime``: a shared WasiRuntime (by default the environment makes its own and closes
    it). ``fork()`` branches the environment (see there for what a branch shares).

    ``aexec``, ``arun_wasi``, ``arun_python`` and ``async with`` are the same calls for
    asyncio and trio programs (through anyio): the work runs in a worker thread, and
    cancelling the awaiting task stops it.

    Locking: the status and the table of process views change under one lock; ``exec``
    and ``run_wasi`` may be called from several threads (each ``exec`` is its own shell
    session; runs over this namespace are serialised by the runtime).
    """

    def __init__(self, *, workspace: FileService | None = None,
                 workspace_at: str = "/workspace", cow: bool = False,
                 task: TaskFs | None = None, logs: LogsFs | None = None,
                 tmp_bytes: int | None = DEFAULT_TMP_BYTES,
                 capabilities: Mapping[str, FileService] | None = None,
                 mounts: Mapping[str, FileService] | None = None,
                 env: Mapping[str, str] | None = None, cwd: str | None = None,
                 limits: Limits | None = None, runtime: WasiRuntime | None = None,
                 commands: Mapping[str, Any] | None = None,
                 executors: Sequence[Any] = (), network: CapabilityPolicy | None = None,
                 id: str | None = None) -> None:
        self.id = id or uuid.uuid4().hex[:12]
        self.limits = limits or Limits()
        self.workspace_at = paths.normalize(workspace_at)
        self.cwd = paths.normalize(cwd or self.workspace_at)
        self.vars: dict[str, str] = {"HOME": "/tmp", "PATH": "/bin", "TMPDIR": "/tmp",
                                     **dict(env or {})}
        self.task = task
        self.extra_commands = dict(commands or {})
        caps = dict(capabilities or {})
        if network is not None:
            caps["http"], http_executor = _network(network, caps)
            executors = [*executors, http_executor]
        self._executors = _Executors(executors)
        self._sessions: weakref.WeakSet[PythonSession] = weakref.WeakSet()
        # The namespaces processes see, by the directories of the run that started them.
        self._views: dict[tuple[tuple[PreparedPreopen, ...], int], Namespace] = {}
        self.logs = logs if logs is not None else LogsFs()
        self._own_runtime = runtime is None
        self._runtime = runtime
        self._lock = threading.Lock()
        self._status = EnvStatus.CREATED
        self.error: str | None = None
        self._scope = CancelScope(reason=f"environment {self.id}: cancelled")

        ws = workspace if workspace is not None else MemFs()
        if cow and not isinstance(ws, CowFs):
            ws = CowFs(ws)
        self.workspace = ws
        self._tmp_bytes = tmp_bytes
        self.tmp: FileService = MemFs(max_bytes=tmp_bytes)
        ns = Namespace()
        if task is not None:
            ns.mount("/task", task.agent_view())
        ns.mount(self.workspace_at, ws)
        ns.mount("/logs", self.logs)
        # Receipts of runs (Limits.receipts): written by the environment, read-only to
        # the agent, so what it did cannot be rewritten by it.
        self.receipts: FileService = MemFs()
        ns.mount(RECEIPTS_AT, self.receipts, readonly=True)
        ns.mount("/tmp", self.tmp)
        ns.mount("/bin", MemFs(), create=True)
        self._mount_proc(ns)
        for name, svc in caps.items():
            ns.mount(paths.join("/cap", name), svc)
        for at, svc in (mounts or {}).items():
            ns.mount(at, svc)
        self.namespace = ns

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def status(self) -> EnvStatus:
        return self._status

    def _move(self, to: EnvStatus) -> None:
        with self._lock:
            if self._status is EnvStatus.CLOSED:
                raise IllegalTransition(f"environment {self.id}", "closed", to.value)
            if self._status not in _ALLOWED[to]:
                allowed = " or ".join(sorted(s.value for s in _ALLOWED[to]))
                raise IllegalTransition(f"environment {self.id}", self._status.value,
                                        to.value, allowed)
            self._status = to

    def start(self) -> None:
        """created -> running (``exec`` and ``run_wasi`` do it on first use); starts the
        capability executors on their own thread."""
        self._move(EnvStatus.RUNNING)
        self._executors.start()

    def complete(self) -> None:
        """running -> completed."""
        self._move(EnvStatus.COMPLETED)

    def fail(self, error: str) -> None:
        """created | running -> failed, keeping ``error``."""
        self._move(EnvStatus.FAILED)
        self.error = error

    def close(self) -> None:
        """Release the staging directories and workers; idempotent."""
        with self._lock:
            if self._status is EnvStatus.CLOSED:
                return
            self._status = EnvStatus.CLOSED
            sessions, self._sessions = list(self._sessions), weakref.WeakSet()
        for session in sessions:
            session.close()
        self._executors.leave()
        if self._runtime is not None and self._own_runtime:
            self._runtime.close()

    def __enter__(self) -> OanixEnv:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc is not None and self._status in (EnvStatus.CREATED, EnvStatus.RUNNING):
            self.fail(str(exc) or type(exc).__name__)
        self.close()

    async def __aenter__(self) -> OanixEnv:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        """As ``__exit__``; closing (which waits for runs and executors to stop) happens
        in a worker thread, so the event loop goes on meanwhile."""
        await anyio.to_thread.run_sync(self.__exit__, exc_type, exc, tb,
                                       abandon_on_cancel=False)

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the environment's work now: running shell commands end (status 124) at
        their next check, and every later call raises ``TimedOut``; idempotent. A wasm run
        in progress stops at its own deadline (see ``expire_after``)."""
        self._scope.cancel(f"environment {self.id}: {reason}")

    def expire_after(self, seconds: float) -> None:
        """Give the environment a deadline ``seconds`` from now: every run and command
        gets at most the time left, and after it every call raises ``TimedOut``."""
        self._scope = CancelScope(timeout=seconds,
                                  reason=f"environment {self.id}: time is up")

    @property
    def timed_out(self) -> bool:
        """Whether the environment's deadline passed or it was cancelled."""
        return self._scope.expired_scope() is not None

    def _check_time(self) -> None:
        hit = self._scope.expired_scope()
        if hit is not None:
            raise TimedOut(hit.reason)

    def _timeout(self, timeout: float | None = None) -> float | None:
        """The time a run may take: ``timeout`` (default the limits'), at most what is
        left of the environment's deadline and of the calling command line's."""
        chosen = self.limits.timeout if timeout is None else timeout
        for left in (self._scope.remaining(), cancel.remaining()):
            if left is not None:
                chosen = max(left, 1e-3) if chosen is None else max(min(chosen, left), 1e-3)
        return chosen

    def _use(self) -> None:
        self._check_time()
        with self._lock:
            status = self._status
        if status is EnvStatus.CREATED:
            with contextlib.suppress(IllegalTransition):  # another thread started it
                self.start()
        elif status is EnvStatus.CLOSED:
            raise IllegalTransition(f"environment {self.id}", "closed", "running",
                                    "an open environment")

    @property
    def runtime(self) -> WasiRuntime:
        """The WASI runtime (made on first use)."""
        with self._lock:
            if self._runtime is None:
                self._runtime = WasiRuntime()
            return self._runtime

    # -- running ----------------------------------------------------------------------------

    def run_wasi(self, module: str | bytes | Path, argv: Sequence[str] = (), *,
                 stdin: bytes | str | None = None, env: Mapping[str, str] | None = None,
                 cwd: str | None = None, **limits: Any) -> RunResult:
        """Run a wasm module (a host path, bytes, or a namespace path as ``NamespacePath``
        via ``module="ns:/bin/x.wasm"``) over this namespace under the limits."""
        self._use()
        limits["timeout"] = self._timeout(limits.get("timeout"))
        config = attrs.evolve(self.limits.config(argv=list(argv), stdin=stdin,
                                                 env={**self.vars, **dict(env or {})},
                                                 cwd=cwd or self.cwd), **limits)
        return self._keep(self.runtime.run(_module(self.namespace, module), self.namespace,
                                           config))

    def _keep(self, result: RunResult) -> RunResult:
        """Store a run's receipt, if it has one, as ``/logs/receipts/<id>.json``."""
        if result.receipt is not None:
            self.receipts.write_bytes(f"/{result.receipt.id}.json",
                                      dumps_pretty(result.receipt.to_json()))
        return result

    async def arun_wasi(self, module: str | bytes | Path, argv: Sequence[str] = (),
                        **kwargs: Any) -> RunResult:
        """``run_wasi`` awaited under asyncio or trio (through anyio): cancelling the
        awaiting task stops the guest and returns once the run has ended."""
        return await run_stoppable(functools.partial(self.run_wasi, module, argv, **kwargs))

    def exec(self, command: str, *, stdin: bytes | str | None = None,
             env: Mapping[str, str] | None = None, cwd: str | None = None,
             timeout: float | None = None, check: bool = False) -> ExecResult:
        """Run ``command`` as ``sh -c`` would, in a fresh shell session.

        ``timeout`` (default ``Limits.timeout``) covers the whole command line: builtins,
        loops, pipelines and the programs it starts (each gets the time left). When it
        passes, the work stops and the result has status 124 and ``timed_out``. Output
        past ``Limits.max_output`` is dropped (``stdout_truncated``/``stderr_truncated``).

        Raises:
            TimedOut: the environment was cancelled or its deadline passed.
            CommandFailed: ``check`` and the status is not 0 (``.result`` holds it).
            IllegalTransition: the environment is closed.
        """
        return self._exec(command, self._scope, stdin=stdin, env=env, cwd=cwd,
                          timeout=timeout, check=check)

    async def aexec(self, command: str, *, stdin: bytes | str | None = None,
                    env: Mapping[str, str] | None = None, cwd: str | None = None,
                    timeout: float | None = None, check: bool = False) -> ExecResult:
        """``exec`` awaited under asyncio or trio (through anyio), in a worker thread.

        Cancelling the awaiting task (``anyio.fail_after``, a cancel scope,
        ``asyncio.Task.cancel``) cancels the command line, as ``cancel()`` would for this
        one command: it stops at its next check, a wasm program it runs on its own thread
        stops at its next tick, and the cancellation is raised once the work has ended.
        Same arguments, result and errors as ``exec``.
        """
        scope = CancelScope(self._scope, reason="cancelled")
        call = functools.partial(self._exec, command, scope, stdin=stdin, env=env, cwd=cwd,
                                 timeout=timeout, check=check)
        return await run_stoppable(call, also=scope.cancel)

    def _exec(self, command: str, scope: CancelScope, *, stdin: bytes | str | None,
              env: Mapping[str, str] | None, cwd: str | None, timeout: float | None,
              check: bool) -> ExecResult:
        self._use()
        shell = self._shell(self.namespace, {**self.vars, **dict(env or {})},
                            cwd or self.cwd)
        data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin or b""
        started = time.perf_counter()
        result = shell.exec(command, data, scope=scope,
                            timeout=self.limits.timeout if timeout is None else timeout)
        log.debug("exec %r: status %d%s in %.3f s", command, result.exit_code,
                  " (timed out)" if result.timed_out else "", time.perf_counter() - started)
        if check and not result.ok:
            raise CommandFailed(command, result)
        return result

    def _shell(self, ns: FileService, env: Mapping[str, str], cwd: str) -> Shell:
        """A shell session over ``ns`` (the namespace, or a process's view of a run)."""
        py = functools.partial(self._python, ns)
        return Shell(ns, env=dict(env), cwd=cwd,
                     commands={"python3": py, "python": py, **self.extra_commands},
                     run_program=functools.partial(self._run_program, ns),
                     max_output=self.limits.max_output)

    def _run_program(self, ns: FileService, path: str, argv: list[str],
                     env: dict[str, str], cwd: str, stdin: bytes) -> tuple[int, bytes, bytes]:
        data = ns.read_bytes(path)
        config = attrs.evolve(self.limits.config(argv=argv[1:], argv0=argv[0], env=env,
                                                 cwd=cwd, stdin=stdin),
                              timeout=self._timeout())
        return _status(self._keep(self.runtime.run(data, ns, config)), argv[0], cwd)

    def _run_process(self, ns: FileService, depth: int, req: ProcRequest) -> ProcResult:
        """Run a process a guest asked for through ``/cap/proc`` (see ``ProcFs``).

        A guest running over ``ns`` asked: the child sees that run's own directories (so
        the two share their files while the run goes on), with ``/cap/proc`` one level
        deeper; a request made outside any run goes over ``ns`` itself.
        """
        preopens = self.runtime.running_preopens(ns)
        view = ns if preopens is None else self._process_view(preopens, depth + 1)
        env = req.env if req.env is not None else self.vars
        line = req.command if req.command is not None else shlex.join(req.argv or ())
        res = self._shell(view, env, req.cwd or self.cwd).exec(
            line, req.stdin, scope=self._scope, timeout=self._timeout(req.timeout))
        return ProcResult(res.exit_code, res.stdout, res.stderr, res.timed_out)

    def _process_view(self, preopens: Sequence[PreparedPreopen], depth: int) -> Namespace:
        """A namespace over a run's directories, as they are (no copies), with a process
        service of its own (which refuses to go deeper than ``MAX_PROCESS_DEPTH``).

        The same directories give the same view, so the processes a run starts one after
        another share its staging and live bridges (they are made once)."""
        key = (tuple(preopens), depth)
        with self._lock:
            view = self._views.get(key)
            if view is not None:
                return view
        view = self._new_process_view(preopens, depth)
        with self._lock:
            view = self._views.setdefault(key, view)
            while len(self._views) > _MAX_VIEWS:
                del self._views[next(iter(self._views))]
        return view

    def _new_process_view(self, preopens: Sequence[PreparedPreopen], depth: int
                          ) -> Namespace:
        view = Namespace()
        for p in sorted(preopens, key=lambda p: p.guest.count("/") - (p.guest == "/")):
            if p.guest not in (PROC_AT, PYTHON_USER_BASE):
                view.mount(p.guest, _RunDirFs(p.host, readonly=not p.writable), create=True)
        runner = (functools.partial(self._run_process, view, depth)
                  if depth < MAX_PROCESS_DEPTH else _too_deep)
        view.mount(PROC_AT, ProcFs(runner), create=True)
        return view

    def run_python(self, code: str | None = None, script: str | None = None,
                   argv: Sequence[str] = (), **config: Any) -> RunResult:
        """Run Python code or a namespace script in the sandbox over this namespace, under
        the environment's limits (``config`` overrides them: see ``run_python``)."""
        return self._run_python(self.namespace, code=code, script=script, argv=argv,
                                **config)

    async def arun_python(self, code: str | None = None, script: str | None = None,
                          argv: Sequence[str] = (), **config: Any) -> RunResult:
        """``run_python`` awaited under asyncio or trio (through anyio): cancelling the
        awaiting task stops the interpreter and returns once the run has ended."""
        return await run_stoppable(functools.partial(
            self.run_python, code, script, argv, **config))

    def _run_python(self, ns: FileService, argv: Sequence[str] = (), **config: Any
                    ) -> RunResult:
        self._use()
        limits = {"fuel": self.limits.fuel, "memory_limit": self.limits.memory_limit,
                  "max_output": self.limits.max_output, "max_disk": self.limits.max_disk,
                  "max_disk_files": self.limits.max_disk_files,
                  "receipt": self.limits.receipts,
                  "env": dict(self.vars), "cwd": self.cwd, **config}
        limits["timeout"] = self._timeout(config.get("timeout"))
        return self._keep(run_python(namespace=ns, argv=argv, runtime=self.runtime,
                                     **limits))

    def python_session(self, **config: Any) -> PythonSession:
        """A resident Python interpreter over this namespace (state kept between its
        ``run`` calls), under the environment's memory limit, and its timeout and output
        cap per call (``config`` overrides them: see ``PythonSession``). It is closed with
        the environment, if not before."""
        self._use()
        options = {"memory_limit": self.limits.memory_limit, "timeout": self.limits.timeout,
                   "max_output": self.limits.max_output, "max_disk": self.limits.max_disk,
                   "max_disk_files": self.limits.max_disk_files, "env": dict(self.vars),
                   "cwd": self.cwd, **config}
        session = PythonSession(self.namespace, runtime=self.runtime, **options)
        with self._lock:
            closed = self._status is EnvStatus.CLOSED
            if not closed:
                self._sessions.add(session)
        if closed:
            session.close()
            raise IllegalTransition(f"environment {self.id}", "closed", "running",
                                    "an open environment")
        return session

    def _python(self, ns: FileService, ctx: Ctx, argv: list[str]) -> int:
        args = list(argv[1:])
        while args and args[0] in ("-u", "-B", "-I", "-E", "-s", "-S", "-O", "-q"):
            args.pop(0)
        stdin: bytes = ctx.stdin
        kw: dict[str, Any] = {}
        if not args or args[0] == "-":
            kw["code"] = stdin.decode("utf-8", "replace")
            stdin, rest = b"", args[1:]
        elif args[0] == "-c":
            if len(args) < 2:
                ctx.stderr.write(b"python3: -c needs an argument\n")
                return 2
            kw["code"], rest = args[1], args[2:]
        elif args[0] == "-m":
            if len(args) < 2:
                ctx.stderr.write(b"python3: -m needs a module name\n")
                return 2
            if args[1] == "venv":
                return _venv(ns, ctx, args[2:])
            if args[1] == "pip" and "pip" in self.extra_commands:
                return ctx.run(["pip", *args[2:]])  # the task runner's stand-in
            kw["code"] = ("import runpy, sys; sys.argv[0] = " + json.dumps(args[1])
                          + "; runpy.run_module(" + json.dumps(args[1])
                          + ", run_name='__main__', alter_sys=True)")
            rest = args[2:]
        else:
            kw["script"], rest = _resolve(ctx.cwd, args[0]), args[1:]
        try:
            result = self._run_python(ns, argv=rest, env=dict(ctx.env), cwd=ctx.cwd,
                                      stdin=stdin, **kw)
        except PythonUnavailable as e:
            ctx.stderr.write(f"python3: {e}\n".encode())
            return 127
        except OanixError as e:
            ctx.stderr.write(f"python3: {e}\n".encode())
            return 1
        status, out, err = _status(result, "python3", ctx.cwd)
        ctx.stdout.write(out)
        ctx.stderr.write(err)
        return status

    # -- branching ----------------------------------------------------------------------------

    def fork(self) -> OanixEnv:
        """A branch of this environment, which may outlive it (each closes on its own).

        Copy-on-write: the two start from what the workspace and ``/tmp`` show now, then
        change apart, neither seeing the other's writes. A workspace that is a CowFs stays
        this environment's (``self.workspace`` is the same object and its ``changes()``
        stays complete) and the branch gets ``CowFs.fork()`` of it: an overlay over the
        same base, so its ``changes()`` too count from the start both share. Any other
        workspace (and ``/tmp`` at the first fork) becomes the base of two new CowFs, this
        environment's and the branch's, and is not written again.

        The branch owns: its id and status (created), its logs (a new LogsFs), its
        layers, its Python sessions, its process service (``/cap/proc`` runs in the
        branch), and a WASI runtime of its own (made on first use) unless this
        environment was given one. It shares: a runtime given to this environment (the
        caller closes it), the task, the capabilities and their executors (which run until
        the last environment of the family closes), ``/bin`` and the other mounts, the
        limits, variables and commands. Its deadline lies within this one's as it is now:
        ``cancel()`` here cancels the branch too.

        Raises:
            IllegalTransition: this environment is closed.
        """
        with self._lock:
            if self._status is EnvStatus.CLOSED:
                raise IllegalTransition(f"environment {self.id}", "closed", "forked",
                                        "an open environment")
        self.workspace, ws = self._branch(self.workspace_at, self.workspace, MemFs)
        self.tmp, tmp = self._branch("/tmp", self.tmp,
                                     functools.partial(MemFs, max_bytes=self._tmp_bytes))
        branch = OanixEnv(workspace=ws, workspace_at=self.workspace_at, env=self.vars,
                          cwd=self.cwd, limits=self.limits, tmp_bytes=self._tmp_bytes,
                          runtime=None if self._own_runtime else self._runtime,
                          commands=self.extra_commands)
        self._executors.join()
        branch._executors = self._executors
        branch._scope = CancelScope(self._scope, reason=f"environment {branch.id}: cancelled")
        branch.task = self.task
        branch.tmp = tmp
        ns = self.namespace.fork()
        ns.mount(self.workspace_at, ws)
        ns.mount("/tmp", tmp)
        ns.mount("/logs", branch.logs)
        branch._mount_proc(ns)
        branch.namespace = ns
        return branch

    def _branch(self, at: str, svc: FileService, upper: Callable[[], FileService]
                ) -> tuple[FileService, CowFs]:
        """This environment's layer at ``at`` after a fork, and the branch's (see
        ``fork``); ``upper`` makes the upper of a new layer."""
        if isinstance(svc, CowFs):
            return svc, svc.fork(upper())
        mine = CowFs(svc, upper())
        self.namespace.mount(at, mine)
        return mine, CowFs(svc, upper())

    def _mount_proc(self, ns: Namespace) -> None:
        """Mount this environment's process service in ``ns``, running over ``ns``."""
        ns.mount(PROC_AT, ProcFs(functools.partial(self._run_process, ns, 0)), create=True)

    # -- snapshots ----------------------------------------------------------------------------

    def snapshot(self, path: str | os.PathLike[str], *, inline_workspace: bool = False) -> None:
        """Write this environment to one portable file at ``path`` (atomically): the mount
        table and the state of every stateful service (format: ``oanix.snapshot.format``).

        A ``WorkspaceFs`` is recorded by host path and content hash, its files too with
        ``inline_workspace``. Capability policies and secrets are never written. Each
        service is read under its own lock: for one instant across all of them, take the
        snapshot while no command runs (``oanix.migrate`` drains the capabilities first).

        Raises:
            Unsnapshottable: a mounted service keeps no portable state (a FuncFs, an
                FsspecFs, an unknown service), naming its mount point.
            SnapshotError: the file cannot be written.
        """
        from .snapshot.env import snapshot_env

        snapshot_env(self, path, inline_workspace=inline_workspace)

    @classmethod
    def restore(cls, path: str | os.PathLike[str], *,
                workspaces: Mapping[str, str | Path] | None = None,
                workspace_roots: Sequence[str | Path] | None = None,
                accept_changed: bool = False, keys: Sequence[bytes | str] = (),
                executors: Callable[[Mapping[str, FileService]], Sequence[Any]] | None = None,
                runtime: WasiRuntime | None = None,
                commands: Mapping[str, Any] | None = None) -> OanixEnv:
        """The environment a ``snapshot`` wrote, in status ``created``: the same files,
        bytes, mount table, task status, result and logs, and capability requests
        (pending ones are performed by the new executors).

        ``executors(caps)`` gets the services mounted at ``/cap/<name>`` by name and returns
        the executors to run (with their policies: none are in the file). A ``WorkspaceFs``
        is mounted again only if its directory's content hash is the recorded one;
        ``workspaces`` maps a recorded host path to another directory, ``workspace_roots``
        limits the directories a snapshot may name, ``accept_changed`` mounts a changed
        directory anyway; a changed one whose files were inlined comes back in memory.
        ``keys``: the secret keys of the Nostr capabilities (never in a snapshot; each is
        matched to its capability by public key).

        Raises:
            CorruptSnapshot: not a snapshot, truncated, damaged or malformed.
            SnapshotVersionError: written by a newer format.
            WorkspaceChanged, WorkspaceRefused: see above.
            SnapshotError: the file cannot be read, or a Nostr key is missing.
            Nothing is left half-built and nothing is written when it raises.
        """
        from .snapshot.env import restore_env

        env = restore_env(cls, path, workspaces=workspaces, workspace_roots=workspace_roots,
                          accept_changed=accept_changed, keys=keys, runtime=runtime,
                          commands=commands)
        if executors is not None:
            caps = {m.path[len("/cap/"):]: m.service for m in env.namespace.mounts()
                    if m.path.startswith("/cap/") and m.path != PROC_AT}
            try:
                env._executors = _Executors(executors(caps))
            except BaseException:
                env.close()
                raise
        return env

    # -- declarative construction -------------------------------------------------------------

    @classmethod
    def from_manifest(cls, manifest: str | Path | Mapping[str, Any],
                      base_dir: str | Path | None = None, **overrides: Any) -> OanixEnv:
        """An environment from a TOML or JSON manifest (a path, or the parsed mapping).

        ::

            id = "agent-1"
            cwd = "/workspace"
            [env]
            LANG = "C.UTF-8"
            [limits]
            fuel = 10_000_000_000
            memory = "256M"        # sizes: 64k, 1.5G, 256MiB (K = 1024); max_output,
            timeout = 30           # max_disk too; durations: 30, 500ms, 1m; counts:
                                   # fuel, max_disk_files (1e6, 10_000)
            [workspace]            # one of: dir = "./repo" (WorkspaceFs), or files = {...}
            dir = "./repo"
            cow = true
            [[mounts]]             # type: mem | map | workspace
            path = "/data"
            type = "map"
            files = { "a.txt" = "hello" }
            [capabilities.http]    # /cap/http with its executor and policy
            hosts = ["api.example.com"]
            [capabilities.ws]      # /cap/ws; policy keys: schemes, hosts, allow_private,
            hosts = ["*.example.org"]  # max_request_bytes, max_response_bytes, max_connections
            [capabilities.nostr]   # /cap/nostr; relays, and secret_key (hex) or a new key
            relays = ["wss://relay.example.org"]

        Relative host paths are taken from the manifest's directory (or ``base_dir``).
        ``overrides`` are ``OanixEnv`` arguments that win over the manifest's
        (``runtime=``, ``task=``, ``id=``...). ``examples/env.toml`` shows every key.

        Raises:
            InvalidArgument: an unknown key or a bad value, naming it.
        """
        if isinstance(manifest, Mapping):
            parsed = Manifest.parse(manifest)
            base = Path(base_dir or ".")
        else:
            parsed = Manifest.load(Path(manifest))
            base = Path(base_dir or Path(manifest).parent)
        return cls(**{**parsed.env_kwargs(base), **overrides})


def _network(policy: CapabilityPolicy, capabilities: Mapping[str, FileService]
             ) -> tuple[FileService, Any]:
    """The HttpFs for ``/cap/http`` and the HttpExecutor that serves it under ``policy``.

    Raises:
        InvalidArgument: ``capabilities`` has an ``http`` too.
    """
    from .cap import HttpExecutor, HttpFs

    if "http" in capabilities:
        raise InvalidArgument("network= mounts /cap/http, and capabilities has 'http' too")
    http = HttpFs()
    return http, HttpExecutor(http, policy)


def _too_deep(req: ProcRequest) -> ProcResult:
    return ProcResult(126, error=f"processes nest at most {MAX_PROCESS_DEPTH} deep")


def _resolve(cwd: str, path: str) -> str:
    """``path`` as a shell would take it from ``cwd``."""
    return paths.normalize(path if path.startswith("/") else paths.join(cwd, path))


def _module(ns: Namespace, module: str | bytes | Path) -> str | bytes | Path:
    if isinstance(module, str) and module.startswith("ns:"):
        return ns.read_bytes(module[3:])
    return module


class _RunDirFs(WorkspaceFs):
    """A directory of a run in progress, shown to a process that run starts: the run's
    own sync sees and reports whatever the process writes there (links planted included),
    so a run over it does not walk it again for them after the run
    (``oanix.wasi.staging``)."""

    changes_reported_elsewhere = True


def _status(result: RunResult, name: str, cwd: str) -> tuple[int, bytes, bytes]:
    """``(status, stdout, stderr)`` of a run as a shell sees it: a trap has a status and a
    line on stderr, as ``oanix-run`` reports it; a change the namespace refused is a line
    on stderr naming the path and the reason, and a non-zero status.

    A program that ignores ``PWD`` (wasi-libc starts every program at ``/``) writes its
    relative paths beside the mounts at the guest root; such a write is never kept, and
    its line says why, naming the working directory the program did not start in."""
    status, err = result.status, result.stderr
    if result.trap is not None:
        err += f"{result.trap.kind}: {result.trap.message}\n".encode()
    for path, reason in result.changes.refused:
        if reason == OUTSIDE_MOUNTS and cwd != "/":
            reason += (f" (a program that ignores PWD writes relative paths from /, "
                       f"not from {cwd})")
        err += f"{name}: {path}: not written back: {reason}\n".encode("utf-8", "replace")
    if result.changes.refused and status == 0:
        status = 1
    return status, result.stdout, err


def _venv(ns: FileService, ctx: Ctx, args: list[str]) -> int:
    """``python3 -m venv [OPTIONS] DIR...`` (see ``oanix.venv``)."""
    dirs: list[str] = []
    rest = iter(args)
    for a in rest:
        if a == "--prompt":
            next(rest, None)
        elif not a.startswith("-"):
            dirs.append(a)
    if not dirs:
        ctx.stderr.write(b"usage: venv [-h] [--system-site-packages] [--clear] ENV_DIR\n"
                         b"venv: error: the following arguments are required: ENV_DIR\n")
        return 2
    for d in dirs:
        try:
            make_venv(ns, _resolve(ctx.cwd, d))
        except FsError as e:
            ctx.stderr.write(f"python3 -m venv: {e}\n".encode())
            return 1
    return 0
