"""The change journal: a service that keeps one (``generation`` and ``changed_since``:
MemFs, CowFs over MapFs or MemFs, MapFs) names the paths changed since a generation, so a
sync re-reads only those instead of walking the subtree.

``Cursor`` is where a subtree's one service stood in its journal when the subtree was
synced; ``Tracker`` follows the journal through a write-back to tell the write-back's own
changes from the host's.

Locking: none of its own; cursors and trackers belong to a subtree, used under the
namespace's lock (``lock``). The journal is read generation first, so a change made
concurrently by another thread is seen by this sync or the next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import attrs

from ... import paths
from ...service import ChangeJournal, FileService, change_journal

__all__ = ["Cursor", "Tracker", "journal_rels"]


def journal_rels(exclude: frozenset[str], sroot: str, changed: Iterable[str]
                 ) -> set[str] | None:
    """The subtree-relative paths among the service paths ``changed`` (those outside the
    subtree ``sroot``, or inside a directory preopened apart, ``exclude``, are left out);
    None when the change needs a full walk: the subtree's root, an ancestor, or a
    directory preopened apart (or an ancestor of one) changed."""
    out: set[str] = set()
    apart = [paths.join("/", x) for x in exclude]
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
class Cursor:
    """Where a subtree's one service stood in its journal when the subtree was synced."""

    service: FileService
    sroot: str
    gen: int
    pending: set[str] = attrs.field(factory=set)  # paths to re-sync besides the journal's


class Tracker:
    """Follows the journal of a subtree's service through a write-back, to tell the
    write-back's own changes (not to be read back by the next sync) from the host's
    (which the next sync must see, even when made concurrently with the write-back).

    Every change up to ``cursor`` is either in ``pending`` or known to be the write-back's
    own; a change is known to be its own only when the journal moved by exactly one entry,
    naming the path written, during the write-back's call. ``pending`` None: lost track.
    """

    def __init__(self, journal: ChangeJournal, sroot: str, gen: int) -> None:
        self.journal = journal
        self.sroot = sroot
        self.cursor = gen
        self.pending: set[str] | None = set()

    @classmethod
    def following(cls, cursor: Cursor | None) -> Tracker | None:
        """A tracker from ``cursor`` on, when its service still keeps a journal."""
        journal = None if cursor is None else change_journal(cursor.service)
        if cursor is None or journal is None:
            return None
        return cls(journal, cursor.sroot, cursor.gen)

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
