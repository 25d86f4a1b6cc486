"""Every error oanix raises, in one tree.

::

    OanixError(Exception)
    ├── FsError(OSError)                 a file operation failed; errno and path set
    │   ├── NotFound(FileNotFoundError)          ENOENT
    │   ├── AlreadyExists(FileExistsError)       EEXIST
    │   ├── NotADirectory(NotADirectoryError)    ENOTDIR
    │   ├── IsADirectory(IsADirectoryError)      EISDIR
    │   ├── NotEmpty                             ENOTEMPTY
    │   ├── ReadOnly                             EROFS
    │   ├── PermissionDenied(PermissionError)    EACCES
    │   ├── CrossMount                           EXDEV
    │   ├── InvalidPath(ValueError)              EINVAL
    │   ├── NameTooLong                          ENAMETOOLONG: deeper than a host can hold
    │   ├── InvalidContent(ValueError)           EINVAL: a request or record file refused
    │   ├── NoSpace                              ENOSPC
    │   ├── Unsupported                          EOPNOTSUPP
    │   ├── BadFileMode(io.UnsupportedOperation) EBADF
    │   └── Draining                             EBUSY: a capability refuses new work
    ├── InvalidArgument(ValueError)      a bad argument that is not a path (a mode, a size)
    │   └── IllegalTransition                a lifecycle change its current state forbids
    ├── WasiError                        the WASI bridge could not run a program
    │   ├── ModuleError                      missing, invalid or mismatched wasm module
    │   └── PythonUnavailable                the oanix[python] extra is not installed
    ├── TaskError                        a task directory is malformed (names file and field)
    ├── CommandFailed                    ``env.exec(..., check=True)`` exited non-zero
    ├── SnapshotError                    an environment snapshot cannot be written or read
    │   ├── Unsnapshottable                  a mounted service keeps no portable state
    │   ├── CorruptSnapshot                  truncated, damaged or malformed file
    │   ├── SnapshotVersionError             written by a newer format version
    │   ├── WorkspaceChanged                 a host directory's content is not the recorded
    │   └── WorkspaceRefused                 a host directory outside the allowed roots
    └── TimedOut(TimeoutError)           an environment's time is up or it was cancelled

Each file error also subclasses the matching builtin, so ``except FileNotFoundError``
works on oanix code as on the os module. The path in the error is the one the caller
used: a namespace rewrites the paths its services report into namespace paths.
"""

from __future__ import annotations

import errno as _errno
import io
from typing import Any, ClassVar, Self

__all__ = [
    "AlreadyExists",
    "BadFileMode",
    "CommandFailed",
    "CorruptSnapshot",
    "CrossMount",
    "Draining",
    "FsError",
    "IllegalTransition",
    "InvalidArgument",
    "InvalidContent",
    "InvalidPath",
    "IsADirectory",
    "NameTooLong",
    "NoSpace",
    "NotADirectory",
    "NotEmpty",
    "NotFound",
    "OanixError",
    "PermissionDenied",
    "ModuleError",
    "PythonUnavailable",
    "ReadOnly",
    "SnapshotError",
    "SnapshotVersionError",
    "TaskError",
    "TimedOut",
    "Unsnapshottable",
    "Unsupported",
    "WasiError",
    "WorkspaceChanged",
    "WorkspaceRefused",
]


class OanixError(Exception):
    """Root of every error raised by oanix."""


class InvalidArgument(OanixError, ValueError):
    """An argument that is not a path is malformed: an open mode, a size, a flag."""


class IllegalTransition(InvalidArgument):
    """A state change the current state forbids (a task, an environment, a job).

    ``current`` and ``target`` name the two states.
    """

    def __init__(self, what: str, current: str, target: str, allowed: str = "") -> None:
        self.current = current
        self.target = target
        hint = f" (only from {allowed})" if allowed else ""
        super().__init__(f"{what}: illegal status change {current} -> {target}{hint}")


class FsError(OanixError, OSError):
    """A file operation failed.

    ``errno``, ``strerror`` and ``filename`` are set as on any ``OSError``; ``path`` is an
    alias of ``filename``. ``filename2`` holds the second path of a two-path operation
    (rename, copy).
    """

    errno_code: ClassVar[int] = _errno.EIO
    default_message: ClassVar[str] = "input/output error"

    def __init__(self, path: str | None = None, message: str | None = None,
                 path2: str | None = None) -> None:
        msg = message if message is not None else self.default_message
        if path2 is None:
            OSError.__init__(self, self.errno_code, msg, path)
        else:
            OSError.__init__(self, self.errno_code, msg, path, None, path2)

    @property
    def path(self) -> str | None:
        """The path the failed operation was given."""
        return self.filename  # type: ignore[no-any-return]

    def with_paths(self, path: str | None, path2: str | None = None) -> Self:
        """The same error naming other paths (used to translate service paths)."""
        return type(self)(path, self.strerror, path2)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.filename, self.strerror, self.filename2))


class NotFound(FsError, FileNotFoundError):
    """No file or directory has this name."""

    errno_code = _errno.ENOENT
    default_message = "no such file or directory"


class AlreadyExists(FsError, FileExistsError):
    """An exclusive create (``x`` mode, ``mkdir``) named something that exists."""

    errno_code = _errno.EEXIST
    default_message = "file exists"


class NotADirectory(FsError, NotADirectoryError):
    """A directory operation named a file, or a path went through a file."""

    errno_code = _errno.ENOTDIR
    default_message = "not a directory"


class IsADirectory(FsError, IsADirectoryError):
    """A file operation (open, remove) named a directory."""

    errno_code = _errno.EISDIR
    default_message = "is a directory"


class NotEmpty(FsError):
    """``rmdir`` (or a rename over a directory) found the directory not empty."""

    errno_code = _errno.ENOTEMPTY
    default_message = "directory not empty"


class ReadOnly(FsError):
    """The service or the mount does not accept writes."""

    errno_code = _errno.EROFS
    default_message = "read-only file system"


class PermissionDenied(FsError, PermissionError):
    """The operation is refused by policy: outside a root, a special file, a mount point."""

    errno_code = _errno.EACCES
    default_message = "permission denied"


class CrossMount(FsError):
    """A rename would cross from one service to another; use ``move`` instead."""

    errno_code = _errno.EXDEV
    default_message = "rename across mounts"


class InvalidPath(FsError, ValueError):
    """A path is malformed: a NUL byte, not a str, a rename into itself."""

    errno_code = _errno.EINVAL
    default_message = "invalid path"


class NameTooLong(FsError):
    """A path is longer than the host can hold: a tree too deep to stage on the host's
    file system for a wasm guest (the message gives the bound)."""

    errno_code = _errno.ENAMETOOLONG
    default_message = "file name too long"


class InvalidContent(FsError, ValueError):
    """What was written to a request or record file cannot be carried out or stored (bad
    JSON, an unknown command, a malformed event); the message says why, nothing changed.
    """

    errno_code = _errno.EINVAL
    default_message = "invalid content"


class NoSpace(FsError):
    """A quota (bytes or files) would be exceeded."""

    errno_code = _errno.ENOSPC
    default_message = "no space left: quota exceeded"


class Unsupported(FsError):
    """The service does not implement this operation at all."""

    errno_code = _errno.EOPNOTSUPP
    default_message = "operation not supported"


class BadFileMode(FsError, io.UnsupportedOperation):
    """A read on a file not open for reading, or a write on one not open for writing."""

    errno_code = _errno.EBADF
    default_message = "bad file mode"


class WasiError(OanixError):
    """The WASI bridge could not run a program (not: the program failed or trapped)."""


class ModuleError(WasiError):
    """A wasm module is missing, invalid, or does not match what was expected."""


class PythonUnavailable(WasiError):
    """CPython for WASI is not installed: ``pip install 'oanix[python]'``."""


class TaskError(OanixError):
    """A task directory cannot be loaded: the message names the file and the field."""


class CommandFailed(OanixError):
    """``env.exec(command, check=True)`` exited with a non-zero status (124 when it
    timed out). ``result`` is the ``ExecResult``; the message names the command and the
    status, and ends with the last line of its stderr."""

    def __init__(self, command: str, result: Any) -> None:
        tail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        short = command if len(command) <= 80 else command[:77] + "..."
        super().__init__(f"command {short!r} exited {result.exit_code}"
                         + (f": {tail[0]}" if tail else ""))
        self.command = command
        self.result = result


class TimedOut(OanixError, TimeoutError):
    """An environment's time is up, or it was cancelled (``OanixEnv.cancel``): its work
    was stopped and every further call on it raises this."""


class Draining(FsError):
    """A capability is draining (its environment is being stopped and copied elsewhere):
    it accepts no new request; the ones it accepted before finish here or move along."""

    errno_code = _errno.EBUSY
    default_message = "draining: no new requests are accepted"


class SnapshotError(OanixError):
    """An environment snapshot cannot be written or read; the message names the mount
    point, object or field, and the file."""


class Unsnapshottable(SnapshotError):
    """A mounted service keeps state no snapshot can carry (a FuncFs's callables, an
    fsspec filesystem, an unknown service); ``mount`` names where it is mounted."""

    def __init__(self, mount: str, message: str) -> None:
        super().__init__(f"{mount}: {message}")
        self.mount = mount


class CorruptSnapshot(SnapshotError):
    """The file is not a snapshot, or is truncated, damaged or malformed; nothing was
    restored."""


class SnapshotVersionError(SnapshotError):
    """The file was written by a newer snapshot format than this oanix reads."""


class WorkspaceChanged(SnapshotError):
    """A host directory's content is not what the snapshot recorded (or it is gone), and
    the snapshot holds no copy of it; ``accept_changed=True`` mounts it anyway."""


class WorkspaceRefused(SnapshotError):
    """A host directory named by a snapshot lies outside the roots the restore allows."""
