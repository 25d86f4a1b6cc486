"""The FileService contract and the API derived from it.

A file service implements a few primitives, each taking a normalised path; the base class
derives everything else once, so no service re-implements ``makedirs`` or ``walk``::

    MUST implement   _stat  _listdir  _open
    MAY implement    _mkdir  _remove  _rmdir  _rename      (default: refused, see below)
    MAY override     _scandir  _read_bytes  _write_bytes   (fast paths; derived otherwise)

Callers use the public names (``stat``, ``open``, ``read_bytes``, ``walk``, ...), which
normalise the path and validate the mode before calling the primitive, as lib9p validates
a request before a server sees it. A primitive a service does not implement raises
``ReadOnly`` when the service is read-only and ``Unsupported`` otherwise: nothing is
silently ignored.

Depth: every derived method that goes over a tree (``makedirs``, ``rmtree``, ``walk``,
``copy``, ``move``, ``tree``) keeps an explicit stack, never Python recursion, so a tree of
any depth (a ``mkdir d; cd d`` loop run 100,000 times) is handled like a shallow one.

Thread safety: every service must be safe to call from several threads at once and says
how in its docstring. The derived methods are sequences of primitives and are atomic only
where a docstring says so.
"""

from __future__ import annotations

import fnmatch
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import BinaryIO, Final

import attrs

from . import paths
from .errors import (
    AlreadyExists,
    FsError,
    InvalidArgument,
    IsADirectory,
    NotADirectory,
    NotFound,
    ReadOnly,
    Unsupported,
)

__all__ = ["COPY_CHUNK", "FileService", "OpenMode", "Stat", "check_open", "transfer"]

COPY_CHUNK: Final = 1 << 20


@attrs.frozen
class Stat:
    """What ``stat`` tells about a file or directory.

    ``size`` is in bytes for a file and the number of entries for a directory; ``mtime`` is
    seconds since the epoch (0 when the service has no clock); ``readonly`` says whether
    the service accepts writes to it.
    """

    name: str
    size: int
    is_dir: bool
    mtime: float = 0.0
    readonly: bool = False

    @property
    def is_file(self) -> bool:
        return not self.is_dir


@attrs.frozen
class OpenMode:
    """A parsed binary open mode: one of ``r w a x`` optionally with ``+`` (and ``b``)."""

    mode: str
    read: bool
    write: bool
    create: bool = False
    truncate: bool = False
    append: bool = False
    exclusive: bool = False

    @classmethod
    def parse(cls, mode: str) -> OpenMode:
        """Parse ``mode``.

        Raises:
            InvalidArgument: not a binary mode oanix supports.
        """
        try:
            return _MODES[mode]
        except (KeyError, TypeError):
            raise InvalidArgument(
                f"invalid mode {mode!r}: use one of r w a x r+ w+ a+ x+ (b optional)"
            ) from None


def _build_modes() -> dict[str, OpenMode]:
    base = {
        "r": dict(read=True, write=False),
        "w": dict(read=False, write=True, create=True, truncate=True),
        "a": dict(read=False, write=True, create=True, append=True),
        "x": dict(read=False, write=True, create=True, exclusive=True),
    }
    table: dict[str, OpenMode] = {}
    for letter, flags in base.items():
        for plus in ("", "+"):
            f = dict(flags)
            if plus:
                f["read"] = f["write"] = True
            m = OpenMode(letter + plus, **f)
            for spelling in (letter + plus, letter + "b" + plus, letter + plus + "b"):
                table[spelling] = m
    return table


_MODES: Final = _build_modes()


def check_open(path: str, mode: OpenMode, st: Stat | None, readonly: bool = False) -> None:
    """The checks every service makes before opening ``path`` (``st`` is None if missing).

    Raises:
        NotFound, AlreadyExists, IsADirectory, ReadOnly: as POSIX ``open`` would.
    """
    if st is None:
        if not mode.create:
            raise NotFound(path)
        if readonly:
            raise ReadOnly(path)
        return
    if mode.exclusive:
        raise AlreadyExists(path)
    if st.is_dir:
        raise IsADirectory(path)
    if mode.write and (readonly or st.readonly):
        raise ReadOnly(path)


class FileService(ABC):
    """A tree of files and directories; subclass it and implement the primitives.

    ``readonly`` is true for a service that never accepts writes (a class attribute, or
    set per instance by a constructor flag).
    """

    readonly: bool = False
    #: True for a service whose files are a conversation (a request file, then answers):
    #: the WASI bridge mirrors it live during a run instead of copying it before and after.
    live: bool = False

    # -- primitives: implementers override these ------------------------------------------

    @abstractmethod
    def _stat(self, path: str) -> Stat:
        """MUST. Raises NotFound, NotADirectory (a component is a file)."""

    @abstractmethod
    def _listdir(self, path: str) -> list[str]:
        """MUST. Names in ``path`` in a stable order. Raises NotFound, NotADirectory."""

    @abstractmethod
    def _open(self, path: str, mode: OpenMode) -> BinaryIO:
        """MUST. A binary file object; see ``check_open`` for the errors."""

    def _mkdir(self, path: str) -> None:
        """MAY. Create one directory. Raises AlreadyExists, NotFound (parent)."""
        raise self._refused(path, "mkdir")

    def _remove(self, path: str) -> None:
        """MAY. Remove a file. Raises NotFound, IsADirectory."""
        raise self._refused(path, "remove")

    def _rmdir(self, path: str) -> None:
        """MAY. Remove an empty directory. Raises NotFound, NotADirectory, NotEmpty."""
        raise self._refused(path, "rmdir")

    def _rename(self, src: str, dst: str) -> None:
        """MAY. POSIX rename: replaces a file or an empty directory at ``dst``."""
        raise self._refused(src, "rename")

    def _scandir(self, path: str) -> list[Stat]:
        """MAY override: the stats of the entries of ``path`` in ``_listdir`` order."""
        return [self._stat(paths.join(path, name)) for name in self._listdir(path)]

    def _read_bytes(self, path: str) -> bytes:
        """MAY override: the whole content of a file."""
        with self._open(path, _READ) as f:
            return f.read()

    def _write_bytes(self, path: str, data: bytes) -> None:
        """MAY override: replace (or create) a file with ``data``."""
        with self._open(path, _WRITE) as f:
            f.write(data)

    def _refused(self, path: str, op: str) -> FsError:
        if self.readonly:
            return ReadOnly(path)
        return Unsupported(path, f"{type(self).__name__} does not support {op}")

    # -- the public API --------------------------------------------------------------------

    def stat(self, path: str) -> Stat:
        """The ``Stat`` of ``path``. Raises NotFound, NotADirectory."""
        return self._stat(paths.normalize(path))

    def listdir(self, path: str = "/") -> list[str]:
        """The names in directory ``path``. Raises NotFound, NotADirectory."""
        return self._listdir(paths.normalize(path))

    def scandir(self, path: str = "/") -> list[Stat]:
        """The stats of the entries of directory ``path``."""
        return self._scandir(paths.normalize(path))

    def open(self, path: str, mode: str = "rb") -> BinaryIO:
        """Open a file in a binary mode: ``r w a x`` with an optional ``+``.

        The result is an io object: read, readinto, write, seek, tell, truncate, flush,
        close, iteration over lines, and use as a context manager.

        Raises:
            InvalidArgument: a mode that is not one of the above.
            NotFound, AlreadyExists, IsADirectory, NotADirectory, ReadOnly: as POSIX.
        """
        return self._open(paths.normalize(path), OpenMode.parse(mode))

    def mkdir(self, path: str) -> None:
        """Create directory ``path``; its parent must exist. Raises AlreadyExists, NotFound."""
        self._mkdir(paths.normalize(path))

    def remove(self, path: str) -> None:
        """Remove file ``path``. Raises NotFound, IsADirectory."""
        self._remove(paths.normalize(path))

    def rmdir(self, path: str) -> None:
        """Remove the empty directory ``path``. Raises NotFound, NotADirectory, NotEmpty."""
        self._rmdir(paths.normalize(path))

    def rename(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` within one service, with POSIX semantics.

        Raises:
            CrossMount: ``src`` and ``dst`` are in different services (use ``move``).
        """
        self._rename(paths.normalize(src), paths.normalize(dst))

    # -- derived ---------------------------------------------------------------------------

    def read_bytes(self, path: str) -> bytes:
        """The whole content of file ``path``."""
        return self._read_bytes(paths.normalize(path))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace file ``path`` with ``data``.

        Raises:
            InvalidArgument: ``data`` is a str (use ``write_text``) or not bytes-like.
        """
        obj: object = data
        if not isinstance(obj, bytes):
            if isinstance(obj, str):
                raise InvalidArgument(f"write_bytes({path!r}) needs bytes, not str")
            try:
                data = bytes(obj)  # type: ignore[call-overload]
            except TypeError:
                raise InvalidArgument(
                    f"write_bytes({path!r}) needs bytes, not {type(data).__name__}") from None
        self._write_bytes(paths.normalize(path), data)

    def read_text(self, path: str, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The content of file ``path`` decoded as text."""
        return self.read_bytes(path).decode(encoding, errors)

    def write_text(self, path: str, text: str, encoding: str = "utf-8",
                   errors: str = "strict") -> None:
        """Create or replace file ``path`` with ``text`` encoded."""
        self.write_bytes(path, text.encode(encoding, errors))

    def exists(self, path: str) -> bool:
        """Whether ``path`` names a file or a directory."""
        try:
            self.stat(path)
        except (NotFound, NotADirectory):
            return False
        return True

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory."""
        try:
            return self.stat(path).is_dir
        except (NotFound, NotADirectory):
            return False

    def is_file(self, path: str) -> bool:
        """Whether ``path`` is a file."""
        try:
            return not self.stat(path).is_dir
        except (NotFound, NotADirectory):
            return False

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Create ``path`` and any missing parents.

        Raises:
            AlreadyExists: ``path`` exists and ``exist_ok`` is false (or it is a file).
        """
        path = paths.normalize(path)
        try:
            st = self._stat(path)
        except NotFound:
            pass
        else:
            if not st.is_dir or not exist_ok:
                raise AlreadyExists(path)
            return
        missing = [path]  # from ``path`` up to the highest missing ancestor
        parent = paths.dirname(path)
        while parent != missing[-1]:
            try:
                st = self._stat(parent)
            except NotFound:
                missing.append(parent)
                parent = paths.dirname(parent)
                continue
            if not st.is_dir:
                raise AlreadyExists(parent)
            break
        for p in reversed(missing):
            try:
                self._mkdir(p)
            except AlreadyExists:
                if (p == path and not exist_ok) or not self._stat(p).is_dir:
                    raise

    def rmtree(self, path: str) -> None:
        """Remove directory ``path`` and everything below it (or a single file)."""
        path = paths.normalize(path)
        if not self._stat(path).is_dir:
            self._remove(path)
            return
        stack = [(path, False)]  # (directory, whether its entries are gone already)
        while stack:
            top, emptied = stack.pop()
            if emptied:
                self._rmdir(top)
                continue
            stack.append((top, True))
            for st in self._scandir(top):
                child = paths.join(top, st.name)
                if st.is_dir:
                    stack.append((child, False))
                else:
                    self._remove(child)

    def walk(self, path: str = "/") -> Iterator[tuple[str, list[str], list[str]]]:
        """Walk the tree top-down like ``os.walk``: ``(dirpath, dirnames, filenames)``.

        Prune the walk by removing names from ``dirnames``. A directory that vanishes while
        walking is skipped.
        """
        path = paths.normalize(path)
        stack = [path]
        while stack:
            top = stack.pop()
            try:
                entries = self._scandir(top)
            except (NotFound, NotADirectory):
                continue
            dirs = [st.name for st in entries if st.is_dir]
            files = [st.name for st in entries if not st.is_dir]
            yield top, dirs, files
            stack.extend(paths.join(top, d) for d in reversed(dirs))

    def glob(self, pattern: str) -> list[str]:
        """Paths matching ``pattern``, sorted: ``*``, ``?``, ``[...]`` match within a
        component, ``**`` matches any number of directories.
        """
        pattern = paths.normalize(pattern)
        parts = paths.parts(pattern)
        found: set[str] = set()
        self._glob_into("/", parts, found)
        return sorted(found)

    def _glob_into(self, base: str, parts: list[str], found: set[str]) -> None:
        if not parts:
            found.add(base)
            return
        head, rest = parts[0], parts[1:]
        if head == "**":
            self._glob_into(base, rest, found)
            for dirpath, _dirs, _files in self.walk(base):
                if dirpath != base:
                    self._glob_into(dirpath, rest, found)
            return
        if not _has_magic(head):
            child = paths.join(base, head)
            if self.exists(child):
                self._glob_into(child, rest, found)
            return
        try:
            entries = self._scandir(base)
        except (NotFound, NotADirectory):
            return
        rx = _compile_glob(head)
        for st in entries:
            if rx.match(st.name) and (not rest or st.is_dir):
                self._glob_into(paths.join(base, st.name), rest, found)

    def copy(self, src: str, dst: str) -> None:
        """Copy file or directory ``src`` to ``dst`` (a new path), streaming the content.

        A file replaces an existing file at ``dst``; a directory is copied recursively and
        ``dst`` must not exist.
        """
        transfer(self, paths.normalize(src), self, paths.normalize(dst))

    def move(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst``, copying and removing when they are in different
        services."""
        from .errors import CrossMount

        src, dst = paths.normalize(src), paths.normalize(dst)
        try:
            self._rename(src, dst)
        except CrossMount:
            transfer(self, src, self, dst)
            self.rmtree(src)

    def tree(self, path: str = "/") -> str:
        """A text drawing of the tree below ``path``, directories with a trailing ``/``."""
        path = paths.normalize(path)
        lines = [path]
        # Entries still to draw, the next one on top: (directory, its entry, prefix, last).
        todo: list[tuple[str, Stat, str, bool]] = []
        self._tree_push(path, "", lines, todo)
        while todo:
            parent, st, prefix, last = todo.pop()
            child = paths.join(parent, st.name)
            lines.append(prefix + ("└── " if last else "├── ") + self._tree_label(child, st))
            if st.is_dir:
                self._tree_push(child, prefix + ("    " if last else "│   "), lines, todo)
        return "\n".join(lines) + "\n"

    def _tree_label(self, path: str, st: Stat) -> str:
        return st.name + ("/" if st.is_dir else f"  ({st.size} B)")

    def _tree_push(self, path: str, prefix: str, lines: list[str],
                   todo: list[tuple[str, Stat, str, bool]]) -> None:
        """Queue the entries of ``path`` to be drawn next (or draw why it cannot be read)."""
        try:
            entries = self._scandir(path)
        except FsError as e:
            lines.append(f"{prefix}└── <{e.strerror}>")
            return
        n = len(entries)
        todo.extend((path, st, prefix, i == n - 1) for i, st in reversed(list(enumerate(entries))))


_READ: Final = OpenMode.parse("rb")
_WRITE: Final = OpenMode.parse("wb")
_MAGIC = re.compile(r"[*?\[]")


def _has_magic(s: str) -> bool:
    return _MAGIC.search(s) is not None


def _compile_glob(pat: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pat))


def transfer(src_fs: FileService, src: str, dst_fs: FileService, dst: str) -> None:
    """Copy ``src`` in ``src_fs`` to ``dst`` in ``dst_fs`` (normalised paths), streaming
    file content and going down directories (an explicit stack: any depth); ``dst`` of a
    directory must not exist.
    """
    if not src_fs._stat(src).is_dir:
        _transfer_file(src_fs, src, dst_fs, dst)
        return
    if paths.is_within(dst, src) and src_fs is dst_fs:
        from .errors import InvalidPath

        raise InvalidPath(src, "cannot copy a directory into itself", dst)
    stack = [(src, dst)]  # directories to create and fill
    while stack:
        sdir, ddir = stack.pop()
        dst_fs._mkdir(ddir)
        for child in src_fs._scandir(sdir):
            s, d = paths.join(sdir, child.name), paths.join(ddir, child.name)
            if child.is_dir:
                stack.append((s, d))
            else:
                _transfer_file(src_fs, s, dst_fs, d)


def _transfer_file(src_fs: FileService, src: str, dst_fs: FileService, dst: str) -> None:
    with src_fs._open(src, _READ) as fin, dst_fs._open(dst, _WRITE) as fout:
        while chunk := fin.read(COPY_CHUNK):
            fout.write(chunk)
