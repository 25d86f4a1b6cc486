"""Namespace: a per-agent mount table with Plan 9 bind and mount semantics.

A namespace maps paths to file services. ``mount`` attaches a service at a path, ``bind``
makes a path an alias of the object another path names *now* (resolved when ``bind`` is
called, as in Plan 9). A path is resolved by components to the longest mount point above
it, so a mount at ``/tmp`` never captures ``/tmpfoo``.

Union directories: several services mounted at one path (``mode="before"`` or ``"after"``)
form a union. A lookup takes the first member that has the name; a listing merges the
members in order with duplicates removed (the first wins); a create goes to the first
member mounted with ``create=True``, or to the only member, and a failing create does not
fall through to the next member.

Every ancestor of a mount point exists as a directory: mounting ``/a/b/c`` makes ``/``
list ``a`` and ``/a`` list ``b``, even when no service is mounted at ``/``.

A Namespace is itself a FileService, so one can be mounted inside another, but never
inside itself: a mount or bind that would make a namespace reach itself, directly or
through other namespaces (``a`` in ``b`` in ``a``), is refused with ``InvalidArgument``,
since every lookup in it would go round the cycle. (A service that wraps a namespace, such
as a ``CowFs`` over it, is not looked into.)
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import attrs

from . import paths
from .errors import (
    AlreadyExists,
    CrossMount,
    FsError,
    InvalidArgument,
    IsADirectory,
    NotADirectory,
    NotFound,
    PermissionDenied,
    ReadOnly,
)
from .service import FileService, OpenMode, Stat

__all__ = ["Mount", "MountMode", "MountTable", "Namespace"]

MountMode = Literal["replace", "before", "after"]
T = TypeVar("T")
_MODES = ("replace", "before", "after")
#: Held while a mount that puts a namespace into another is checked and made, so two such
#: mounts in different namespaces (``a`` into ``b`` and ``b`` into ``a``) cannot both pass.
_NESTING_LOCK = threading.Lock()


@attrs.frozen
class Mount:
    """One member of the mount table.

    ``root`` is the path inside ``service`` that appears at ``path`` (``/`` for a mount; the
    bound directory for a bind). ``create`` marks the member that takes creates in a
    union; ``readonly`` refuses every write through this member.
    """

    path: str
    service: FileService
    root: str = "/"
    create: bool = False
    readonly: bool = False
    # How many characters of a namespace path the mount point takes (0 for "/").
    _cut: int = attrs.field(init=False, eq=False, repr=False)

    @_cut.default
    def _cut_default(self) -> int:
        return 0 if self.path == "/" else len(self.path)

    def service_path(self, path: str) -> str:
        """The path inside the service for namespace ``path`` at or below this mount."""
        rest = path[self._cut:] or "/"
        if self.root == "/":
            return rest
        return self.root if rest == "/" else self.root + rest

    def namespace_path(self, service_path: str) -> str | None:
        """The namespace path for ``service_path``, or None if it lies outside ``root``."""
        if not paths.is_within(service_path, self.root):
            return None
        return paths.join(self.path, paths.relative_to(service_path, self.root))


class _Node:
    """A node of the mount trie: one path component."""

    __slots__ = ("kids", "members", "point")

    def __init__(self, point: str) -> None:
        self.point = point
        self.kids: dict[str, _Node] = {}
        self.members: tuple[Mount, ...] | None = None


@attrs.frozen(eq=False)  # compared by identity: a table is replaced, never changed
class MountTable:
    """An immutable snapshot of a namespace's mount table: replaced, never changed."""

    mounts: dict[str, tuple[Mount, ...]]
    # Every ancestor of a mount point -> the names below it that lead to mount points.
    children: dict[str, tuple[str, ...]]
    # The mount points as a trie of components, for resolution.
    trie: _Node
    # The namespaces mounted in this one: their own tables can change under this one.
    nested: tuple[Namespace, ...]

    @classmethod
    def build(cls, mounts: dict[str, tuple[Mount, ...]]) -> MountTable:
        kids: dict[str, set[str]] = {"/": set()}
        trie = _Node("/")
        for point, members in mounts.items():
            p = point
            while p != "/":
                parent, name = paths.split(p)
                kids.setdefault(parent, set()).add(name)
                p = parent
            node = trie
            for name in paths.parts(point):
                node = node.kids.setdefault(name, _Node(paths.join(node.point, name)))
            node.members = members
        nested = tuple({id(m.service): m.service for ms in mounts.values() for m in ms
                        if isinstance(m.service, Namespace)}.values())
        return cls(mounts, {k: tuple(sorted(v)) for k, v in kids.items()}, trie, nested)

    def covering(self, path: str) -> tuple[str, tuple[Mount, ...]] | None:
        """The longest mount point at or above ``path`` and its members.

        Walks the trie one component at a time and stops where no mount point lies
        deeper, so the cost does not grow with the number of mounts.
        """
        best = self.trie if self.trie.members is not None else None
        kids = self.trie.kids
        if kids and path != "/":
            for name in path[1:].split("/"):
                nxt = kids.get(name)
                if nxt is None:
                    break
                if nxt.members is not None:
                    best = nxt
                kids = nxt.kids
                if not kids:
                    break
        if best is None:
            return None
        assert best.members is not None
        return best.point, best.members


class Namespace(FileService):
    """A mount table of file services: an agent's view of the world.

    Locking: the mount table is an immutable snapshot; ``mount``, ``bind`` and
    ``unmount`` build a new one under a lock and swap it in, and every file operation reads
    the current snapshot once, without a lock. File operations therefore run in parallel,
    limited only by the services' own locks, and each sees one consistent table.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table = MountTable.build({})

    # -- the mount table --------------------------------------------------------------------

    def mount(self, path: str, service: FileService, mode: MountMode = "replace",
              create: bool = False, readonly: bool = False) -> None:
        """Attach ``service`` at ``path``.

        ``mode``: ``"replace"`` makes ``path`` show only ``service``; ``"before"`` and
        ``"after"`` add it to the union at ``path``, first or last (what was visible at
        ``path`` stays a member). ``create`` makes this member take creates in a union;
        ``readonly`` refuses writes through this mount.

        Raises:
            InvalidArgument: an unknown mode, something that is not a FileService, or a
                namespace that is this one or has this one mounted in it (a cycle).
        """
        if not isinstance(service, FileService):
            raise InvalidArgument(f"mount at {path!r}: {service!r} is not a FileService")
        path = paths.normalize(path)
        self._attach(path, [Mount(path, service, "/", create, readonly)], mode)

    def bind(self, existing: str, new: str, mode: MountMode = "replace",
             create: bool = False, readonly: bool = False) -> None:
        """Make ``new`` show what ``existing`` names now.

        The source is resolved when ``bind`` is called: later changes to the mounts at
        ``existing`` do not affect ``new``, as in Plan 9.

        Raises:
            NotFound: ``existing`` does not exist.
            InvalidArgument: an unknown mode, or ``existing`` names a namespace that has
                this one mounted in it (a cycle).
        """
        existing, new = paths.normalize(existing), paths.normalize(new)
        members = [Mount(new, m.service, m.root, create, readonly or m.readonly)
                   for m in self._capture(existing)]
        self._attach(new, members, mode)

    def unmount(self, path: str, service: FileService | None = None) -> None:
        """Remove the mounts at ``path``: all of them, or only those of ``service``.

        Raises:
            NotFound: nothing (or not ``service``) is mounted at ``path``.
        """
        path = paths.normalize(path)
        with self._lock:
            mounts = dict(self._table.mounts)
            members = mounts.get(path)
            if members is None:
                raise NotFound(path, "not a mount point")
            if service is None:
                kept: tuple[Mount, ...] = ()
            else:
                kept = tuple(m for m in members if m.service is not service)
                if len(kept) == len(members):
                    raise NotFound(path, f"{type(service).__name__} is not mounted here")
            if kept:
                mounts[path] = kept
            else:
                del mounts[path]
            self._table = MountTable.build(mounts)

    def fork(self) -> Namespace:
        """A new namespace with a copy of this mount table, sharing the services.

        Mounts in the fork do not change this namespace, nor the other way round (Plan 9's
        ``rfork(RFNAMEG)``).
        """
        child = Namespace()
        child._table = self._table
        return child

    @property
    def snapshot(self) -> MountTable:
        """The mount table now. It is immutable and replaced by every change, so two
        reads are the same object (``is``) exactly when nothing was mounted or unmounted
        in between; namespaces mounted in this one are in its ``nested``."""
        return self._table

    def mounts(self) -> list[Mount]:
        """The mount table: mount points in path order, union members in lookup order."""
        table = self._table
        return [m for point in sorted(table.mounts) for m in table.mounts[point]]

    def restore_mounts(self, mounts: list[Mount]) -> None:
        """Replace the whole mount table by ``mounts``, as ``mounts()`` lists them (mount
        points in path order, the members of each union consecutive and in lookup order):
        how a snapshot's table comes back (``oanix.snapshot``).

        Raises:
            InvalidArgument: a path that is not normalised, the members of one mount point
                not consecutive, or a namespace that would contain this one.
        """
        table: dict[str, tuple[Mount, ...]] = {}
        last = None
        for m in mounts:
            if not isinstance(m, Mount) or paths.normalize(m.path) != m.path:
                raise InvalidArgument(f"restore_mounts: {m!r} is not a normalised Mount")
            if m.path in table and m.path != last:
                raise InvalidArgument(f"restore_mounts: the members at {m.path!r} are "
                                      f"not consecutive")
            table[m.path] = (*table.get(m.path, ()), m)
            last = m.path
        with _NESTING_LOCK, self._lock:
            for m in mounts:
                if isinstance(m.service, Namespace) and _reaches(m.service, self):
                    raise InvalidArgument(f"mount at {m.path!r}: the namespace would "
                                          f"contain itself")
            self._table = MountTable.build(table)

    def _attach(self, path: str, new: list[Mount], mode: str) -> None:
        if mode not in _MODES:
            raise InvalidArgument(f"mount mode {mode!r} at {path!r}: use one of {_MODES}")
        nesting = any(isinstance(m.service, Namespace) for m in new)
        with _NESTING_LOCK if nesting else contextlib.nullcontext(), self._lock:
            for m in new:
                if nesting and _reaches(m.service, self):
                    raise InvalidArgument(
                        f"mount at {path!r}: {m.service!r} is this namespace or has it "
                        f"mounted inside, so the namespace would contain itself")
            mounts = dict(self._table.mounts)
            if mode == "replace":
                members = tuple(new)
            else:
                old = mounts.get(path)
                if old is None:
                    old = self._visible_members(path)
                members = (*new, *old) if mode == "before" else (*old, *new)
            mounts[path] = members
            self._table = MountTable.build(mounts)

    def _visible_members(self, path: str) -> tuple[Mount, ...]:
        """What ``path`` shows now, as members, for a union formed at ``path``."""
        try:
            return tuple(Mount(path, m.service, m.root, m.create, m.readonly)
                         for m in self._capture(path))
        except NotFound:
            return ()

    def _capture(self, path: str) -> list[Mount]:
        """The object ``path`` names now, as mount members (with their roots)."""
        table = self._table
        if table.children.get(path):
            # Mount points lie below: capture a frozen view of this whole subtree.
            return [Mount(path, self.fork(), path)]
        hit = table.covering(path)
        if hit is None:
            raise NotFound(path)
        point, members = hit
        if path == point:
            return list(members)
        member = self._member(table, point, members, path, create=False)
        sp = member.service_path(path)
        try:
            member.service._stat(sp)
        except FsError as e:
            raise self._translated(e, member, path) from None
        return [Mount(path, member.service, sp, member.create, member.readonly)]

    # -- routing ----------------------------------------------------------------------------

    @staticmethod
    def _member(table: MountTable, point: str, members: tuple[Mount, ...], path: str,
                create: bool) -> Mount:
        """The union member that serves ``path`` (below or at ``point``)."""
        if len(members) == 1:
            return members[0]
        rest = paths.relative_to(path, point)
        if rest != "/":
            first = "/" + rest[1:].split("/", 1)[0]
            for m in members:
                try:
                    m.service._stat(m.service_path(point + first if point != "/" else first))
                except (NotFound, NotADirectory):
                    continue
                return m
        else:
            for m in members:
                try:
                    m.service._stat(m.root)
                except (NotFound, NotADirectory):
                    continue
                return m
        if create:
            for m in members:
                if m.create:
                    return m
            raise ReadOnly(path, "no member of the union at this mount point takes creates")
        raise NotFound(path)

    def _route(self, path: str, create: bool = False) -> tuple[Mount, str]:
        """The member serving ``path`` and the path inside its service."""
        table = self._table
        hit = table.covering(path)
        if hit is None:
            if create and table.children.get(paths.dirname(path)) is not None:
                raise ReadOnly(path, "no service is mounted here")
            raise NotFound(path)
        point, members = hit
        member = (members[0] if len(members) == 1
                  else self._member(table, point, members, path, create))
        return member, member.service_path(path)

    def _route_write(self, path: str) -> tuple[Mount, str]:
        table = self._table
        if path in table.children or path in table.mounts:
            raise PermissionDenied(path, "is a mount point")
        member, sp = self._route(path, create=True)
        if member.readonly:
            raise ReadOnly(path)
        return member, sp

    @staticmethod
    def _translated(e: FsError, member: Mount, path: str, path2: str | None = None) -> FsError:
        """``e`` naming namespace paths instead of the service's."""
        p1 = member.namespace_path(e.filename) if e.filename is not None else None
        p2 = None
        if e.filename2 is not None:
            p2 = member.namespace_path(e.filename2) or path2
        return e.with_paths(p1 or path, p2)

    def _synthetic(self, path: str, n: int) -> Stat:
        return Stat(paths.basename(path), n, True, 0.0, True)

    # -- primitives ---------------------------------------------------------------------------

    def _stat(self, path: str) -> Stat:
        table = self._table
        kids = table.children.get(path)
        try:
            member, sp = self._route(path)
        except NotFound:
            if kids is not None:
                return self._synthetic(path, len(kids))
            raise
        try:
            st = member.service._stat(sp)
        except FsError as e:
            if kids is not None and isinstance(e, (NotFound, NotADirectory)):
                return self._synthetic(path, len(kids))
            raise self._translated(e, member, path) from None
        if kids and not st.is_dir:
            return self._synthetic(path, len(kids))
        if path in table.mounts or member.readonly:
            return attrs.evolve(st, name=paths.basename(path),
                                readonly=st.readonly or member.readonly)
        return st

    def _listdir(self, path: str) -> list[str]:
        table = self._table
        kids = table.children.get(path)
        names: dict[str, None] = {}
        found = False
        hit = table.covering(path)
        if hit is not None:
            point, members = hit
            if path == point and len(members) > 1:
                for m in members:
                    try:
                        names.update(dict.fromkeys(m.service._listdir(m.root)))
                        found = True
                    except (NotFound, NotADirectory):
                        continue  # Plan 9 skips a member that fails
            else:
                member = None
                try:
                    member = self._member(table, point, members, path, create=False)
                    names.update(dict.fromkeys(member.service._listdir(
                        member.service_path(path))))
                    found = True
                except (NotFound, NotADirectory) as e:
                    if kids is None:
                        if member is None:
                            raise
                        raise self._translated(e, member, path) from None
                except FsError as e:
                    assert member is not None
                    raise self._translated(e, member, path) from None
        if kids is not None:
            names.update(dict.fromkeys(kids))
            found = True
        if not found:
            raise NotFound(path)
        return list(names)

    def _scandir(self, path: str) -> list[Stat]:
        table = self._table
        if path not in table.children:
            hit = table.covering(path)
            if hit is not None and len(hit[1]) == 1:
                member = hit[1][0]
                try:
                    entries = member.service._scandir(member.service_path(path))
                except FsError as e:
                    raise self._translated(e, member, path) from None
                if member.readonly:
                    return [attrs.evolve(st, readonly=True) for st in entries]
                return entries
        return [self._stat(paths.join(path, name)) for name in self._listdir(path)]

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        table = self._table
        if path in table.children:
            raise IsADirectory(path)
        member, sp = self._route(path, create=mode.create)
        if mode.write and member.readonly:
            raise ReadOnly(path)
        try:
            f = member.service._open(sp, mode)
        except FsError as e:
            raise self._translated(e, member, path) from None
        if sp == path:
            return f
        return _NamespacedFile(f, path, lambda e: self._translated(e, member, path))

    def _read_bytes(self, path: str) -> bytes:
        table = self._table
        if path in table.children:
            raise IsADirectory(path)
        member, sp = self._route(path)
        try:
            return member.service._read_bytes(sp)
        except FsError as e:
            raise self._translated(e, member, path) from None

    def _write_bytes(self, path: str, data: bytes) -> None:
        table = self._table
        if path in table.children:
            raise IsADirectory(path)
        member, sp = self._route(path, create=True)
        if member.readonly:
            raise ReadOnly(path)
        try:
            member.service._write_bytes(sp, data)
        except FsError as e:
            raise self._translated(e, member, path) from None

    def _mkdir(self, path: str) -> None:
        table = self._table
        if path in table.children or path in table.mounts:
            raise AlreadyExists(path)
        member, sp = self._route(path, create=True)
        if member.readonly:
            raise ReadOnly(path)
        try:
            member.service._mkdir(sp)
        except FsError as e:
            raise self._translated(e, member, path) from None

    def _remove(self, path: str) -> None:
        member, sp = self._route_existing_for_write(path)
        try:
            member.service._remove(sp)
        except FsError as e:
            raise self._translated(e, member, path) from None

    def _rmdir(self, path: str) -> None:
        member, sp = self._route_existing_for_write(path)
        try:
            member.service._rmdir(sp)
        except FsError as e:
            raise self._translated(e, member, path) from None

    def _route_existing_for_write(self, path: str) -> tuple[Mount, str]:
        table = self._table
        if path in table.children or path in table.mounts:
            raise PermissionDenied(path, "is a mount point")
        member, sp = self._route(path)
        if member.readonly:
            raise ReadOnly(path)
        return member, sp

    def _route_rename_source(self, src: str) -> tuple[Mount, str]:
        try:
            return self._route_existing_for_write(src)
        except NotFound:
            pass
        # A missing src is routed like a create, so that the service, which sees both
        # paths, reports the error POSIX would (an ENOTDIR on dst's side comes first).
        try:
            return self._route_write(src)
        except ReadOnly:
            raise NotFound(src) from None

    def _rename(self, src: str, dst: str) -> None:
        try:
            m1, s1 = self._route_rename_source(src)
            m2, s2 = self._route_write(dst)
        except FsError as e:
            raise e.with_paths(e.filename, dst if e.filename == src else src) from None
        if m1.service is not m2.service:
            raise CrossMount(src, None, dst)
        try:
            m1.service._rename(s1, s2)
        except FsError as e:
            p1 = m1.namespace_path(e.filename) if e.filename else None
            p2 = m2.namespace_path(e.filename2) if e.filename2 else None
            raise e.with_paths(p1 or src, p2 or dst) from None

    # -- presentation ---------------------------------------------------------------------

    def _tree_label(self, path: str, st: Stat) -> str:
        label = super()._tree_label(path, st)
        members = self._table.mounts.get(path)
        if members:
            label += "  [" + " | ".join(_describe(m) for m in members) + "]"
        return label

    def __repr__(self) -> str:
        return f"<Namespace {len(self._table.mounts)} mount points>"


class _NamespacedFile(io.RawIOBase):
    """A service's open file, seen through a namespace: the same io object, whose errors
    (a write over a quota, a close that commits) name the namespace path.

    Locking: none of its own; the wrapped file's rules apply.
    """

    def __init__(self, inner: io.RawIOBase, name: str,
                 translate: Callable[[FsError], FsError]) -> None:
        super().__init__()
        self._f = inner
        self.name = name
        self._translate = translate

    def _do(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except FsError as e:
            raise self._translate(e) from None

    @property
    def mode(self) -> str:
        return str(getattr(self._f, "mode", "rb"))

    def readable(self) -> bool:
        return self._f.readable()

    def writable(self) -> bool:
        return self._f.writable()

    def seekable(self) -> bool:
        return self._f.seekable()

    def read(self, size: int | None = -1) -> bytes:
        return self._do(self._f.read, -1 if size is None else size)

    def readall(self) -> bytes:
        return self._do(self._f.read, -1)

    def readinto(self, b: Any) -> int:
        return self._do(self._f.readinto, b)

    def readline(self, size: int | None = -1) -> bytes:
        return self._do(self._f.readline, -1 if size is None else size)

    def write(self, b: Any) -> int:
        return self._do(self._f.write, b)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._do(self._f.seek, offset, whence)

    def tell(self) -> int:
        return self._do(self._f.tell)

    def truncate(self, size: int | None = None) -> int:
        return self._do(self._f.truncate, size)

    def flush(self) -> None:
        if not self._f.closed:
            self._do(self._f.flush)

    def fileno(self) -> int:
        return self._f.fileno()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._do(self._f.close)
        finally:
            super().close()


def _reaches(service: FileService, target: Namespace) -> bool:
    """Whether ``service`` is ``target`` or has it mounted inside, at any depth (an
    explicit stack over the namespaces mounted in namespaces)."""
    seen: set[int] = set()
    stack = [service]
    while stack:
        s = stack.pop()
        if s is target:
            return True
        if isinstance(s, Namespace) and id(s) not in seen:
            seen.add(id(s))
            stack.extend(s.snapshot.nested)
    return False


def _describe(m: Mount) -> str:
    name = type(m.service).__name__
    if m.root != "/":
        name += f":{m.root}"
    flags = "".join(f for f, on in (("c", m.create), ("ro", m.readonly)) if on)
    return f"{name} {flags}".rstrip()
