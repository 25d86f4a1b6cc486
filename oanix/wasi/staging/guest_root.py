"""The guest's root (``oanix.wasi.rootview``) as the staging keeps it between runs: its
layout for the current plan, whether inotify watches its scaffold, and its repair after a
run (or after a change between runs) with the staged copies it holds.

The root holds the writable staged subtrees that no other preopen contains under one
directory preopened at ``/``, so a guest lists the namespace's top level with ``ls /``;
the other preopens keep their own, with placeholder directories in the root. What the
guest does to the root itself (writing beside the mounts, moving or removing a mount's
directory) is undone after the run and reported.

Locking: none of its own; it belongs to one ``NamespaceStaging``, used under the
namespace's lock (``lock``) while the guest is parked or gone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..._rmtree import remove_tree
from .._inotify import DirWatch
from ..rootview import RootLayout, plan_root, top_level
from .changelog import ChangeLog, reason
from .manifest import PreparedPreopen, Subtree
from .plan import Plan

__all__ = ["GuestRoot"]


class GuestRoot:
    """The guest's root of one namespace's runs: ``layout`` None when there is none (a
    preopen at ``/`` already)."""

    def __init__(self, watch: DirWatch) -> None:
        self._watch = watch
        self.layout: RootLayout | None = None
        self.watched = False  # whether the DirWatch covers the root's scaffold
        self.members: frozenset[str] = frozenset()  # namespace paths of its members
        self.preopen: PreparedPreopen | None = None

    @property
    def in_line(self) -> bool:
        """No root, or a watched one: nothing to look at before a run."""
        return self.layout is None or self.watched

    def forget(self) -> None:
        """Stop watching the root and forget its layout (``abandon``)."""
        if self.layout is not None:
            self._watch.forget(self.layout)
        self.layout = self.preopen = None
        self.watched = False
        self.members = frozenset()

    def plan(self, plans: list[Plan], base: str) -> None:
        """The root for ``plans`` (its directory below ``base``): its members are the
        writable staged preopens that no other preopen contains. ``build`` makes it."""
        tops = set(top_level(p.guest for p in plans))
        members = [(p.guest, p.ns_path) for p in plans
                   if p.direct is None and p.writable and p.guest in tops]
        others = [p.guest for p in plans if p.guest in tops
                  and not (p.direct is None and p.writable)]
        layout = None
        if "/" not in tops:
            layout = plan_root(os.path.join(base, "root"), members, others)
        if self.layout is not None:
            self._watch.forget(self.layout)
        self.layout, self.watched = layout, False
        self.members = (frozenset(layout.members.values()) if layout is not None
                        else frozenset())

    def build(self, base: str, subtrees: Mapping[str, Subtree]) -> None:
        """Make the planned root's directories (or remove the old root when none is
        planned), and clear what the previous layout left there."""
        layout = self.layout
        if layout is None:
            remove_tree(os.path.join(base, "root"))
            return
        self.preopen = PreparedPreopen(layout.host, "/", layout.writable)
        layout.build()
        self.repair(layout, subtrees, None)  # what the previous layout left there

    def host_of(self, ns_path: str) -> str | None:
        """Where the staged copy of member ``ns_path`` lives; None: not a member."""
        layout = self.layout
        if layout is None or ns_path not in self.members:
            return None
        return next(layout.host_path(rel) for rel, ns in layout.members.items()
                    if ns == ns_path)

    def watch(self) -> None:
        """Watch the root's scaffold (``watched`` says whether it is)."""
        layout = self.layout
        assert layout is not None
        self.watched = self._watch.available and self._watch.watch(
            layout, {rel: layout.host_path(rel) for rel in ("", *layout.scaffold)})

    def repair(self, root: RootLayout, subtrees: Mapping[str, Subtree],
               log: ChangeLog | None) -> set[str]:
        """Put ``root`` back after a run (or a change between runs, when ``log`` is
        None); the members whose directories were moved back or made anew."""
        members = {rel: subtrees[ns] for rel, ns in root.members.items() if ns in subtrees}
        self.watched = False
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
