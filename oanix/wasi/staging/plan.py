"""The plan of a run: what to preopen for a namespace, read from its mount tables
(through nested namespaces): the staged subtrees, each with the one service behind it
when nothing else is mounted below (``Source``), and the host directories of WorkspaceFs
mounts shown directly. ``Staged`` is what one run was handed.

A WorkspaceFs mount (a service with ``host_path``) that covers a whole preopen, or is
mounted below one with nothing else mounted below it, is preopened directly at its guest
path (wasi-libc picks the longest matching preopen), with an empty placeholder directory
in the staged parent. A plan is cached by ``NamespaceStaging`` under ``plan_key``, so it
is rebuilt only when the mount tables or the preopen spec change.

Locking: none; plans are frozen values, made and cached under the namespace's lock.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

import attrs

from ... import paths
from ...errors import NotADirectory
from ...namespace import Mount, Namespace
from ...service import ChangeJournal, FileService, change_journal, host_path, is_computed
from ..quota import DiskArea, Quota, sum_quotas
from ..records import Preopen
from ..rootview import RootLayout
from .manifest import PreparedPreopen, Subtree, clock_window

__all__ = ["DirectScan", "Member", "Plan", "PlanCache", "Source", "Staged", "always",
           "computed_lookup", "is_real_dir", "mount_table", "never", "plan_key",
           "plan_preopens"]

_T = TypeVar("_T")
DirectScan = dict[str, tuple[bool, int, int, int]]
"""A host directory shown directly, as seen before a run: ``{relative path: (is_dir,
size, mtime_ns, inode)}``."""
_MAX_NESTING: Final = 16  # namespaces mounted in namespaces: deeper is taken as a leaf


@attrs.frozen
class Member:
    """One service a namespace path is served by, from ``root`` in it."""

    service: FileService
    root: str
    readonly: bool

    @property
    def writable(self) -> bool:
        return not (self.readonly or getattr(self.service, "readonly", False))

    @property
    def computed(self) -> bool:
        return is_computed(self.service)

    @property
    def reported_elsewhere(self) -> bool:
        return getattr(self.service, "changes_reported_elsewhere", False) is True

    @property
    def host_dir(self) -> str | None:
        """The host directory behind this member when its service is a host directory."""
        host = host_path(self.service)
        if host is None:
            return None
        return os.path.join(host, self.root.lstrip("/")) if self.root != "/" else host


def mount_table(ns: FileService) -> dict[str, list[Member]]:
    """The mounts of ``ns`` as ``{namespace path: members}``, through nested namespaces."""
    table: dict[str, list[Member]] = {}
    _flatten(ns, "/", "/", False, table, 0)
    return table


def _flatten(service: FileService, base: str, root: str, readonly: bool,
             table: dict[str, list[Member]], depth: int) -> None:
    if not isinstance(service, Namespace) or depth > _MAX_NESTING:
        table.setdefault(base, []).append(Member(service, root, readonly))
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


def _covering(table: Mapping[str, list[Member]], path: str) -> list[Member]:
    members = _nearest(table, path)
    return [] if members is None else members


def _below(table: Mapping[str, list[Member]], path: str) -> list[str]:
    """Mount points strictly below ``path``."""
    return [p for p in table if p != path and paths.is_within(p, path)]


@attrs.frozen
class Source:
    """The one service behind a whole staged subtree (nothing mounted below it)."""

    service: FileService
    sroot: str  # the subtree's path in the service
    computed: bool  # every file is computed (FuncFs): read on every sync
    window: float | None  # its racy window (``clock_window``)
    journal: ChangeJournal | None  # the service, when its change journal can be used


@attrs.frozen
class Plan:
    """One preopen: the namespace subtree ``ns_path`` shown at ``guest``."""

    ns_path: str
    guest: str
    writable: bool
    direct: str | None  # host directory to preopen as is (a WorkspaceFs)
    exclude: frozenset[str] = frozenset()  # relative paths preopened separately
    source: Source | None = None  # walked through the one service behind it
    quota: Quota = (None, None)  # what the services behind it hold at most (bytes, files)
    reported_elsewhere: bool = False  # direct: its owner's sync sees the changes


def _default_roots(ns: FileService) -> dict[str, Preopen]:
    roots: dict[str, Preopen] = {}
    for st in ns.scandir("/"):
        if st.is_dir:
            p = "/" + st.name
            roots[p] = Preopen(p, None)
    return roots


def plan_preopens(ns: FileService, spec: Mapping[str, Preopen] | None,
                  table: Mapping[str, list[Member]] | None = None) -> list[Plan]:
    """What to preopen for ``ns``: the staged subtrees and the host dirs shown directly.

    Raises the namespace's FsError when a preopen is missing, NotADirectory when it is a
    file.
    """
    roots = _default_roots(ns) if spec is None else dict(spec)
    if table is None:
        table = mount_table(ns)
    plans: list[Plan] = []
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
            plans.append(Plan(ns_path, guest, covering[0].writable and pre.writable
                              is not False, direct,
                              reported_elsewhere=covering[0].reported_elsewhere))
            continue
        for point in below:
            members_at = table[point]
            host = members_at[0].host_dir if len(members_at) == 1 else None
            if (host is None or _below(table, point) or not is_real_dir(host)
                    or any(paths.is_within(point, r) for r in apart)):
                continue
            sub_guest = paths.join(guest, paths.relative_to(point, ns_path))
            if sub_guest in taken:
                continue
            taken.add(sub_guest)
            apart.append(point)
            sub_writable = members_at[0].writable and pre.writable is not False
            plans.append(Plan(point, sub_guest, sub_writable, host,
                              reported_elsewhere=members_at[0].reported_elsewhere))
        exclude = frozenset(paths.relative_to(r, ns_path)[1:] for r in apart)
        source = None
        if len(covering) == 1 and not below:
            m = covering[0]
            point = next(p for p in table if table[p] is covering)
            rel = paths.relative_to(ns_path, point)
            sroot = m.root if rel == "/" else paths.join(m.root, rel)
            source = Source(m.service, sroot, m.computed, clock_window(m.service),
                            None if m.computed else change_journal(m.service))
        plans.append(Plan(ns_path, guest, writable, None, exclude, source,
                          sum_quotas(m.service for m in members)))
    return plans


def plan_key(ns: FileService, spec: Mapping[str, Preopen] | None
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


def _direct_host(table: Mapping[str, list[Member]], ns_path: str,
                 covering: list[Member], below: list[str]) -> str | None:
    if len(covering) != 1 or below:
        return None
    m = covering[0]
    host = m.host_dir
    if host is None:
        return None
    point = next(p for p in table if table[p] is covering)
    rel = paths.relative_to(ns_path, point)
    path = host if rel == "/" else os.path.join(host, rel.lstrip("/"))
    return path if is_real_dir(path) else None


def is_real_dir(path: str) -> bool:
    """Whether ``path`` is a directory reached without any symlink."""
    try:
        return os.path.realpath(path) == os.path.normpath(path) and os.path.isdir(path)
    except OSError:
        return False


def never(_path: str) -> bool:
    return False


def always(_path: str) -> bool:
    return True


def computed_lookup(table: Mapping[str, list[Member]]) -> Callable[[str], bool]:
    """A function telling whether a namespace path is served by a computed service."""
    flags = {p: any(m.computed for m in members) for p, members in table.items()}
    if not any(flags.values()):
        return never

    def computed(path: str) -> bool:
        return bool(_nearest(flags, path))

    return computed


@attrs.define
class Staged:
    """The preopens of one run and what the write-back needs to know about them."""

    preopens: list[PreparedPreopen]
    subtrees: list[tuple[Subtree, bool]]  # (subtree, writable)
    direct: list[tuple[Plan, DirectScan | None]]
    root: RootLayout | None = None  # the guest's root, when it holds members

    def disk_areas(self, max_disk: int | None, max_files: int | None
                   ) -> tuple[DiskArea, ...]:
        """What ``oanix.wasi.quota`` measures of the writable preopens while the guest
        runs; sets each writable subtree's ``write_limit``."""
        areas: list[DiskArea | None] = []
        root = self.root
        if root is not None and root.writable:
            areas.append(DiskArea.staged("/", root.host, (None, None), max_disk, max_files,
                                         frozenset(root.members)))
        for sub, writable in self.subtrees:
            if writable:
                area = DiskArea.staged(sub.ns_root, sub.host, sub.quota, max_disk, max_files)
                sub.write_limit = None if area is None else area.max_bytes
                areas.append(area)
        areas.extend(DiskArea.host_dir(plan.ns_path, plan.direct,
                                       ((info[0], info[1]) for info in before.values()),
                                       max_disk, max_files)
                     for plan, before in self.direct
                     if plan.writable and plan.direct is not None and before is not None)
        return tuple(a for a in areas if a is not None)


class PlanCache:
    """The plans of one namespace, rebuilt only when its mount tables (through nested
    namespaces), the preopen spec, or a host directory shown directly change; with the
    lookup of its computed paths (``computed``)."""

    def __init__(self) -> None:
        self.plans: list[Plan] | None = None
        self.computed: Callable[[str], bool] = never
        self._key: tuple[object, object, object] | None = None
        self._direct_dirs: list[str] = []  # host dirs preopened as they are
        self._plain_table: object = None

    def get(self, ns: FileService, spec: Mapping[str, Preopen] | None
            ) -> tuple[list[Plan], bool]:
        """The plans for ``spec`` over ``ns``, and whether they are new."""
        if (spec is None and self.plans is not None and not self._direct_dirs
                and isinstance(ns, Namespace) and ns.snapshot is self._plain_table):
            return self.plans, False  # the usual case: nothing mounted or unmounted since
        key = plan_key(ns, spec)
        plans = self.plans
        if (plans is not None and key == self._key
                and all(is_real_dir(d) for d in self._direct_dirs)):
            return plans, False
        table = mount_table(ns)
        plans = plan_preopens(ns, spec, table)
        self.plans, self._key = plans, key
        self._direct_dirs = [p.direct for p in plans if p.direct is not None]
        # A key that is this one table alone: identity says all (see the fast path).
        self._plain_table = key[1] if key[0] is None and key[2] is None else None
        self.computed = computed_lookup(table)
        return plans, True

    def forget(self) -> None:
        """Plan afresh next time."""
        self.plans = self._key = None
