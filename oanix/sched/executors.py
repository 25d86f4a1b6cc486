"""Job executors: what actually runs a job of a given kind, and the registry of them.

A ``JobExecutor`` is any object with ``async def run(job, context) -> value``. The
scheduler looks the executor up by ``job.kind`` in its ``ExecutorRegistry`` and awaits
``run`` inside the job's cancel scope; the returned value becomes ``JobResult.value`` and
an exception makes the job ``failed``. Built-ins:

``python`` (``PythonExecutor``)
    ``async def`` callables are awaited in the event loop; other callables run in a worker
    thread with ``anyio.to_thread.run_sync`` so the loop stays responsive.
``shell`` (``ShellExecutor``)
    ``env.exec(command)`` in a worker thread, on the environment registered under
    ``job.env_id`` (``await env.aexec(command)`` when the environment has it, as
    ``OanixEnv`` does: then cancelling the job stops the command).
``wasi`` (``WasiExecutor``)
    ``env.run_wasi(module, **params)`` in a worker thread, likewise (``arun_wasi``: a
    cancelled job stops the guest).

Threads and cancellation: a thread cannot be killed. When a job running in a worker
thread is cancelled or times out, the executor either *waits* for the call to return
(``abandon_on_cancel=False``: the job keeps its concurrency slot until then, and then
ends ``cancelled``/``timed_out`` with the late result discarded) or *abandons* it
(``abandon_on_cancel=True``: the job ends at once and frees its slot, while the orphaned
call runs on in the background and its result is dropped). ``shell`` and ``wasi`` wait by
default and pass the job's ``timeout`` down as ``timeout=`` to ``exec``/``run_wasi``: the
environment's own limit (for WASI, the runtime's fuel/epoch deadline) is what really
stops the program, so a slot is never reused while the program still runs; with an
environment that has ``aexec``/``arun_wasi``, a cancel stops it too. ``python`` abandons
by default, because a plain callable has no timeout of its own.

Locking: executors keep no per-job state and are safe to share; the registry's lock
guards its mapping.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, final, runtime_checkable

import anyio.to_thread
import attrs

from ..errors import InvalidArgument
from .jobs import JobKind, JobSpec, PythonCall, WasiRun

__all__ = [
    "ExecutorRegistry",
    "JobContext",
    "JobExecutor",
    "PythonExecutor",
    "ShellEnv",
    "ShellExecutor",
    "WasiEnv",
    "WasiExecutor",
    "default_executors",
]


@final
@attrs.frozen
class JobContext:
    """What an executor gets besides the spec: the job id and access to environments.

    ``env()`` returns the environment registered under the job's ``env_id`` (or another
    id); it raises ``InvalidArgument`` if there is none.
    """

    job_id: str
    spec: JobSpec
    lookup_env: Callable[[str], object] = attrs.field(repr=False)

    @property
    def timeout(self) -> float | None:
        """The job's timeout in seconds (for executors that can enforce it themselves)."""
        return self.spec.timeout

    def env(self, env_id: str | None = None) -> Any:
        """The environment ``env_id`` (default: the job's own)."""
        target = env_id if env_id is not None else self.spec.env_id
        if target is None:
            raise InvalidArgument(f"job {self.job_id} ({self.spec.kind}) needs an env_id")
        return self.lookup_env(target)


@runtime_checkable
class JobExecutor(Protocol):
    """Runs jobs of one kind. ``run`` is awaited in the scheduler's event loop (asyncio
    or trio: use anyio, or the library of the loop you know you run in)."""

    async def run(self, job: JobSpec, context: JobContext) -> Any: ...


class ShellEnv(Protocol):
    """What the ``shell`` executor needs from an environment (called in a worker thread)."""

    def exec(self, command: str, **kwargs: Any) -> Any: ...


class WasiEnv(Protocol):
    """What the ``wasi`` executor needs from an environment (called in a worker thread)."""

    def run_wasi(self, module: Any, **kwargs: Any) -> Any: ...


def _is_async_callable(fn: object) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None))  # noqa: B004 - async __call__ of callable objects


@final
class PythonExecutor:
    """Runs ``python`` jobs: payload ``PythonCall`` or a bare callable (no arguments).

    Locking: stateless; safe to share across schedulers and threads.
    """

    def __init__(self, *, abandon_on_cancel: bool = True) -> None:
        self.abandon_on_cancel = abandon_on_cancel

    async def run(self, job: JobSpec, context: JobContext) -> Any:
        """Await or thread-call the job's callable and return its result."""
        payload = job.payload
        if isinstance(payload, PythonCall):
            fn, args, kwargs = payload.fn, payload.args, payload.kwargs
        elif callable(payload):
            fn, args, kwargs = payload, (), {}
        else:
            raise InvalidArgument(f"a python job needs a callable or PythonCall payload, "
                                  f"not {type(payload).__name__}")
        if _is_async_callable(fn):
            return await fn(*args, **kwargs)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs),
                                             abandon_on_cancel=self.abandon_on_cancel)


class _EnvCallExecutor:
    """Runs a job as one call on its environment: what ``shell`` and ``wasi`` share. When
    the environment has the call's async form (``aexec``, ``arun_wasi``) it is awaited,
    so a cancelled job stops its work; otherwise the call runs in a worker thread. A
    subclass names its payload type, the two method names and the call's arguments.

    Locking: stateless; safe to share across schedulers and threads.
    """

    _kind: ClassVar[str]
    _payload: ClassVar[type]
    _payload_what: ClassVar[str]
    _method: ClassVar[str]
    _async_method: ClassVar[str]

    def __init__(self, *, abandon_on_cancel: bool = False) -> None:
        self.abandon_on_cancel = abandon_on_cancel

    async def run(self, job: JobSpec, context: JobContext) -> Any:
        """Make the call on the job's environment and return what it returns."""
        if not isinstance(job.payload, self._payload):
            raise InvalidArgument(f"a {self._kind} job needs {self._payload_what} payload, "
                                  f"not {type(job.payload).__name__}")
        timeout = {} if job.timeout is None else {"timeout": job.timeout}
        args, kwargs = self._arguments(job.payload, timeout)
        env = context.env()
        stoppable = getattr(env, self._async_method, None)
        if stoppable is not None and not self.abandon_on_cancel:
            return await stoppable(*args, **kwargs)
        call = functools.partial(getattr(env, self._method), *args, **kwargs)
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=self.abandon_on_cancel)

    def _arguments(self, payload: Any, timeout: dict[str, float]
                   ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        raise NotImplementedError


@final
class ShellExecutor(_EnvCallExecutor):
    """Runs ``shell`` jobs: ``env.exec(command, [timeout=...])`` (``aexec`` when the
    environment has it, so cancelling the job stops the command).

    Locking: stateless; safe to share across schedulers and threads.
    """

    _kind = JobKind.SHELL
    _payload = str
    _payload_what = "a command string"
    _method = "exec"
    _async_method = "aexec"

    def _arguments(self, payload: str, timeout: dict[str, float]
                   ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (payload,), timeout


@final
class WasiExecutor(_EnvCallExecutor):
    """Runs ``wasi`` jobs: ``env.run_wasi(module, **params, [timeout=...])``
    (``arun_wasi`` when the environment has it).

    Locking: stateless; safe to share across schedulers and threads.
    """

    _kind = JobKind.WASI
    _payload = WasiRun
    _payload_what = "a WasiRun"
    _method = "run_wasi"
    _async_method = "arun_wasi"

    def _arguments(self, payload: WasiRun, timeout: dict[str, float]
                   ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (payload.module,), {**payload.params, **timeout}


def default_executors() -> dict[str, JobExecutor]:
    """Fresh built-in executors by kind: python, shell, wasi."""
    return {JobKind.PYTHON: PythonExecutor(), JobKind.SHELL: ShellExecutor(),
            JobKind.WASI: WasiExecutor()}


@final
class ExecutorRegistry:
    """Executors by job kind; starts with the built-ins unless given ``executors``.

    Locking: one lock guards the mapping; every method is safe from any thread.
    """

    def __init__(self, executors: Mapping[str, JobExecutor] | None = None) -> None:
        self._lock = threading.Lock()
        self._executors: dict[str, JobExecutor] = dict(
            default_executors() if executors is None else executors)

    def register(self, kind: str, executor: JobExecutor, *, replace: bool = False) -> None:
        """Run jobs of ``kind`` with ``executor``.

        Raises:
            InvalidArgument: ``kind`` is empty, ``executor`` has no ``run``, or ``kind`` is
                taken and ``replace`` is False.
        """
        if not isinstance(kind, str) or not kind:
            raise InvalidArgument(f"executor kind must be a non-empty string, not {kind!r}")
        if not isinstance(executor, JobExecutor):
            raise InvalidArgument(f"{executor!r} has no async run(job, context) method")
        with self._lock:
            if kind in self._executors and not replace:
                raise InvalidArgument(f"an executor for kind {kind!r} is already registered")
            self._executors[str(kind)] = executor

    def unregister(self, kind: str) -> None:
        """Forget the executor of ``kind``. Raises ``InvalidArgument`` if there is none."""
        with self._lock:
            if self._executors.pop(kind, None) is None:
                raise InvalidArgument(f"no executor registered for kind {kind!r}")

    def get(self, kind: str) -> JobExecutor:
        """The executor of ``kind``. Raises ``InvalidArgument`` if there is none."""
        with self._lock:
            executor = self._executors.get(kind)
        if executor is None:
            raise InvalidArgument(f"no executor registered for job kind {kind!r}")
        return executor

    def __contains__(self, kind: object) -> bool:
        with self._lock:
            return kind in self._executors

    def kinds(self) -> list[str]:
        """The registered kinds, sorted."""
        with self._lock:
            return sorted(self._executors)
