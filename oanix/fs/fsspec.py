"""FsspecFs: any fsspec filesystem (memory, local, zip, s3, ...) mounted as a file service.

fsspec backends differ from POSIX: many have no real directories (``mkdir`` may do
nothing, an empty directory may vanish, a file may be written below a missing
directory), ``rmdir`` may not check emptiness, and few support ``r+`` or ``a+``. FsspecFs
enforces the oanix contract on top, where it is cheap: it checks a parent exists before
creating, checks emptiness before ``rmdir``, checks existence for ``mkdir`` and ``x``
opens, and gives POSIX rename results. These checks are not atomic against other users
of the same backend, only against other calls through the same FsspecFs.
"""

from __future__ import annotations

import errno as _errno
import functools
import io
import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeVar

from fsspec import AbstractFileSystem  # type: ignore[import-untyped]
from fsspec.archive import AbstractArchiveFileSystem  # type: ignore[import-untyped]
from fsspec.implementations.local import LocalFileSystem  # type: ignore[import-untyped]

from .. import paths
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
    OanixError,
    PermissionDenied,
    ReadOnly,
    Unsupported,
)
from ..files import BufferFile, ModeFile
from ..service import FileService, OpenMode, Stat, check_open

__all__ = ["FsspecFs"]

T = TypeVar("T")
Info = dict[str, Any]

_TYPED: Final[tuple[type[FsError], ...]] = (
    NotFound, AlreadyExists, NotADirectory, IsADirectory, NotEmpty, ReadOnly, PermissionDenied,
    CrossMount, InvalidPath, NoSpace, Unsupported, BadFileMode)
_BY_ERRNO: Final[dict[int, type[FsError]]] = {cls.errno_code: cls for cls in _TYPED}
_BY_ERRNO.update({_errno.EPERM: PermissionDenied, _errno.ENOTSUP: Unsupported,
                  _errno.ENAMETOOLONG: InvalidPath})
# Builtin errors raised without an errno (``FileNotFoundError(path)``), most specific first.
_BY_TYPE: Final[tuple[tuple[type[OSError], type[FsError]], ...]] = (
    (FileNotFoundError, NotFound),
    (FileExistsError, AlreadyExists),
    (IsADirectoryError, IsADirectory),
    (NotADirectoryError, NotADirectory),
    (PermissionError, PermissionDenied),
    (io.UnsupportedOperation, Unsupported),
)
_MTIME_KEYS: Final = ("mtime", "modified", "LastModified", "last_modified", "updated",
                      "created", "date_time")
_WRITE: Final = OpenMode.parse("wb")


class FsspecFs(FileService):
    """An fsspec filesystem ``fs`` (an instance), seen from ``root`` down.

    The service path ``/a/b`` is ``root + "/a/b"`` in ``fs`` (``root`` in the backend's
    own form: ``"/x"`` for memory, an absolute host directory for a local filesystem,
    ``"dir"`` inside a zip; ``""`` is the backend's root). ``root`` must be an existing
    directory, or is created when ``create_root`` is true.

    A local filesystem needs an absolute ``root``. Paths are normalised, so none escapes
    ``root`` by name, but the host follows symlinks: a link inside ``root`` leads out of
    it. Use WorkspaceFs for host directories; FsspecFs over a local filesystem is for
    trusted trees.

    ``readonly`` refuses every write with ReadOnly; by default it is true for archive
    filesystems (zip, tar) opened for reading. An operation the backend does not
    implement raises Unsupported (ReadOnly on a read-only mount).

    Files open in ``r``, ``w`` and ``x`` stream through the backend's file objects. The
    modes ``a``, ``r+``, ``w+``, ``a+`` and ``x+``, which most backends lack, read the
    whole file into memory and write it back on close (the last close wins); a new file
    is created, and ``w`` modes truncate, at open. A directory's size is its number of
    entries, so a stat or listing lists each directory it reports. Backend errors become
    the typed oanix errors naming the service path (never the backend's path).

    Locking: fsspec filesystems are generally not thread-safe, so one re-entrant lock per
    FsspecFs serialises every call into ``fs``, including reads and writes on open
    files; each primitive holds it for its duration. Two FsspecFs over one backend do not
    share a lock: mount one FsspecFs per backend.
    """

    def __init__(self, fs: AbstractFileSystem, root: str = "", *,
                 readonly: bool | None = None, create_root: bool = False) -> None:
        if not isinstance(fs, AbstractFileSystem):
            raise InvalidArgument(f"FsspecFs needs an fsspec filesystem instance, not {fs!r}")
        root = os.fspath(root)
        if isinstance(fs, LocalFileSystem) and not os.path.isabs(root):
            raise InvalidArgument(
                f"FsspecFs over a local filesystem needs an absolute root, not {root!r}")
        self._fs = fs
        self._lock = threading.RLock()
        if readonly is None:
            readonly = (isinstance(fs, AbstractArchiveFileSystem)
                        and getattr(fs, "mode", "r") == "r")
        self.readonly = bool(readonly)
        self._root: str = fs._strip_protocol(root).rstrip("/") if root else ""
        if self._root:
            self._check_root(root, create_root)

    def _check_root(self, root: str, create: bool) -> None:
        info = self._info_or_none("/")
        if info is None:
            if not create:
                raise NotFound("/", f"root {root!r} does not exist in {self._backend}")
            if self.readonly:
                raise ReadOnly("/", f"cannot create root {root!r}: read-only")
            self._call("/", self._fs.makedirs, self._root, exist_ok=True)
        elif info.get("type") != "directory":
            raise NotADirectory("/", f"root {root!r} is not a directory")

    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec filesystem underneath."""
        return self._fs

    @property
    def root(self) -> str:
        """The backend path of this service's ``/``."""
        return self._root or self._fs.root_marker or "/"

    @property
    def _backend(self) -> str:
        return type(self._fs).__name__

    def __repr__(self) -> str:
        return f"<FsspecFs {self._backend} root={self.root!r}>"

    # -- calling the backend ----------------------------------------------------------------

    def _fp(self, path: str) -> str:
        """The backend path of normalised service ``path``, in the backend's canonical form
        (some backends, such as archives, take no other)."""
        fp: str = self._fs._strip_protocol(self._root + path if path != "/" else self._root or "/")
        return fp

    def _call(self, path: str, fn: Callable[..., T], *args: Any, path2: str | None = None,
              **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with its errors translated to name ``path``."""
        try:
            return fn(*args, **kwargs)
        except FsError as e:  # an oanix backend (OanixFileSystem): its paths are not ours
            if path2 is not None and e.filename2 is None and e.filename == self._fp(path2):
                raise e.with_paths(path2) from e
            raise e.with_paths(path, path2 if e.filename2 is not None else None) from e
        except OanixError:
            raise
        except Exception as e:
            raise self._translate(e, path, path2) from e

    def _translate(self, e: Exception, path: str, path2: str | None) -> FsError:
        if isinstance(e, NotImplementedError):
            if self.readonly:
                return ReadOnly(path, None, path2)
            return Unsupported(path, f"{self._backend} does not support this operation", path2)
        if isinstance(e, OSError):
            cls = _BY_ERRNO.get(e.errno) if isinstance(e.errno, int) else None
            if cls is None:
                cls = next((c for t, c in _BY_TYPE if isinstance(e, t)), None)
            if cls is not None:
                return cls(path, e.strerror or None, path2)
            if e.strerror:
                return FsError(path, e.strerror, path2)
        # The backend's message may name backend paths (host paths): keep it in __cause__.
        return FsError(path, f"{self._backend} failed: {type(e).__name__}", path2)

    def _info(self, path: str) -> Info:
        try:
            info: Info = self._call(path, self._fs.info, self._fp(path))
        except NotFound:
            if path == "/" and not self._root:  # an empty archive or bucket: still a root
                return {"name": self._fp("/"), "size": 0, "type": "directory"}
            raise
        return info

    def _info_or_none(self, path: str) -> Info | None:
        try:
            return self._info(path)
        except NotFound:
            return None

    def _dir_info(self, path: str) -> Info:
        info = self._info(path)
        if info.get("type") != "directory":
            raise NotADirectory(path)
        return info

    def _check_parent(self, path: str) -> None:
        """Before creating ``path``: its parent must be a directory (the backend may not
        care)."""
        try:
            self._dir_info(paths.dirname(path))
        except (NotFound, NotADirectory) as e:
            raise e.with_paths(path) from None

    def _entries(self, path: str) -> list[tuple[str, Info]]:
        """``(name, info)`` for the entries of directory ``path``, sorted by name."""
        fp = self._fp(path)
        me = fp.rstrip("/")
        listing: list[Info] = self._call(path, self._fs.ls, fp, detail=True)
        found: dict[str, Info] = {}
        for info in listing:
            full = str(info.get("name", "")).rstrip("/")
            name = full.rsplit("/", 1)[-1]
            if full != me and name not in ("", ".", ".."):
                found.setdefault(name, info)
        return sorted(found.items())

    def _stat_of(self, path: str, info: Info, count: bool = True) -> Stat:
        is_dir = info.get("type") == "directory"
        size = int(info.get("size") or 0)
        if is_dir:
            size = len(self._entries(path)) if count else 0
        return Stat(paths.basename(path), size, is_dir, _mtime(info), self.readonly)

    def _check_regular(self, path: str, info: Info) -> None:
        if info.get("type") not in ("file", "directory"):
            raise PermissionDenied(path, "not a regular file")

    def _existing_for_write(self, path: str, mode: OpenMode) -> Info | None:
        """The checks before writing ``path``: its info, None if it is to be created."""
        info = self._info_or_none(path)
        st = None if info is None else self._stat_of(path, info, count=False)
        check_open(path, mode, st, self.readonly)
        if info is None:
            self._check_parent(path)
        else:
            self._check_regular(path, info)
        return info

    # -- primitives ---------------------------------------------------------------------------

    def _stat(self, path: str) -> Stat:
        with self._lock:
            return self._stat_of(path, self._info(path))

    def _listdir(self, path: str) -> list[str]:
        with self._lock:
            self._dir_info(path)
            return [name for name, _ in self._entries(path)]

    def _scandir(self, path: str) -> list[Stat]:
        with self._lock:
            self._dir_info(path)
            out = []
            for name, info in self._entries(path):
                child = paths.join(path, name)
                if info.get("type") not in ("file", "directory"):
                    # A listing may not follow links (LocalFileSystem); info does.
                    info = self._info_or_none(child) or info
                out.append(self._stat_of(child, info))
            return out

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        with self._lock:
            fp = self._fp(path)
            if not mode.write:
                info = self._info_or_none(path)
                check_open(path, mode, None if info is None
                           else self._stat_of(path, info, count=False), self.readonly)
                assert info is not None
                self._check_regular(path, info)
                inner = self._call(path, self._fs.open, fp, "rb")
                return _FsspecFile(self, inner, mode, path)
            info = self._existing_for_write(path, mode)
            if not mode.read and (mode.truncate or mode.exclusive):
                inner = self._call(path, self._fs.open, fp, "wb")
                return _FsspecFile(self, inner, mode, path)
            if info is None or mode.truncate:
                data = b""
                self._call(path, self._fs.pipe_file, fp, data)
            else:
                data = self._call(path, self._fs.cat_file, fp)
            return BufferFile(bytearray(data), mode, path,
                              on_close=functools.partial(self._put, path))

    def _put(self, path: str, data: bytes) -> None:
        """Write back a file buffered in memory (on close)."""
        with self._lock:
            self._call(path, self._fs.pipe_file, self._fp(path), data)

    def _read_bytes(self, path: str) -> bytes:
        with self._lock:
            info = self._info(path)
            if info.get("type") == "directory":
                raise IsADirectory(path)
            self._check_regular(path, info)
            data: bytes = self._call(path, self._fs.cat_file, self._fp(path))
            return bytes(data)

    def _write_bytes(self, path: str, data: bytes) -> None:
        with self._lock:
            self._existing_for_write(path, _WRITE)
            self._call(path, self._fs.pipe_file, self._fp(path), data)

    def _mkdir(self, path: str) -> None:
        if self.readonly:
            raise ReadOnly(path)
        with self._lock:
            if path == "/" or self._info_or_none(path) is not None:
                raise AlreadyExists(path)
            self._check_parent(path)
            self._call(path, self._fs.mkdir, self._fp(path), create_parents=False)

    def _remove(self, path: str) -> None:
        if self.readonly:
            raise ReadOnly(path)
        with self._lock:
            if self._info(path).get("type") == "directory":
                raise IsADirectory(path)
            self._call(path, self._fs.rm_file, self._fp(path))

    def _rmdir(self, path: str) -> None:
        if self.readonly:
            raise ReadOnly(path)
        if path == "/":
            raise PermissionDenied(path, "cannot remove the root")
        with self._lock:
            self._dir_info(path)
            if self._entries(path):
                raise NotEmpty(path)
            self._call(path, self._fs.rmdir, self._fp(path))

    def _rename(self, src: str, dst: str) -> None:
        if self.readonly:
            raise ReadOnly(src, None, dst)
        if src == "/" or dst == "/":
            raise PermissionDenied(src, "cannot rename the root", dst)
        with self._lock:
            try:
                src_dir = self._info(src).get("type") == "directory"
            except NotFound:
                raise NotFound(src, None, dst) from None
            self._check_parent(dst)
            if src == dst:
                return
            if src_dir and paths.is_within(dst, src):
                raise InvalidPath(src, "cannot move a directory into itself", dst)
            target = self._info_or_none(dst)
            if target is not None:
                dst_dir = target.get("type") == "directory"
                if dst_dir and not src_dir:
                    raise IsADirectory(dst)
                if src_dir and not dst_dir:
                    raise NotADirectory(dst)
                if dst_dir:
                    # fsspec's mv moves *into* an existing directory: remove the empty one.
                    if self._entries(dst):
                        raise NotEmpty(dst)
                    self._call(dst, self._fs.rmdir, self._fp(dst))
            self._call(src, self._fs.mv, self._fp(src), self._fp(dst), recursive=src_dir,
                       path2=dst)


class _FsspecFile(ModeFile):
    """An FsspecFs file open in ``r``, ``w`` or ``x`` over the backend's file object.

    It keeps its own position and moves the backend file there before each read or
    write, since a backend may hand one shared object to every opener of a path
    (MemoryFileSystem does). A file open for writing only moves forward: seeking
    elsewhere raises Unsupported (open with ``r+`` or ``w+`` to seek while writing).

    Locking: used by one thread at a time, like any file; every call on the backend's
    file object holds the FsspecFs lock.
    """

    def __init__(self, owner: FsspecFs, inner: Any, mode: OpenMode, name: str) -> None:
        super().__init__(mode, name)
        self._owner = owner
        self._inner = inner

    def seekable(self) -> bool:
        self._check_open()
        return self._mode.read

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._owner._call(self.name, fn, *args)

    # -- reading --------------------------------------------------------------------------

    def read(self, size: int | None = -1) -> bytes:
        self._check(self._mode.read, "reading")
        n = -1 if size is None or size < 0 else size
        with self._owner._lock:
            self._call(self._inner.seek, self._pos)
            data = bytes(self._call(self._inner.read, n))
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self.read(len(view))
        view[:len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        out = bytearray()
        while limit < 0 or len(out) < limit:
            chunk = self.read(8192 if limit < 0 else min(8192, limit - len(out)))
            if not chunk:
                break
            nl = chunk.find(b"\n")
            if nl >= 0:
                self._pos -= len(chunk) - nl - 1
                out += chunk[:nl + 1]
                break
            out += chunk
        return bytes(out)

    # -- writing --------------------------------------------------------------------------

    def write(self, b: Any) -> int:
        self._check(self._mode.write, "writing")
        data = bytes(memoryview(b).cast("B"))
        with self._owner._lock:
            if self._call(self._inner.tell) != self._pos:
                self._call(self._inner.seek, self._pos)
            self._call(self._inner.write, data)
        self._pos += len(data)
        return len(data)

    def truncate(self, size: int | None = None) -> int:
        self._check(self._mode.write, "writing")
        raise Unsupported(self.name, "truncate needs a file opened with r+, w+ or a")

    def flush(self) -> None:
        self._check_open()
        if self._mode.write:
            with self._owner._lock:
                self._call(self._inner.flush)

    # -- position ---------------------------------------------------------------------------

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        pos = self._seek_target(offset, whence, self._end)
        if not self._mode.read and pos != self._pos:
            raise Unsupported(self.name, "seek in a file open for writing only")
        return self._seek_to(pos)

    def _end(self) -> int:
        if not self._mode.read:
            return self._pos  # a new file written from the start ends where it is
        with self._owner._lock:
            self._call(self._inner.seek, 0, io.SEEK_END)
            return int(self._call(self._inner.tell))

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()  # flushes
        finally:
            with self._owner._lock:
                self._call(self._inner.close)


def _mtime(info: Info) -> float:
    """Seconds since the epoch from whatever time an fsspec info carries (0 if none)."""
    for key in _MTIME_KEYS:
        value = info.get(key)
        try:
            if isinstance(value, datetime):
                return value.timestamp()
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):
                return datetime.fromisoformat(value).timestamp()
            if isinstance(value, tuple) and len(value) >= 6:  # zip's date_time
                return datetime(*value[:6]).timestamp()
        except (ValueError, TypeError, OverflowError):
            continue
    return 0.0
