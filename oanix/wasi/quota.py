"""Disk budgets: how much a guest may write into its preopens while it runs.

A guest writes into staging directories on tmpfs (memory) and into the host directories
preopened as they are; the namespace's quotas only see those bytes at the write-back,
after the run. So each run measures its writable preopens while the guest runs and stops
it (``Trap(kind="disk")``) as soon as one goes over its budget:

* a staged subtree: the quotas of the services behind it (the sum of their
  ``max_bytes`` and ``max_files``, for services with a ``service.SpaceQuota``, like
  ``MemFs``), capped by the run's ``max_disk`` / ``max_disk_files``; a subtree with
  a service without a quota gets ``max_disk`` / ``max_disk_files`` alone;
* what the guest writes in its root beside the mounts (undone after the run anyway):
  ``max_disk`` / ``max_disk_files``;
* a host directory preopened as it is (a ``WorkspaceFs``, a live capability mount): what
  it held before the run plus ``max_disk`` / ``max_disk_files`` (not measured when it
  holds more than the staging's ``scan_limit`` entries).

Sizes are apparent sizes (``st_size``, so a sparse file counts in full: the write-back
would read it in full); every file, directory and link counts as one entry.

The runtime's clock thread measures the preopens every tick (10 ms by default) once the
guest may have written (the staging's inotify queue is not empty, or a preopen is not
watched), and the run is stopped at the guest's next epoch check, in the same tick. So a
preopen holds at most its budget plus what the guest writes in one tick (plus one write
call in progress, whose size the guest's memory limit bounds). A tree so large that a
walk of it takes more than a tenth of the time is measured less often: at most 10% of
the clock thread's time goes to walks, and the bound becomes what the guest writes
between two walks.

Locking: a DiskMeter is checked by the clock thread only (``check``); ``tripped`` is
written once by it and read by the run's thread after the guest stops.
"""

from __future__ import annotations

import os
import stat as stat_mod
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import attrs

from ..service import FileService, space_quota
from .records import DEFAULT_MAX_DISK, DEFAULT_MAX_DISK_FILES, Trap

__all__ = ["DEFAULT_MAX_DISK", "DEFAULT_MAX_DISK_FILES", "DiskArea", "DiskMeter",
           "sum_quotas"]

_DUTY: Final = 10  # a walk that took t seconds is not repeated before 10 t have passed

Quota = tuple[int | None, int | None]


def sum_quotas(services: Iterable[FileService]) -> Quota:
    """The quota of a subtree those services (each counted once) share: the sum of
    theirs, None where one of them has none."""
    seen: dict[int, Quota] = {}
    for s in services:
        seen.setdefault(id(s), space_quota(s))
    if not seen:
        return None, None
    quotas = list(seen.values())
    total_bytes = sum(q[0] for q in quotas if q[0] is not None)
    total_files = sum(q[1] for q in quotas if q[1] is not None)
    return (None if any(q[0] is None for q in quotas) else total_bytes,
            None if any(q[1] is None for q in quotas) else total_files)


def _least(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


@attrs.frozen
class DiskArea:
    """One writable preopen to measure: the host directory ``host`` (directories whose
    relative paths are in ``exclude`` are measured apart), shown at ``ns_path``, allowed
    ``max_bytes`` and ``max_files`` (None: not bounded); ``quota``: the services' quota
    (None: the bound is the run's ceiling); ``in_place``: a host directory shown as is."""

    ns_path: str
    host: str
    max_bytes: int | None
    max_files: int | None
    quota: Quota = (None, None)
    exclude: frozenset[str] = frozenset()
    in_place: bool = False

    @classmethod
    def staged(cls, ns_path: str, host: str, quota: Quota, max_disk: int | None,
               max_files: int | None, exclude: frozenset[str] = frozenset()
               ) -> DiskArea | None:
        """A staged subtree's area: its quota capped by the run's ceiling; None when
        nothing bounds it."""
        nbytes, nfiles = _least(quota[0], max_disk), _least(quota[1], max_files)
        if nbytes is None and nfiles is None:
            return None
        return cls(ns_path, host, nbytes, nfiles, quota, exclude)

    @classmethod
    def host_dir(cls, ns_path: str, host: str, before: Iterable[tuple[bool, int]],
               max_disk: int | None, max_files: int | None) -> DiskArea | None:
        """A host directory preopened as it is: ``before`` (``(is_dir, size)`` of each
        entry before the run) plus the run's ceiling."""
        if max_disk is None and max_files is None:
            return None
        nbytes = nfiles = 0
        for is_dir, size in before:
            nfiles += 1
            nbytes += 0 if is_dir else size
        return cls(ns_path, host, None if max_disk is None else nbytes + max_disk,
                   None if max_files is None else nfiles + max_files, in_place=True)


def measure(host: str, exclude: frozenset[str], max_bytes: int | None,
            max_files: int | None) -> tuple[int, int]:
    """``(bytes, entries)`` below ``host``, not following links; the walk stops as soon
    as a bound is passed."""
    nbytes = nfiles = 0
    stack = [""]
    big = 1 << 62
    limit_bytes = big if max_bytes is None else max_bytes
    limit_files = big if max_files is None else max_files
    while stack:
        rel = stack.pop()
        try:
            it = os.scandir(os.path.join(host, rel) if rel else host)
        except OSError:
            continue
        with it:
            for e in it:
                crel = f"{rel}/{e.name}" if rel else e.name
                if crel in exclude:
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                nfiles += 1
                if stat_mod.S_ISDIR(st.st_mode):
                    stack.append(crel)
                elif stat_mod.S_ISREG(st.st_mode):
                    nbytes += st.st_size
                if nbytes > limit_bytes or nfiles > limit_files:
                    return nbytes, nfiles
    return nbytes, nfiles


class DiskMeter:
    """Measures the writable preopens of one run against their budgets (see the module
    docstring); ``tripped`` is the trap once one went over."""

    def __init__(self, areas: Sequence[DiskArea], dirty: Callable[[], bool]) -> None:
        self.areas = areas
        self._dirty = dirty
        self._next = 0.0
        self.tripped: Trap | None = None

    def check(self) -> bool:
        """Measure now (unless nothing may have been written, or the last walk was too
        recent); True once a budget is passed."""
        if self.tripped is not None:
            return True
        now = time.monotonic()
        if now < self._next or not self._dirty():
            return False
        for area in self.areas:
            nbytes, nfiles = measure(area.host, area.exclude, area.max_bytes,
                                     area.max_files)
            if area.max_bytes is not None and nbytes > area.max_bytes:
                self.tripped = _trap(area, f"{nbytes} bytes or more, over its budget of "
                                           f"{area.max_bytes} bytes", area.quota[0],
                                     "max_disk")
            elif area.max_files is not None and nfiles > area.max_files:
                self.tripped = _trap(area, f"{nfiles} entries or more, over its budget "
                                           f"of {area.max_files} entries", area.quota[1],
                                     "max_disk_files")
            if self.tripped is not None:
                return True
        self._next = now + _DUTY * (time.monotonic() - now)
        return False


def _trap(area: DiskArea, what: str, quota: int | None, knob: str) -> Trap:
    where = area.ns_path if area.ns_path != "/" else "/ (beside the mounts)"
    bound = area.max_bytes if knob == "max_disk" else area.max_files
    if area.in_place:
        why = f"what it held before the run plus the run's {knob}"
    elif quota is not None and bound is not None and quota <= bound:
        why = "the quota of the services mounted there"
    else:
        why = f"the run's {knob}"
    return Trap("disk", None, f"disk limit: the guest wrote {what} in {where} ({why})")
