"""OanixFileSystem: any oanix file service seen as an fsspec filesystem.

Registered under the ``oanix`` protocol through the ``fsspec.specs`` entry point, so
without importing this module::

    fs = fsspec.filesystem("oanix", namespace=ns)
    with fsspec.open("oanix:///tmp/a.txt", "wb", namespace=ns) as f:
        f.write(b"hello")

URLs: an oanix URL has no host. Everything after ``oanix://`` is the path, normalised as
a namespace path, so ``oanix:///a/b``, ``oanix://a/b`` and ``a/b`` all name ``/a/b``
(as ``memory://`` does). A bare URL without ``namespace=`` gets a new, empty
``Namespace`` and sees nothing: the namespace is live state, never found by name, and
instances are never cached (``cachable = False``), so two ``fsspec.filesystem`` calls
with different namespaces always see different namespaces.

Errors are the service's own typed errors, which subclass the builtin ``OSError`` types
fsspec code expects (``FileNotFoundError``, ``FileExistsError``, ...).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from glob import has_magic  # the test fsspec itself uses for globs
from typing import Any, BinaryIO

from fsspec import AbstractFileSystem  # type: ignore[import-untyped]
from fsspec.utils import stringify_path  # type: ignore[import-untyped]

from . import paths
from .errors import FsError, InvalidArgument, IsADirectory, NotFound, Unsupported
from .namespace import Namespace
from .service import FileService, Stat

__all__ = ["OanixFile", "OanixFileSystem"]

_PREFIXES = ("oanix://", "oanix::")


class OanixFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """An fsspec filesystem over an oanix FileService (usually a Namespace).

    ``info`` and ``ls(detail=True)`` entries have ``name`` (a full path), ``size`` (bytes;
    0 for a directory, as fsspec expects), ``type`` (``"file"`` or ``"directory"``),
    ``mtime`` (seconds since the epoch) and ``readonly``. ``created`` and ``modified``
    both return the mtime, as oanix keeps no creation time. ``mv`` of one path follows
    shell and ``LocalFileSystem`` semantics (into an existing directory) and uses the
    service's ``move``, so it works across mounts. Transactions are not supported.

    Instances are not picklable unless the service is.

    Locking: none of its own; it keeps no state besides the service, whose lock rules
    apply, and it never uses fsspec's listings cache.
    """

    protocol = "oanix"
    root_marker = "/"
    cachable = False

    def __init__(self, namespace: FileService | None = None, **storage_options: Any) -> None:
        if namespace is None:
            namespace = Namespace()
        elif not isinstance(namespace, FileService):
            raise InvalidArgument(f"namespace= must be an oanix FileService, not {namespace!r}")
        super().__init__(**storage_options)
        self.namespace: FileService = namespace

    def __repr__(self) -> str:
        return f"<OanixFileSystem over {self.namespace!r}>"

    # -- paths ------------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        """``oanix:///a/b`` (or ``oanix://a/b``, ``a/b``) -> ``/a/b``; lists element-wise."""
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = stringify_path(path)
        for prefix in _PREFIXES:
            if path.startswith(prefix):
                path = path[len(prefix):]
                break
        return paths.normalize(path)

    # -- metadata -------------------------------------------------------------------------

    @staticmethod
    def _entry(path: str, st: Stat) -> dict[str, Any]:
        return {
            "name": path,
            "size": 0 if st.is_dir else st.size,
            "type": "directory" if st.is_dir else "file",
            "mtime": st.mtime,
            "readonly": st.readonly,
        }

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """The entry of ``path``: name, size, type, mtime, readonly."""
        path = self._strip_protocol(path)
        return self._entry(path, self.namespace.stat(path))

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """The entries (``detail=True``) or full paths of directory ``path``; a file lists
        as itself, as in other fsspec filesystems."""
        path = self._strip_protocol(path)
        try:
            entries = [self._entry(paths.join(path, st.name), st)
                       for st in self.namespace.scandir(path)]
        except NotADirectoryError:
            st = self.namespace.stat(path)
            if st.is_dir:
                raise
            entries = [self._entry(path, st)]
        return entries if detail else [e["name"] for e in entries]

    def walk(self, path: str, maxdepth: int | None = None, topdown: bool = True,
             on_error: Any = "omit", **kwargs: Any) -> Iterator[tuple[str, Any, Any]]:
        """fsspec's ``walk`` (``find``, ``du``, ``expand_path``, recursive ``rm`` and
        ``copy`` use it) with an explicit stack instead of recursion, so a tree of any
        depth is walked; ``on_error`` applies at every level.

        Raises:
            ValueError: ``maxdepth`` below 1.
        """
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        detail = kwargs.pop("detail", False)
        # (path, depth left, its listing once made: yielded then, when bottom-up)
        stack: list[tuple[str, int | None, tuple[str, Any, Any] | None]] = [
            (self._strip_protocol(path), maxdepth, None)]
        while stack:
            top, depth, done = stack.pop()
            if done is not None:
                yield done
                continue
            try:
                listing = self.ls(top, detail=True, **kwargs)
            except OSError as e:
                if on_error == "raise":
                    raise
                if callable(on_error):
                    on_error(e)
                continue
            full_dirs: dict[str, str] = {}
            dirs: dict[str, Any] = {}
            files: dict[str, Any] = {}
            for info in listing:
                pathname = info["name"].rstrip("/")
                name = pathname.rsplit("/", 1)[-1]
                if info["type"] == "directory" and pathname != top:
                    full_dirs[name], dirs[name] = pathname, info
                else:
                    files["" if pathname == top else name] = info
            out: tuple[str, Any, Any] = (
                (top, dirs, files) if detail else (top, list(dirs), list(files)))
            if topdown:
                yield out
            else:
                stack.append((top, None, out))
            if depth is not None:
                depth -= 1
                if depth < 1:
                    continue
            stack.extend((full_dirs[d], depth, None) for d in reversed(list(out[1]))
                         if d in full_dirs)

    def created(self, path: str) -> datetime:
        """The mtime of ``path`` (oanix keeps no creation time), as an aware datetime."""
        return self.modified(path)

    def modified(self, path: str) -> datetime:
        """The mtime of ``path`` as an aware UTC datetime."""
        st = self.namespace.stat(self._strip_protocol(path))
        return datetime.fromtimestamp(st.mtime, tz=UTC)

    # -- content ----------------------------------------------------------------------------

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        """The bytes of ``path`` in ``[start, end)``; negative offsets count from the end."""
        path = self._strip_protocol(path)
        if not start and end is None:
            return self.namespace.read_bytes(path)
        with self.namespace.open(path, "rb") as f:
            size = f.seek(0, io.SEEK_END)
            lo = _offset(start, size, 0)
            hi = _offset(end, size, size)
            if hi <= lo:
                return b""
            f.seek(lo)
            return _read_n(f, hi - lo)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite",
                  **kwargs: Any) -> None:
        """Write ``value`` to ``path``; ``mode="create"`` refuses an existing file."""
        path = self._strip_protocol(path)
        if mode == "create":
            with self.namespace.open(path, "xb") as f:
                f.write(value)
        else:
            self.namespace.write_bytes(path, value)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              autocommit: bool = True, cache_options: dict[str, Any] | None = None,
              **kwargs: Any) -> OanixFile:
        path = self._strip_protocol(path)
        if not autocommit:
            raise Unsupported(path, "OanixFileSystem does not support transactions")
        return OanixFile(self, path, mode, self.namespace.open(path, mode))

    # -- directories and files ----------------------------------------------------------

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Create directory ``path`` (and its parents if ``create_parents``).

        Raises AlreadyExists when ``path`` exists, as LocalFileSystem does.
        """
        path = self._strip_protocol(path)
        if create_parents:
            self.namespace.makedirs(path)
        else:
            self.namespace.mkdir(path)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Create ``path`` and any missing parents."""
        self.namespace.makedirs(self._strip_protocol(path), exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        """Remove the empty directory ``path``."""
        self.namespace.rmdir(self._strip_protocol(path))

    def rm_file(self, path: str) -> None:
        """Remove file ``path``."""
        self.namespace.remove(self._strip_protocol(path))

    _rm = rm_file

    def rm(self, path: str | list[str], recursive: bool = False,
           maxdepth: int | None = None) -> None:
        """Remove files, and directories when ``recursive`` (globs allowed).

        Raises IsADirectory, before removing anything, when a directory matches without
        ``recursive``; NotFound when nothing matches.
        """
        try:
            found = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        except FileNotFoundError as e:
            if isinstance(e, FsError):
                raise
            raise NotFound(_first(path), "no such file or directory (nothing matched)") from None
        dirs = {p for p in found if self.namespace.is_dir(p)}
        if dirs and not recursive:
            raise IsADirectory(min(dirs), "is a directory: pass recursive=True")
        for p in reversed(found):
            if p in dirs:
                self.namespace.rmdir(p)
            else:
                self.namespace.remove(p)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy file ``path1`` to ``path2``; a directory creates ``path2`` (fsspec's
        recursive ``copy`` then copies the files one by one)."""
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.namespace.stat(src).is_dir:
            self.namespace.makedirs(dst, exist_ok=True)
        else:
            self.namespace.copy(src, dst)

    def mv(self, path1: str | list[str], path2: str, recursive: bool = False,
           maxdepth: int | None = None, **kwargs: Any) -> None:
        """Move ``path1`` to ``path2`` (into it when it is an existing directory).

        One literal path is moved with the service's ``move`` (a rename, or a copy and
        remove across mounts), directories included; lists and globs use fsspec's copy
        and remove.
        """
        if not isinstance(path1, str) or has_magic(path1):
            super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
            return
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        if src == dst:
            return
        if self.namespace.is_dir(dst):
            dst = paths.join(dst, paths.basename(src))
        self.namespace.move(src, dst)


class OanixFile(io.RawIOBase):
    """A file opened through OanixFileSystem: the service's file object with the extra
    attributes fsspec code uses (``fs``, ``path``, ``size``).

    Locking: like any file object, used by one thread at a time; the service file
    underneath follows its service's rules.
    """

    def __init__(self, fs: OanixFileSystem, path: str, mode: str, raw: BinaryIO) -> None:
        super().__init__()
        self.fs = fs
        self.path = self.name = path
        self._mode = mode
        self.raw = raw

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def size(self) -> int:
        """The current size of the file in bytes."""
        pos = self.raw.tell()
        try:
            return self.raw.seek(0, io.SEEK_END)
        finally:
            self.raw.seek(pos)

    def readable(self) -> bool:
        return self.raw.readable()

    def writable(self) -> bool:
        return self.raw.writable()

    def seekable(self) -> bool:
        return self.raw.seekable()

    def read(self, size: int | None = -1) -> bytes:
        return self.raw.read(-1 if size is None else size)

    def readall(self) -> bytes:
        return self.raw.read()

    def readinto(self, b: Any) -> int:
        return self.raw.readinto(b)  # type: ignore[attr-defined, no-any-return]

    def readline(self, size: int | None = -1) -> bytes:
        return self.raw.readline(-1 if size is None else size)

    def write(self, b: Any) -> int:
        return self.raw.write(b)

    def writelines(self, lines: Iterable[Any]) -> None:
        for line in lines:
            self.raw.write(line)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def truncate(self, size: int | None = None) -> int:
        return self.raw.truncate(size)

    def flush(self) -> None:
        if not self.closed:
            self.raw.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()  # flushes the service file first
        finally:
            self.raw.close()


def _offset(value: int | None, size: int, default: int) -> int:
    if value is None:
        return default
    if value < 0:
        return max(0, size + value)
    return min(value, size)


def _read_n(f: BinaryIO, n: int) -> bytes:
    """Read ``n`` bytes, or up to the end of the file, whatever the file's short reads."""
    chunks = []
    while n > 0:
        chunk = f.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _first(path: str | list[str]) -> str:
    return path if isinstance(path, str) else ", ".join(map(str, path))
