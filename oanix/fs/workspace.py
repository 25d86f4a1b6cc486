"""WorkspaceFs: a real host directory exposed as a file service, confined to its root.

Nothing outside the root is ever reachable. The root is opened once as a directory file
descriptor and every path is resolved from it one component at a time, each component
opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to the descriptor of its parent
(``openat``), so the kernel itself refuses a symlink at every step. No host path is ever
built or passed to the kernel, so a symlink planted in any component, or swapped in while
an operation runs, is refused rather than followed; ``..`` never reaches the kernel
(namespace paths are normalised, and the walker rejects ``.``/``..``/empty components and
NUL bytes again).

Policy (documented behaviour):

* Symlinks are never followed, wherever they point (outside or inside the root). They are
  listed by ``listdir``; ``scandir`` shows them as empty read-only files so ``walk`` and
  ``rmtree`` see them; ``stat``, ``open``, ``read_bytes``, ``write_bytes`` on one, and any
  path going through one, raise ``PermissionDenied`` with the message ``"symlink"``.
  ``remove`` and ``rename`` act on the link itself (``unlinkat``/``renameat`` never
  follow), which is harmless.
* Special files (FIFOs, sockets, devices) are treated the same way with the message
  ``"special file"``. They are refused before opening (``lstat`` relative to the parent
  descriptor), and the open itself uses ``O_NONBLOCK`` (cleared afterwards) and is
  checked with ``fstat``, so one swapped in between the check and the open can neither
  block nor be used.
* Hardlinks are out of scope: a hardlink inside the root to a file outside it is the same
  file, and ``open(..., "w")`` writes through it (``write_bytes`` does not: it replaces the
  name with a new file).
* Mount points below the root are crossed like directories: whoever can mount on the host
  decides what the root contains.

* ``write_bytes`` on an existing symlink or special file is refused like ``open``; its
  temporary ``.oanix-tmp-*`` file is visible in listings while the write runs.

Errors are the typed oanix errors naming the path the caller used; the host path never
appears in an error (nor in a chained exception or ``repr``). Only the constructor names
the root it was given.

The root descriptor pins the directory: renaming or replacing the root on the host does
not redirect the service. ``close()`` (or leaving a ``with`` block, or garbage collection)
releases it; any later operation raises ``BadFileMode``. POSIX only (needs ``dir_fd``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import secrets
import stat as st_mod
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Final, ParamSpec, TypeVar

from .. import paths
from .._beneath import DIR as _DIR
from .._beneath import FILE as _FILE
from .._beneath import SUPPORTED as _SUPPORTED
from .._beneath import descend
from ..errors import (
    AlreadyExists,
    BadFileMode,
    CrossMount,
    FsError,
    InvalidArgument,
    InvalidPath,
    IsADirectory,
    NoSpace,
    NotADirectory,
    NotEmpty,
    NotFound,
    PermissionDenied,
    ReadOnly,
    Unsupported,
    WorkspaceChanged,
    WorkspaceRefused,
)
from ..service import FileService, OpenMode, Stat, check_open
from ..snapshot.tree import content_hash, encode_entries, service_entries
from .mem import MemFs

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

    from ..snapshot.protocol import SnapshotReader, SnapshotWriter

__all__ = ["WorkspaceFs"]


_TEMP_PREFIX: Final = ".oanix-tmp-"
_SYMLINK: Final = "symlink"
_SPECIAL: Final = "special file"

_ERRNO: Final[dict[int, type[FsError]]] = {
    errno.ENOENT: NotFound,
    errno.ENOTDIR: NotADirectory,
    errno.EISDIR: IsADirectory,
    errno.EEXIST: AlreadyExists,
    errno.ENOTEMPTY: NotEmpty,
    errno.EACCES: PermissionDenied,
    errno.EPERM: PermissionDenied,
    errno.EBUSY: PermissionDenied,
    errno.ETXTBSY: PermissionDenied,
    errno.EROFS: ReadOnly,
    errno.ENOSPC: NoSpace,
    errno.EDQUOT: NoSpace,
    errno.EFBIG: NoSpace,
    errno.EXDEV: CrossMount,
    errno.EINVAL: InvalidPath,
    errno.ENAMETOOLONG: InvalidPath,
    errno.EOPNOTSUPP: Unsupported,
    errno.EBADF: BadFileMode,
}
# O_NOFOLLOW on a symlink: ELOOP on Linux, EMLINK on FreeBSD, EFTYPE on NetBSD.
_LOOP: Final = frozenset({errno.ELOOP, errno.EMLINK, getattr(errno, "EFTYPE", errno.ELOOP)})
# O_NONBLOCK write-open of a FIFO without reader, or a device without driver.
_SPECIAL_ERRNOS: Final = frozenset({errno.ENXIO, errno.ENODEV})


def _translate(e: OSError, path: str, path2: str | None = None) -> FsError:
    """The typed oanix error for ``e``, naming the namespace path(s) only."""
    if e.errno in _LOOP:
        return PermissionDenied(path, _SYMLINK, path2)
    if e.errno in _SPECIAL_ERRNOS:
        return PermissionDenied(path, _SPECIAL, path2)
    cls = _ERRNO.get(e.errno or 0)
    if cls is not None:
        return cls(path, None, path2)
    err = FsError(path, e.strerror or "input/output error", path2)
    err.errno = e.errno
    return err


def _names(path: str) -> list[str]:
    """The components of a normalised absolute path, each checked to be one plain name."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidPath(repr(path), "not a normalised absolute path")
    names = paths.parts(path)
    for name in names:
        if name in ("", ".", "..") or "\x00" in name:
            raise InvalidPath(path.replace("\x00", "\\x00"), "not a normalised path")
    return names


def _refuse_special(st: os.stat_result, path: str) -> None:
    """Raise PermissionDenied unless ``st`` is a regular file or a directory."""
    mode = st.st_mode
    if st_mod.S_ISLNK(mode):
        raise PermissionDenied(path, _SYMLINK)
    if not (st_mod.S_ISREG(mode) or st_mod.S_ISDIR(mode)):
        raise PermissionDenied(path, _SPECIAL)


class WorkspaceFs(FileService):
    """The host directory ``root`` as a file service; ``readonly=True`` refuses writes.

    ``root`` must exist and be a directory (``NotFound`` / ``NotADirectory`` otherwise).
    Files opened are real host files (``io.FileIO`` without buffering, ``name`` set to the
    namespace path): writes through an open file reach the disk at once, as on POSIX.
    ``write_bytes`` is atomic: it writes a temporary ``.oanix-tmp-*`` file in the same
    directory and renames it over the target, so a concurrent reader sees the old or the
    new content, never a mix (not crash-durable: there is no fsync). A read-only
    workspace opens files read-only and raises ``ReadOnly`` on every write.

    Locking: the only shared state is the root descriptor; a lock guards duplicating and
    closing it. Every operation works on its own descriptors, so threads never share
    state, and each operation is as atomic as the system calls it makes.
    """

    def __init__(self, root: str | os.PathLike[str], readonly: bool = False) -> None:
        self.readonly = readonly
        self._lock = threading.Lock()
        self._root_fd = -1
        name = os.fspath(root)
        if not _SUPPORTED:
            raise Unsupported(name, "WorkspaceFs needs a POSIX system (dir_fd support)")
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise _translate(e, name) from None
        try:
            real = os.path.realpath(name)
            if not os.path.samestat(os.fstat(fd), os.stat(real)):
                raise PermissionDenied(name, "root changed while opening it")
        except OSError as e:
            os.close(fd)
            raise _translate(e, name) from None
        except BaseException:
            os.close(fd)
            raise
        self._root_fd = fd
        self._host_path = real

    @property
    def host_path(self) -> str:
        """The resolved real path of the root on the host (for bridges that preopen it)."""
        return self._host_path

    def close(self) -> None:
        """Release the root descriptor; later operations raise ``BadFileMode``."""
        with self._lock:
            fd, self._root_fd = self._root_fd, -1
        if fd >= 0:
            os.close(fd)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._root_fd < 0

    def __enter__(self) -> WorkspaceFs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_root_fd", -1) >= 0:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("readonly" if self.readonly else "writable")
        return f"<WorkspaceFs {state}>"

    # -- resolution: the one place paths become descriptors ----------------------------

    def _walk(self, path: str, names: list[str], listable: bool) -> int:
        """A new descriptor of the directory reached by ``names`` from the root.

        Every component is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to its
        parent's descriptor, so a symlink anywhere is refused by the kernel; the last is
        opened readable when ``listable``. Errors name ``path``.
        """
        with self._lock:
            if self._root_fd < 0:
                raise BadFileMode(path, "workspace is closed")
            fd = os.dup(self._root_fd)
        return descend(fd, names, listable,
                       lambda e, dir_fd, name: self._component_error(e, dir_fd, name, path))

    @staticmethod
    def _component_error(e: OSError, dir_fd: int, name: str, path: str) -> FsError:
        """Translate a failed directory open, telling a symlink from a plain file."""
        if e.errno == errno.ENOTDIR or e.errno in _LOOP:
            with contextlib.suppress(OSError):
                if st_mod.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    return PermissionDenied(path, _SYMLINK)
        return _translate(e, path)

    @contextlib.contextmanager
    def _dir(self, path: str) -> Iterator[int]:
        """A readable descriptor of directory ``path``, closed on exit."""
        fd = self._walk(path, _names(path), listable=True)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _parent(self, path: str) -> Iterator[tuple[int, str]]:
        """``(descriptor of the parent, last name)`` of ``path``; the root gives ``"."``."""
        names = _names(path)
        fd = self._walk(path, names[:-1], listable=False)
        try:
            yield fd, names[-1] if names else "."
        finally:
            os.close(fd)

    @staticmethod
    def _lstat(dir_fd: int, name: str, path: str) -> os.stat_result | None:
        """``lstat`` of ``name`` in ``dir_fd`` (never follows), None if missing."""
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise _translate(e, path) from None

    def _make_stat(self, dir_fd: int, name: str, st: os.stat_result, path: str) -> Stat:
        """The Stat of a file or directory (directory size: its number of entries)."""
        _refuse_special(st, path)
        base = paths.basename(path)
        if not st_mod.S_ISDIR(st.st_mode):
            return Stat(base, st.st_size, False, st.st_mtime, self.readonly)
        count = 0  # stays 0 for a directory we may not read
        try:
            fd = os.open(name, _DIR | os.O_RDONLY, dir_fd=dir_fd)
        except PermissionError:
            pass
        except OSError as e:
            raise self._component_error(e, dir_fd, name, path) from None
        else:
            try:
                count = len(os.listdir(fd))
            finally:
                os.close(fd)
        return Stat(base, count, True, st.st_mtime, self.readonly)

    def _open_fd(self, dir_fd: int, name: str, path: str, flags: int) -> int:
        """Open regular file ``name`` in ``dir_fd``: never follows, never blocks."""
        try:
            fd = os.open(name, flags | _FILE, 0o666, dir_fd=dir_fd)
        except OSError as e:
            raise _translate(e, path) from None
        try:
            mode = os.fstat(fd).st_mode
            if st_mod.S_ISDIR(mode):
                raise IsADirectory(path)
            if not st_mod.S_ISREG(mode):
                raise PermissionDenied(path, _SPECIAL)
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _check_writable(self, path: str) -> None:
        if self.readonly:
            raise ReadOnly(path)

    # -- primitives -----------------------------------------------------------------------

    def _stat(self, path: str) -> Stat:
        with self._parent(path) as (dfd, name):
            st = self._lstat(dfd, name, path)
            if st is None:
                raise NotFound(path)
            return self._make_stat(dfd, name, st, path)

    def _listdir(self, path: str) -> list[str]:
        with self._dir(path) as fd:
            try:
                return sorted(os.listdir(fd))
            except OSError as e:
                raise _translate(e, path) from None

    def _scandir(self, path: str) -> list[Stat]:
        out: list[Stat] = []
        with self._dir(path) as fd:
            try:
                with os.scandir(fd) as it:
                    entries = sorted(it, key=lambda entry: entry.name)
            except OSError as e:
                raise _translate(e, path) from None
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # vanished meanwhile
                except OSError:
                    out.append(Stat(entry.name, 0, False, 0.0, True))
                    continue
                try:
                    out.append(self._make_stat(fd, entry.name, st, paths.join(path, entry.name)))
                except NotFound:
                    continue
                except FsError:
                    # A symlink or a special file (or one swapped in): listed, never followed.
                    out.append(Stat(entry.name, 0, False, st.st_mtime, True))
        return out

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        if mode.write:
            self._check_writable(path)
        with self._parent(path) as (dfd, name):
            st = self._file_stat(dfd, name, path)
            if st is not None:
                check_open(path, mode, Stat(name, st.st_size, st_mod.S_ISDIR(st.st_mode)),
                           self.readonly)
            else:
                check_open(path, mode, None, self.readonly)
            fd = self._open_fd(dfd, name, path, _flags(mode))
        try:
            return _WorkspaceFile(fd, mode.mode, path)
        except BaseException:
            os.close(fd)
            raise

    def _file_stat(self, dfd: int, name: str, path: str) -> os.stat_result | None:
        """What ``path``, about to be opened or written as a file, names now (None:
        nothing); the root is a directory, and a special file or link is refused."""
        if not paths.basename(path):
            raise IsADirectory(path)
        st = self._lstat(dfd, name, path)
        if st is not None:
            _refuse_special(st, path)
        return st

    def _write_bytes(self, path: str, data: bytes) -> None:
        self._check_writable(path)
        with self._parent(path) as (dfd, name):
            st = self._file_stat(dfd, name, path)
            if st is not None and st_mod.S_ISDIR(st.st_mode):
                raise IsADirectory(path)
            tmp, fd = self._make_temp(dfd, path)
            try:
                try:
                    if st is not None:
                        os.fchmod(fd, st_mod.S_IMODE(st.st_mode))
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException as e:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
                if isinstance(e, OSError) and not isinstance(e, FsError):
                    raise _translate(e, path) from None
                raise

    @staticmethod
    def _make_temp(dir_fd: int, path: str) -> tuple[str, int]:
        """A new temporary file next to ``path``: ``(name, write descriptor)``."""
        for _ in range(16):
            tmp = _TEMP_PREFIX + secrets.token_hex(8)
            try:
                return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FILE,
                                    0o666, dir_fd=dir_fd)
            except FileExistsError:
                continue
            except OSError as e:
                raise _translate(e, path) from None
        raise AlreadyExists(path, "no free temporary name")

    def _mkdir(self, path: str) -> None:
        self._check_writable(path)
        with self._parent(path) as (dfd, name):
            try:
                os.mkdir(name, 0o777, dir_fd=dfd)
            except OSError as e:
                raise _translate(e, path) from None

    def _remove(self, path: str) -> None:
        self._check_writable(path)
        with self._parent(path) as (dfd, name):
            st = self._lstat(dfd, name, path)
            if st is None:
                raise NotFound(path)
            if st_mod.S_ISDIR(st.st_mode):
                raise IsADirectory(path)
            try:
                os.unlink(name, dir_fd=dfd)
            except OSError as e:
                raise _translate(e, path) from None

    def _rmdir(self, path: str) -> None:
        self._check_writable(path)
        if path == "/":
            raise PermissionDenied(path, "cannot remove the root")
        with self._parent(path) as (dfd, name):
            try:
                os.rmdir(name, dir_fd=dfd)
            except OSError as e:
                if e.errno == errno.EEXIST:
                    raise NotEmpty(path) from None
                raise _translate(e, path) from None

    def _rename(self, src: str, dst: str) -> None:
        self._check_writable(src)
        if src == "/" or dst == "/":
            raise PermissionDenied(src, "cannot rename the root", dst)
        with self._parent(src) as (sfd, sname), self._parent(dst) as (dfd, dname):
            st = self._lstat(sfd, sname, src)
            if st is None:
                raise NotFound(src, None, dst)
            if src == dst:
                return
            if st_mod.S_ISDIR(st.st_mode) and paths.is_within(dst, src):
                raise InvalidPath(src, "cannot move a directory into itself", dst)
            try:
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
            except OSError as e:
                if e.errno in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
                    cls = NotEmpty if e.errno == errno.EEXIST else _ERRNO[e.errno]
                    raise cls(dst) from None
                raise _translate(e, src, dst) from None


    # -- snapshots (oanix.snapshot) ---------------------------------------------------------

    snapshot_kind: ClassVar[str] = "workspacefs"

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        """``{"root": host path, "readonly", "sha256": content_hash of the tree}``, and
        with ``inline_workspace`` its files too (``"entries"``, see oanix.snapshot.tree).
        The directory is not locked: nothing else should write to it meanwhile."""
        state: dict[str, Any] = {"root": self._host_path, "readonly": self.readonly,
                                 "sha256": content_hash(self)}
        if w.inline_workspace:
            state["entries"] = encode_entries(list(service_entries(self)), w)
        return state

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> FileService:
        """The recorded directory, if its content hash is the recorded one.

        ``r.options``: ``workspaces`` maps a recorded root to the directory to use
        instead; ``workspace_roots`` (if given) lists the only directories a root may lie
        in; ``accept_changed`` mounts a directory whose content changed. A changed (or
        missing) directory whose files the snapshot holds comes back as a MemFs of them,
        and the host is not touched.

        Raises:
            WorkspaceRefused: the directory lies outside ``workspace_roots``.
            WorkspaceChanged: its content changed (or it is gone) and no copy is inlined.
            CorruptSnapshot: a bad field.
        """
        where = "workspacefs"
        root = r.field(state, "root", str, where)
        readonly = r.field(state, "readonly", bool, where)
        digest = r.field(state, "sha256", str, where)
        if not os.path.isabs(root) or "\0" in root:
            raise r.fail(where, f"root {root!r:.80} is not an absolute host path")
        host = os.fspath(dict(r.options.get("workspaces") or {}).get(root, root))
        allowed = r.options.get("workspace_roots")
        real = os.path.realpath(host)
        if allowed is not None and not any(
                os.path.commonpath([real, os.path.realpath(a)]) == os.path.realpath(a)
                for a in allowed):
            raise WorkspaceRefused(f"{r.name}: workspace {host!r} lies outside the allowed "
                                   f"roots {[os.fspath(a) for a in allowed]}")
        try:
            fs: WorkspaceFs | None = cls(host, readonly)
        except FsError:
            fs = None
        if fs is not None:
            r.cleanups.append(fs.close)
            if content_hash(fs) == digest:
                return fs
            if r.options.get("accept_changed"):
                return fs
        if "entries" in state:
            return MemFs.restore_state({"max_bytes": None, "max_files": None,
                                        "mtime": 0.0, "entries": state["entries"]}, r)
        what = "changed since the snapshot" if fs is not None else "missing"
        raise WorkspaceChanged(f"{r.name}: workspace {host!r} is {what} and the snapshot "
                               f"holds no copy of it (snapshot with inline_workspace=True, "
                               f"or restore with accept_changed=True)")


_ACCESS: Final = {(True, False): os.O_RDONLY, (False, True): os.O_WRONLY,
                  (True, True): os.O_RDWR}


def _flags(mode: OpenMode) -> int:
    """The ``os.open`` flags for ``mode`` (without the safety flags)."""
    flags = _ACCESS[mode.read, mode.write]
    if mode.create:
        flags |= os.O_CREAT
    if mode.exclusive:
        flags |= os.O_EXCL
    if mode.truncate:
        flags |= os.O_TRUNC
    if mode.append:
        flags |= os.O_APPEND
    return flags


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _io_errors(
    method: Callable[Concatenate[_WorkspaceFile, _P], _R],
) -> Callable[Concatenate[_WorkspaceFile, _P], _R]:
    """Make a file method raise typed oanix errors naming the file's namespace path."""

    @functools.wraps(method)
    def wrapper(self: _WorkspaceFile, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except FsError:
            raise
        except io.UnsupportedOperation as e:
            raise BadFileMode(self.name, str(e)) from None
        except OSError as e:
            if e.errno == errno.EINVAL:
                raise InvalidArgument(f"invalid argument for {self.name}") from None
            raise _translate(e, self.name) from None

    return wrapper


class _WorkspaceFile(io.FileIO):
    """An open host file: unbuffered ``FileIO`` named by its namespace path, raising
    typed oanix errors. Used by one thread at a time, like any Python file."""

    def __init__(self, fd: int, mode: str, name: str) -> None:
        super().__init__(fd, mode, closefd=True)
        self.name = name

    @_io_errors
    def read(self, size: int | None = -1, /) -> bytes:
        return super().read(size)

    @_io_errors
    def readall(self) -> bytes:
        return super().readall()

    @_io_errors
    def readinto(self, buffer: WriteableBuffer, /) -> int | None:
        return super().readinto(buffer)

    @_io_errors
    def write(self, b: ReadableBuffer, /) -> int:
        return super().write(b)

    @_io_errors
    def truncate(self, size: int | None = None, /) -> int:
        return super().truncate(size)

    @_io_errors
    def seek(self, pos: int, whence: int = io.SEEK_SET, /) -> int:
        return super().seek(pos, whence)
