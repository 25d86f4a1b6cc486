"""File objects over in-memory buffers, shared by the services that hold bytes.

``BufferFile`` is a full io object (``io.RawIOBase``) over a ``bytearray``. The buffer may
be shared with a service (MemFs hands out its node's own buffer, so a write is seen by
every other open file at once, as on POSIX) or private (FuncFs collects a write and hands
the bytes to a callable on close).

A service whose tree is fixed (only the service makes its files: FuncFs, ProcFs, HttpFs,
WsFs, NostrFs) opens its files through the helpers at the end: ``find_fixed`` (a missing
file is refused as the service says, a directory as POSIX), ``check_write_only`` (a
request file) and ``read_only_file`` (a computed snapshot), and lists its numbered
entries in ``id_order``.

Thread safety: a file object, like a Python file, is used by one thread at a time; when the
buffer is shared the service passes its lock and every access to the buffer holds it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, TypeVar

from . import paths
from .errors import (
    BadFileMode,
    FsError,
    InvalidArgument,
    IsADirectory,
    NoSpace,
    NotFound,
    PermissionDenied,
)
from .service import FileService, OpenMode, Stat, check_open

__all__ = ["BufferFile", "CappedFile", "ModeFile", "check_capped", "check_write_only",
           "find_fixed", "id_order", "read_only_file", "refuse_dir"]

T = TypeVar("T")

_NOLOCK = contextlib.nullcontext()


class ModeFile(io.RawIOBase):
    """The base of oanix's file objects: a ``name`` (the path it was opened as) and a
    parsed ``OpenMode``, the io capability queries, the checks every read and write
    makes (a closed file raises ``ValueError``, as io does; a wrong mode ``BadFileMode``),
    and the position: ``tell``, and ``_seek_target``/``_seek_to`` for a ``seek``.
    """

    def __init__(self, mode: OpenMode, name: str) -> None:
        super().__init__()
        self._mode = mode
        self.name = name
        self._pos = 0

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def _seek_target(self, offset: int, whence: int, end: Callable[[], int]) -> int:
        """Where ``seek(offset, whence)`` points (``end()`` is the file's end), unchecked."""
        self._check_open()
        if whence == io.SEEK_SET:
            return offset
        if whence == io.SEEK_CUR:
            return self._pos + offset
        if whence == io.SEEK_END:
            return end() + offset
        raise InvalidArgument(f"invalid whence {whence} for seek in {self.name}")

    def _seek_to(self, pos: int) -> int:
        """Move to ``pos``; a negative one is refused."""
        if pos < 0:
            raise InvalidArgument(f"negative seek position {pos} in {self.name}")
        self._pos = pos
        return pos

    @property
    def mode(self) -> str:
        return self._mode.mode + "b"

    def readable(self) -> bool:
        self._check_open()
        return self._mode.read

    def writable(self) -> bool:
        self._check_open()
        return self._mode.write

    def seekable(self) -> bool:
        self._check_open()
        return True

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on closed file {self.name}")

    def _check(self, allowed: bool, what: str) -> None:
        self._check_open()
        if not allowed:
            raise BadFileMode(self.name, f"file not open for {what}")

    def _check_readable(self) -> None:
        self._check(self._mode.read, "reading")

    def _check_writable(self) -> None:
        self._check(self._mode.write, "writing")


class BufferFile(ModeFile):
    """A file over ``buf`` opened with ``mode``; ``name`` is the path it was opened as.

    ``on_close(data)`` is called once with the final bytes when a writable file closes.
    Subclasses hook ``_before_resize`` (to enforce a quota) and ``_changed`` (mtime).
    """

    def __init__(self, buf: bytearray | bytes, mode: OpenMode, name: str, *,
                 lock: Any = None, on_close: Callable[[bytes], None] | None = None) -> None:
        super().__init__(mode, name)
        self._buf = buf
        self._lock = lock if lock is not None else _NOLOCK
        self._on_close = on_close
        if mode.truncate and len(buf):
            self._resize(0)
        if mode.append:
            self._pos = len(buf)

    # -- reading --------------------------------------------------------------------------

    def read(self, size: int | None = -1) -> bytes:
        self._check_readable()
        with self._lock:
            buf, pos = self._buf, self._pos
            end = len(buf) if size is None or size < 0 else min(len(buf), pos + size)
            if pos >= end:
                return b""
            data = bytes(buf[pos:end])
            self._pos = end
            return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, b: Any) -> int:
        self._check_readable()
        view = memoryview(b).cast("B")
        with self._lock:
            pos = self._pos
            n = max(0, min(len(view), len(self._buf) - pos))
            view[:n] = self._buf[pos:pos + n]
            self._pos = pos + n
            return n

    def readline(self, size: int | None = -1) -> bytes:
        self._check_readable()
        with self._lock:
            buf, pos = self._buf, self._pos
            end = len(buf)
            nl = buf.find(b"\n", pos)
            if nl >= 0:
                end = nl + 1
            if size is not None and size >= 0:
                end = min(end, pos + size)
            if pos >= end:
                return b""
            self._pos = end
            return bytes(buf[pos:end])

    # -- writing --------------------------------------------------------------------------

    def write(self, b: Any) -> int:
        self._check_writable()
        data = memoryview(b).cast("B")
        n = len(data)
        if n == 0:
            return 0
        with self._lock:
            buf = self._buf
            assert isinstance(buf, bytearray)
            if self._mode.append:
                self._pos = len(buf)
            pos = self._pos
            end = pos + n
            if end > len(buf):
                self._before_resize(len(buf), end)
                if pos > len(buf):
                    buf.extend(bytes(pos - len(buf)))
            buf[pos:end] = data
            self._pos = end
            self._changed()
        return n

    def writelines(self, lines: Iterable[Any]) -> None:
        for line in lines:
            self.write(line)

    def truncate(self, size: int | None = None) -> int:
        self._check_writable()
        with self._lock:
            if size is None:
                size = self._pos
            if size < 0:
                raise InvalidArgument(f"negative size {size} for truncate of {self.name}")
            self._resize(size)
        return size

    def _resize(self, size: int) -> None:
        buf = self._buf
        assert isinstance(buf, bytearray)
        if size > len(buf):
            self._before_resize(len(buf), size)
            buf.extend(bytes(size - len(buf)))
        else:
            del buf[size:]
        self._changed()

    def _before_resize(self, old: int, new: int) -> None:
        """Hook: called (under the lock) before the buffer grows from ``old`` to ``new``."""

    def _changed(self) -> None:
        """Hook: called (under the lock) after the content changed."""

    # -- position ---------------------------------------------------------------------------

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._seek_to(self._seek_target(offset, whence, self._size))

    def _size(self) -> int:
        with self._lock:
            return len(self._buf)

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._on_close is not None and self._mode.write:
                with self._lock:
                    data = bytes(self._buf)
                self._on_close(data)
        finally:
            super().close()

    def getvalue(self) -> bytes:
        """The current content of the whole buffer."""
        with self._lock:
            return bytes(self._buf)


def check_capped(path: str, size: int, limit: int, what: str) -> None:
    """Refuse a whole request of ``size`` bytes written at once (``write_bytes``) past
    ``limit``, as ``CappedFile`` refuses one that grows past it.

    Raises:
        NoSpace: naming ``path`` and ``what`` ("a query file"); nothing of it is taken.
    """
    if size > limit:
        raise NoSpace(path, f"{what} capped at {limit} bytes: {size} bytes refused; "
                            "nothing of it taken")


class CappedFile(BufferFile):
    """A private buffer (a copy of ``initial``) whose bytes ``on_close`` takes (a request,
    a message), held to ``limit`` bytes as it grows: the write or truncate that would pass
    it raises ``NoSpace`` naming the file and ``what`` and keeps nothing of it, and the
    file then hands nothing over on close (what it holds is incomplete)."""

    def __init__(self, limit: int, mode: OpenMode, name: str, what: str, *,
                 on_close: Callable[[bytes], None] | None, initial: bytes = b"") -> None:
        self._limit = limit
        self._what = what
        super().__init__(bytearray(initial), mode, name, on_close=on_close)

    def _before_resize(self, old: int, new: int) -> None:
        if new > self._limit:
            self._on_close = None
            raise NoSpace(self.name, f"{self._what} capped at {self._limit} bytes: a write "
                                     f"taking it to {new} bytes refused; nothing of this "
                                     "file will be taken")

    @property
    def held(self) -> int:
        """The bytes held so far."""
        return len(self._buf)


# -- opening the files of a fixed tree ----------------------------------------------------


def find_fixed(service: FileService, path: str, mode: OpenMode, find: Callable[[str], T],
               refusal: Callable[[str], FsError]) -> T:
    """``find(path)``, for opening ``path`` with ``mode`` in a service whose tree is fixed.

    Raises:
        FsError: ``refusal(path)`` for a file a create mode would make in an existing
            directory (only the service makes files here).
        NotFound, NotADirectory: as ``find`` raises them otherwise.
        IsADirectory, AlreadyExists: ``find`` raised IsADirectory (see ``refuse_dir``).
    """
    try:
        return find(path)
    except NotFound:
        if mode.create and service.is_dir(paths.dirname(path)):
            raise refusal(path) from None
        raise
    except IsADirectory:
        refuse_dir(path, mode)


def refuse_dir(path: str, mode: OpenMode) -> NoReturn:
    """Refuse to open directory ``path`` of a fixed tree as POSIX would.

    Raises:
        AlreadyExists: an exclusive create (``x``).
        IsADirectory: any other mode.
    """
    check_open(path, mode, Stat(paths.basename(path), 0, True, readonly=True))
    raise IsADirectory(path)


def check_write_only(path: str, mode: OpenMode, why: str) -> None:
    """The checks before opening write-only file ``path`` (a request: the service takes
    what is written on close).

    Raises:
        AlreadyExists: an exclusive create (``x``).
        PermissionDenied: a mode that reads (``why`` says what to read instead).
    """
    check_open(path, mode, Stat(paths.basename(path), 0, False))
    if mode.read:
        raise PermissionDenied(path, why)


def read_only_file(path: str, mode: OpenMode, content: bytes) -> BufferFile:
    """``path`` opened with ``mode`` over ``content``, a snapshot the service made.

    Raises:
        ReadOnly: a mode that writes; AlreadyExists: ``x``.
    """
    check_open(path, mode, Stat(paths.basename(path), len(content), False, readonly=True))
    return BufferFile(content, mode, path)


def id_order(name: str) -> tuple[int, str]:
    """The sort key of the numbered entries a fixed tree lists (requests, connections):
    by number, so ``2`` comes before ``10``; other names first, by name."""
    return (int(name), name) if name.isdigit() else (0, name)
