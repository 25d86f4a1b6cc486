"""oanix: a Plan 9-style namespace for every AI agent.

Every capability is a file service mounted into a per-agent ``Namespace``; agents act by
reading and writing files, and the mounts decide what an agent can see and do.
"""

from . import paths
from .errors import (
    AlreadyExists,
    BadFileMode,
    CrossMount,
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
    TaskError,
    Unsupported,
    WasiError,
)
from .fs.mem import MemFs
from .namespace import Mount, Namespace
from .service import FileService, OpenMode, Stat
from .services.logs import LogEvent, LogsFs
from .services.task import Reward, TaskFs, TaskInfo, TaskStatus

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "BadFileMode",
    "Changes",
    "CowFs",
    "CrossMount",
    "FileService",
    "FsError",
    "FsspecFs",
    "FuncFs",
    "IllegalTransition",
    "InvalidArgument",
    "InvalidPath",
    "NameTooLong",
    "IsADirectory",
    "LogEvent",
    "LogsFs",
    "MapFs",
    "MemFs",
    "Mount",
    "Namespace",
    "NoSpace",
    "NotADirectory",
    "NotEmpty",
    "NotFound",
    "OanixError",
    "OpenMode",
    "PermissionDenied",
    "ReadOnly",
    "Reward",
    "Stat",
    "TaskError",
    "TaskFs",
    "TaskInfo",
    "TaskStatus",
    "Unsupported",
    "WasiError",
    "WorkspaceFs",
    "paths",
]
