"""Namespace <-> preopen sync: show namespace directories to a WASI guest as host dirs.

WASI preopens are host directories, so each preopened namespace subtree is *staged*: copied
into a staging directory (under ``/dev/shm`` when it is writable, else the system temp
dir), preopened, and after the run every change the guest made is written back through
the namespace: new and modified files, deleted files and directories, new directories
(a rename is a delete plus an add; adds are written before deletions, so a rename never
loses content). A change the namespace refuses (``ReadOnly``, ``PermissionDenied``,
``NoSpace``, ...) is reported in ``Changes.refused`` and the staged copy is put back in
line with the namespace by the next sync; nothing is raised past the run. A subtree
preopened read-only is never looked at after the run. When the guest and the host change
one file during the same run, the guest's version is written last and wins.

Incremental: a ``NamespaceStaging`` keeps, per subtree, its staging directory and a
manifest ``{path: staged (size, mtime_ns, inode), sha256, namespace (size, mtime)}``, so a
later run copies only what changed on either side since the last one:

* Namespace side. Unless the change journal below can tell, every run walks the
  subtree's stats (through the one service behind it
  when nothing else is mounted below). A file whose namespace size and mtime are
  unchanged is trusted, unless its mtime was not safely older than the moment it was
  last checked (the racy-git rule: within 50 ms, or 2 s for whole-second mtimes, or
  always for a service with no clock, mtime 0; a service that declares
  ``mtime_resolution`` gets twice that, at least 1 ms); then its
  content is read and compared by sha256, so a same-size rewrite in the same clock tick
  as the last sync is still seen. The service's clock is assumed to be the host's. Files of
  ``is_computed`` services (FuncFs) are read on every run; a file that cannot be read
  (``PermissionDenied``: a write-only control file) is staged empty, so the guest can
  write it and the write-back hands the bytes to the service (``write_bytes``).
* Change journal. When the one service behind a subtree keeps a change journal
  (``generation`` and ``changed_since``: MemFs, CowFs over MapFs or MemFs, MapFs) and
  computes none of its files, only the paths it names since the subtree's last sync are
  re-synced (a directory among them is walked, a vanished path dropped), with no walk of
  the rest; the generation is read before anything else, so a concurrent change is seen
  by this sync or the next. When the journal cannot tell (it overflowed, a file opened
  before a rename was written, the subtree's root or an ancestor changed) the full walk
  above runs. The write-back follows the journal too: a change counts as its own (not
  read back by the next sync) only when the journal moved by exactly one entry naming
  that path during its call; every other change since the sync, including a host's
  made during the run, and every refused path, is re-synced by the next sync.
* Guest side. Every staged file gets an mtime at least one second in the past
  (``min(namespace mtime, now - 1 s)``) when it is written or re-checked, so any write by
  the guest moves its mtime (or size, or inode); files whose stat changed are compared by
  sha256 and written back only when their content differs. Which files to look at comes
  from inotify (``oanix.wasi._inotify``): only the entries the guest created, wrote,
  deleted or renamed; a whole-tree scan is the fallback (no inotify, a queue overflow, a
  directory created, deleted or moved). A guest that deliberately resets an mtime after
  writing can hide its own change; that only loses its own write.

The guest's root (``oanix.wasi.rootview``): the staged writable subtrees that no other
preopen contains live under one directory preopened at ``/``, so a guest lists the
namespace's top level with ``ls /``; the other preopens keep their own, with placeholder
directories in the root. What the guest does to the root itself (writing beside the
mounts, moving or removing a mount's directory) is undone after the run and reported.

Not copied: a WorkspaceFs mount (a service with ``host_path``) that covers a whole
preopen, or is mounted below one with nothing else mounted below it, is preopened directly
at its guest path (wasi-libc picks the longest matching preopen), with an empty
placeholder directory in the staged parent. Its changes are reported from a stat walk
(size, mtime, inode) before and after the run, skipped when the tree has more than
``scan_limit`` entries; a same-size rewrite within one mtime tick may go unreported there
(the files are live, so nothing is lost).

Symlinks or special files created by the guest in a staging directory are never
followed: they are reported as refused and removed. Every host access below a staging
directory is resolved from the descriptor the host holds of it, component by component
with no-follow opens (``oanix._beneath``), so a link swapped in for a directory at any
moment is refused by the kernel, not followed out of the sandbox. Symlinks the guest
makes in a host directory preopened as it is (in directories it made too) are removed
after the run, each relative to its directory's descriptor with no link followed, and
reported as refused; the host's own links there are left alone.

Depth: staged paths are host paths, so a namespace tree whose staged path would pass
``HOST_PATH_MAX`` bytes (about 2,000 levels of one-letter names) is refused with
``NameTooLong`` naming it, before the guest starts; what a guest nests deeper itself is
reported as refused. Staging directories are removed without recursion at any depth
(``oanix._rmtree.remove_tree``).

Only the sync and the guest write in a staging directory. With inotify, a staged copy
changed in any way between runs (by another host process) is copied afresh by the next
sync; the check costs one ioctl when nothing happened. Without inotify, only a staging
directory removed altogether is noticed.

The plan (what to preopen, what is copied, what is shown directly) is cached per
namespace and rebuilt when the mount tables (through nested namespaces) or the preopen
spec change.

Locking: a NamespaceStaging is used under its namespace's lock (``namespace_lock``), which
every run over that namespace holds from sync-in to write-back; so runs over one
namespace are serialised and runs over different namespaces proceed in parallel.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat as stat_mod
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, Protocol, TypeVar

import attrs

from ... import paths
from ..._beneath import (
    links_beneath,
    lstat_beneath,
    open_beneath,
    open_dir_beneath,
    parent_beneath,
    remove_beneath,
    unlink_link_beneath,
    walk_beneath,
)
from ..._rmtree import remove_tree
from ...changes import Changes
from ...errors import (
    BadFileMode,
    FsError,
    InvalidArgument,
    NameTooLong,
    NotADirectory,
    NotFound,
    PermissionDenied,
    Unsupported,
    WasiError,
)
from ...namespace import Mount, Namespace
from ...service import FileService, Stat
from .._inotify import DirWatch
from ..quota import DiskArea, DiskMeter, Quota, sum_quotas
from ..rootview import RootLayout, plan_root, top_level
from ..run import Preopen

__all__ = ["NamespaceLock", "NamespaceStaging", "PreparedPreopen", "Staged", "namespace_lock",
           "staging_root"]

_RACY_WINDOW: Final = 0.05
_RACY_WINDOW_COARSE: Final = 2.0
_RACY_WINDOW_MIN: Final = 0.001
_STAMP_AGE_NS: Final = 1_000_000_000
_T = TypeVar("_T")
_MAX_NESTING: Final = 16  # namespaces mounted in namespaces: deeper is taken as a leaf
_OPEN_WRITE: Final = (os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
                      | getattr(os, "O_CLOEXEC", 0))
_OPEN_READ: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
DEFAULT_SCAN_LIMIT: Final = 10_000
_CTIME_SLACK_NS: Final = 20_000_000  # file times come from a clock that may lag a tick
#: The longest host path a staged file may have (Linux's PATH_MAX less its NUL): a deeper
#: namespace tree cannot be staged and the run raises ``NameTooLong`` naming it.
HOST_PATH_MAX: Final = 4095


def staging_root() -> str:
    """``/dev/shm`` when it exists and is writable, else ``tempfile.gettempdir()``."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


# -- the per-namespace lock, shared by every runtime -----------------------------------------

class NamespaceLock:
    """Serialises the runs over one namespace; refuses a nested run in the same thread.

    A run over a namespace may call back into a service of that namespace (a FuncFs
    write-file gets the guest's bytes); if that callback started another run over the
    same namespace it would wait for itself forever, so that raises ``WasiError`` instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None

    def __enter__(self) -> NamespaceLock:
        me = threading.get_ident()
        if self._owner == me:
            raise WasiError("a run over this namespace is already in progress in this "
                            "thread (a run started from a callback of its own run)")
        self._lock.acquire()
        self._owner = me
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, timeout: float) -> bool:
        """Take the lock if it comes free within ``timeout`` seconds (for a caller that
        must not wait for ever on a stuck run); ``release`` it after."""
        if not self._lock.acquire(timeout=timeout):
            return False
        self._owner = threading.get_ident()
        return True

    def release(self) -> None:
        self._owner = None
        self._lock.release()


_locks_guard = threading.RLock()  # re-entrant: a GC callback (_drop_lock) may take it
_locks: dict[int, tuple[weakref.ref[object] | None, NamespaceLock]] = {}


def namespace_lock(ns: object) -> NamespaceLock:
    """The lock that serialises runs over ``ns`` (one per namespace object, process-wide)."""
    key = id(ns)
    with _locks_guard:
        hit = _locks.get(key)
        if hit is not None and (hit[0] is None or hit[0]() is ns):
            return hit[1]
        lock = NamespaceLock()
        try:
            ref: weakref.ref[object] | None = weakref.ref(ns, functools.partial(_drop_lock, key))
        except TypeError:
            ref = None
        _locks[key] = (ref, lock)
        return lock


def _drop_lock(key: int, _ref: object = None) -> None:
    with _locks_guard:
        hit = _locks.get(key)
        if hit is not None and hit[0] is not None and hit[0]() is None:
            del _locks[key]


# -- what the mount table says ---------------------------------------------------------------


@attrs.frozen
class _Member:
    service: FileService
    root: str
    readonly: bool

    @property
    def writable(self) -> bool:
        return not (self.readonly or getattr(self.service, "readonly", False))

    @property
    def computed(self) -> bool:
        return bool(getattr(self.service, "is_computed", False))

    @property
    def host_dir(self) -> str | None:
        """The host directory behind this member when its service is a host directory."""
        host = getattr(self.service, "host_path", None)
        if not isinstance(host, str) or getattr(self.service, "closed", False):
            return None
        return os.path.join(host, self.root.lstrip("/")) if self.root != "/" else host


def _mount_table(ns: FileService) -> dict[str, list[_Member]]:
    """The mounts of ``ns`` as ``{namespace path: members}``, through nested namespaces."""
    table: dict[str, list[_Member]] = {}
    _flatten(ns, "/", "/", False, table, 0)
    return table


def _flatten(service: FileService, base: str, root: str, readonly: bool,
             table: dict[str, list[_Member]], depth: int) -> None:
    if not isinstance(service, Namespace) or depth > _MAX_NESTING:
        table.setdefault(base, []).append(_Member(service, root, readonly))
        return
    covering: list[Mount] = []
    cover_path = ""
    inner: list[Mount] = []
    for m in service.mounts():
        if paths.is_within(m.path, root):
            inner.append(m)
        elif paths.is_within(root, m.path) and len(m.path) >= len(cover_path):
            if len(m.path) > len(cover_path):
                covering = []
            cover_path = m.path
            covering.append(m)
    for m in covering:
        _flatten(m.service, base, m.service_path(root), readonly or m.readonly, table,
                 depth + 1)
    for m in inner:
        at = paths.join(base, paths.relative_to(m.path, root))
        _flatten(m.service, at, m.root, readonly or m.readonly, table, depth + 1)


def _nearest(table: Mapping[str, _T], path: str) -> _T | None:
    """The value of the longest path in ``table`` at or above ``path``, or None."""
    p = path
    while True:
        hit = table.get(p)
        if hit is not None:
            return hit
        if p == "/":
            return None
        p = paths.dirname(p)


def _covering(table: Mapping[str, list[_Member]], path: str) -> list[_Member]:
    members = _nearest(table, path)
    return [] if members is None else members


def _below(table: Mapping[str, list[_Member]], path: str) -> list[str]:
    """Mount points strictly below ``path``."""
    return [p for p in table if p != path and paths.is_within(p, path)]


# -- plans --------------------------------------------------------------------------------------


@attrs.frozen
class PreparedPreopen:
    """One directory handed to wasmtime: ``host`` shown at ``guest``."""

    host: str
    guest: str
    writable: bool


@attrs.frozen
class _Source:
    """The one service behind a whole staged subtree (nothing mounted below it)."""

    service: FileService
    sroot: str  # the subtree's path in the service
    computed: bool  # every file is computed (FuncFs): read on every sync
    window: float | None  # its racy window (``_clock_window``)
    journal: _Journaled | None  # the service, when its change journal can be used


@attrs.frozen
class _Plan:
    ns_path: str
    guest: str
    writable: bool
    direct: str | None  # host directory to preopen as is (a WorkspaceFs)
    exclude: frozenset[str] = frozenset()  # relative paths preopened separately
    source: _Source | None = None  # walked through the one service behind it
    quota: Quota = (None, None)  # what the services behind it hold at most (bytes, files)


def _default_roots(ns: FileService) -> dict[str, Preopen]:
    roots: dict[str, Preopen] = {}
    for st in ns.scandir("/"):
        if st.is_dir:
            p = "/" + st.name
            roots[p] = Preopen(p, None)
    return roots


def plan_preopens(ns: FileService, spec: Mapping[str, Preopen] | None,
                  table: Mapping[str, list[_Member]] | None = None) -> list[_Plan]:
    """What to preopen for ``ns``: the staged subtrees and the host dirs shown directly.

    Raises the namespace's FsError when a preopen is missing, NotADirectory when it is a
    file.
    """
    roots = _default_roots(ns) if spec is None else dict(spec)
    if table is None:
        table = _mount_table(ns)
    plans: list[_Plan] = []
    taken = {s.guest for s in roots.values() if s.guest is not None}
    for ns_path, pre in sorted(roots.items()):
        guest = pre.guest if pre.guest is not None else ns_path
        st = ns.stat(ns_path)
        if not st.is_dir:
            raise NotADirectory(ns_path, "a preopen must be a directory")
        below = _below(table, ns_path)
        covering = _covering(table, ns_path)
        members = covering + [m for p in below for m in table[p]]
        auto_writable = any(m.writable for m in members) if members else not st.readonly
        writable = auto_writable if pre.writable is None else pre.writable
        # Other preopens below this one are shown apart, and excluded from its copy.
        apart = [r for r in roots if r != ns_path and paths.is_within(r, ns_path)]
        unhandled = [p for p in below if not any(paths.is_within(p, r) for r in apart)]
        direct = _direct_host(table, ns_path, covering, unhandled)
        if direct is not None:
            # Shown as is, so never more writable than the mount: nothing would refuse.
            plans.append(_Plan(ns_path, guest, covering[0].writable and pre.writable
                               is not False, direct))
            continue
        for point in below:
            members_at = table[point]
            host = members_at[0].host_dir if len(members_at) == 1 else None
            if (host is None or _below(table, point) or not _is_real_dir(host)
                    or any(paths.is_within(point, r) for r in apart)):
                continue
            sub_guest = paths.join(guest, paths.relative_to(point, ns_path))
            if sub_guest in taken:
                continue
            taken.add(sub_guest)
            apart.append(point)
            sub_writable = members_at[0].writable and pre.writable is not False
            plans.append(_Plan(point, sub_guest, sub_writable, host))
        exclude = frozenset(paths.relative_to(r, ns_path)[1:] for r in apart)
        source = None
        if len(covering) == 1 and not below:
            m = covering[0]
            point = next(p for p in table if table[p] is covering)
            rel = paths.relative_to(ns_path, point)
            sroot = m.root if rel == "/" else paths.join(m.root, rel)
            source = _Source(m.service, sroot, m.computed, _clock_window(m.service),
                             None if m.computed else _journal_of(m.service))
        plans.append(_Plan(ns_path, guest, writable, None, exclude, source,
                           sum_quotas(m.service for m in members)))
    return plans


def _plan_key(ns: FileService, spec: Mapping[str, Preopen] | None
              ) -> tuple[object, object, object]:
    """What a plan depends on: the mount tables (through nested namespaces), the preopen
    spec, and the root's directories when a service is mounted at the root. Cheap when
    nothing changed: tables are compared by identity."""
    roots = None
    if spec is None and (not isinstance(ns, Namespace) or "/" in ns.snapshot.mounts):
        roots = tuple(sorted(st.name for st in ns.scandir("/") if st.is_dir))
    return (None if spec is None else tuple(sorted(spec.items())), _tables(ns, 0), roots)


def _tables(ns: FileService, depth: int) -> object:
    """The mount tables of ``ns`` and of the namespaces mounted in it."""
    if not isinstance(ns, Namespace) or depth > _MAX_NESTING:
        return ns
    table = ns.snapshot
    if not table.nested:
        return table
    return (table, *(_tables(inner, depth + 1) for inner in table.nested))


def _direct_host(table: Mapping[str, list[_Member]], ns_path: str,
                 covering: list[_Member], below: list[str]) -> str | None:
    if len(covering) != 1 or below:
        return None
    m = covering[0]
    host = m.host_dir
    if host is None:
        return None
    point = next(p for p in table if table[p] is covering)
    rel = paths.relative_to(ns_path, point)
    path = host if rel == "/" else os.path.join(host, rel.lstrip("/"))
    return path if _is_real_dir(path) else None


def _is_real_dir(path: str) -> bool:
    """Whether ``path`` is a directory reached without any symlink."""
    try:
        return os.path.realpath(path) == os.path.normpath(path) and os.path.isdir(path)
    except OSError:
        return False


# -- the manifest ----------------------------------------------------------------------------


def _clock_window(service: FileService) -> float | None:
    """How close to a sync a namespace mtime of ``service`` must be to be racy, when the
    service says how fine its clock is (``mtime_resolution``, seconds); None: unknown.
    """
    res = getattr(service, "mtime_resolution", None)
    if isinstance(res, int | float) and not isinstance(res, bool) and res >= 0:
        return max(2.0 * res, _RACY_WINDOW_MIN)
    return None


def _is_racy(ns_mtime: float, checked: float, window: float | None = None) -> bool:
    """Whether a namespace mtime was too close to the moment it was seen to vouch for the
    content (racy-git): a same-size rewrite in the same clock tick would keep it. The
    window is the service's (``_clock_window``), else 50 ms, or 2 s for whole seconds."""
    if ns_mtime == 0 or ns_mtime != ns_mtime:
        return True
    if window is None:
        window = _RACY_WINDOW_COARSE if ns_mtime == int(ns_mtime) else _RACY_WINDOW
    return ns_mtime + window > checked


@attrs.define
class _FileRec:
    size: int  # staged copy, as left by the last sync
    mtime_ns: int
    ino: int
    digest: bytes
    ns_size: int  # namespace side, as seen at ``checked``
    ns_mtime: float
    racy: bool  # the namespace stat alone cannot vouch for the content

    def seen(self, ns_size: int, ns_mtime: float, checked: float,
             window: float | None) -> None:
        self.ns_size, self.ns_mtime = ns_size, ns_mtime
        self.racy = _is_racy(ns_mtime, checked, window)


class _Journaled(Protocol):
    """A service with a change journal (MemFs, CowFs, MapFs)."""

    @property
    def generation(self) -> int: ...

    def changed_since(self, generation: int) -> list[str] | None: ...


def _journal_of(service: FileService) -> _Journaled | None:
    """``service`` when it keeps a change journal, else None."""
    if not isinstance(getattr(service, "generation", None), int) or not callable(
            getattr(service, "changed_since", None)):
        return None
    return service  # type: ignore[return-value]


def _journal_rels(sub: _Subtree, sroot: str, changed: Iterable[str]) -> set[str] | None:
    """The subtree-relative paths among the service paths ``changed`` (those outside the
    subtree, or inside a directory preopened apart, are left out); None when the change
    needs a full walk: the subtree's root, an ancestor, or a directory preopened apart
    (or an ancestor of one) changed."""
    out: set[str] = set()
    apart = [paths.join("/", x) for x in sub.exclude]
    for p in changed:
        if not paths.is_within(p, sroot):
            if paths.is_within(sroot, p):
                return None
            continue
        r = paths.relative_to(p, sroot)
        if r == "/":
            return None
        for x in apart:
            if paths.is_within(x, r):
                return None
            if paths.is_within(r, x):
                break
        else:
            out.add(r[1:])
    return out


@attrs.define(eq=False)
class _Cursor:
    """Where a subtree's one service stood in its journal when the subtree was synced."""

    service: FileService
    sroot: str
    gen: int
    pending: set[str] = attrs.field(factory=set)  # paths to re-sync besides the journal's


class _Tracker:
    """Follows the journal of a subtree's service through a write-back, to tell the
    write-back's own changes (not to be read back by the next sync) from the host's
    (which the next sync must see, even when made concurrently with the write-back).

    Every change up to ``cursor`` is either in ``pending`` or known to be the write-back's
    own; a change is known to be its own only when the journal moved by exactly one entry,
    naming the path written, during the write-back's call. ``pending`` None: lost track.
    """

    def __init__(self, journal: _Journaled, sroot: str, gen: int) -> None:
        self.journal = journal
        self.sroot = sroot
        self.cursor = gen
        self.pending: set[str] | None = set()

    def _catch_up(self) -> int | None:
        """Read the generation, then add every change since the cursor to ``pending``."""
        if self.pending is None:
            return None
        gen = self.journal.generation
        changed = self.journal.changed_since(self.cursor)
        if changed is None:
            self.pending = None
            return None
        self.pending.update(changed)
        return gen

    @contextlib.contextmanager
    def own(self, rel: str) -> Iterator[None]:
        """Around one change of ``rel`` made by the write-back."""
        before = self._catch_up()
        if before is None:
            yield
            return
        self.cursor = before
        yield  # an exception leaves the cursor before the call: nothing is claimed
        after = self.journal.generation
        if after == before + 1 and self.journal.changed_since(before) == [
                paths.join(self.sroot, rel)]:
            self.cursor = after

    def finish(self) -> tuple[int, set[str]] | None:
        """The generation to record and the changes (service paths) not the write-back's
        own since the sync; None when that cannot be told."""
        gen = self._catch_up()
        if gen is None or self.pending is None:
            return None
        return gen, self.pending


@attrs.define(eq=False)
class _Subtree:
    ns_root: str
    host: str
    files: dict[str, _FileRec] = attrs.field(factory=dict)
    dirs: set[str] = attrs.field(factory=set)
    exclude: frozenset[str] = frozenset()
    watched: frozenset[str] | None = None  # the dirs the DirWatch covers, None: none
    journal: _Cursor | None = None  # where the namespace side stood at the last sync
    tracking: _Tracker | None = None  # during a write-back
    ino: int = 0  # the staging directory's inode (a root member's is checked after a run)
    quota: Quota = (None, None)  # its plan's
    write_limit: int | None = None  # the write-back refuses a staged file larger than this
    _anchor: int = -1  # a descriptor that keeps ``ino`` from being reused while we look
    _preopen: PreparedPreopen | None = None

    def preopen(self, guest: str, writable: bool) -> PreparedPreopen:
        """This staged copy shown at ``guest`` (kept: most runs ask for the same)."""
        p = self._preopen
        if p is None or p.guest != guest or p.writable != writable:
            p = self._preopen = PreparedPreopen(self.host, guest, writable)
        return p

    def host_path(self, rel: str) -> str:
        """Where ``rel`` is staged. Raises NameTooLong past the host's path length."""
        if not rel:
            return self.host
        host = os.path.join(self.host, rel)
        if len(host) > HOST_PATH_MAX // 4 and len(os.fsencode(host)) > HOST_PATH_MAX:
            raise NameTooLong(self.ns_path(rel), f"too deep to stage for a wasm guest: its "
                              f"host path would pass {HOST_PATH_MAX} bytes")
        return host

    @property
    def root(self) -> int:
        """The staging directory's descriptor: every host access below it is resolved
        from here, never through a link (``oanix._beneath``)."""
        return self._anchor

    def ns_path(self, rel: str) -> str:
        return paths.join(self.ns_root, rel) if rel else self.ns_root

    def reset(self) -> None:
        self.files.clear()
        self.dirs.clear()
        self.watched = None
        self.journal = None
        self.tracking = None
        parent, name = os.path.split(self.host)
        remove_beneath(parent, name)  # a link in its place goes, never what it names
        os.makedirs(self.host, mode=0o700, exist_ok=True)
        self.anchor()

    def anchor(self) -> None:
        """Hold the staging directory as it is now: its inode, kept from reuse by an
        open descriptor (a guest that removes it cannot have a new one take its number).
        A link in its place is refused (OSError), never anchored."""
        self.drop()
        self._anchor = os.open(self.host, getattr(os, "O_PATH", os.O_RDONLY)
                               | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.ino = os.fstat(self._anchor).st_ino

    def drop(self) -> None:
        """Let go of the staging directory's descriptor."""
        if self._anchor >= 0:
            with contextlib.suppress(OSError):
                os.close(self._anchor)
            self._anchor = -1


@attrs.define
class Staged:
    """The preopens of one run and what the write-back needs to know about them."""

    preopens: list[PreparedPreopen]
    subtrees: list[tuple[_Subtree, bool]]  # (subtree, writable)
    direct: list[tuple[_Plan, dict[str, tuple[bool, int, int, int]] | None]]
    root: RootLayout | None = None  # the guest's root, when it holds members


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _stamp(ns_mtime: float, now_ns: int) -> int:
    """The mtime given to a staged file: the namespace's, but at least 1 s in the past."""
    want = int(ns_mtime * 1e9) if ns_mtime == ns_mtime else 0
    return min(want, now_ns - _STAMP_AGE_NS)


def _write_file(root: int, rel: str, data: bytes, mtime_ns: int) -> os.stat_result:
    """Write staged file ``rel`` below the directory ``root``, never through a link."""
    fd = open_beneath(root, rel, _OPEN_WRITE, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.utime(fd, ns=(mtime_ns, mtime_ns))
        return os.fstat(fd)
    finally:
        os.close(fd)


def _read_file(root: int, rel: str) -> bytes:
    """Read staged file ``rel`` below the directory ``root``, never through a link."""
    fd = open_beneath(root, rel, _OPEN_READ)
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise IsADirectoryError(rel)
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _reason(e: BaseException) -> str:
    if isinstance(e, FsError):
        return f"{type(e).__name__}: {e.strerror}"
    if isinstance(e, OSError):
        return f"{type(e).__name__}: {e.strerror or e}"
    return f"{type(e).__name__}: {e}"


_NO_CHANGES: Final = Changes()


class _ChangeLog:
    def __init__(self) -> None:
        self.added: list[str] = []
        self.modified: list[str] = []
        self.deleted: list[str] = []
        self.refused: list[tuple[str, str]] = []

    def result(self) -> Changes:
        if not (self.added or self.modified or self.deleted or self.refused):
            return _NO_CHANGES
        return Changes(tuple(sorted(set(self.added))), tuple(sorted(set(self.modified))),
                       tuple(sorted(set(self.deleted))),
                       tuple(sorted(set(self.refused))))


# -- staging -------------------------------------------------------------------------------


class NamespaceStaging:
    """The staging directories and manifests of one namespace, kept between runs.

    ``base`` is this namespace's own directory (deleted by ``close``). ``watch=False``
    scans every staged tree after each run instead of asking inotify what the guest
    touched. Use it under ``lock``, the namespace's (``namespace_lock(ns)``); see the
    module docstring.
    """

    def __init__(self, ns: FileService, base: str, scan_limit: int = DEFAULT_SCAN_LIMIT,
                 watch: bool = True) -> None:
        self._ns_ref = weakref.ref(ns) if _weakrefable(ns) else None
        self._ns_strong = None if self._ns_ref is not None else ns
        self.lock = namespace_lock(ns)  # hold it around prepare ... collect
        self.closed = False
        self.base = base
        self.scan_limit = scan_limit
        self._subtrees: dict[str, _Subtree] = {}
        self._watch = DirWatch(enabled=watch)
        self._plan_key: tuple[object, object, object] | None = None
        self._plans: list[_Plan] | None = None
        self._direct_dirs: list[str] = []  # host dirs preopened as they are
        self._plain_table: object = None
        self._computed: Callable[[str], bool] = _never
        self._root: RootLayout | None = None
        self._root_watched = False  # whether the DirWatch covers the root's scaffold
        self._members: frozenset[str] = frozenset()  # namespace paths of its members
        self._root_preopen: PreparedPreopen | None = None
        # The Staged of the last run, while nothing in it needs a sync (``_keep_steady``).
        self._steady: Staged | None = None
        self._steady_plans: list[_Plan] | None = None
        self._steady_checks: list[tuple[_Journaled, _Subtree]] = []
        self._meter_key: tuple[int, int | None, int | None] | None = None
        self._direct_since = 0  # when the last sync of a writable host dir began (ns)
        self._meter_areas: tuple[DiskArea, ...] = ()  # the disk areas of ``_steady``

    def _ns(self) -> FileService:
        ns = self._ns_ref() if self._ns_ref is not None else self._ns_strong
        if ns is None:
            raise InvalidArgument("the namespace is gone")
        return ns

    def close(self) -> None:
        """Delete every staging directory; later runs raise ``WasiError``."""
        self.closed = True
        for sub in self._subtrees.values():
            sub.drop()
        self._subtrees.clear()
        self._watch.close()
        remove_tree(self.base)

    def abandon(self, why: str) -> Changes:
        """Give up the staged copies of a run whose guest may still be writing in them
        (it could not be shown stopped): the staging directories are moved aside at once
        (a rename: the guest's descriptors follow them, nothing it writes appears where
        the next run stages) and deleted; no change is read back, and the next ``prepare``
        stages everything afresh. The changes report ``/`` refused with ``why``."""
        for sub in self._subtrees.values():
            self._watch.forget(sub)
            sub.drop()
        if self._root is not None:
            self._watch.forget(self._root)
        self._subtrees.clear()
        self._plan_key = self._plans = self._root = self._root_preopen = None
        self._root_watched = False
        self._members = frozenset()
        self._steady = self._steady_plans = None
        self._steady_checks = []
        aside = f"{self.base}.abandoned-{os.getpid()}-{id(self):x}-{time.monotonic_ns()}"
        with contextlib.suppress(OSError):
            os.rename(self.base, aside)
            remove_tree(aside)
        os.makedirs(self.base, mode=0o700, exist_ok=True)
        return Changes(refused=(("/", f"{why}: its changes are not written back"),))

    # -- before the run ----------------------------------------------------------------------

    def prepare(self, spec: Mapping[str, Preopen] | None) -> Staged:
        """Sync the namespace into the staging dirs and return the preopens of one run.

        Raises the namespace's FsError when a preopen does not exist or is not a
        directory.
        """
        if self.closed:
            raise WasiError("the runtime is closed")
        ns = self._ns()
        self._check_copies()
        plans = self._plan(ns, spec)
        if plans is self._steady_plans and self._in_line():
            assert self._steady is not None
            return self._steady  # the usual case: nothing to sync, the same preopens
        root = self._root
        staged = Staged([], [], [], root)
        quiet = True  # nothing written into the staging dirs: no events of ours to drain
        if root is not None:
            assert self._root_preopen is not None
            staged.preopens.append(self._root_preopen)
            if not self._root_watched:
                quiet = False
                self._watch_root(root)
        for plan in plans:
            if plan.direct is not None:
                if plan.writable:
                    self._direct_since = time.time_ns()
                before = self._scan_direct(plan.direct) if plan.writable else None
                staged.direct.append((plan, before))
                staged.preopens.append(PreparedPreopen(plan.direct, plan.guest, plan.writable))
                continue
            sub = self._subtree(plan.ns_path)
            sub.exclude = plan.exclude
            sub.quota = plan.quota
            try:
                in_line = self._sync_in(ns, sub, plan)
            except FsError:
                raise
            except OSError:  # the staging dir was tampered with: copy afresh
                sub.reset()
                try:
                    in_line = self._sync_in(ns, sub, plan)
                except OSError as e:  # still changing under us: the run does not start
                    sub.reset()
                    raise WasiError(f"the staging directory of {plan.ns_path} keeps "
                                    f"changing: {e.strerror or e}") from None
            if not in_line or sub.watched is None:
                quiet = False
                self._rewatch(sub)
            staged.subtrees.append((sub, plan.writable))
            if root is None or plan.ns_path not in self._members:
                staged.preopens.append(sub.preopen(plan.guest, plan.writable))
        if not quiet:
            self._watch.drain()  # what the sync itself wrote is not the guest's
        self._keep_steady(plans, staged)
        return staged

    def _keep_steady(self, plans: list[_Plan], staged: Staged) -> None:
        """Keep ``staged`` for the next runs when each of its copies is checked by its
        service's journal alone (and nothing is shown directly, which is scanned per run):
        then ``_in_line`` tells in a few attribute reads that nothing is to be done."""
        checks: list[tuple[_Journaled, _Subtree]] = []
        for plan, (sub, _) in zip((p for p in plans if p.direct is None), staged.subtrees,
                                  strict=True):
            if plan.source is None or plan.source.journal is None:
                break
            checks.append((plan.source.journal, sub))
        if staged.direct or len(checks) != len(staged.subtrees):
            self._steady_plans, self._steady = None, None
        else:
            self._steady_plans, self._steady, self._steady_checks = plans, staged, checks

    def _in_line(self) -> bool:
        """Whether every staged copy of the kept ``Staged`` is in line and watched."""
        if self._root is not None and not self._root_watched:
            return False
        for journal, sub in self._steady_checks:
            last = sub.journal
            if (last is None or last.pending or sub.watched is None
                    or journal.generation != last.gen):
                return False
        return True

    def _check_copies(self) -> None:
        """Start afresh the staged copies changed since the last run: nothing but the sync
        and the guest may write there. Watched copies cost one ioctl when untouched (the
        usual case); unwatched ones are only checked for being there at all, and an
        unwatched root is put back as its layout says."""
        subs = self._subtrees.values()
        if not subs:
            return
        root = self._root
        if all(sub.watched is not None for sub in subs) and (
                root is None or self._root_watched):
            if self._watch.pending():
                report = self._watch.report()
                for sub in subs:
                    if report.get(sub) != set():
                        sub.reset()
                if root is not None and report.get(root) != set():
                    for ns_path in self._repair_root(root, None):
                        self._subtrees[ns_path].reset()  # what it held is unknown
        else:
            if not os.path.isdir(self.base):
                for sub in subs:
                    sub.reset()
            if root is not None:  # unwatched: looked at before every run
                root.build()
                for ns_path in self._repair_root(root, None):
                    self._subtrees[ns_path].reset()

    def _plan(self, ns: FileService, spec: Mapping[str, Preopen] | None) -> list[_Plan]:
        if (spec is None and self._plans is not None and not self._direct_dirs
                and isinstance(ns, Namespace) and ns.snapshot is self._plain_table):
            return self._plans  # the usual case: nothing mounted or unmounted since
        key = _plan_key(ns, spec)
        plans = self._plans
        if (plans is None or key != self._plan_key
                or not all(_is_real_dir(d) for d in self._direct_dirs)):
            table = _mount_table(ns)
            plans = plan_preopens(ns, spec, table)
            self._plans, self._plan_key = plans, key
            self._direct_dirs = [p.direct for p in plans if p.direct is not None]
            # A key that is this one table alone: identity says all (see the fast path).
            self._plain_table = key[1] if key[0] is None and key[2] is None else None
            self._computed = _computed_lookup(table)
            os.makedirs(self.base, mode=0o700, exist_ok=True)
            self._lay_out_root(plans)
            used = {p.ns_path for p in plans if p.direct is None}
            for ns_path in [p for p in self._subtrees if p not in used]:
                self._drop(self._subtrees.pop(ns_path))  # no longer preopened
        return plans

    def _lay_out_root(self, plans: list[_Plan]) -> None:
        """The guest's root for ``plans`` (see ``oanix.wasi.rootview``): its members are
        the writable staged preopens that no other preopen contains. A staged copy whose
        directory moves (into the root, out of it, or within it) is dropped and made
        afresh."""
        tops = set(top_level(p.guest for p in plans))
        members = [(p.guest, p.ns_path) for p in plans
                   if p.direct is None and p.writable and p.guest in tops]
        others = [p.guest for p in plans if p.guest in tops
                  and not (p.direct is None and p.writable)]
        root = None
        if "/" not in tops:
            root = plan_root(os.path.join(self.base, "root"), members, others)
        if self._root is not None:
            self._watch.forget(self._root)
        self._root, self._root_watched = root, False
        self._members = frozenset(root.members.values()) if root is not None else frozenset()
        for ns_path, sub in list(self._subtrees.items()):
            if sub.host != self._host_of(ns_path):
                self._drop(self._subtrees.pop(ns_path))
        if root is None:
            remove_tree(os.path.join(self.base, "root"))
            return
        self._root_preopen = PreparedPreopen(root.host, "/", root.writable)
        root.build()
        self._repair_root(root, None)  # what the previous layout left there

    def _drop(self, sub: _Subtree) -> None:
        """Forget a staged copy and delete it."""
        self._watch.forget(sub)
        sub.drop()
        remove_tree(sub.host)

    def _host_of(self, ns_path: str) -> str:
        """Where the staged copy of ``ns_path`` lives: in the root for a member."""
        root = self._root
        if root is not None and ns_path in self._members:
            return next(root.host_path(rel) for rel, ns in root.members.items()
                        if ns == ns_path)
        return os.path.join(self.base, hashlib.sha256(ns_path.encode()).hexdigest()[:16])

    def _watch_root(self, root: RootLayout) -> None:
        self._root_watched = self._watch.available and self._watch.watch(
            root, {rel: root.host_path(rel) for rel in ("", *root.scaffold)})

    def _repair_root(self, root: RootLayout, log: _ChangeLog | None) -> set[str]:
        """Put the root back after a run (or a change between runs, when ``log`` is
        None); the members whose directories were moved back or made anew."""
        members = {rel: self._subtrees[ns] for rel, ns in root.members.items()
                   if ns in self._subtrees}
        self._root_watched = False
        try:
            refused, touched = root.repair({rel: sub.ino for rel, sub in members.items()})
        except OSError as e:  # not expected: start the root afresh, dropping its copies
            if log is not None:
                log.refused.append(("/", f"the guest's root could not be put back "
                                         f"({_reason(e)}): its changes are dropped"))
            remove_tree(root.host)
            root.build()
            for sub in members.values():
                sub.reset()  # an empty manifest: the write-back finds nothing to do
            return set()
        if log is not None:
            log.refused.extend(refused)
        out = set()
        for rel in touched & members.keys():
            moved = members[rel]
            moved.anchor()
            moved.watched = None  # watch it afresh; its contents are scanned in full
            out.add(moved.ns_root)
        return out

    def _subtree(self, ns_path: str) -> _Subtree:
        sub = self._subtrees.get(ns_path)
        if sub is None:
            sub = _Subtree(ns_path, self._host_of(ns_path))
            self._subtrees[ns_path] = sub
            sub.reset()
        return sub

    def _rewatch(self, sub: _Subtree) -> None:
        """Make the DirWatch cover exactly the staged directories of ``sub``."""
        dirs = frozenset(sub.dirs)
        if sub.watched == dirs or not self._watch.available:
            return
        sub.watched = dirs if self._watch.watch(sub, {
            rel: sub.host_path(rel) for rel in ("", *dirs)}) else None

    def _sync_in(self, ns: FileService, sub: _Subtree, plan: _Plan) -> bool:
        """Bring ``sub`` in line with the namespace; True when it already was, known
        from the service's change journal without writing anything."""
        source = plan.source
        if source is None:
            sub.journal = None
            self._walk(ns, sub.ns_root, sub, self._computed, None, "")
            return False
        service, sroot, window, journal = (source.service, source.sroot, source.window,
                                           source.journal)
        if journal is None:
            sub.journal = None
            self._walk(service, sroot, sub, _always if source.computed else _never, window,
                       "")
            return False
        gen = journal.generation  # before anything is read: later changes are seen later
        last = sub.journal
        rels = None
        if last is not None and last.service is service and last.sroot == sroot:
            if gen == last.gen and not last.pending:
                return True  # nothing changed: the common case, kept cheap
            changed = journal.changed_since(last.gen)
            if changed is not None:
                rels = _journal_rels(sub, sroot, changed)
            if rels is not None:
                rels |= last.pending
        sub.journal = None  # until this sync is through
        if rels is None or not self._sync_changed(service, sroot, sub, rels, window):
            self._walk(service, sroot, sub, _never, window, "")
        sub.journal = _Cursor(service, sroot, gen)
        return False

    def _sync_changed(self, service: FileService, sroot: str, sub: _Subtree,
                      rels: set[str], window: float | None) -> bool:
        """Re-sync only the paths the journal named (a directory: walked); False if a full
        walk is needed instead."""
        now = time.time()
        now_ns = time.time_ns()
        done: list[str] = []  # everything below these is in line already
        for rel in sorted(rels):  # parents before children
            if any(rel.startswith(d + "/") for d in done):
                continue  # below a directory walked, a file, or a path found gone
            parent = rel.rpartition("/")[0]
            if parent and parent not in sub.dirs:
                return False  # the journal missed its parent: never expected
            done.append(rel)
            try:
                st = service.stat(paths.join(sroot, rel))
            except (NotFound, NotADirectory):
                self._forget(sub, rel)
                continue
            except FsError:
                return False
            if st.is_dir:
                if rel not in sub.dirs:
                    self._make_dir(sub, rel)
                self._walk(service, sroot, sub, _never, window, rel)
            elif not self._sync_file(service, sroot, sub, rel, st, sub.files.get(rel), False,
                                     now, now_ns, window):
                self._forget(sub, rel)
        return True

    def _forget(self, sub: _Subtree, rel: str) -> None:
        """``rel`` is gone from the namespace: drop its staged copy and manifest entry."""
        if rel in sub.files:
            del sub.files[rel]
            remove_beneath(sub.root, rel)
        elif rel in sub.dirs:
            self._drop_dir(sub, rel)

    def _walk(self, service: FileService, sroot: str, sub: _Subtree,
              computed: Callable[[str], bool], window: float | None, top: str) -> None:
        """Bring the staged copy of directory ``top`` (relative; "" for the whole subtree)
        in line with ``service`` below ``sroot`` by walking its stats."""
        now = time.time()
        now_ns = time.time_ns()
        seen_files: set[str] = set()
        seen_dirs: set[str] = set()
        files, dirs, exclude = sub.files, sub.dirs, sub.exclude
        some_computed = computed is not _never
        seen, get = seen_files.add, files.get
        stack = [top]
        while stack:
            rel = stack.pop()
            try:
                entries = service.scandir(paths.join(sroot, rel) if rel else sroot)
            except (NotFound, NotADirectory) as e:
                if rel == top:
                    if not rel:
                        raise e.with_paths(sub.ns_root) from None
                    self._drop_dir(sub, rel)
                    return
                continue
            prefix = rel + "/" if rel else ""
            for st in entries:
                crel = prefix + st.name
                if st.is_dir or (exclude and crel in exclude):
                    seen_dirs.add(crel)
                    if crel not in dirs:
                        self._make_dir(sub, crel)
                    if crel not in exclude:
                        stack.append(crel)
                    continue
                rec = get(crel)
                if some_computed:
                    is_computed = computed(sub.ns_path(crel))
                elif (rec is not None and not rec.racy and rec.ns_mtime == st.mtime
                      and rec.ns_size == st.size):
                    seen(crel)  # unchanged: the common case, kept cheap
                    continue
                else:
                    is_computed = False
                if (is_computed or rec is None or rec.racy or rec.ns_mtime != st.mtime
                        or rec.ns_size != st.size):
                    if self._sync_file(service, sroot, sub, crel, st, rec, is_computed, now,
                                       now_ns, window):
                        seen(crel)
                else:
                    seen(crel)
        if top:
            below = top + "/"
            gone_files = [f for f in files if f.startswith(below) and f not in seen_files]
            gone_dirs = [d for d in dirs if d.startswith(below) and d not in seen_dirs]
        else:
            gone_files = ([f for f in files if f not in seen_files]
                          if len(seen_files) != len(files) else [])
            gone_dirs = ([d for d in dirs if d not in seen_dirs]
                         if len(seen_dirs) != len(dirs) else [])
        for crel in gone_files:
            del files[crel]
            remove_beneath(sub.root, crel)
        for crel in sorted(gone_dirs, reverse=True):
            dirs.discard(crel)
            remove_beneath(sub.root, crel)

    def _make_dir(self, sub: _Subtree, crel: str) -> None:
        if crel in sub.files:
            del sub.files[crel]
        with parent_beneath(sub.root, crel) as (dfd, name):
            try:
                os.mkdir(name, 0o755, dir_fd=dfd)
            except FileExistsError:
                if not stat_mod.S_ISDIR(os.stat(name, dir_fd=dfd,
                                                follow_symlinks=False).st_mode):
                    remove_beneath(dfd, name)
                    os.mkdir(name, 0o755, dir_fd=dfd)
        sub.dirs.add(crel)

    def _drop_dir(self, sub: _Subtree, crel: str) -> None:
        prefix = crel + "/"
        for f in [f for f in sub.files if f.startswith(prefix)]:
            del sub.files[f]
        for d in [d for d in sub.dirs if d == crel or d.startswith(prefix)]:
            sub.dirs.discard(d)
        remove_beneath(sub.root, crel)

    def _sync_file(self, service: FileService, sroot: str, sub: _Subtree, crel: str,
                   st: Stat, rec: _FileRec | None, computed: bool, now: float,
                   now_ns: int, window: float | None) -> bool:
        """Bring one staged file in line with the namespace; False if it vanished."""
        if crel in sub.dirs:
            self._drop_dir(sub, crel)
        try:
            data = service.read_bytes(paths.join(sroot, crel))
        except (NotFound, NotADirectory):
            return False
        except (PermissionDenied, BadFileMode, Unsupported):
            data = b""  # a write-only file (a control file): the guest may write it
        except FsError:
            return False
        digest = _sha(data)
        if rec is not None and rec.digest == digest:
            rec.seen(st.size, st.mtime, now, window)
            return True
        hst = _write_file(sub.root, crel, data, _stamp(st.mtime, now_ns))
        sub.files[crel] = _FileRec(hst.st_size, hst.st_mtime_ns, hst.st_ino, digest,
                                   st.size, st.mtime, _is_racy(st.mtime, now, window))
        return True

    def _scan_direct(self, host: str) -> dict[str, tuple[bool, int, int, int]] | None:
        out: dict[str, tuple[bool, int, int, int]] = {}
        for rel, st in _walk_host(host, self.scan_limit):
            if rel is None:
                return None
            out[rel] = (stat_mod.S_ISDIR(st.st_mode), st.st_size, st.st_mtime_ns, st.st_ino)
        return out

    # -- during the run ----------------------------------------------------------------------

    def disk_meter(self, staged: Staged, max_disk: int | None, max_files: int | None
                   ) -> DiskMeter | None:
        """What measures the writable preopens of ``staged`` while the guest runs (see
        ``oanix.wasi.quota``); None when nothing is to be measured."""
        key = (id(staged), max_disk, max_files)
        if staged is self._steady and self._meter_key == key:
            areas = self._meter_areas  # the usual case: the same preopens as last run
        else:
            areas = self._disk_areas(staged, max_disk, max_files)
            self._meter_key, self._meter_areas = (key, areas) if (
                staged is self._steady) else (None, ())
        if not areas:
            return None
        return DiskMeter(areas, functools.partial(self._may_have_written, staged))

    def _disk_areas(self, staged: Staged, max_disk: int | None, max_files: int | None
                    ) -> tuple[DiskArea, ...]:
        areas: list[DiskArea | None] = []
        root = staged.root
        if root is not None and root.writable:
            areas.append(DiskArea.staged("/", root.host, (None, None), max_disk, max_files,
                                         frozenset(root.members)))
        for sub, writable in staged.subtrees:
            if writable:
                area = DiskArea.staged(sub.ns_root, sub.host, sub.quota, max_disk, max_files)
                sub.write_limit = None if area is None else area.max_bytes
                areas.append(area)
        areas.extend(DiskArea.host_dir(plan.ns_path, plan.direct,
                                       ((info[0], info[1]) for info in before.values()),
                                       max_disk, max_files)
                     for plan, before in staged.direct
                     if plan.writable and plan.direct is not None and before is not None)
        return tuple(a for a in areas if a is not None)

    def _may_have_written(self, staged: Staged) -> bool:
        """Whether the guest may have written in its staged copies yet: one ioctl when
        they are all watched (called from the runtime's clock thread: it reads the
        pending count only, never the events)."""
        if staged.direct or not self._watch.available:
            return True
        if staged.root is not None and not self._root_watched:
            return True
        if any(sub.watched is None for sub, writable in staged.subtrees if writable):
            return True
        return self._watch.pending() > 0

    # -- after the run -----------------------------------------------------------------------

    def collect(self, staged: Staged) -> Changes:
        """Write the guest's changes back into the namespace; never raises."""
        events = self._watch.pending() if staged.subtrees else 0
        if not (events or staged.direct) and all(
                sub.watched is not None for sub, _ in staged.subtrees) and (
                staged.root is None or self._root_watched):
            return _NO_CHANGES  # no event at all: the guest wrote nothing (one ioctl)
        log = _ChangeLog()
        try:
            ns = self._ns()
        except InvalidArgument:
            return log.result()
        report = self._watch.report() if events else None
        wrote_back = False
        rescan: set[str] = set()
        root = staged.root
        if root is not None and root.writable and (not self._root_watched or (
                report is not None and report.get(root) != set())):
            rescan = self._repair_root(root, log)  # the guest changed the root itself
            wrote_back = True
        for sub, writable in staged.subtrees:
            if not writable:
                continue
            dirty = None
            if sub.watched is not None and sub.ns_root not in rescan:
                dirty = set() if report is None else report.get(sub)
                if dirty is not None and not dirty:
                    continue  # the guest touched nothing here
            wrote_back = True
            refused = len(log.refused)
            last = sub.journal
            journal = None if last is None else _journal_of(last.service)
            sub.tracking = (None if last is None or journal is None
                            else _Tracker(journal, last.sroot, last.gen))
            try:
                self._write_back(ns, sub, log, dirty)
            except OSError as e:  # the staging dir itself failed: start afresh next run
                log.refused.append((sub.ns_root, _reason(e)))
                sub.reset()
            else:
                self._after_write_back(sub, log.refused[refused:])
            if dirty is None:
                sub.watched = None  # directories may have moved: watch them afresh
        if wrote_back:
            self._watch.drain()  # the write-back's own touches (restamps, refusals)
        for plan, before in staged.direct:
            if plan.writable:
                self._remove_direct_links(plan, before, log)
            if before is not None:
                self._report_direct(plan, before, log)
        return log.result()

    @staticmethod
    def _after_write_back(sub: _Subtree, refused: list[tuple[str, str]]) -> None:
        """Record where the journal stands after the write-back: the changes since the
        sync that were not the write-back's own, and the refused paths (the manifest
        forgot them), are re-synced by the next sync."""
        tracker, sub.tracking = sub.tracking, None
        last = sub.journal
        if tracker is None or last is None:
            return
        done = tracker.finish()
        sub.journal = None
        if done is None:
            return
        gen, changed = done
        changed.update(paths.join(tracker.sroot, paths.relative_to(p, sub.ns_root))
                       for p, _ in refused if paths.is_within(p, sub.ns_root))
        rels = _journal_rels(sub, tracker.sroot, changed)
        if rels is not None:
            sub.journal = _Cursor(last.service, last.sroot, gen, rels)

    def _remove_direct_links(self, plan: _Plan,
                             before: dict[str, tuple[bool, int, int, int]] | None,
                             log: _ChangeLog) -> None:
        """Remove the symbolic links the guest made in a host directory preopened as it
        is, and report them refused, as a staged copy would: a host program would follow
        them. The guest's are those not there before the run (by inode), or, when the
        tree was too large to scan before, those made since the sync (by ctime)."""
        assert plan.direct is not None
        since = self._direct_since - _CTIME_SLACK_NS
        for rel, st in list(links_beneath(plan.direct)):
            old = None if before is None else before.get(rel)
            if (old is not None and old[3] == st.st_ino) or (
                    before is None and st.st_ctime_ns < since):
                continue  # the host's own link
            if unlink_link_beneath(plan.direct, rel, st.st_ino):
                log.refused.append((paths.join(plan.ns_path, rel),
                                    "Unsupported: symbolic link made by the guest in a "
                                    "host directory: removed"))

    def _report_direct(self, plan: _Plan, before: dict[str, tuple[bool, int, int, int]],
                       log: _ChangeLog) -> None:
        assert plan.direct is not None
        after = self._scan_direct(plan.direct)
        if after is None:
            return
        for rel, info in after.items():
            old = before.get(rel)
            p = paths.join(plan.ns_path, rel)
            if old is None or old[0] != info[0]:
                log.added.append(p)
                if old is not None:
                    log.deleted.append(p)
            elif not info[0] and old != info:
                log.modified.append(p)
        for rel in before:
            if rel not in after:
                log.deleted.append(paths.join(plan.ns_path, rel))

    def _scan(self, sub: _Subtree, log: _ChangeLog, dirty: set[str] | None
              ) -> tuple[dict[str, os.stat_result], set[str], list[str], list[str]] | None:
        """The staged files and dirs now, and the manifest entries they are compared with:
        everything, or (``dirty``) only the entries the guest touched. None when a partial
        scan found a directory it does not know (then scan everything)."""
        scan_files: dict[str, os.stat_result] = {}
        scan_dirs: set[str] = set()
        exclude = sub.exclude
        too_deep: list[str] = []
        if dirty is None:
            walk: Iterator[tuple[str | None, os.stat_result]] = _walk_host(
                sub.root, None, exclude, (too_deep, len(os.fsencode(sub.host))))
            placeholders: set[str] = set(exclude)
        else:
            placeholders = {p.rpartition("/")[0] for p in dirty} & exclude
            walk = _lstat_all(sub, [p for p in dirty if p.rpartition("/")[0] not in exclude])
        for rel, st in walk:
            assert rel is not None
            if stat_mod.S_ISDIR(st.st_mode):
                if dirty is not None and rel not in sub.dirs:
                    return None
                scan_dirs.add(rel)
            elif stat_mod.S_ISREG(st.st_mode):
                scan_files[rel] = st
            else:
                kind = "symbolic link" if stat_mod.S_ISLNK(st.st_mode) else "special file"
                log.refused.append((sub.ns_path(rel), f"Unsupported: {kind} not copied"))
                remove_beneath(sub.root, rel)
        for rel in placeholders:
            self._clear_placeholder(sub, rel, log)
        for rel in too_deep:  # nested past what the host's paths reach: not copied back
            log.refused.append((sub.ns_path(rel), f"NameTooLong: nested too deep to copy "
                                f"back (host paths stop at {HOST_PATH_MAX} bytes)"))
            remove_beneath(sub.root, rel)  # from the descriptor: too long to name
        if dirty is None:
            return scan_files, scan_dirs, list(sub.files), [
                d for d in sub.dirs if d not in exclude]
        return (scan_files, scan_dirs, [p for p in dirty if p in sub.files],
                [p for p in dirty if p in sub.dirs and p not in exclude])

    def _write_back(self, ns: FileService, sub: _Subtree, log: _ChangeLog,
                    dirty: set[str] | None) -> None:
        now_ns = time.time_ns()
        scanned = self._scan(sub, log, dirty)
        if scanned is None:
            scanned = self._scan(sub, log, None)
            assert scanned is not None
        scan_files, scan_dirs, known_files, known_dirs = scanned
        # What changed, by comparison with the manifest.
        added_dirs = sorted(d for d in scan_dirs if d not in sub.dirs)
        gone_dirs = [d for d in known_dirs if d not in scan_dirs]
        writes: list[tuple[str, bytes, bool]] = []  # (rel, data, is_new)
        for rel, st in scan_files.items():
            rec = sub.files.get(rel)
            if rec is not None and (st.st_size, st.st_mtime_ns, st.st_ino) == (
                    rec.size, rec.mtime_ns, rec.ino):
                continue
            if sub.write_limit is not None and st.st_size > sub.write_limit:
                _refuse_large(sub, rel, st.st_size, log)
                continue
            data = _read_file(sub.root, rel)
            if rec is not None and _sha(data) == rec.digest:
                self._restamp(sub, rel, rec, now_ns)
                continue
            writes.append((rel, data, rec is None))
        gone_files = [f for f in known_files if f not in scan_files]
        # Type changes first (a file became a directory or the reverse), then adds and
        # modifications, then the remaining deletions: a rename never loses the content.
        refused_dirs: list[str] = []
        for rel in sorted(f for f in gone_files if f in scan_dirs):
            self._ns_delete(ns, sub, rel, False, log)
        for rel in sorted((d for d in gone_dirs if d in scan_files), reverse=True):
            self._ns_delete_tree(ns, sub, rel, log)
        for rel in added_dirs:
            p = sub.ns_path(rel)
            if any(paths.is_within(rel, r) for r in refused_dirs):
                log.refused.append((p, "parent directory was refused"))
                continue
            try:
                with _own(sub, rel):
                    ns.mkdir(p)
            except FsError as e:
                if not ns.is_dir(p):
                    log.refused.append((p, _reason(e)))
                    refused_dirs.append(rel)
                    continue
            sub.dirs.add(rel)
            log.added.append(p)
        for rel in refused_dirs:
            self._drop_dir(sub, rel)
        for rel, data, is_new in sorted(writes):
            p = sub.ns_path(rel)
            if any(paths.is_within(rel, r) for r in refused_dirs):
                log.refused.append((p, "parent directory was refused"))
                continue
            checked = time.time()
            try:
                with _own(sub, rel):
                    ns.write_bytes(p, data)
            except FsError as e:
                log.refused.append((p, _reason(e)))
                if is_new:
                    remove_beneath(sub.root, rel)
                sub.files.pop(rel, None)  # the next sync restores the namespace's copy
                continue
            (log.added if is_new else log.modified).append(p)
            try:
                nst = ns.stat(p)
                ns_size, ns_mtime = nst.size, nst.mtime
            except FsError:
                ns_size, ns_mtime = -1, float("nan")
            hst = self._stamp_host(sub.root, rel, now_ns)
            sub.files[rel] = _FileRec(hst.st_size, hst.st_mtime_ns, hst.st_ino, _sha(data),
                                      ns_size, ns_mtime, _is_racy(ns_mtime, checked))
        for rel in sorted(f for f in gone_files if f in sub.files):
            self._ns_delete(ns, sub, rel, False, log)
        for rel in sorted((d for d in gone_dirs if d in sub.dirs), reverse=True):
            self._ns_delete(ns, sub, rel, True, log)

    def _ns_delete(self, ns: FileService, sub: _Subtree, rel: str, is_dir: bool,
                   log: _ChangeLog) -> None:
        p = sub.ns_path(rel)
        try:
            with _own(sub, rel):
                if is_dir:
                    ns.rmdir(p)
                else:
                    ns.remove(p)
        except NotFound:
            pass
        except FsError as e:
            log.refused.append((p, _reason(e)))
        else:
            log.deleted.append(p)
        # Either way the manifest forgets it: a refused deletion is restored by the next
        # sync, which finds it in the namespace but not in the manifest.
        if is_dir:
            sub.dirs.discard(rel)
        else:
            sub.files.pop(rel, None)

    def _ns_delete_tree(self, ns: FileService, sub: _Subtree, rel: str,
                        log: _ChangeLog) -> None:
        prefix = rel + "/"
        for f in sorted((f for f in sub.files if f.startswith(prefix)), reverse=True):
            self._ns_delete(ns, sub, f, False, log)
        for d in sorted((d for d in sub.dirs if d.startswith(prefix)), reverse=True):
            self._ns_delete(ns, sub, d, True, log)
        self._ns_delete(ns, sub, rel, True, log)

    def _clear_placeholder(self, sub: _Subtree, rel: str, log: _ChangeLog) -> None:
        try:
            fd = open_dir_beneath(sub.root, rel)
        except OSError:
            return
        try:
            names = os.listdir(fd)
        except OSError:
            return
        finally:
            os.close(fd)
        for name in names:
            log.refused.append((sub.ns_path(f"{rel}/{name}"),
                                "Unsupported: written below a directory preopened apart"))
            remove_beneath(sub.root, f"{rel}/{name}")

    @staticmethod
    def _stamp_host(root: int, rel: str, now_ns: int) -> os.stat_result:
        stamp = now_ns - _STAMP_AGE_NS
        with parent_beneath(root, rel) as (dfd, name):
            os.utime(name, ns=(stamp, stamp), dir_fd=dfd, follow_symlinks=False)
            return os.stat(name, dir_fd=dfd, follow_symlinks=False)

    def _restamp(self, sub: _Subtree, rel: str, rec: _FileRec, now_ns: int) -> None:
        hst = self._stamp_host(sub.root, rel, now_ns)
        rec.size, rec.mtime_ns, rec.ino = hst.st_size, hst.st_mtime_ns, hst.st_ino


def _refuse_large(sub: _Subtree, rel: str, size: int, log: _ChangeLog) -> None:
    """Refuse a staged file larger than its preopen may hold, without reading it (a
    sparse file can claim any size); the next sync restores the namespace's copy."""
    log.refused.append((sub.ns_path(rel), f"NoSpace: {size} bytes, more than the "
                                          f"{sub.write_limit} bytes this preopen may hold"))
    remove_beneath(sub.root, rel)
    sub.files.pop(rel, None)


def _own(sub: _Subtree, rel: str) -> contextlib.AbstractContextManager[None]:
    """Around one namespace change the write-back makes at ``rel`` (see ``_Tracker``)."""
    return sub.tracking.own(rel) if sub.tracking is not None else contextlib.nullcontext()


def _never(_path: str) -> bool:
    return False


def _always(_path: str) -> bool:
    return True


def _lstat_all(sub: _Subtree, rels: list[str]) -> Iterator[tuple[str, os.stat_result]]:
    """``(relative path, lstat)`` of those of the staged paths ``rels`` that exist."""
    for rel in rels:
        st = lstat_beneath(sub.root, rel)
        if st is not None:
            yield rel, st


def _weakrefable(obj: object) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


def _computed_lookup(table: Mapping[str, list[_Member]]) -> Callable[[str], bool]:
    """A function telling whether a namespace path is served by a computed service."""
    flags = {p: any(m.computed for m in members) for p, members in table.items()}
    if not any(flags.values()):
        return _never

    def computed(path: str) -> bool:
        return bool(_nearest(flags, path))

    return computed


def _walk_host(root: str | int, limit: int | None, exclude: frozenset[str] = frozenset(),
               too_deep: tuple[list[str], int] | None = None
               ) -> Iterator[tuple[str | None, os.stat_result]]:
    """``(relative path, lstat)`` of everything below ``root`` (a directory descriptor,
    or the path of one the host made), every directory entered by descriptor, never
    through a link.

    Directories in ``exclude`` are yielded but not entered; temporary files of
    WorkspaceFs writes are skipped. Yields ``(None, ...)`` once and stops when more than
    ``limit`` entries are found. With ``too_deep = (found, length of root's host path)``,
    an entry whose host path would pass ``HOST_PATH_MAX`` is neither yielded nor entered
    but added to ``found``: the next run could not stage it.
    """
    def keep(crel: str, st: os.stat_result) -> bool:
        if crel.rpartition("/")[2].startswith(".oanix-tmp-"):
            return False
        if too_deep is not None and too_deep[1] + 1 + len(os.fsencode(crel)) > HOST_PATH_MAX:
            too_deep[0].append(crel)
            return False
        return crel.rpartition("/")[0] not in exclude  # an excluded directory is not entered

    for count, (crel, st) in enumerate(walk_beneath(root, keep), 1):
        if limit is not None and count > limit:
            yield None, st
            return
        yield crel, st
