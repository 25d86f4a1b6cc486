"""``NamespaceStaging``: the staging directories and manifests of one namespace, kept
between runs, and the order of a run.

* ``prepare``, before it: plan (``plan.PlanCache``; the last run's preopens again when
  ``steady`` says nothing changed), then for each staged subtree detect what changed in
  the namespace (``detect.namespace_changes``), apply it (``sync_in``) and record where
  the namespace stood; host directories shown directly are scanned (``direct``).
* ``collect``, after it: the guest's root put back (``guest_root``), then for each
  writable subtree detect what the guest changed (``detect.guest_changes``), apply it
  (``write_back``) and record; changes in host directories are reported (``direct``).

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
from collections.abc import Mapping
from typing import Final

from ..._rmtree import remove_tree
from ...changes import Changes
from ...errors import FsError, InvalidArgument, WasiError
from ...service import FileService
from .._inotify import DirWatch
from ..quota import DiskArea, DiskMeter
from ..records import Preopen
from ..rootview import RootLayout
from .changelog import NO_CHANGES, ChangeLog, reason
from .detect import guest_changes, namespace_changes
from .direct import remove_direct_links, report_direct, scan_direct
from .guest_root import GuestRoot
from .lock import namespace_lock
from .manifest import PreparedPreopen, Subtree
from .plan import Plan, PlanCache, Staged, always, never
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
        self._plans = PlanCache()
        self._guest_root = GuestRoot(self._watch)
        self._steady = SteadyState()  # the last run's Staged, while nothing needs a sync
        self._meter_key: tuple[int, int | None, int | None] | None = None
        self._direct_since = 0  # when the last sync of a writable host dir began (ns)
        self._meter_areas: tuple[DiskArea, ...] = ()  # the disk areas of ``_steady``

    @property
    def _root(self) -> RootLayout | None:
        """The guest's root as laid out now; None: there is none."""
        return self._guest_root.layout

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
        self._guest_root.forget()
        self._subtrees.clear()
        self._plans.forget()
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
        steady = self._steady.reuse(plans, self._guest_root.in_line)
        if steady is not None:
            return steady  # the usual case: nothing to sync, the same preopens
        root = self._guest_root.layout
        members = self._guest_root.members
        staged = Staged([], [], [], root)
        quiet = True  # nothing written into the staging dirs: no events of ours to drain
        if root is not None:
            assert self._guest_root.preopen is not None
            staged.preopens.append(self._guest_root.preopen)
            if not self._guest_root.watched:
                quiet = False
                self._guest_root.watch()
        for plan in plans:
            if plan.direct is not None:
                if plan.writable:
                    self._direct_since = time.time_ns()
                before = scan_direct(plan.direct, self.scan_limit) if plan.writable else None
                staged.direct.append((plan, before))
                staged.preopens.append(PreparedPreopen(plan.direct, plan.guest, plan.writable))
                continue
            sub, in_line = self._stage(ns, plan)
            if not in_line or sub.watched is None:
                quiet = False
                self._rewatch(sub)
            staged.subtrees.append((sub, plan.writable))
            if root is None or plan.ns_path not in members:
                staged.preopens.append(sub.preopen(plan.guest, plan.writable))
        if not quiet:
            self._watch.drain()  # what the sync itself wrote is not the guest's
        self._steady.keep(plans, staged)
        return staged

    def _stage(self, ns: FileService, plan: Plan) -> tuple[Subtree, bool]:
        """The staged copy of ``plan``, in line with the namespace, and whether it
        already was. A copy tampered with between runs is made afresh."""
        sub = self._subtree(plan.ns_path)
        sub.exclude = plan.exclude
        sub.quota = plan.quota
        try:
            return sub, self._sync_in(ns, sub, plan)
        except FsError:
            raise
        except OSError:  # the staging dir was tampered with: copy afresh
            sub.reset()
        try:
            return sub, self._sync_in(ns, sub, plan)
        except OSError as e:  # still changing under us: the run does not start
            sub.reset()
            raise WasiError(f"the staging directory of {plan.ns_path} keeps "
                            f"changing: {e.strerror or e}") from None

    def _check_copies(self) -> None:
        """Start afresh the staged copies changed since the last run: nothing but the sync
        and the guest may write there. Watched copies cost one ioctl when untouched (the
        usual case); unwatched ones are only checked for being there at all, and an
        unwatched root is put back as its layout says."""
        subs = self._subtrees.values()
        if not subs:
            return
        root = self._guest_root.layout
        if all(sub.watched is not None for sub in subs) and self._guest_root.in_line:
            if self._watch.pending():
                report = self._watch.report()
                for sub in subs:
                    if report.get(sub) != set():
                        sub.reset()
                if root is not None and report.get(root) != set():
                    for ns_path in self._guest_root.repair(root, self._subtrees, None):
                        self._subtrees[ns_path].reset()  # what it held is unknown
        else:
            if not os.path.isdir(self.base):
                for sub in subs:
                    sub.reset()
            if root is not None:  # unwatched: looked at before every run
                root.build()
                for ns_path in self._guest_root.repair(root, self._subtrees, None):
                    self._subtrees[ns_path].reset()

    def _plan(self, ns: FileService, spec: Mapping[str, Preopen] | None) -> list[Plan]:
        """The plans of this run; when they are new, the guest's root laid out for them
        and the staged copies no longer preopened (or moved) dropped."""
        plans, new = self._plans.get(ns, spec)
        if new:
            os.makedirs(self.base, mode=0o700, exist_ok=True)
            self._guest_root.plan(plans, self.base)
            used = {p.ns_path for p in plans if p.direct is None}
            for ns_path, sub in list(self._subtrees.items()):
                if ns_path not in used or sub.host != self._host_of(ns_path):
                    self._drop(self._subtrees.pop(ns_path))
            self._guest_root.build(self.base, self._subtrees)
        return plans

    def _drop(self, sub: Subtree) -> None:
        """Forget a staged copy and delete it."""
        self._watch.forget(sub)
        sub.drop()
        remove_tree(sub.host)

    def _host_of(self, ns_path: str) -> str:
        """Where the staged copy of ``ns_path`` lives: in the root for a member."""
        host = self._guest_root.host_of(ns_path)
        if host is not None:
            return host
        return os.path.join(self.base, hashlib.sha256(ns_path.encode()).hexdigest()[:16])

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
            service, sroot, computed, window = ns, sub.ns_root, self._plans.computed, None
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
            areas = staged.disk_areas(max_disk, max_files)
            self._meter_key, self._meter_areas = (key, areas) if (
                staged is self._steady.staged) else (None, ())
        if not areas:
            return None
        return DiskMeter(areas, functools.partial(self._may_have_written, staged))

    def _may_have_written(self, staged: Staged) -> bool:
        """Whether the guest may have written in its staged copies yet: one ioctl when
        they are all watched (called from the runtime's clock thread: it reads the
        pending count only, never the events)."""
        if staged.direct or not self._watch.available:
            return True
        if staged.root is not None and not self._guest_root.watched:
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
                staged.root is None or self._guest_root.watched):
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
        if root is not None and root.writable and (not self._guest_root.watched or (
                report is not None and report.get(root) != set())):
            rescan = self._guest_root.repair(root, self._subtrees, log)  # the guest changed it
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
            if plan.reported_elsewhere:
                continue  # its owner's sync deals with what was written there
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
