"""Host paths resolved beneath a directory descriptor, never through a link.

A path below a directory someone else can write in (a WorkspaceFs root, a staging
directory a guest runs in) is not resolved by the kernel in one go: every directory
component is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's descriptor
(``openat``), and the last name is used relative to its parent's descriptor with no-follow
flags, so a symlink anywhere, swapped in at any moment, is refused by the kernel instead
of followed out. WorkspaceFs and the WASI staging both resolve through ``descend``.

Errors are the OSErrors of the failing call (``ELOOP`` or ``ENOTDIR`` for a link).
POSIX only: callers check ``SUPPORTED``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as st_mod
from collections.abc import Callable, Iterator, Sequence
from typing import Final

from ._rmtree import remove_tree

__all__ = ["DIR", "FILE", "PATH", "SUPPORTED", "descend", "links_beneath", "lstat_beneath",
           "open_beneath", "open_dir_beneath", "parent_beneath", "remove_beneath",
           "unlink_link_beneath", "walk_beneath"]


def _flag(name: str) -> int:
    return int(getattr(os, name, 0))


# Every flag the confinement relies on; a platform without them (or without dir_fd) is
# refused by the callers, never run with a flag silently missing.
SUPPORTED: Final = (
    all(_flag(f) for f in ("O_DIRECTORY", "O_NOFOLLOW", "O_CLOEXEC", "O_NONBLOCK"))
    and {os.open, os.stat, os.mkdir, os.unlink, os.rmdir, os.rename} <= os.supports_dir_fd
    and os.scandir in os.supports_fd
)
# Intermediate directories are opened O_PATH where the platform has it: no read
# permission needed, nothing is really opened. Directories to list need O_RDONLY.
PATH: Final = _flag("O_PATH") or os.O_RDONLY
DIR: Final = _flag("O_DIRECTORY") | _flag("O_NOFOLLOW") | _flag("O_CLOEXEC")
FILE: Final = (_flag("O_NOFOLLOW") | _flag("O_CLOEXEC") | _flag("O_NOCTTY")
               | _flag("O_NONBLOCK"))

OnError = Callable[[OSError, int, str], BaseException]


def descend(fd: int, names: Sequence[str], listable: bool,
            on_error: OnError | None = None) -> int:
    """The descriptor of the directory reached from directory ``fd`` by ``names``.

    Takes ``fd`` over (it is closed, or returned when ``names`` is empty and not
    ``listable``). Every component is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative
    to its parent's descriptor; the last is opened readable when ``listable`` (a fresh
    descriptor even for no names: a listing must not share one). A failed open raises
    ``on_error(error, parent descriptor, name)`` when given, else the OSError.
    """
    try:
        if not names and listable:
            names = ["."]
        for i, name in enumerate(names):
            flags = DIR | (os.O_RDONLY if listable and i == len(names) - 1 else PATH)
            try:
                child = os.open(name, flags, dir_fd=fd)
            except OSError as e:
                if on_error is None:
                    raise
                raise on_error(e, fd, name) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _names(rel: str) -> list[str]:
    """The names of a relative path, each one plain (no ``.`` or ``..``)."""
    names = [n for n in rel.split("/") if n]
    if any(n in (".", "..") for n in names):
        raise OSError(errno.EINVAL, "not a plain relative path", rel)
    return names


def _split(rel: str) -> tuple[list[str], str]:
    """The directory names and the last name of a relative path ("" is ".")."""
    names = _names(rel)
    return names[:-1], names[-1] if names else "."


def _root(root: str | int) -> int:
    """A new descriptor of ``root``: a directory descriptor (duplicated), or the path of
    a directory the host made itself (its own components are trusted)."""
    if isinstance(root, int):
        return os.dup(root)
    return os.open(root, PATH | os.O_DIRECTORY | _flag("O_CLOEXEC"))


@contextlib.contextmanager
def parent_beneath(root: str | int, rel: str) -> Iterator[tuple[int, str]]:
    """``(descriptor of the parent, last name)`` of ``rel`` below ``root`` (see
    ``_root``), the parent reached without following a link; closed on exit."""
    dirs, name = _split(rel)
    fd = descend(_root(root), dirs, listable=False)
    try:
        yield fd, name
    finally:
        os.close(fd)


def open_dir_beneath(root: str | int, rel: str) -> int:
    """A readable descriptor of directory ``rel`` below ``root`` ("" for ``root``
    itself), no component followed if a link."""
    return descend(_root(root), _names(rel), listable=True)


def open_beneath(root: str | int, rel: str, flags: int, mode: int = 0o666) -> int:
    """``rel`` below ``root`` opened with ``flags``, never through a link (the last name
    included: ``O_NOFOLLOW`` is added)."""
    with parent_beneath(root, rel) as (dfd, name):
        return os.open(name, flags | FILE, mode, dir_fd=dfd)


def lstat_beneath(root: str | int, rel: str) -> os.stat_result | None:
    """``lstat`` of ``rel`` below ``root``, None when it (or a way to it) is not there."""
    try:
        with parent_beneath(root, rel) as (dfd, name):
            return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except OSError:
        return None


def remove_beneath(root: str | int, rel: str) -> None:
    """Remove ``rel`` below ``root``, a whole tree if it is a directory (a link itself,
    never what it points to); nothing if it is already gone or not reachable."""
    try:
        with parent_beneath(root, rel) as (dfd, name):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if st_mod.S_ISDIR(st.st_mode):
                remove_tree(name, dir_fd=dfd)
            else:
                os.unlink(name, dir_fd=dfd)
    except OSError:
        return


def walk_beneath(root: str | int, keep: Callable[[str, os.stat_result], bool] | None = None
                 ) -> Iterator[tuple[str, os.stat_result]]:
    """``(relative path, lstat)`` of everything below ``root``, each directory listed
    through its own descriptor (no link followed, no recursion). An entry for which
    ``keep(rel, lstat)`` is False is neither yielded nor, if a directory, entered; the
    caller may stop entering a directory just yielded by making ``keep`` refuse it."""
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            fd = open_dir_beneath(root, rel)
        except OSError:
            continue
        entries: list[tuple[str, os.stat_result]] = []
        try:
            with os.scandir(fd) as it:
                for e in it:
                    with contextlib.suppress(OSError):  # gone meanwhile
                        entries.append((e.name, e.stat(follow_symlinks=False)))
        except OSError:
            continue
        finally:
            os.close(fd)  # after the stats: they are made relative to it
        for name, st in entries:
            crel = f"{rel}/{name}" if rel else name
            if keep is not None and not keep(crel, st):
                continue
            yield crel, st
            if st_mod.S_ISDIR(st.st_mode):
                stack.append(crel)


def links_beneath(root: str | int) -> Iterator[tuple[str, os.stat_result]]:
    """``(relative path, lstat)`` of every symbolic link below ``root`` (see
    ``walk_beneath``)."""
    return ((rel, st) for rel, st in walk_beneath(root) if st_mod.S_ISLNK(st.st_mode))


def unlink_link_beneath(root: str | int, rel: str, ino: int) -> bool:
    """Remove the symbolic link ``rel`` below ``root`` if it is still the link with inode
    ``ino`` (its directory reached without following a link, the link removed relative
    to that directory's descriptor); whether it was removed."""
    try:
        with parent_beneath(root, rel) as (dfd, name):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if not st_mod.S_ISLNK(st.st_mode) or st.st_ino != ino:
                return False
            os.unlink(name, dir_fd=dfd)
            return True
    except OSError:
        return False
