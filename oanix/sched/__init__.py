"""Job scheduling: run wasm programs, Python callables, shell commands and custom jobs
with priorities, aging, concurrency limits, cancellation and timeouts, under asyncio or
trio (through anyio).

See ``scheduler`` for the lifecycle and locking rule, ``queue`` for the ordering and
``executors`` for how each kind of job runs (and what cancelling a thread means).
"""

from .executors import (
    ExecutorRegistry,
    JobContext,
    JobExecutor,
    PythonExecutor,
    ShellEnv,
    ShellExecutor,
    WasiEnv,
    WasiExecutor,
    default_executors,
)
from .jobs import JobKind, JobResult, JobSpec, JobState, PythonCall, SchedulerClosed, WasiRun
from .queue import JobQueue
from .scheduler import JobHandle, Scheduler, SchedulerStatistics

__all__ = [
    "ExecutorRegistry",
    "JobContext",
    "JobExecutor",
    "JobHandle",
    "JobKind",
    "JobQueue",
    "JobResult",
    "JobSpec",
    "JobState",
    "PythonCall",
    "PythonExecutor",
    "Scheduler",
    "SchedulerClosed",
    "SchedulerStatistics",
    "ShellEnv",
    "ShellExecutor",
    "WasiEnv",
    "WasiExecutor",
    "WasiRun",
    "default_executors",
]
