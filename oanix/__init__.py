"""oanix: a Plan 9-style namespace for every AI agent.

Every capability is a file service mounted into a per-agent ``Namespace``; agents act by
reading and writing files, and the mounts decide what an agent can see and do.

The core (errors, paths, the service contract, ``Namespace``, ``MemFs``, the task and log
services) is imported with the package. Everything else named in ``__all__`` is imported
on first use: the WASI bridge, the capabilities and fsspec each cost more to import than
the core, and a program that never touches them should not pay for them.
"""

import logging
from importlib import import_module
from typing import TYPE_CHECKING, Any

from . import paths
from .errors import (
    AlreadyExists,
    BadFileMode,
    CorruptSnapshot,
    CrossMount,
    Draining,
    FsError,
    IllegalTransition,
    InvalidArgument,
    InvalidPath,
    IsADirectory,
    NameTooLong,
    NoSpace,
    NotADirectory,
    NotEmpty,
    NotFound,
    OanixError,
    PermissionDenied,
    ReadOnly,
    SnapshotError,
    SnapshotVersionError,
    TaskError,
    Unsnapshottable,
    Unsupported,
    WasiError,
    WorkspaceChanged,
    WorkspaceRefused,
)
from .fs.mem import MemFs
from .namespace import Mount, Namespace
from .service import FileService, OpenMode, Stat
from .services.logs import LogEvent, LogsFs
from .services.task import Reward, TaskFs, TaskInfo, TaskStatus

if TYPE_CHECKING:
    from .cap import (
        CapabilityPolicy,
        ExecutorManager,
        HttpExecutor,
        HttpFs,
        NostrFs,
        NostrRelayConnector,
        WsConnector,
        WsFs,
    )
    from .changes import Changes
    from .env import EnvStatus, OanixEnv
    from .fs import CowFs, FsspecFs, FuncFs, MapFs, SqliteFs, WorkspaceFs
    from .limits import Limits
    from .services.kv import KvFs
    from .services.sql import SqlFs
    from .shell import ExecResult, Shell
    from .snapshot.migrate import migrate, resume
    from .wasi import PythonSession, RunConfig, RunResult, WasiRuntime, run_python
    from .wasi.receipt import Receipt
    from .wasi.replay import ReplayReport, replay

__version__ = "0.1.0"

# Quiet by default: records of the ``oanix.*`` loggers go nowhere until the program (or
# ``oanix-run -v``, ``oanix-tasks -v``) configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())

# name -> the module that defines it, imported by __getattr__ on first use.
_LAZY = {
    "Changes": ".changes",
    "CowFs": ".fs", "FsspecFs": ".fs", "FuncFs": ".fs", "MapFs": ".fs", "SqliteFs": ".fs",
    "WorkspaceFs": ".fs",
    "EnvStatus": ".env", "Limits": ".limits", "OanixEnv": ".env",
    "ExecResult": ".shell", "Shell": ".shell",
    "PythonSession": ".wasi", "RunConfig": ".wasi", "RunResult": ".wasi",
    "WasiRuntime": ".wasi", "run_python": ".wasi",
    "Receipt": ".wasi.receipt", "ReplayReport": ".wasi.replay", "replay": ".wasi.replay",
    "KvFs": ".services.kv", "SqlFs": ".services.sql",
    "CapabilityPolicy": ".cap", "HttpFs": ".cap", "NostrFs": ".cap", "WsFs": ".cap",
    "ExecutorManager": ".cap", "HttpExecutor": ".cap",
    "NostrRelayConnector": ".cap", "WsConnector": ".cap",
    "migrate": ".snapshot.migrate", "resume": ".snapshot.migrate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # the next lookup is a plain global
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AlreadyExists",
    "BadFileMode",
    "CapabilityPolicy",
    "Changes",
    "CorruptSnapshot",
    "CowFs",
    "CrossMount",
    "Draining",
    "EnvStatus",
    "ExecResult",
    "ExecutorManager",
    "FileService",
    "FsError",
    "FsspecFs",
    "FuncFs",
    "HttpExecutor",
    "HttpFs",
    "IllegalTransition",
    "InvalidArgument",
    "InvalidPath",
    "IsADirectory",
    "KvFs",
    "Limits",
    "LogEvent",
    "LogsFs",
    "MapFs",
    "MemFs",
    "Mount",
    "NameTooLong",
    "Namespace",
    "NoSpace",
    "NostrFs",
    "NostrRelayConnector",
    "NotADirectory",
    "NotEmpty",
    "NotFound",
    "OanixEnv",
    "OanixError",
    "OpenMode",
    "PermissionDenied",
    "PythonSession",
    "ReadOnly",
    "Receipt",
    "ReplayReport",
    "Reward",
    "RunConfig",
    "RunResult",
    "Shell",
    "SnapshotError",
    "SnapshotVersionError",
    "SqlFs",
    "SqliteFs",
    "Stat",
    "TaskError",
    "TaskFs",
    "TaskInfo",
    "TaskStatus",
    "Unsnapshottable",
    "Unsupported",
    "WasiError",
    "WasiRuntime",
    "WorkspaceChanged",
    "WorkspaceFs",
    "WorkspaceRefused",
    "WsConnector",
    "WsFs",
    "migrate",
    "paths",
    "replay",
    "resume",
    "run_python",
]
