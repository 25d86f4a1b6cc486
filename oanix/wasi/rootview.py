"""The guest's root: one preopen at ``/`` that holds the writable staged mounts.

Without it a guest sees each mount as a separate preopen and nothing at ``/``: ``ls /``
fails, and every mount costs a preopen in every run. With it, the staging directories of
the writable mounts that nothing else contains (the *members*) are laid out under one
host directory at their guest paths, which is preopened at ``/``; read-only mounts and
host directories shown as they are keep preopens of their own (wasi-libc picks the
longest matching preopen), with an empty *placeholder* directory in the root where they
appear, and *intermediate* directories lead to members and placeholders below the top
level. So ``ls /`` lists the namespace's top level.

A writable root lets a guest do things no preopen of a mount allowed: write beside the
mounts, write into a placeholder (through ``..``), rename or remove a member's directory
itself. None of that reaches the namespace. ``repair`` puts the root back after a run:
what lies outside every member is removed and reported as refused (under the path the
guest saw), a member's directory that was moved is moved back (found by its inode) and one
that was removed is made again, empty, so the removal of what was in it is written back as
usual; both are reported as refused, since a mount point cannot be moved or removed.
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
from collections.abc import Iterable

import attrs

from .. import paths
from ._hostfs import lstat_or_none, remove_host

__all__ = ["RootLayout", "plan_root"]


@attrs.frozen(eq=False)
class RootLayout:
    """The guest's root: ``host`` shown at ``/``.

    ``members`` maps each member's path in the root (its guest path without the leading
    ``/``) to its namespace path; ``intermediates`` and ``placeholders`` are the other
    directories the root must hold (parents first).
    """

    host: str
    members: dict[str, str]
    intermediates: tuple[str, ...]
    placeholders: frozenset[str]

    def host_path(self, rel: str) -> str:
        return os.path.join(self.host, rel) if rel else self.host

    @property
    def scaffold(self) -> tuple[str, ...]:
        """The directories the root holds besides the members, parents first."""
        return tuple(sorted((*self.intermediates, *self.placeholders), key=_depth_first))

    def build(self) -> None:
        """Make the root and its scaffold (members are made by their own staging)."""
        for rel in ("", *self.scaffold):
            os.makedirs(self.host_path(rel), mode=0o700, exist_ok=True)

    def repair(self, inodes: dict[str, int]) -> tuple[list[tuple[str, str]], set[str]]:
        """Put the root back as the layout says, after a run.

        ``inodes`` gives each member directory's inode. Returns the refusals, as
        ``(path, reason)`` with the guest's path or the member's namespace path, and the
        members whose directory was moved back or made anew (their contents must be
        scanned in full).
        """
        refused: list[tuple[str, str]] = []
        touched: set[str] = set()
        wanted = self._children()
        moved: dict[int, str] = {}  # inode -> where a member's directory went
        for parent in ("", *self.intermediates):
            self._ensure_dir(parent, refused)
            try:
                names = os.listdir(self.host_path(parent))
            except OSError:
                continue
            for name in names:
                rel = f"{parent}/{name}" if parent else name
                if name in wanted.get(parent, ()):
                    continue
                st = lstat_or_none(self.host_path(rel))
                if st is not None and stat_mod.S_ISDIR(st.st_mode) and st.st_ino in (
                        inodes.get(m) for m in self.members):
                    moved[st.st_ino] = rel
                    continue
                refused.append(("/" + rel, "Unsupported: written outside every mount"))
                remove_host(self.host_path(rel))
        for rel, ns_path in self.members.items():
            st = lstat_or_none(self.host_path(rel))
            ino = inodes.get(rel)
            if st is not None and stat_mod.S_ISDIR(st.st_mode) and st.st_ino == ino:
                continue
            touched.add(rel)
            if st is not None:
                remove_host(self.host_path(rel))  # something else took its place
            came_from = moved.pop(ino, None) if ino is not None else None
            if came_from is not None:
                os.rename(self.host_path(came_from), self.host_path(rel))
                refused.append((ns_path, "Unsupported: a mount point cannot be moved"))
            else:
                os.makedirs(self.host_path(rel), mode=0o700, exist_ok=True)
                refused.append((ns_path, "Unsupported: a mount point cannot be removed"))
        for rel in moved.values():  # a member moved onto another member's name
            refused.append(("/" + rel, "Unsupported: written outside every mount"))
            remove_host(self.host_path(rel))
        for rel in sorted(self.placeholders, key=_depth_first):
            self._ensure_dir(rel, refused)
            with contextlib.suppress(OSError):
                for name in os.listdir(self.host_path(rel)):
                    refused.append((f"/{rel}/{name}",
                                    "Unsupported: written below a directory preopened apart"))
                    remove_host(self.host_path(f"{rel}/{name}"))
        return refused, touched

    def _children(self) -> dict[str, set[str]]:
        """The names each intermediate directory (and the root) must hold."""
        out: dict[str, set[str]] = {}
        for rel in (*self.members, *self.intermediates, *self.placeholders):
            parent, _, name = rel.rpartition("/")
            out.setdefault(parent, set()).add(name)
        return out

    def _ensure_dir(self, rel: str, refused: list[tuple[str, str]]) -> None:
        st = lstat_or_none(self.host_path(rel))
        if st is not None and stat_mod.S_ISDIR(st.st_mode):
            return
        if st is not None:
            refused.append(("/" + rel, "Unsupported: written outside every mount"))
            remove_host(self.host_path(rel))
        os.makedirs(self.host_path(rel), mode=0o700, exist_ok=True)


def plan_root(host: str, members: Iterable[tuple[str, str]], others: Iterable[str]
              ) -> RootLayout | None:
    """The root for ``members`` (``(guest path, namespace path)`` of the writable staged
    mounts that no other preopen contains) beside the ``others`` (the guest paths of the
    other preopens that no preopen contains); None when there is no member."""
    member_map = {guest.lstrip("/"): ns_path for guest, ns_path in members}
    if not member_map:
        return None
    placeholders = frozenset(g.lstrip("/") for g in others)
    intermediates: set[str] = set()
    for rel in (*member_map, *placeholders):
        parent = rel.rpartition("/")[0]
        while parent:
            intermediates.add(parent)
            parent = parent.rpartition("/")[0]
    return RootLayout(host, member_map, tuple(sorted(intermediates, key=_depth_first)),
                      placeholders)


def top_level(guests: Iterable[str]) -> list[str]:
    """The guest paths that no other one contains."""
    all_ = list(guests)
    return [g for g in all_ if not any(o != g and paths.is_within(g, o) for o in all_)]


def _depth_first(rel: str) -> tuple[int, str]:
    return (rel.count("/"), rel)
