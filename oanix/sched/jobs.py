"""Job values: what to run (``JobSpec``), its lifecycle (``JobState``) and outcome (``JobResult``).

All of them are frozen ``attrs`` values: immutable, so they are safe to share between
threads without locking.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, final

import attrs

from ..errors import InvalidArgument, OanixError

__all__ = [
    "JobKind",
    "JobResult",
    "JobSpec",
    "JobState",
    "PythonCall",
    "SchedulerClosed",
    "WasiRun",
]


class SchedulerClosed(OanixError, RuntimeError):
    """``submit`` was called on a scheduler that is not running (not entered, or exited)."""


class JobKind(enum.StrEnum):
    """The built-in job kinds. ``JobSpec.kind`` also takes any registered custom name."""

    WASI = "wasi"
    """A wasm program run by the job's environment (payload: ``WasiRun``)."""
    PYTHON = "python"
    """A Python callable (payload: ``PythonCall`` or a bare callable)."""
    SHELL = "shell"
    """A command run by the job's environment (payload: the command string)."""


class JobState(enum.StrEnum):
    """Where a job is in its life: pending -> running -> one of the four final states.

    A pending job may also go straight to ``cancelled``.
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        """True for the four final states."""
        return self not in (JobState.PENDING, JobState.RUNNING)


def _args(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@final
@attrs.frozen
class PythonCall:
    """Payload of a ``python`` job: ``fn(*args, **kwargs)``.

    An ``async def`` function is awaited in the scheduler's event loop; any other callable
    runs in a worker thread (``anyio.to_thread.run_sync``).
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = attrs.field(default=(), converter=_args)
    kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)


@final
@attrs.frozen
class WasiRun:
    """Payload of a ``wasi`` job: ``env.run_wasi(module, **params)``.

    ``params`` are the RunConfig fields the environment understands (``args``, ``env``,
    ``working_dir``, ``stdin``, ...); the scheduler adds ``timeout`` when the job has one.
    """

    module: Any
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)


def _check_kind(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"job kind must be a non-empty string, not {value!r}")


def _check_timeout(_inst: object, _attr: object, value: float | None) -> None:
    if value is not None and not (isinstance(value, int | float) and value > 0
                                  and not math.isnan(value)):
        raise InvalidArgument(f"job timeout must be a positive number or None, not {value!r}")


def _check_priority(_inst: object, _attr: object, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"job priority must be an int, not {value!r}")


def _tags(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _kind_str(value: str) -> str:
    # A JobKind member is stored as its plain string so specs compare and hash simply.
    return str(value) if isinstance(value, JobKind) else value


@final
@attrs.frozen
class JobSpec:
    """What to run, where, how urgently and for how long at most.

    ``kind`` names the executor ("wasi", "python", "shell" or a registered custom kind);
    ``payload`` is that executor's argument. ``env_id`` names the environment the job runs
    in (it counts against that environment's concurrency limit; shell and wasi jobs need
    it). Higher ``priority`` runs first. ``timeout`` (seconds) bounds the run: past it the
    job ends ``timed_out``. ``name`` and ``tags`` are labels for people and tools. The
    scheduler assigns the job id at submit time.
    """

    kind: str = attrs.field(converter=_kind_str, validator=_check_kind)
    payload: Any = None
    env_id: str | None = None
    priority: int = attrs.field(default=0, validator=_check_priority)
    timeout: float | None = attrs.field(default=None, validator=_check_timeout)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    name: str | None = None

    @classmethod
    def python(cls, fn: Callable[..., Any], *args: Any, env_id: str | None = None,
               priority: int = 0, timeout: float | None = None, tags: tuple[str, ...] = (),
               name: str | None = None) -> JobSpec:
        """A job calling ``fn(*args)``; use ``PythonCall`` directly for keyword arguments."""
        return cls(JobKind.PYTHON, PythonCall(fn, args), env_id=env_id, priority=priority,
                   timeout=timeout, tags=tags,
                   name=name if name is not None else getattr(fn, "__name__", None))

    @classmethod
    def shell(cls, command: str, *, env_id: str, priority: int = 0,
              timeout: float | None = None, tags: tuple[str, ...] = (),
              name: str | None = None) -> JobSpec:
        """A job running ``command`` with ``env.exec`` in environment ``env_id``."""
        return cls(JobKind.SHELL, command, env_id=env_id, priority=priority,
                   timeout=timeout, tags=tags, name=name)

    @classmethod
    def wasi(cls, module: Any, *, env_id: str, params: Mapping[str, Any] | None = None,
             priority: int = 0, timeout: float | None = None, tags: tuple[str, ...] = (),
             name: str | None = None) -> JobSpec:
        """A job running wasm ``module`` with ``env.run_wasi`` in environment ``env_id``."""
        return cls(JobKind.WASI, WasiRun(module, params or {}), env_id=env_id,
                   priority=priority, timeout=timeout, tags=tags, name=name)


@final
@attrs.frozen
class JobResult:
    """How a job ended.

    ``value`` is what the executor returned (``completed`` only). ``error`` is a one-line
    text for ``failed`` (``"ExcType: message"``), ``cancelled`` and ``timed_out``;
    ``exception`` keeps the exception of a failed job. Times are the scheduler's loop
    clock (``anyio.current_time()``, seconds): ``started_at`` is None for a job cancelled while
    pending.
    """

    job_id: str
    state: JobState
    value: Any = None
    error: str | None = None
    exception: BaseException | None = attrs.field(default=None, eq=False)
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def ok(self) -> bool:
        """True if the job completed."""
        return self.state is JobState.COMPLETED
