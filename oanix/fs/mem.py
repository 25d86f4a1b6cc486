"""MemFs: a file tree held in memory."""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

from .. import paths
from ..errors import (
    AlreadyExists,
    InvalidPath,
    IsADirectory,
    NoSpace,
    NotADirectory,
    NotEmpty,
    NotFound,
    PermissionDenied,
)
from ..files import BufferFile
from ..service import FileService, OpenMode, Stat, check_open
from ..snapshot.tree import Entry, decode_entries, encode_entries

if TYPE_CHECKING:
    from ..snapshot.protocol import SnapshotReader, SnapshotWriter

__all__ = ["MemFs"]

JOURNAL_SIZE: Final = 4096
# A journal entry for a write whose path is unknown (a file opened before a rename).
_UNKNOWN: Final = ""


class _File:
    __slots__ = ("accounted", "attached", "data", "mtime")

    def __init__(self, data: bytearray, mtime: float) -> None:
        self.data = data
        self.mtime = mtime
        self.accounted = 0  # bytes counted against the quota
        self.attached = True  # False once removed from the tree (open files may remain)


class _Dir:
    __slots__ = ("children", "mtime")

    def __init__(self, mtime: float) -> None:
        self.children: dict[str, _File | _Dir] = {}
        self.mtime = mtime


class MemFs(FileService):
    """A tree of nodes in memory, with an optional quota.

    Each directory indexes its children in a dict, so lookups cost one dict access per path
    component and listing a directory touches only its entries (unlike a flat dict of
    paths, which scans everything). Open files share the node's buffer: a write is seen at
    once by every other open file, and a removed file stays readable through the files
    that had it open, as on POSIX.

    ``max_bytes`` caps the total size of all files and ``max_files`` the number of files and
    directories; going over raises ``NoSpace`` and leaves the tree unchanged.

    Change journal: ``generation`` counts the mutations so far and ``changed_since(g)``
    names the paths they touched after generation ``g`` (the last ``JOURNAL_SIZE``
    mutations are kept), so a reader can catch up on exactly what changed.

    Locking: one lock per MemFs guards the whole tree, every file buffer and the journal;
    each primitive holds it for its duration, so each primitive is atomic, and journals
    its change (bumps ``generation``) before releasing it.
    """

    # mtimes come from time.time(): the WASI sync trusts them to this resolution.
    mtime_resolution: ClassVar[float] = 1e-6

    def __init__(self, *, max_bytes: int | None = None, max_files: int | None = None) -> None:
        self._lock = threading.Lock()
        self._root = _Dir(time.time())
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._bytes = 0
        self._files = 0
        self._gen = 0
        # One entry per mutation: its path, both paths of a rename, or _UNKNOWN.
        self._journal: deque[str | tuple[str, str]] = deque(maxlen=JOURNAL_SIZE)
        self._renames = 0  # renames so far: an open file's path is stale after one

    @property
    def generation(self) -> int:
        """The number of mutations so far (create, write, truncate, mkdir, remove, rmdir,
        rename); pass it to ``changed_since`` later."""
        return self._gen  # an int read is atomic: no lock needed

    def changed_since(self, generation: int) -> list[str] | None:
        """The paths changed after ``generation`` (sorted; both paths of a rename), or
        None when the journal cannot tell: its older entries were dropped, or a file
        opened before a rename was written since (its path is unknown)."""
        with self._lock:
            n = self._gen - generation
            if n < 0 or n > len(self._journal):
                return None
            if n == 0:
                return []
            out: set[str] = set()
            journal = self._journal
            for i in range(len(journal) - n, len(journal)):
                entry = journal[i]
                if type(entry) is str:
                    if entry == _UNKNOWN:
                        return None
                    out.add(entry)
                else:
                    out.update(entry)
            return sorted(out)

    def _note(self, entry: str | tuple[str, str]) -> None:
        """Journal one mutation (under the lock)."""
        self._gen += 1
        self._journal.append(entry)

    @property
    def usage(self) -> tuple[int, int]:
        """``(bytes, files)`` in use, as counted against the quota."""
        with self._lock:
            return self._bytes, self._files

    # -- lookup ---------------------------------------------------------------------------

    def _lookup(self, path: str) -> _File | _Dir:
        if path == "/":
            return self._root
        return self._walk(path, path[1:].split("/"))

    def _walk(self, path: str, names: list[str]) -> _File | _Dir:
        """The node at ``names`` below the root (``path`` names it in errors)."""
        node: _File | _Dir = self._root
        for name in names:
            if type(node) is not _Dir:
                raise NotADirectory(path)
            child = node.children.get(name)
            if child is None:
                raise NotFound(path)
            node = child
        return node

    def _parent(self, path: str) -> tuple[_Dir, str]:
        """The directory that holds ``path`` and the last name (``""`` for the root)."""
        names = path[1:].split("/")
        last = names.pop()
        node = self._walk(path, names)
        if type(node) is not _Dir:
            raise NotADirectory(path)
        return node, last

    @staticmethod
    def _stat_of(name: str, node: _File | _Dir) -> Stat:
        if isinstance(node, _Dir):
            return Stat(name, len(node.children), True, node.mtime)
        return Stat(name, len(node.data), False, node.mtime)

    # -- quota ----------------------------------------------------------------------------

    def _charge(self, path: str, nbytes: int, nfiles: int) -> None:
        """Check that ``nbytes`` more bytes and ``nfiles`` more nodes fit."""
        if self.max_bytes is None and self.max_files is None:
            return
        if nbytes > 0 and self.max_bytes is not None and self._bytes + nbytes > self.max_bytes:
            raise NoSpace(path, f"quota of {self.max_bytes} bytes exceeded")
        if nfiles > 0 and self.max_files is not None and self._files + nfiles > self.max_files:
            raise NoSpace(path, f"quota of {self.max_files} files exceeded")

    def _account(self, node: _File) -> None:
        if node.attached:
            self._bytes += len(node.data) - node.accounted
            node.accounted = len(node.data)

    def _detach(self, node: _File | _Dir) -> None:
        """Stop counting ``node`` (and everything below it, any depth) against the quota."""
        stack = [node]
        while stack:
            node = stack.pop()
            self._files -= 1
            if isinstance(node, _File):
                node.attached = False
                self._bytes -= node.accounted
                node.accounted = 0
            else:
                stack.extend(node.children.values())

    # -- primitives -----------------------------------------------------------------------

    def _stat(self, path: str) -> Stat:
        with self._lock:
            node = self._lookup(path)
        if type(node) is _Dir:
            return Stat(path[path.rfind("/") + 1:], len(node.children), True, node.mtime)
        return Stat(path[path.rfind("/") + 1:], len(node.data), False,  # type: ignore[union-attr]
                    node.mtime)

    def _listdir(self, path: str) -> list[str]:
        with self._lock:
            node = self._lookup(path)
            if not isinstance(node, _Dir):
                raise NotADirectory(path)
            return sorted(node.children)

    def _scandir(self, path: str) -> list[Stat]:
        with self._lock:
            node = self._lookup(path)
            if not isinstance(node, _Dir):
                raise NotADirectory(path)
            ch = node.children
            return [self._stat_of(name, ch[name]) for name in sorted(ch)]

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        with self._lock:
            parent, name = self._parent(path)
            node = parent.children.get(name) if name else self._root
            check_open(path, mode, None if node is None else self._stat_of(name, node))
            if node is None:
                self._charge(path, 0, 1)
                now = time.time()
                node = parent.children[name] = _File(bytearray(), now)
                parent.mtime = now
                self._files += 1
                self._note(path)
            assert isinstance(node, _File)
            return _MemFile(self, node, mode, path)

    def _read_bytes(self, path: str) -> bytes:
        with self._lock:
            node = self._lookup(path)
            if isinstance(node, _Dir):
                raise IsADirectory(path)
            return bytes(node.data)

    def _write_bytes(self, path: str, data: bytes) -> None:
        with self._lock:
            parent, name = self._parent(path)
            node = parent.children.get(name) if name else self._root
            now = time.time()
            if node is None:
                if self.max_bytes is not None or self.max_files is not None:
                    self._charge(path, len(data), 1)
                node = parent.children[name] = _File(bytearray(data), now)
                parent.mtime = now
                self._files += 1
            elif isinstance(node, _Dir):
                raise IsADirectory(path)
            else:
                self._charge(path, len(data) - len(node.data), 0)
                node.data[:] = data
                node.mtime = now
            self._bytes += len(data) - node.accounted
            node.accounted = len(data)
            self._gen += 1  # self._note(path), inlined on the hottest path
            self._journal.append(path)

    def _mkdir(self, path: str) -> None:
        with self._lock:
            parent, name = self._parent(path)
            if not name or name in parent.children:
                raise AlreadyExists(path)
            self._charge(path, 0, 1)
            now = time.time()
            parent.children[name] = _Dir(now)
            parent.mtime = now
            self._files += 1
            self._note(path)

    def _remove(self, path: str) -> None:
        with self._lock:
            parent, name = self._parent(path)
            node = parent.children.get(name) if name else self._root
            if node is None:
                raise NotFound(path)
            if isinstance(node, _Dir):
                raise IsADirectory(path)
            del parent.children[name]
            parent.mtime = time.time()
            self._detach(node)
            self._note(path)

    def _rmdir(self, path: str) -> None:
        with self._lock:
            if path == "/":
                raise PermissionDenied(path, "cannot remove the root")
            parent, name = self._parent(path)
            node = parent.children.get(name)
            if node is None:
                raise NotFound(path)
            if not isinstance(node, _Dir):
                raise NotADirectory(path)
            if node.children:
                raise NotEmpty(path)
            del parent.children[name]
            parent.mtime = time.time()
            self._detach(node)
            self._note(path)

    def _rename(self, src: str, dst: str) -> None:
        with self._lock:
            if src == "/" or dst == "/":
                raise PermissionDenied(src, "cannot rename the root", dst)
            sparent, sname = self._parent(src)
            dparent, dname = self._parent(dst)
            node = sparent.children.get(sname)
            if node is None:
                raise NotFound(src, None, dst)
            if src == dst:
                return
            if isinstance(node, _Dir) and paths.is_within(dst, src):
                raise InvalidPath(src, "cannot move a directory into itself", dst)
            if paths.is_within(src, dst):  # dst is an ancestor of src, so not empty
                raise NotEmpty(dst)
            target = dparent.children.get(dname)
            if target is not None:
                if isinstance(node, _File) and isinstance(target, _Dir):
                    raise IsADirectory(dst)
                if isinstance(node, _Dir) and isinstance(target, _File):
                    raise NotADirectory(dst)
                if isinstance(target, _Dir) and target.children:
                    raise NotEmpty(dst)
                self._detach(target)
            del sparent.children[sname]
            dparent.children[dname] = node
            now = time.time()
            sparent.mtime = dparent.mtime = now
            self._renames += 1
            self._note((src, dst))


    # -- snapshots (oanix.snapshot) ---------------------------------------------------------

    snapshot_kind: ClassVar[str] = "memfs"

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        """``{"max_bytes", "max_files": int | null, "mtime": the root's, "entries"}``
        (see ``oanix.snapshot.tree``), taken under the lock: one consistent tree."""
        entries: list[Entry] = []
        with self._lock:
            stack: list[tuple[str, _Dir]] = [("", self._root)]
            while stack:
                prefix, node = stack.pop()
                subdirs = []
                for name in sorted(node.children):
                    child = node.children[name]
                    path = f"{prefix}/{name}"
                    if isinstance(child, _Dir):
                        entries.append(Entry(path, child.mtime))
                        subdirs.append((path, child))
                    else:
                        entries.append(Entry(path, child.mtime, bytes(child.data)))
                stack.extend(reversed(subdirs))
            root_mtime = self._root.mtime
        return {"max_bytes": self.max_bytes, "max_files": self.max_files,
                "mtime": root_mtime, "entries": encode_entries(entries, w)}

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> Self:
        """A MemFs holding ``state``'s tree, mtimes included.

        Raises:
            CorruptSnapshot: a bad field or entry, or a tree over its own quota.
        """
        where = "memfs"
        limits = {k: state.get(k) for k in ("max_bytes", "max_files")}
        for k, v in limits.items():
            if v is not None and (type(v) is not int or v < 0):
                raise r.fail(where, f"field {k!r} is {v!r}")
        fs = cls(**limits)
        dirs: dict[str, _Dir] = {"": fs._root}
        for e in decode_entries(state.get("entries"), r, where):  # parents come first
            parent, _, name = e.path.rpartition("/")
            if e.data is None:
                dirs[e.path] = dirs[parent].children[name] = _Dir(e.mtime)
            else:
                node = dirs[parent].children[name] = _File(bytearray(e.data), e.mtime)
                node.accounted = len(e.data)
                fs._bytes += len(e.data)
            fs._files += 1
        for k, used in (("max_bytes", fs._bytes), ("max_files", fs._files)):
            if limits[k] is not None and used > limits[k]:  # type: ignore[operator]
                raise r.fail(where, f"the tree is over its own quota: {used} > {k} "
                                    f"{limits[k]}")
        fs._root.mtime = r.field(state, "mtime", float, where)
        return fs


class _MemFile(BufferFile):
    """An open MemFs file: the node's own buffer under the MemFs lock."""

    def __init__(self, fs: MemFs, node: _File, mode: OpenMode, name: str) -> None:
        self._fs = fs
        self._node = node
        self._renames = fs._renames  # the path is known until the next rename
        super().__init__(node.data, mode, name, lock=fs._lock)

    def _before_resize(self, old: int, new: int) -> None:
        if self._node.attached:
            self._fs._charge(self.name, new - old, 0)

    def _changed(self) -> None:
        fs = self._fs
        self._node.mtime = time.time()
        fs._account(self._node)
        fs._note(self.name if self._renames == fs._renames else _UNKNOWN)

