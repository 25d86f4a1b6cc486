"""Host directories preopened directly (a WorkspaceFs mount): nothing is copied, so after
the run their changes are reported from a stat walk (size, mtime, inode) before and after
it, skipped when the tree has more than ``scan_limit`` entries; a same-size rewrite within
one mtime tick may go unreported (the files are live, so nothing is lost). Symlinks the
guest made there are removed, each relative to its directory's descriptor with no link
followed, and reported refused; the host's own links are left alone. A service that sets
``changes_reported_elsewhere = True`` (a directory of a run in progress, shown to a process
that run starts) is walked before the run only, for its disk budget: the run that owns the
directory reports what is written there, and removes and refuses the links planted in it,
as its own sync sees them.

Locking: called under the namespace's lock (``lock``), before the run and after the guest
is gone or parked.
"""

from __future__ import annotations

import stat as stat_mod
from typing import Final

from ... import paths
from ..._beneath import links_beneath, unlink_link_beneath
from .changelog import ChangeLog
from .hostio import walk_host
from .plan import DirectScan, Plan

__all__ = ["remove_direct_links", "report_direct", "scan_direct"]

_CTIME_SLACK_NS: Final = 20_000_000  # file times come from a clock that may lag a tick


def scan_direct(host: str, limit: int) -> DirectScan | None:
    """``{relative path: (is_dir, size, mtime_ns, inode)}`` of everything below ``host``,
    or None when there are more than ``limit`` entries."""
    out: DirectScan = {}
    for rel, st in walk_host(host, limit):
        if rel is None:
            return None
        out[rel] = (stat_mod.S_ISDIR(st.st_mode), st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def remove_direct_links(plan: Plan, before: DirectScan | None, since_ns: int,
                        log: ChangeLog) -> None:
    """Remove the symbolic links the guest made in a host directory preopened as it
    is, and report them refused, as a staged copy would: a host program would follow
    them. The guest's are those not there before the run (by inode), or, when the
    tree was too large to scan before, those made since ``since_ns`` (by ctime)."""
    assert plan.direct is not None
    since = since_ns - _CTIME_SLACK_NS
    for rel, st in list(links_beneath(plan.direct)):
        old = None if before is None else before.get(rel)
        if (old is not None and old[3] == st.st_ino) or (
                before is None and st.st_ctime_ns < since):
            continue  # the host's own link
        if unlink_link_beneath(plan.direct, rel, st.st_ino):
            log.refused.append((paths.join(plan.ns_path, rel),
                                "Unsupported: symbolic link made by the guest in a "
                                "host directory: removed"))


def report_direct(plan: Plan, before: DirectScan, limit: int, log: ChangeLog) -> None:
    """Report what changed in ``plan``'s host directory since ``before``."""
    assert plan.direct is not None
    after = scan_direct(plan.direct, limit)
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
