"""The guest's root: one preopen at ``/`` that holds the writable staged mounts.

Without it a guest sees each mount as a separate preopen and nothing at ``/``: ``ls /``
fails, and every mount costs a preopen in every run. With it, the staging directories of
the writable mounts that nothing else contains (the *members*) are laid out under one
host directory at their guest paths, which is preopened at ``/``; read-only mounts and
host directories shown as they are keep preopens of their own (wasi-libc picks the
longest matching preopen), with an empty *placeholder* directory in the root where they
appear, and *intermediate* directories lead to members and placeholders below the top
level. So ``ls /`` lists the namespace's top level. With no member to hold, the root is
preopened read-only, placeholders alone.

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
import secrets
import stat as stat_mod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from .. import paths
from .._beneath import lstat_beneath, open_dir_beneath, remove_beneath

if TYPE_CHECKING:
    from .staging import PreparedPreopen

__all__ = ["OUTSIDE_MOUNTS", "RootLayout", "plan_root", "unshadowed"]

# The reason a write beside the mounts is refused (``RunResult.changes.refused``).
OUTSIDE_MOUNTS = "Unsupported: written outside every mount"


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

    @property
    def writable(self) -> bool:
        """Whether the guest may write in the root: only when it holds members."""
        return bool(self.members)

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

        ``inodes`` gives each member directory's inode (held open by the caller, so no
        new directory can have it). Returns the refusals, as ``(path, reason)`` with the
        guest's path or the member's namespace path, and the members whose directory was
        moved back or made anew (their contents must be scanned in full).

        Nothing here follows a link the guest made: the scaffold is put in order first,
        parents first, so every path used after it goes through real directories only,
        and below that a directory is entered only when ``lstat`` says it is one.
        """
        refused: list[tuple[str, str]] = []
        owner = {ino: rel for rel, ino in inodes.items()}
        where: dict[str, str] = {}  # member -> where its directory is now
        aside: dict[str, str] = {}  # member -> the name it waits under, in the root
        tag = secrets.token_hex(8)  # for those names: nothing the guest made can clash
        # 1. The scaffold: real directories, none of them a member's (an empty scaffold
        #    directory can be replaced by a rename, so a member's may sit there).
        for rel in self.scaffold:
            st = lstat_beneath(self.host, rel)
            if st is not None and stat_mod.S_ISDIR(st.st_mode):
                member = owner.get(st.st_ino)
                if member is None:
                    continue
                self._put_aside(member, rel, tag, aside, where)
            elif st is not None:
                refused.append(("/" + rel, OUTSIDE_MOUNTS))
                remove_beneath(self.host, rel)
            os.mkdir(self.host_path(rel), 0o700)
        # 2. What lies where nothing should.
        wanted = self._children()
        waiting = set(aside.values())
        junk: list[str] = []
        for rel in ("", *self.scaffold):
            keep = () if rel in self.placeholders else wanted.get(rel, ())
            junk += [f"{rel}/{name}" if rel else name for name in self._list(rel)
                     if name not in keep and name not in waiting]
        # 3. Where each member's directory is: in place, in another member's place (two
        #    swapped), in the junk, or inside another member; those out of place go
        #    aside, deepest first (one may sit inside another), then back.
        for rel in (*self.members, *junk):
            self._find(rel, owner, where)
        searched: set[str] = set()
        while len(where) < len(self.members) and searched != where.keys():
            for member, at in list(where.items()):
                if member not in searched:
                    searched.add(member)
                    for name in self._list(at):
                        self._find(f"{at}/{name}", owner, where)
        for member, at in sorted(where.items(), key=lambda kv: -kv[1].count("/")):
            if at != member and member not in aside:
                self._put_aside(member, at, tag, aside, where)
        touched: set[str] = set()
        for rel, ns_path in self.members.items():
            if where.get(rel) == rel:
                continue
            touched.add(rel)
            remove_beneath(self.host, rel)  # whatever took its place
            if rel in aside:
                os.rename(self.host_path(aside[rel]), self.host_path(rel))
                refused.append((ns_path, "Unsupported: a mount point cannot be moved"))
            else:
                os.mkdir(self.host_path(rel), 0o700)
                refused.append((ns_path, "Unsupported: a mount point cannot be removed"))
        for rel in junk:
            if lstat_beneath(self.host, rel) is not None:  # not a member taken out
                refused.append(("/" + rel, OUTSIDE_MOUNTS))
                remove_beneath(self.host, rel)
        return refused, touched

    def _put_aside(self, member: str, at: str, tag: str, aside: dict[str, str],
                   where: dict[str, str]) -> None:
        name = f".oanix-aside-{tag}-{len(aside)}"
        os.rename(self.host_path(at), self.host_path(name))
        aside[member] = where[member] = name

    def _list(self, rel: str) -> list[str]:
        try:
            return os.listdir(self.host_path(rel))
        except OSError:
            return []

    def _find(self, rel: str, owner: dict[int, str], where: dict[str, str]) -> None:
        """Record in ``where`` the member directories at or below ``rel`` (by inode),
        without looking inside them or following a link (an explicit stack: any depth)."""
        stack = [rel]
        while stack:
            rel = stack.pop()
            st = lstat_beneath(self.host, rel)
            if st is None or not stat_mod.S_ISDIR(st.st_mode):
                continue
            member = owner.get(st.st_ino)
            if member is not None:
                where.setdefault(member, rel)
                continue
            # junk, or what took a member's place: going away
            stack.extend(f"{rel}/{name}" for name in reversed(self._list(rel)))

    def _children(self) -> dict[str, set[str]]:
        """The names each intermediate directory (and the root) must hold."""
        out: dict[str, set[str]] = {}
        for rel in (*self.members, *self.intermediates, *self.placeholders):
            parent, _, name = rel.rpartition("/")
            out.setdefault(parent, set()).add(name)
        return out

    def _ensure_dir(self, rel: str, refused: list[tuple[str, str]]) -> None:
        st = lstat_beneath(self.host, rel)
        if st is not None and stat_mod.S_ISDIR(st.st_mode):
            return
        if st is not None:
            refused.append(("/" + rel, OUTSIDE_MOUNTS))
            remove_beneath(self.host, rel)
        os.makedirs(self.host_path(rel), mode=0o700, exist_ok=True)


def plan_root(host: str, members: Iterable[tuple[str, str]], others: Iterable[str]
              ) -> RootLayout | None:
    """The root for ``members`` (``(guest path, namespace path)`` of the writable staged
    mounts that no other preopen contains) beside the ``others`` (the guest paths of the
    other preopens that no preopen contains); None when there is nothing to show. A root
    with no member is shown read-only: only the placeholders are there."""
    member_map = {guest.lstrip("/"): ns_path for guest, ns_path in members}
    others = list(others)
    if not member_map and not others:
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



@contextlib.contextmanager
def unshadowed(preopens: Sequence[PreparedPreopen], shadowed: Mapping[str, frozenset[str]]
               ) -> Iterator[list[PreparedPreopen]]:
    """The preopens that keep a namespace's directories visible where the module itself
    provides directories (CPython's embedded standard library under ``/usr/local/lib``),
    valid inside the block.

    ``shadowed`` maps each guest directory the module provides to the names it holds
    there. wasi-libc resolves a path through the longest matching preopen, and a
    module's own directory wins a tie, so each other subdirectory of a shadowed
    directory that the preopens show is preopened again at its own guest path: the same
    directory, so reads and writes through it are the preopen's own. Files directly in a
    shadowed directory stay hidden (a preopen is a directory).

    A guest may be changing these directories (a session's guest left running): each one
    is opened beneath its preopen without following a link, and wasmtime is given that
    descriptor's ``/proc/self/fd`` path (it opens a preopen when it is configured), so
    a link swapped in cannot lead it out. The descriptors close when the block ends.
    """
    fds: list[int] = []
    try:
        yield _reveal(preopens, shadowed, fds)
    finally:
        for fd in fds:
            os.close(fd)


def _reveal(preopens: Sequence[PreparedPreopen], shadowed: Mapping[str, frozenset[str]],
            fds: list[int]) -> list[PreparedPreopen]:
    taken = {p.guest for p in preopens}
    out: list[PreparedPreopen] = []
    for guest_dir, provided in shadowed.items():
        holder = max((p for p in preopens if paths.is_within(guest_dir, p.guest)),
                     key=lambda p: len(p.guest), default=None)
        if holder is None:
            continue
        try:
            dfd = open_dir_beneath(holder.host,
                                   paths.relative_to(guest_dir, holder.guest).lstrip("/"))
        except OSError:  # not in the namespace (or not a directory): nothing to show
            continue
        try:
            names = sorted(os.listdir(dfd))
            for name in names:
                guest = paths.join(guest_dir, name)
                if name in provided or guest in taken:
                    continue
                try:
                    fd = open_dir_beneath(dfd, name)
                except OSError:  # a file, a link, or gone
                    continue
                fds.append(fd)
                out.append(attrs.evolve(holder, host=f"/proc/self/fd/{fd}", guest=guest))
                taken.add(guest)
        finally:
            os.close(dfd)
    return out
