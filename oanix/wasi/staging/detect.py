"""What changed? One question, asked of a staged subtree on each side of a run, and three
ways of answering it:

* a full walk or scan: "anything may have" (``None``): the namespace side walks every
  stat (``NamespaceWalk``), the guest side scans the staged copy (``StagedScan``);
* the change journal (``NamespaceJournal``): only the paths the one service behind the
  subtree names since its last sync (``journal``);
* inotify (``StagedWatch``): only the entries the guest created, wrote, deleted or renamed
  (``oanix.wasi._inotify``).

Each answer is ``Changed``: the subtree-relative paths to look at (an empty set: nothing
changed), or None: look at everything. A finder is made for one subtree and one sync:
``changed()`` (detect) comes before the sync or write-back (apply), ``record()`` after
it, so the next question starts from there. The journal and inotify fall back to the
full walk or scan whenever they cannot vouch for their answer: the journal when it
overflowed, a file opened before a rename was written, or the subtree's root or an
ancestor changed; inotify when it is missing, its queue overflowed, or a directory was
created, deleted or moved. A guest that deliberately resets an mtime after writing can
hide its own change from a scan; that only loses its own write.

Locking: none of its own; finders are made and used under the namespace's lock (``lock``)
while the guest is parked or gone.
"""

from __future__ import annotations

from typing import Protocol

from ...service import ChangeJournal
from .._inotify import WatchReport
from .journal import Cursor, journal_rels
from .manifest import Subtree
from .plan import Source

__all__ = ["ChangeFinder", "Changed", "NamespaceJournal", "NamespaceWalk", "StagedScan",
           "StagedWatch", "guest_changes", "namespace_changes"]

Changed = set[str] | None
"""What changed in one staged subtree: its relative paths (empty: nothing), or None:
anything may have (walk or scan it all)."""


class ChangeFinder(Protocol):
    """One way of telling what changed in one staged subtree since its last sync."""

    def changed(self) -> Changed:
        """What to look at (detect); call once, before the sync or write-back."""
        ...

    def record(self) -> None:
        """The sync or write-back is through: start the next question from here."""
        ...


# -- the namespace side, before the run ------------------------------------------------------


class NamespaceWalk:
    """Every stat of the namespace below the subtree: no journal to ask."""

    __slots__ = ("sub",)

    def __init__(self, sub: Subtree) -> None:
        self.sub = sub

    def changed(self) -> Changed:
        self.sub.journal = None
        return None

    def record(self) -> None:
        pass


class NamespaceJournal:
    """The paths the one service behind the subtree names in its change journal since
    the subtree's last sync. The generation is read before anything else, so a change
    made concurrently is seen by this sync or the next."""

    __slots__ = ("gen", "journal", "service", "sroot", "sub")

    def __init__(self, sub: Subtree, source: Source, journal: ChangeJournal) -> None:
        self.sub = sub
        self.service = source.service
        self.sroot = source.sroot
        self.journal = journal
        self.gen = -1

    def changed(self) -> Changed:
        sub, journal, sroot = self.sub, self.journal, self.sroot
        gen = self.gen = journal.generation  # before anything is read
        last = sub.journal
        rels = None
        if last is not None and last.service is self.service and last.sroot == sroot:
            if gen == last.gen and not last.pending:
                return set()  # nothing changed: the common case, kept cheap
            changed = journal.changed_since(last.gen)
            if changed is not None:
                rels = journal_rels(sub.exclude, sroot, changed)
            if rels is not None:
                rels |= last.pending
        sub.journal = None  # until this sync is through
        return rels

    def record(self) -> None:
        if self.sub.journal is None:
            self.sub.journal = Cursor(self.service, self.sroot, self.gen)


def namespace_changes(sub: Subtree, source: Source | None) -> ChangeFinder:
    """How to tell what changed in the namespace below ``sub`` (planned as ``source``)."""
    if source is not None and source.journal is not None:
        return NamespaceJournal(sub, source, source.journal)
    return NamespaceWalk(sub)


# -- the guest side, after the run -----------------------------------------------------------


class StagedScan:
    """Every entry of the staged copy: no inotify, a queue overflow, a directory created,
    deleted or moved, or the copy was moved back into the guest's root."""

    __slots__ = ("sub",)

    def __init__(self, sub: Subtree) -> None:
        self.sub = sub

    def changed(self) -> Changed:
        return None

    def record(self) -> None:
        self.sub.watched = None  # directories may have moved: watch them afresh


class StagedWatch:
    """The entries inotify saw the guest touch in the staged copy (``report`` None: no
    event at all)."""

    __slots__ = ("found", "report", "sub")

    def __init__(self, sub: Subtree, report: WatchReport | None) -> None:
        self.sub = sub
        self.report = report
        self.found: Changed = None

    def changed(self) -> Changed:
        self.found = set() if self.report is None else self.report.get(self.sub)
        return self.found

    def record(self) -> None:
        if self.found is None:
            self.sub.watched = None  # the watch could not tell: watch afresh


def guest_changes(sub: Subtree, report: WatchReport | None, rescan: set[str]
                  ) -> ChangeFinder:
    """How to tell what the guest changed in ``sub``: inotify's ``report`` when the copy
    is watched and not among the ``rescan`` ones (namespace paths), else a full scan."""
    if sub.watched is not None and sub.ns_root not in rescan:
        return StagedWatch(sub, report)
    return StagedScan(sub)
