"""``NamespaceStaging``: the staging directories and manifests of one namespace, kept
between runs, and the order of a run: ``prepare`` (plan, sync in) before it, ``collect``
(write back) after it.

Locking: a NamespaceStaging is used under its namespace's lock (``namespace_lock``), which
every run over that namespace holds from sync-in to write-back; so runs over one
namespace are serialised and runs over different namespaces proceed in parallel. The
host touches the staging directories only while the guest is parked or gone; during the
run it reads the inotify pending count alone (``disk_meter``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Final

from ..._rmtree import remove_tree
from ...changes import Changes
from ...errors import FsError, InvalidArgument, WasiError
from ...namespace import Namespace
from ...service import FileService
from .._inotify import DirWatch
from ..quota import DiskArea, DiskMeter
from ..rootview import RootLayout, plan_root, top_level
from ..run import Preopen
from .changelog import NO_CHANGES, ChangeLog, reason
from .detect import guest_changes, namespace_changes
from .direct import remove_direct_links, report_direct, scan_direct
from .lock import namespace_lock
from .manifest import PreparedPreopen, Subtree
from .plan import (
    Plan,
    Staged,
    always,
    computed_lookup,
    is_real_dir,
    mount_table,
    never,
    plan_key,
    plan_preopens,
)
from .steady import SteadyState
from .sync_in import sync_paths, walk
from .write_back import write_back

__all__ = ["DEFAULT_SCAN_LIMIT", "NamespaceStaging"]

DEFAULT_SCAN_LIMIT: Final = 10_000


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
        self._subtrees: dict[str, Subtree] = {}
        self._watch = DirWatch(enabled=watch)
        self._plan_key: tuple[object, object, object] | None = None
        self._plans: list[Plan] | None = None
        self._direct_dirs: list[str] = []  # host dirs preopened as they are
        self._plain_table: object = None
        self._computed: Callable[[str], bool] = never
        self._root: RootLayout | None = None
        self._root_watched = False  # whether the DirWatch covers the root's scaffold
        self._members: frozenset[str] = frozenset()  # namespace paths of its members
        self._root_preopen: PreparedPreopen | None = None
        self._steady = SteadyState()  # the last run's Staged, while nothing needs a sync
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
        self._steady.forget()
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
        steady = self._steady.reuse(plans, self._root is None or self._root_watched)
        if steady is not None:
            return steady  # the usual case: nothing to sync, the same preopens
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
                before = scan_direct(plan.direct, self.scan_limit) if plan.writable else None
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
        self._steady.keep(plans, staged)
        return staged

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

    def _plan(self, ns: FileService, spec: Mapping[str, Preopen] | None) -> list[Plan]:
        if (spec is None and self._plans is not None and not self._direct_dirs
                and isinstance(ns, Namespace) and ns.snapshot is self._plain_table):
            return self._plans  # the usual case: nothing mounted or unmounted since
        key = plan_key(ns, spec)
        plans = self._plans
        if (plans is None or key != self._plan_key
                or not all(is_real_dir(d) for d in self._direct_dirs)):
            table = mount_table(ns)
            plans = plan_preopens(ns, spec, table)
            self._plans, self._plan_key = plans, key
            self._direct_dirs = [p.direct for p in plans if p.direct is not None]
            # A key that is this one table alone: identity says all (see the fast path).
            self._plain_table = key[1] if key[0] is None and key[2] is None else None
            self._computed = computed_lookup(table)
            os.makedirs(self.base, mode=0o700, exist_ok=True)
            self._lay_out_root(plans)
            used = {p.ns_path for p in plans if p.direct is None}
            for ns_path in [p for p in self._subtrees if p not in used]:
                self._drop(self._subtrees.pop(ns_path))  # no longer preopened
        return plans

    def _lay_out_root(self, plans: list[Plan]) -> None:
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

    def _drop(self, sub: Subtree) -> None:
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

    def _repair_root(self, root: RootLayout, log: ChangeLog | None) -> set[str]:
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
                                         f"({reason(e)}): its changes are dropped"))
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

    def _subtree(self, ns_path: str) -> Subtree:
        sub = self._subtrees.get(ns_path)
        if sub is None:
            sub = Subtree(ns_path, self._host_of(ns_path))
            self._subtrees[ns_path] = sub
            sub.reset()
        return sub

    def _rewatch(self, sub: Subtree) -> None:
        """Make the DirWatch cover exactly the staged directories of ``sub``."""
        dirs = frozenset(sub.dirs)
        if sub.watched == dirs or not self._watch.available:
            return
        sub.watched = dirs if self._watch.watch(sub, {
            rel: sub.host_path(rel) for rel in ("", *dirs)}) else None

    def _sync_in(self, ns: FileService, sub: Subtree, plan: Plan) -> bool:
        """Bring ``sub`` in line with the namespace: detect what changed (``detect``),
        apply it (``sync_in``), record where the namespace stood. True when nothing had
        changed (nothing was written)."""
        source = plan.source
        if source is None:  # several services: walked through the namespace
            service, sroot, computed, window = ns, sub.ns_root, self._computed, None
        else:
            service, sroot, window = source.service, source.sroot, source.window
            computed = always if source.computed else never
        finder = namespace_changes(sub, source)
        changed = finder.changed()
        if changed is None or (changed and not sync_paths(service, sroot, sub, changed,
                                                          window)):
            walk(service, sroot, sub, computed, window, "")
        finder.record()
        return changed is not None and not changed

    # -- during the run ----------------------------------------------------------------------

    def disk_meter(self, staged: Staged, max_disk: int | None, max_files: int | None
                   ) -> DiskMeter | None:
        """What measures the writable preopens of ``staged`` while the guest runs (see
        ``oanix.wasi.quota``); None when nothing is to be measured."""
        key = (id(staged), max_disk, max_files)
        if staged is self._steady.staged and self._meter_key == key:
            areas = self._meter_areas  # the usual case: the same preopens as last run
        else:
            areas = self._disk_areas(staged, max_disk, max_files)
            self._meter_key, self._meter_areas = (key, areas) if (
                staged is self._steady.staged) else (None, ())
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
            return NO_CHANGES  # no event at all: the guest wrote nothing (one ioctl)
        log = ChangeLog()
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
            finder = guest_changes(sub, report, rescan)
            dirty = finder.changed()
            if dirty is not None and not dirty:
                continue  # the guest touched nothing here
            wrote_back = True
            try:
                write_back(ns, sub, log, dirty)
            except OSError as e:  # the staging dir itself failed: start afresh next run
                log.refused.append((sub.ns_root, reason(e)))
                sub.reset()
            finder.record()
        if wrote_back:
            self._watch.drain()  # the write-back's own touches (restamps, refusals)
        for plan, before in staged.direct:
            if plan.writable:
                remove_direct_links(plan, before, self._direct_since, log)
            if before is not None:
                report_direct(plan, before, self.scan_limit, log)
        return log.result()


def _weakrefable(obj: object) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True
