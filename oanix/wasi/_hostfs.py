"""Small helpers for the host directories oanix stages into: never follow a link."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat as stat_mod
from collections.abc import Iterator
from typing import Final

__all__ = ["links_below", "lstat_or_none", "remove_host", "unlink_link"]

_OPEN_DIR: Final = (os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0)
                    | getattr(os, "O_CLOEXEC", 0))


def lstat_or_none(path: str) -> os.stat_result | None:
    """``os.lstat(path)``, or None when it cannot be had."""
    try:
        return os.lstat(path)
    except OSError:
        return None


def remove_host(path: str) -> None:
    """Remove ``path``, a whole tree if it is a directory (a link itself, never what it
    points to); nothing if it is already gone."""
    st = lstat_or_none(path)
    if st is None:
        return
    if stat_mod.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def links_below(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """``(relative path, lstat)`` of every symbolic link below ``root`` (whatever its
    name), not following any."""
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            it = os.scandir(os.path.join(root, rel) if rel else root)
        except OSError:
            continue
        with it:
            for e in it:
                crel = f"{rel}/{e.name}" if rel else e.name
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat_mod.S_ISLNK(st.st_mode):
                    yield crel, st
                elif stat_mod.S_ISDIR(st.st_mode):
                    stack.append(crel)


def unlink_link(root: str, rel: str, ino: int) -> bool:
    """Remove the symbolic link ``rel`` below the real directory ``root`` if it is still
    the link with inode ``ino``: every directory on the way is opened without following
    a link, and the link is removed relative to its directory's descriptor, so a
    directory swapped for a link meanwhile cannot send the removal elsewhere. Whether
    it was removed."""
    *parents, name = rel.split("/")
    try:
        fd = os.open(root, _OPEN_DIR)
    except OSError:
        return False
    try:
        for part in parents:
            nxt = os.open(part, _OPEN_DIR, dir_fd=fd)
            os.close(fd)
            fd = nxt
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat_mod.S_ISLNK(st.st_mode) or st.st_ino != ino:
            return False
        os.unlink(name, dir_fd=fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
