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

Optional features: a service MAY also implement one of the small protocols below, which
the WASI bridge and the overlays use when they are there and do without otherwise. Each is
declared on the class (a method, a property, a class attribute, or one every ``__init__``
sets), so that the answer holds for every instance: the helpers that read them
(``change_journal``, ``host_path``, ``is_computed``, ``is_live``, ``mtime_resolution``,
``file_cap``, ``space_quota``) check a class once and remember it, because ``isinstance``
on a protocol costs tens of microseconds::

    ChangeJournal    generation, changed_since(g)    which paths changed since a point
    HostBacked       host_path, closed               the files are a host directory's
    Computed         is_computed                     files are computed at each open
    Live             live                            files are a conversation
    MtimeResolution  mtime_resolution                how fine the service's clock is
    FileCap          max_file_bytes                  the largest file a write may leave
    SpaceQuota       usage(), max_bytes, max_files   a quota over all the files
"""

from __future__ import annotations

import fnmatch
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import BinaryIO, Final, Protocol, cast, runtime_checkable

import attrs

from . import paths
from .errors import (
    AlreadyExists,
    CrossMount,
    FsError,
    InvalidArgument,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFound,
    ReadOnly,
    Unsupported,
)

__all__ = [
    "COPY_CHUNK",
    "ChangeJournal",
    "Computed",
    "FileCap",
    "FileService",
    "HostBacked",
    "Live",
    "LiveOnly",
    "MtimeResolution",
    "OpenMode",
    "SpaceQuota",
    "Stat",
    "change_journal",
    "check_open",
    "file_cap",
    "host_path",
    "is_computed",
    "is_live",
    "is_live_only",
    "mtime_resolution",
    "space_quota",
    "transfer",
]

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

    # -- primitives: implementers override these ------------------------------------------

    @abstractmethod
    def _stat(self, path: str) -> Stat:
        """MUST. Raises NotFound, NotADirectory (a component is a file)."""

    @abstractmethod
    def _listdir(self, path: str) -> list[str]:
        """MUST. Names in ``path`` in a stable order. Raises NotFound, NotADirectory."""

    @abstractmethod
    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        """MUST. A binary file object (``files.ModeFile`` or another raw io object); see
        ``check_open`` for the errors."""

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
        # Every raw file here is also a BinaryIO (name, mode, and the io methods), which
        # typeshed's RawIOBase does not declare: callers get the BinaryIO view.
        return cast(BinaryIO, self._open(paths.normalize(path), OpenMode.parse(mode)))

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


# -- optional features --------------------------------------------------------------------


@runtime_checkable
class ChangeJournal(Protocol):
    """A service that can tell which paths changed since a point (MemFs, MapFs, CowFs).

    Implement it when the answer is cheap: the WASI bridge then copies only those paths
    between runs instead of comparing every file. ``generation`` grows with every change;
    ``changed_since(g)`` lists the paths changed after ``g`` (sorted), or None when it
    cannot tell (an unknown or forgotten generation): the bridge compares everything then.
    """

    @property
    def generation(self) -> int: ...

    def changed_since(self, generation: int) -> list[str] | None: ...


@runtime_checkable
class HostBacked(Protocol):
    """A service whose files are a host directory's, at ``host_path`` (WorkspaceFs).

    Implement it only when every file of the service is the host file at the same relative
    path, so the WASI bridge may preopen the directory itself instead of staging a copy;
    ``closed`` is true once the service no longer serves it (the bridge stages then).
    """

    @property
    def host_path(self) -> str: ...

    @property
    def closed(self) -> bool: ...


@runtime_checkable
class Computed(Protocol):
    """A service whose files are snapshots computed at each open (FuncFs, HttpFs).

    Set ``is_computed = True`` when a file's stat cannot vouch for its content (the size
    and mtime stay while the content changes): the WASI bridge reads such files on every
    run instead of trusting an unchanged stat.
    """

    is_computed: bool


@runtime_checkable
class Live(Protocol):
    """A service whose files are a conversation: a request file, then answers (ProcFs,
    HttpFs, WsFs, NostrFs).

    Set ``live = True`` when an answer may come while a guest runs: the WASI bridge then
    mirrors the service live during a run instead of copying it before and after.
    """

    live: bool


@runtime_checkable
class LiveOnly(Protocol):
    """A live service a guest can use only live (ProcFs: the guest waits, while it runs,
    for the answer to its request).

    Set ``live_only = True``: where the WASI bridge cannot mirror the service live (no
    inotify), the guest's view leaves it out instead of staging a copy, so the guest
    finds no service at once rather than waiting for an answer that would come only
    after it exits.
    """

    live_only: bool


@runtime_checkable
class MtimeResolution(Protocol):
    """A service that says how fine its clock is: ``mtime_resolution`` in seconds (MemFs:
    a microsecond).

    Implement it when the mtimes are finer than whole seconds and trustworthy: the WASI
    bridge then trusts an mtime older than twice that, instead of a conservative window,
    to tell that a file has not changed.
    """

    mtime_resolution: float


@runtime_checkable
class FileCap(Protocol):
    """A service that refuses a file over ``max_file_bytes`` (HttpFs, WsFs, NostrFs).

    Implement it when a file written larger is refused anyway: the live WASI bridge then
    refuses such a guest file without reading it.
    """

    max_file_bytes: int


@runtime_checkable
class SpaceQuota(Protocol):
    """A service that keeps a quota over all its files (MemFs): ``max_bytes`` and
    ``max_files`` (None: not bounded) and ``usage()``, ``(bytes, files)`` used now.

    Implement it when the service refuses writes past a total: the WASI bridge then holds
    a guest's staged copy of the service to the same total during a run.
    """

    max_bytes: int | None
    max_files: int | None

    def usage(self) -> tuple[int, int]: ...


# (class, feature) -> whether the class provides it. Locking: none needed; a dict get or
# set is atomic and every thread computes the same answer.
_PROVIDES: dict[tuple[type, type], bool] = {}


def _provides(service: object, feature: type) -> bool:
    """``isinstance(service, feature)``, computed once per class of service."""
    key = (type(service), feature)
    known = _PROVIDES.get(key)
    if known is None:
        known = _PROVIDES[key] = isinstance(service, feature)
    return known


def change_journal(service: object) -> ChangeJournal | None:
    """``service`` when it keeps a change journal, else None."""
    return cast(ChangeJournal, service) if _provides(service, ChangeJournal) else None


def host_path(service: object) -> str | None:
    """The host directory behind ``service`` when it is one and still open, else None."""
    if not _provides(service, HostBacked):
        return None
    backed = cast(HostBacked, service)
    return None if backed.closed else backed.host_path


def is_computed(service: object) -> bool:
    """Whether ``service``'s files are computed at each open."""
    return _provides(service, Computed) and bool(cast(Computed, service).is_computed)


def is_live(service: object) -> bool:
    """Whether ``service`` is a conversation the WASI bridge mirrors live."""
    return _provides(service, Live) and bool(cast(Live, service).live)


def is_live_only(service: object) -> bool:
    """Whether ``service`` is live and usable only live (see ``LiveOnly``)."""
    return is_live(service) and _provides(service, LiveOnly) and bool(
        cast(LiveOnly, service).live_only)


def mtime_resolution(service: object) -> float | None:
    """How fine ``service``'s clock is in seconds (a number >= 0), or None: unknown."""
    if not _provides(service, MtimeResolution):
        return None
    res: object = cast(MtimeResolution, service).mtime_resolution
    if isinstance(res, int | float) and not isinstance(res, bool) and res >= 0:
        return res
    return None


def file_cap(service: object) -> int | None:
    """The largest file ``service`` accepts, or None: not capped."""
    if not _provides(service, FileCap):
        return None
    cap: object = cast(FileCap, service).max_file_bytes
    return cap if isinstance(cap, int) else None


def space_quota(service: object) -> tuple[int | None, int | None]:
    """``(max_bytes, max_files)`` of a service that keeps a quota over all its files;
    ``(None, None)``: no quota."""
    if not _provides(service, SpaceQuota):
        return None, None
    quota = cast(SpaceQuota, service)
    return _whole(quota.max_bytes), _whole(quota.max_files)


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
