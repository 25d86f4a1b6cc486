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
limits. ``env.run_wasi(module, ...)`` runs one module. ``env.fork()`` branches the agent:
two copy-on-write snapshots that diverge without touching each other.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import logging
import shlex
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread
import attrs

from . import paths
from .errors import (
    CommandFailed,
    IllegalTransition,
    OanixError,
    PythonUnavailable,
    TimedOut,
)
from .fs.cow import CowFs
from .fs.mem import MemFs
from .fs.workspace import WorkspaceFs
from .manifest import Manifest
from .namespace import Namespace
from .service import FileService
from .services.logs import LogsFs
from .services.proc import ProcFs, ProcRequest, ProcResult
from .services.task import TaskFs
from .shell import ExecResult, Shell, cancel
from .shell.cancel import CancelScope
from .shell.context import Ctx
from .wasi import PythonSession, RunConfig, RunResult, WasiRuntime
from .wasi.cancel import run_stoppable
from .wasi.python import PYTHON_USER_BASE
from .wasi.records import DEFAULT_MAX_DISK, DEFAULT_MAX_DISK_FILES
from .wasi.sync import PreparedPreopen

__all__ = ["EnvStatus", "Limits", "OanixEnv"]

DEFAULT_TMP_BYTES = 256 << 20
PROC_AT = "/cap/proc"
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


@attrs.frozen
class Limits:
    """Limits of every program an environment runs (see ``RunConfig``). ``timeout`` also
    bounds each ``exec`` command line as a whole, and ``max_output`` what ``exec`` keeps
    of its stdout and of its stderr.

    ``max_disk`` / ``max_disk_files``: the most a program may hold in any one writable
    directory while it runs, where the quotas of the mounts there do not say less
    (default 1 GiB and 100,000 entries; passing either stops the program with
    ``Trap(kind="disk")``, see ``oanix.wasi.quota``).
    """

    fuel: int | None = None
    memory_limit: int | None = 512 << 20
    timeout: float | None = None
    max_output: int | None = 16 << 20
    max_disk: int | None = DEFAULT_MAX_DISK
    max_disk_files: int | None = DEFAULT_MAX_DISK_FILES

    def config(self, **fields: Any) -> RunConfig:
        """A RunConfig with these limits and ``fields``."""
        return RunConfig(fuel=self.fuel, memory_limit=self.memory_limit,
                         timeout=self.timeout, max_output=self.max_output,
                         max_disk=self.max_disk, max_disk_files=self.max_disk_files,
                         **fields)


class OanixEnv:
    """One agent's environment.

    ``workspace``: the service at ``workspace_at`` (a new MemFs by default); ``cow=True``
    puts a CowFs over it so ``changes()`` tells what the agent did. ``task``: a TaskFs
    whose agent view appears at ``/task``. ``capabilities`` mount at ``/cap/<name>``;
    ``mounts`` add any other services. ``env`` and ``cwd`` are what ``exec`` starts
    with (``cwd`` defaults to ``workspace_at``). ``runtime``: a shared WasiRuntime (by
    default the environment makes its own and closes it).

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
                 executors: Sequence[Any] = (), id: str | None = None) -> None:
        self.id = id or uuid.uuid4().hex[:12]
        self.limits = limits or Limits()
        self.workspace_at = paths.normalize(workspace_at)
        self.cwd = paths.normalize(cwd or self.workspace_at)
        self.vars: dict[str, str] = {"HOME": "/tmp", "PATH": "/bin", "TMPDIR": "/tmp",
                                     **dict(env or {})}
        self.task = task
        self.extra_commands = dict(commands or {})
        self._executors = list(executors)
        self._manager: Any = None
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
        self.tmp: FileService = MemFs(max_bytes=tmp_bytes)
        ns = Namespace()
        if task is not None:
            ns.mount("/task", task.agent_view())
        ns.mount(self.workspace_at, ws)
        ns.mount("/logs", self.logs)
        ns.mount("/tmp", self.tmp)
        ns.mount("/bin", MemFs(), create=True)
        ns.mount(PROC_AT, ProcFs(functools.partial(self._run_process, ns, 0)), create=True)
        for name, svc in (capabilities or {}).items():
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
        if self._executors:
            from .cap.manager import ExecutorManager

            manager = ExecutorManager(*self._executors)
            manager.start_thread()
            self._manager = manager

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
            manager, self._manager = self._manager, None
            sessions, self._sessions = list(self._sessions), weakref.WeakSet()
        for session in sessions:
            session.close()
        if manager is not None:
            manager.stop()
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
        return self.runtime.run(_module(self.namespace, module), self.namespace, config)

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
        return _status(self.runtime.run(data, ns, config), argv[0])

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
                view.mount(p.guest, WorkspaceFs(p.host, readonly=not p.writable), create=True)
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
        from .wasi.python import run_python

        self._use()
        limits = {"fuel": self.limits.fuel, "memory_limit": self.limits.memory_limit,
                  "max_output": self.limits.max_output, "max_disk": self.limits.max_disk,
                  "max_disk_files": self.limits.max_disk_files,
                  "env": dict(self.vars), "cwd": self.cwd, **config}
        limits["timeout"] = self._timeout(config.get("timeout"))
        return run_python(namespace=ns, argv=argv, runtime=self.runtime, **limits)

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
        status, out, err = _status(result, "python3")
        ctx.stdout.write(out)
        ctx.stderr.write(err)
        return status

    # -- branching ----------------------------------------------------------------------------

    def fork(self) -> OanixEnv:
        """A branch of this environment: from now on this environment and the branch each
        write to their own copy-on-write layer over what the workspace and /tmp hold now,
        so neither sees the other's changes. Logs are new for the branch; the task and the
        capabilities are shared.
        """
        frozen_ws, frozen_tmp = self.workspace, self.tmp
        mine_ws, mine_tmp = CowFs(frozen_ws), CowFs(frozen_tmp)
        self.namespace.mount(self.workspace_at, mine_ws)
        self.namespace.mount("/tmp", mine_tmp)
        self.workspace = mine_ws
        branch = OanixEnv.__new__(OanixEnv)
        branch.__dict__.update(self.__dict__)
        branch.id = uuid.uuid4().hex[:12]
        branch._lock = threading.Lock()
        branch._status = EnvStatus.CREATED
        branch._own_runtime = self._runtime is None  # else shared: the parent closes it
        branch._runtime = self._runtime
        branch.extra_commands = dict(self.extra_commands)
        branch._executors = []
        branch._manager = None
        branch.error = None
        branch._scope = CancelScope(self._scope, reason=f"environment {branch.id}: cancelled")
        branch.vars = dict(self.vars)
        branch.logs = LogsFs()
        branch.workspace = CowFs(frozen_ws)
        branch.namespace = self.namespace.fork()
        branch.namespace.mount(self.workspace_at, branch.workspace)
        branch.tmp = CowFs(frozen_tmp)
        branch.namespace.mount("/tmp", branch.tmp)
        branch.namespace.mount("/logs", branch.logs)
        self.tmp = mine_tmp
        return branch

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

        Raises:
            InvalidArgument: an unknown key or a bad value, naming it.
        """
        if isinstance(manifest, Mapping):
            parsed = Manifest.parse(manifest)
            base = Path(base_dir or ".")
        else:
            parsed = Manifest.load(Path(manifest))
            base = Path(base_dir or Path(manifest).parent)
        return cls(**parsed.env_kwargs(base), **overrides)


def _too_deep(req: ProcRequest) -> ProcResult:
    return ProcResult(126, error=f"processes nest at most {MAX_PROCESS_DEPTH} deep")


def _resolve(cwd: str, path: str) -> str:
    """``path`` as a shell would take it from ``cwd``."""
    return paths.normalize(path if path.startswith("/") else paths.join(cwd, path))


def _module(ns: Namespace, module: str | bytes | Path) -> str | bytes | Path:
    if isinstance(module, str) and module.startswith("ns:"):
        return ns.read_bytes(module[3:])
    return module


def _status(result: RunResult, name: str) -> tuple[int, bytes, bytes]:
    """``(status, stdout, stderr)`` of a run as a shell sees it: a trap has a status and a
    line on stderr, as ``oanix-run`` reports it; a change the namespace refused is a line
    on stderr naming the path and the reason, and a non-zero status."""
    status, err = result.status, result.stderr
    if result.trap is not None:
        err += f"{result.trap.kind}: {result.trap.message}\n".encode()
    for path, reason in result.changes.refused:
        err += f"{name}: {path}: not written back: {reason}\n".encode("utf-8", "replace")
    if result.changes.refused and status == 0:
        status = 1
    return status, result.stdout, err
