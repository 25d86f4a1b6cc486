"""Scheduler: runs jobs in a task group, by priority, within concurrency limits, under
asyncio or trio alike (through anyio).

::

    async with Scheduler(max_concurrent=4, per_env_limit=2) as sched:
        sched.register_env("box-1", env)
        handle = sched.submit(JobSpec.shell("make test", env_id="box-1", timeout=60))
        result = await handle.wait()          # JobResult(state=completed, value=...)

Dispatch: pending jobs wait in a ``JobQueue`` (higher priority first, FIFO within a
priority, aging so that low priorities are not starved: see ``oanix.sched.queue``). A job
starts when fewer than ``max_concurrent`` jobs run and, if it names an environment, fewer
than that environment's limit run there. Jobs submitted from the loop start at the
dispatcher's next turn, so a burst of submissions is ordered by priority as a whole; a
finishing job refills its slot at once.

Each job runs in its own task inside a cancel scope whose deadline is the job's
``timeout``: expiry ends it ``timed_out``, ``cancel()`` ends it ``cancelled``, an
exception ends it ``failed`` (the text in ``error``, the exception in ``exception``), a
return value ends it ``completed``. A result that arrives after the job was cancelled or
timed out is discarded. Blocking work runs in worker threads; a thread cannot be killed,
see ``oanix.sched.executors`` for what cancelling one means.

Leaving the ``async with`` block normally waits for every job (``drain``); leaving it with
an exception (or being cancelled) cancels the pending and running jobs. A scheduler runs
once.

Locking rule: the scheduler's job state lives in its event loop (the asyncio or trio run
that entered it). Queue order, job states, cancel scopes and events are changed only on
the loop thread, by the scheduler's tasks. The cross-thread entries are ``submit`` and
``JobHandle.cancel``: called from another thread they put the request in an inbox (a
``deque``, whose appends are atomic) and wake the dispatch task without waiting for it
(trio's ``TrioToken.run_sync_soon``, asyncio's ``loop.call_soon_threadsafe``); ``submit``
still returns the handle at once, the job is enqueued and a cancel takes effect at the
dispatcher's next turn. One ``threading.Lock`` guards the lifecycle, the environment
registry and the counters, so ``statistics``, ``register_env``, ``set_env_limit`` and
reading ``JobHandle.state`` are safe from any thread. ``JobHandle.wait`` and ``drain`` must be
awaited in the scheduler's own event loop (from another thread:
``anyio.from_thread.run(handle.wait, token=...)``).
"""

from __future__ import annotations

import enum
import itertools
import math
import threading
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import MappingProxyType, TracebackType
from typing import Any, final

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
import trio

from ..errors import InvalidArgument
from .executors import ExecutorRegistry, JobContext, JobExecutor
from .jobs import JobResult, JobSpec, JobState, SchedulerClosed
from .queue import JobQueue, QueueEntry

__all__ = ["JobHandle", "Scheduler", "SchedulerStatistics"]


class _Loop:
    """The event loop a scheduler runs in, to hand work to from other threads without
    waiting (trio's ``run_sync_soon``, asyncio's ``call_soon_threadsafe``)."""

    def __init__(self) -> None:
        native: Any = anyio.lowlevel.current_token().native_token
        self.thread = threading.get_ident()
        self._soon: Callable[..., object] = (
            native.run_sync_soon if isinstance(native, trio.lowlevel.TrioToken)
            else native.call_soon_threadsafe)

    def call_soon(self, fn: Callable[..., object], *args: object) -> bool:
        """Run ``fn(*args)`` on the loop soon; False if the loop has finished."""
        try:
            self._soon(fn, *args)
        except (trio.RunFinishedError, RuntimeError):  # asyncio: "Event loop is closed"
            return False
        return True


class _Life(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


def _check_limit(name: str, value: int | None, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgument(f"{name} must be a positive int{' or None' if optional else ''}"
                              f", not {value!r}")


@final
@attrs.frozen
class SchedulerStatistics:
    """A snapshot of a scheduler: jobs per state (finished ones counted since it started)
    and running/pending jobs per environment."""

    max_concurrent: int
    per_env_limit: int | None
    pending: int
    running: int
    completed: int
    failed: int
    cancelled: int
    timed_out: int
    running_per_env: Mapping[str, int]
    pending_per_env: Mapping[str, int]


@final
class JobHandle:
    """One submitted job: its id, spec, state and (once finished) result.

    Locking: fields change only on the scheduler's loop thread; ``state``, ``result`` and
    ``done`` are plain reads, safe from any thread. ``cancel`` is safe from any thread;
    ``wait`` must be awaited in the scheduler's event loop.
    """

    __slots__ = ("_cancel_requested", "_done", "_entry", "_result", "_scheduler", "_scope",
                 "_started_at", "_state", "_submitted_at", "id", "spec")

    def __init__(self, scheduler: Scheduler, job_id: str, spec: JobSpec) -> None:
        self.id = job_id
        self.spec = spec
        self._scheduler = scheduler
        self._state = JobState.PENDING
        self._result: JobResult | None = None
        self._done: anyio.Event | None = None  # made by the first wait, on the loop
        self._entry: QueueEntry | None = None
        self._scope: anyio.CancelScope | None = None
        self._cancel_requested = False
        self._submitted_at: float | None = None
        self._started_at: float | None = None

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.spec.kind} {self._state}>"

    @property
    def state(self) -> JobState:
        """The job's current state."""
        return self._state

    @property
    def done(self) -> bool:
        """True once the job has reached a final state and its result is set."""
        return self._result is not None

    @property
    def result(self) -> JobResult | None:
        """The result, or None while the job is pending or running."""
        return self._result

    async def wait(self) -> JobResult:
        """Wait until the job finishes and return its result (a checkpoint)."""
        if self._result is None:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()
        else:
            await anyio.lowlevel.checkpoint()
        assert self._result is not None
        return self._result

    def cancel(self) -> bool:
        """Cancel the job: a pending one is dropped, a running one's scope is cancelled.

        Returns False if the job had already finished. From another thread the request is
        handed to the loop and takes effect at its next turn.
        """
        return self._scheduler._cancel(self)


@final
class Scheduler:
    """Runs submitted jobs with priorities, aging and concurrency limits.

    ``max_concurrent`` bounds the jobs running at once; ``per_env_limit`` (None: no limit)
    bounds the jobs running at once in one environment (``set_env_limit`` overrides it per
    environment; jobs without ``env_id`` only count globally). ``aging`` is the seconds of
    waiting worth one priority level (None: no aging). ``executors`` replaces the built-in
    executor table (default: python, shell, wasi). See the module docstring for the
    lifecycle and the locking rule.
    """

    def __init__(self, max_concurrent: int = 4, per_env_limit: int | None = None,
                 aging: float | None = 10.0,
                 executors: Mapping[str, JobExecutor] | None = None) -> None:
        _check_limit("max_concurrent", max_concurrent, optional=False)
        _check_limit("per_env_limit", per_env_limit, optional=True)
        self._max = max_concurrent
        self._per_env_limit = per_env_limit
        self._queue: JobQueue[JobHandle, str | None] = JobQueue(aging)
        self._executors = ExecutorRegistry(executors)
        self._lock = threading.Lock()
        self._life = _Life.NEW
        self._ids = itertools.count(1)
        self._envs: dict[str, object] = {}
        self._env_limits: dict[str, int] = {}
        self._jobs: dict[str, JobHandle] = {}
        self._pending = 0
        self._running = 0
        self._running_per_env: dict[str, int] = {}
        self._finished: Counter[JobState] = Counter()
        self._inflight = 0  # submitted from other threads, not yet enqueued
        # requests from other threads, taken by the dispatch task: (cancel?, handle)
        self._inbox: deque[tuple[bool, JobHandle]] = deque()
        self._tasks: anyio.abc.TaskGroup | None = None
        self._loop: _Loop | None = None
        self._wake: anyio.Event | None = None
        self._idle: anyio.Event | None = None
        self._cm: AbstractAsyncContextManager[None] | None = None

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Scheduler:
        cm = self._serve()
        await cm.__aenter__()
        self._cm = cm
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        cm, self._cm = self._cm, None
        assert cm is not None
        return await cm.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _serve(self) -> AsyncIterator[None]:
        with self._lock:
            if self._life is not _Life.NEW:
                raise SchedulerClosed("a Scheduler runs once; create a new one")
            self._loop = _Loop()
            self._life = _Life.RUNNING
        error: BaseException | None = None
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            tasks.start_soon(self._dispatch_loop, name="oanix scheduler dispatch")
            try:
                yield
                await self.drain()
            except BaseException as exc:  # re-raised below, outside the nursery
                error = exc
            finally:
                self._close()
        if error is not None:
            raise error

    def _close(self) -> None:
        with self._lock:
            self._life = _Life.CLOSED
            live = list(self._jobs.values())
        for handle in live:
            if handle._state is JobState.PENDING:
                self._finish(handle, JobState.CANCELLED, error="cancelled: scheduler closed")
            else:
                handle._cancel_requested = True
                if handle._scope is not None:
                    handle._scope.cancel()
        assert self._tasks is not None
        self._tasks.cancel_scope.cancel()

    def _on_loop(self) -> bool:
        return self._loop is not None and threading.get_ident() == self._loop.thread

    def _require_loop(self, what: str) -> None:
        if self._life is _Life.NEW or not self._on_loop():
            raise RuntimeError(f"{what} must be called in the scheduler's running event loop")

    # ------------------------------------------------------------ environments

    def register_env(self, env_id: str, env: object, *, replace: bool = False) -> None:
        """Make ``env`` available to jobs with ``env_id`` (shell/wasi executors use it).

        Raises:
            InvalidArgument: ``env_id`` is empty, or taken and ``replace`` is False.
        """
        if not isinstance(env_id, str) or not env_id:
            raise InvalidArgument(f"env_id must be a non-empty string, not {env_id!r}")
        with self._lock:
            if env_id in self._envs and not replace:
                raise InvalidArgument(f"an environment is already registered as {env_id!r}")
            self._envs[env_id] = env

    def unregister_env(self, env_id: str) -> object:
        """Forget environment ``env_id`` and return it (running jobs keep theirs)."""
        with self._lock:
            if env_id not in self._envs:
                raise InvalidArgument(f"no environment registered as {env_id!r}")
            return self._envs.pop(env_id)

    def get_env(self, env_id: str) -> object:
        """The environment registered as ``env_id``; ``InvalidArgument`` if none."""
        with self._lock:
            if env_id not in self._envs:
                raise InvalidArgument(f"no environment registered as {env_id!r}")
            return self._envs[env_id]

    def set_env_limit(self, env_id: str, limit: int | None) -> None:
        """Override ``per_env_limit`` for ``env_id`` (None: back to the default)."""
        _check_limit("limit", limit, optional=True)
        with self._lock:
            if limit is None:
                self._env_limits.pop(env_id, None)
            else:
                self._env_limits[env_id] = limit
        self._kick_any_thread()

    def env_limit(self, env_id: str) -> int | None:
        """The concurrency limit of ``env_id`` (None: unlimited)."""
        return self._env_limits.get(env_id, self._per_env_limit)

    # --------------------------------------------------------------- executors

    def register_executor(self, kind: str, executor: JobExecutor, *,
                          replace: bool = False) -> None:
        """Run jobs of ``kind`` with ``executor`` (see ``ExecutorRegistry.register``)."""
        self._executors.register(kind, executor, replace=replace)

    @property
    def executors(self) -> ExecutorRegistry:
        """The executor registry."""
        return self._executors

    # -------------------------------------------------------------------- jobs

    def submit(self, spec: JobSpec) -> JobHandle:
        """Queue ``spec`` and return its handle. Safe from any thread; not a checkpoint.

        Raises:
            InvalidArgument: ``spec`` is not a JobSpec or no executor handles its kind.
            SchedulerClosed: the scheduler is not running.
        """
        if not isinstance(spec, JobSpec):
            raise InvalidArgument(f"submit takes a JobSpec, not {type(spec).__name__}")
        if spec.kind not in self._executors:
            raise InvalidArgument(f"no executor registered for job kind {spec.kind!r}")
        on_loop = self._on_loop()
        with self._lock:
            if self._life is not _Life.RUNNING:
                raise SchedulerClosed("the scheduler is not running; submit inside "
                                      "`async with Scheduler(...)`")
            handle = JobHandle(self, f"job-{next(self._ids)}", spec)
            if not on_loop:
                self._inflight += 1
        if on_loop:
            self._enqueue(handle)
            return handle
        assert self._loop is not None
        self._inbox.append((False, handle))
        if not self._loop.call_soon(self._kick):
            with self._lock:
                self._inflight -= 1
            raise SchedulerClosed("the scheduler's event loop has finished")
        return handle

    def _take_inbox(self) -> None:
        while self._inbox:
            cancel, handle = self._inbox.popleft()
            if cancel:
                self._cancel_in_loop(handle)
                continue
            with self._lock:
                self._inflight -= 1
            self._enqueue(handle)

    def _enqueue(self, handle: JobHandle) -> None:
        now = anyio.current_time()
        handle._submitted_at = now
        if self._life is not _Life.RUNNING or handle._cancel_requested:
            why = "scheduler closed" if self._life is not _Life.RUNNING else "cancelled"
            self._finish(handle, JobState.CANCELLED, error=f"cancelled: {why}")
            return
        handle._entry = self._queue.push(handle, handle.spec.priority, handle.spec.env_id, now)
        with self._lock:
            self._pending += 1
            self._jobs[handle.id] = handle
        if self._wake is not None:
            self._wake.set()

    def _kick_any_thread(self) -> None:
        loop = self._loop
        if self._life is not _Life.RUNNING or loop is None:
            return
        if self._on_loop():
            self._kick()
        else:
            loop.call_soon(self._kick)

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _dispatch_loop(self) -> None:
        while True:
            self._wake = anyio.Event()
            self._take_inbox()
            self._start_ready()
            await self._wake.wait()

    def _has_room(self, env_id: str | None) -> bool:
        if env_id is None:
            return True
        limit = self._env_limits.get(env_id, self._per_env_limit)
        return limit is None or self._running_per_env.get(env_id, 0) < limit

    def _start_ready(self) -> None:
        while self._running < self._max and self._life is _Life.RUNNING:
            handle = self._queue.pop(self._has_room)
            if handle is None:
                return
            self._start(handle)

    def _start(self, handle: JobHandle) -> None:
        env_id = handle.spec.env_id
        handle._entry = None
        handle._started_at = anyio.current_time()
        with self._lock:
            handle._state = JobState.RUNNING
            self._pending -= 1
            self._running += 1
            if env_id is not None:
                self._running_per_env[env_id] = self._running_per_env.get(env_id, 0) + 1
        assert self._tasks is not None
        self._tasks.start_soon(self._run, handle, name=f"oanix job {handle.id}")

    async def _run(self, handle: JobHandle) -> None:
        spec = handle.spec
        deadline = math.inf if spec.timeout is None else anyio.current_time() + spec.timeout
        value: Any = None
        error: Exception | None = None
        try:
            with anyio.CancelScope(deadline=deadline) as scope:
                handle._scope = scope
                if handle._cancel_requested:
                    scope.cancel()
                try:
                    executor = self._executors.get(spec.kind)
                    value = await executor.run(spec, JobContext(handle.id, spec, self.get_env))
                except Exception as exc:
                    error = exc
        except BaseException:  # cancelled from outside: the scheduler is closing
            self._finish(handle, JobState.CANCELLED, error="cancelled: scheduler closed")
            raise
        finally:
            handle._scope = None
        if handle._cancel_requested:
            self._finish(handle, JobState.CANCELLED, error="cancelled", exc=error)
        elif scope.cancel_called:
            self._finish(handle, JobState.TIMED_OUT, error=f"timed out after {spec.timeout} s",
                         exc=error)
        elif error is not None:
            self._finish(handle, JobState.FAILED, error=f"{type(error).__name__}: {error}",
                         exc=error)
        else:
            self._finish(handle, JobState.COMPLETED, value=value)

    def _finish(self, handle: JobHandle, state: JobState, *, value: Any = None,
                error: str | None = None, exc: BaseException | None = None) -> None:
        previous = handle._state
        if previous.is_terminal:
            return
        entry, handle._entry = handle._entry, None
        dequeued = entry is not None and self._queue.discard(entry)
        env_id = handle.spec.env_id
        with self._lock:
            handle._state = state
            self._jobs.pop(handle.id, None)
            self._finished[state] += 1
            if dequeued:
                self._pending -= 1
            if previous is JobState.RUNNING:
                self._running -= 1
                if env_id is not None:
                    left = self._running_per_env[env_id] - 1
                    if left:
                        self._running_per_env[env_id] = left
                    else:
                        del self._running_per_env[env_id]
        handle._result = JobResult(
            handle.id, state, value=value, error=error, exception=exc,
            submitted_at=handle._submitted_at, started_at=handle._started_at,
            finished_at=anyio.current_time())
        if handle._done is not None:
            handle._done.set()
        if previous is JobState.RUNNING:
            self._start_ready()
        if (self._idle is not None and not self._pending and not self._running
                and not self._inflight):
            self._idle.set()
            self._idle = None

    def _cancel(self, handle: JobHandle) -> bool:
        if handle._state.is_terminal:
            return False
        if self._on_loop():
            return self._cancel_in_loop(handle)
        assert self._loop is not None
        self._inbox.append((True, handle))
        return self._loop.call_soon(self._kick)

    def _cancel_in_loop(self, handle: JobHandle) -> bool:
        state = handle._state
        if state.is_terminal:
            return False
        handle._cancel_requested = True
        if state is JobState.PENDING and handle._entry is not None:
            self._finish(handle, JobState.CANCELLED, error="cancelled while pending")
        elif handle._scope is not None:
            handle._scope.cancel()
        # else: not yet enqueued or not yet started; the flag is checked there
        return True

    async def drain(self) -> None:
        """Wait until no job is pending or running (a checkpoint)."""
        self._require_loop("drain")
        await anyio.lowlevel.checkpoint()
        while self._pending or self._running or self._inflight:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    def jobs(self) -> list[JobHandle]:
        """The pending and running jobs, in submission order. Safe from any thread."""
        with self._lock:
            return list(self._jobs.values())

    def statistics(self) -> SchedulerStatistics:
        """A consistent snapshot of the counters. Safe from any thread."""
        with self._lock:
            return SchedulerStatistics(
                max_concurrent=self._max, per_env_limit=self._per_env_limit,
                pending=self._pending, running=self._running,
                completed=self._finished[JobState.COMPLETED],
                failed=self._finished[JobState.FAILED],
                cancelled=self._finished[JobState.CANCELLED],
                timed_out=self._finished[JobState.TIMED_OUT],
                running_per_env=MappingProxyType(dict(self._running_per_env)),
                pending_per_env=MappingProxyType(
                    {g: n for g, n in self._queue.groups().items() if g is not None}))
