"""MapFs: an immutable tree of files given as a ``{path: bytes | str}`` mapping.

This module also holds ``PathTree``, the small directory tree with implied parents that
MapFs and FuncFs build at construction (one dict per directory, so a lookup costs one dict
access per component and a listing touches only the directory's own entries).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Self, TypeVar

from .. import paths
from ..errors import InvalidArgument, InvalidPath, IsADirectory, NotADirectory, NotFound, ReadOnly
from ..files import BufferFile
from ..service import FileService, OpenMode, Stat
from ..snapshot.tree import decode_entries, encode_entries, service_entries

if TYPE_CHECKING:
    from ..snapshot.protocol import SnapshotReader, SnapshotWriter

__all__ = ["MapFs", "MapFsBuilder", "PathTree"]

L = TypeVar("L")


class _Dir(Generic[L]):
    __slots__ = ("children",)

    def __init__(self) -> None:
        self.children: dict[str, _Dir[L] | L] = {}


class PathTree(Generic[L]):
    """Directories indexed by name, whose leaves are values of type ``L`` (never a tree
    node); every ancestor of a leaf exists as a directory.

    Locking: none; the owner guards it (MapFs never changes it after construction, FuncFs
    changes it under its lock).
    """

    def __init__(self) -> None:
        self.root: _Dir[L] = _Dir()

    def lookup(self, path: str) -> _Dir[L] | L:
        """The node at normalised ``path``. Raises NotFound, NotADirectory."""
        node: _Dir[L] | L = self.root
        if path == "/":
            return node
        for name in path[1:].split("/"):
            if not isinstance(node, _Dir):
                raise NotADirectory(path)
            try:
                node = node.children[name]
            except KeyError:
                raise NotFound(path) from None
        return node

    def children(self, path: str) -> dict[str, _Dir[L] | L]:
        """The entries of directory ``path`` (the live dict: do not change it)."""
        node = self.lookup(path)
        if not isinstance(node, _Dir):
            raise NotADirectory(path)
        return node.children

    def add_dir(self, path: str) -> None:
        """Create directory ``path`` and its parents (existing directories are kept).

        Raises:
            InvalidArgument: ``path`` or one of its ancestors is a leaf.
        """
        node = self.root
        done = ""
        for name in paths.parts(path):
            done += "/" + name
            child = node.children.setdefault(name, _Dir())
            if not isinstance(child, _Dir):
                raise InvalidArgument(f"{done!r} is a file and cannot be a directory")
            node = child

    def add_leaf(self, path: str, leaf: L, *, replace: bool) -> None:
        """Put ``leaf`` at ``path``, creating its parent directories.

        Raises:
            InvalidArgument: ``path`` is the root or a directory, an ancestor is a leaf, or
                ``path`` already holds a leaf and ``replace`` is false.
        """
        parent, name = paths.split(path)
        if not name:
            raise InvalidArgument("the root '/' cannot be a file")
        self.add_dir(parent)
        node = self.lookup(parent)
        assert isinstance(node, _Dir)
        old = node.children.get(name)
        if isinstance(old, _Dir):
            raise InvalidArgument(f"{path!r} is a directory and cannot be a file")
        if old is not None and not replace:
            raise InvalidArgument(f"{path!r} is given twice")
        node.children[name] = leaf


def checked_path(path: object) -> str:
    """``path`` normalised, for a constructor argument: raises InvalidArgument, not
    InvalidPath, since the path is a value given to build a service, not an operation."""
    try:
        return paths.normalize(path)  # type: ignore[arg-type]
    except InvalidPath as e:
        raise InvalidArgument(f"invalid path {e.path}: {e.strerror}") from None


class MapFs(FileService):
    """A read-only tree built once from ``{path: bytes | str}`` (a str is encoded as UTF-8).

    Parent directories are implied; ``dirs`` adds (empty) directories. Every write (a write
    open mode, ``write_bytes``, ``mkdir``, ``remove``, ``rmdir``, ``rename``) raises
    ``ReadOnly`` naming the path, whether or not the path exists. Every entry has
    ``readonly=True`` and ``mtime`` (default 0, "no clock").

    Build one in steps with ``MapFs.builder().file(path, data).dir(path).build()``.

    Change journal (as MemFs's): ``generation`` is always 0 and ``changed_since(0)`` is
    empty, since nothing ever changes.

    Locking: none needed: the tree never changes after construction and an open file reads
    its own immutable bytes, so any number of threads may share a MapFs.
    """

    readonly = True

    def __init__(self, files: Mapping[str, bytes | str] | None = None, *,
                 dirs: Iterable[str] = (), mtime: float = 0.0) -> None:
        """Raises InvalidArgument: a value that is not bytes or str, a path given twice or
        both as a file and as a directory, the root as a file, a malformed path."""
        self._mtime = float(mtime)
        self._tree: PathTree[bytes] = PathTree()
        for d in dirs:
            self._tree.add_dir(checked_path(d))
        for raw, data in (files or {}).items():
            path = checked_path(raw)
            if isinstance(data, str):
                data = data.encode("utf-8")
            elif not isinstance(data, bytes):
                raise InvalidArgument(
                    f"content of {path!r} must be bytes or str, not {type(data).__name__}")
            self._tree.add_leaf(path, data, replace=False)

    @staticmethod
    def builder() -> MapFsBuilder:
        """A builder: ``MapFs.builder().file("/a", b"x").dir("/empty").build()``."""
        return MapFsBuilder()

    generation: Final = 0

    def changed_since(self, generation: int) -> list[str] | None:
        """Nothing ever changes: ``[]`` (None for a generation this MapFs never had)."""
        return [] if generation == 0 else None

    def _stat_of(self, name: str, node: object) -> Stat:
        if isinstance(node, bytes):
            return Stat(name, len(node), False, self._mtime, readonly=True)
        assert isinstance(node, _Dir)
        return Stat(name, len(node.children), True, self._mtime, readonly=True)

    def _file(self, path: str) -> bytes:
        node = self._tree.lookup(path)
        if not isinstance(node, bytes):
            raise IsADirectory(path)
        return node

    # -- primitives -----------------------------------------------------------------------

    def _stat(self, path: str) -> Stat:
        return self._stat_of(paths.basename(path), self._tree.lookup(path))

    def _listdir(self, path: str) -> list[str]:
        return sorted(self._tree.children(path))

    def _scandir(self, path: str) -> list[Stat]:
        ch = self._tree.children(path)
        return [self._stat_of(name, ch[name]) for name in sorted(ch)]

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        if mode.write:
            raise ReadOnly(path)
        return BufferFile(self._file(path), mode, path)

    def _read_bytes(self, path: str) -> bytes:
        return self._file(path)

    def _write_bytes(self, path: str, data: bytes) -> None:
        raise ReadOnly(path)

    # -- snapshots (oanix.snapshot) ---------------------------------------------------------

    snapshot_kind: ClassVar[str] = "mapfs"

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        """``{"mtime", "entries"}`` (see ``oanix.snapshot.tree``; every entry's mtime is
        the MapFs's)."""
        return {"mtime": self._mtime,
                "entries": encode_entries(list(service_entries(self)), w)}

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> Self:
        """The MapFs of ``state``. Raises CorruptSnapshot: a bad field or entry."""
        entries = decode_entries(state.get("entries"), r, "mapfs")
        return cls({e.path: e.data for e in entries if e.data is not None},
                   dirs=[e.path for e in entries if e.data is None],
                   mtime=r.field(state, "mtime", float, "mapfs"))


class MapFsBuilder:
    """Collects files and directories for a MapFs; each method returns the builder.

    Locking: none; build a MapFs from one thread (the MapFs itself is thread-safe).
    """

    def __init__(self) -> None:
        self._files: dict[str, bytes | str] = {}
        self._dirs: list[str] = []

    def file(self, path: str, data: bytes | str) -> MapFsBuilder:
        """Add file ``path`` with ``data``. Raises InvalidArgument: ``path`` given twice."""
        key = checked_path(path)
        if key in self._files:
            raise InvalidArgument(f"{key!r} is given twice")
        self._files[key] = data
        return self

    def dir(self, path: str) -> MapFsBuilder:
        """Add directory ``path`` (and its parents), which may stay empty."""
        self._dirs.append(checked_path(path))
        return self

    def build(self, mtime: float = 0.0) -> MapFs:
        """The MapFs; raises InvalidArgument as the MapFs constructor does."""
        return MapFs(self._files, dirs=self._dirs, mtime=mtime)
