"""FuncFs: files whose content is computed by callables (control and status files)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import ClassVar, Self, TypeVar

import attrs

from .. import paths
from ..errors import FsError, InvalidArgument, IsADirectory, PermissionDenied, Unsupported
from ..files import BufferFile, find_fixed
from ..service import FileService, OpenMode, Stat, check_open
from .map import PathTree, checked_path

__all__ = ["FuncFs", "ReadFunc", "WriteFunc"]

ReadFunc = Callable[[], bytes | str]
"""Computes a file's whole content; a str is encoded as UTF-8."""

WriteFunc = Callable[[bytes], object]
"""Receives a file's whole written content when it is closed; the result is ignored."""

F = TypeVar("F", ReadFunc, WriteFunc)


@attrs.frozen
class _Func:
    read: ReadFunc | None
    write: WriteFunc | None
    mtime: float


def _need(path: str, what: str, fn: F) -> F:
    if not callable(fn):
        raise InvalidArgument(f"{what} callable for {path!r} is not callable: {fn!r}")
    return fn


class FuncFs(FileService):
    """Files computed by callables, in directories implied by their paths.

    Register files with ``read_only``, ``write_only`` and ``read_write`` (each returns the
    FuncFs, for chaining; registering a path again replaces its callables)::

        fs = FuncFs().read_only("/status", lambda: "ok\\n").write_only("/ctl", handle)

    Reading: each open calls the read callable once and the file object reads that
    snapshot; ``stat`` calls it too, to report the size (0 for a write-only file).
    Writing: the written bytes are collected and the write callable gets the whole content
    exactly once, when the file is closed (also when nothing was written: opening in a
    write mode is a write). ``w`` starts empty; ``a`` and ``r+`` on a read-write file start
    from the read callable's content. Write modes on a read-only file raise ``ReadOnly``;
    read modes (``r``, ``+``) on a write-only file raise ``PermissionDenied``.

    A callable may raise an ``FsError``, which propagates as it is; any other exception is
    wrapped in a plain ``FsError`` (EIO) naming the path, raised from the original, at
    open, stat or read (read callable) or at close (write callable).

    The structure is fixed: creating a file, ``mkdir``, ``remove``, ``rmdir`` and
    ``rename`` raise ``Unsupported``. Directories report ``readonly=True``.

    ``is_computed`` marks services whose files are snapshots computed per open (the WASI
    bridge reads such a file once instead of trusting its stat size).

    Locking: one lock guards the tree; registration and lookups hold it briefly. Callables
    run outside the lock, so they may be slow or use this FuncFs, and several threads may
    run them at once: a callable shared by threads must be thread-safe itself.
    """

    is_computed: ClassVar[bool] = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tree: PathTree[_Func] = PathTree()
        self._created = time.time()

    # -- registration ---------------------------------------------------------------------

    def read_only(self, path: str, read: ReadFunc) -> Self:
        """Add a file whose content is ``read()``. Raises InvalidArgument (see ``_add``)."""
        return self._add(path, _need(path, "read", read), None)

    def write_only(self, path: str, write: WriteFunc) -> Self:
        """Add a file whose written content is passed to ``write(data)`` on close."""
        return self._add(path, None, _need(path, "write", write))

    def read_write(self, path: str, read: ReadFunc, write: WriteFunc) -> Self:
        """Add a file read through ``read()`` and written through ``write(data)``."""
        return self._add(path, _need(path, "read", read), _need(path, "write", write))

    def _add(self, path: str, read: ReadFunc | None, write: WriteFunc | None) -> Self:
        """Raises InvalidArgument: ``path`` is the root or a directory, or one of its
        ancestors is a file (a callable that is not callable is refused by ``_need``)."""
        p = checked_path(path)
        with self._lock:
            self._tree.add_leaf(p, _Func(read, write, time.time()), replace=True)
        return self

    # -- helpers --------------------------------------------------------------------------

    def _file(self, path: str) -> _Func:
        with self._lock:
            node = self._tree.lookup(path)
        if not isinstance(node, _Func):
            raise IsADirectory(path)
        return node

    @staticmethod
    def _compute(path: str, func: _Func) -> bytes:
        assert func.read is not None
        try:
            data: object = func.read()
        except FsError:
            raise
        except Exception as exc:
            raise FsError(path, f"read callable failed: {exc}") from exc
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode("utf-8")
        if isinstance(data, bytearray | memoryview):
            return bytes(data)
        raise FsError(path, f"read callable returned {type(data).__name__}, not bytes or str")

    @staticmethod
    def _deliver(path: str, func: _Func, data: bytes) -> None:
        assert func.write is not None
        try:
            func.write(data)
        except FsError:
            raise
        except Exception as exc:
            raise FsError(path, f"write callable failed: {exc}") from exc

    def _stat_of(self, path: str, name: str, node: _Func | int) -> Stat:
        """The Stat of a file, or of a directory given as its number of entries."""
        if isinstance(node, int):
            return Stat(name, node, True, self._created, readonly=True)
        size = len(self._compute(path, node)) if node.read is not None else 0
        return Stat(name, size, False, node.mtime, readonly=node.write is None)

    def _entry(self, path: str, node: object) -> _Func | int:
        """What ``_stat_of`` needs about ``node``; call with the lock held."""
        return node if isinstance(node, _Func) else len(self._tree.children(path))

    def _refused(self, path: str, op: str) -> FsError:
        return Unsupported(path, f"FuncFs structure is fixed: {op} is not supported")

    # -- primitives -----------------------------------------------------------------------

    def _stat(self, path: str) -> Stat:
        with self._lock:
            entry = self._entry(path, self._tree.lookup(path))
        return self._stat_of(path, paths.basename(path), entry)

    def _listdir(self, path: str) -> list[str]:
        with self._lock:
            return sorted(self._tree.children(path))

    def _scandir(self, path: str) -> list[Stat]:
        with self._lock:
            ch = self._tree.children(path)
            entries = [(paths.join(path, name), name) for name in sorted(ch)]
            entries_info = [(p, name, self._entry(p, ch[name])) for p, name in entries]
        return [self._stat_of(p, name, entry) for p, name, entry in entries_info]

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        func = find_fixed(self, path, mode, self._file, lambda p: Unsupported(
            p, "FuncFs structure is fixed: cannot create a file"))
        check_open(path, mode, Stat(paths.basename(path), 0, False,
                                    readonly=func.write is None))
        if mode.read and func.read is None:
            raise PermissionDenied(path, "write-only file: it cannot be read")
        if not mode.write:
            return BufferFile(self._compute(path, func), mode, path)
        start = b"" if mode.truncate or func.read is None else self._compute(path, func)
        return BufferFile(
            bytearray(start), mode, path,
            on_close=lambda data: self._deliver(path, func, data))

    def _read_bytes(self, path: str) -> bytes:
        func = self._file(path)
        if func.read is None:
            raise PermissionDenied(path, "write-only file: it cannot be read")
        return self._compute(path, func)
