"""Host I/O below a staging directory: every access is resolved from the descriptor the
host holds of it, component by component with no-follow opens (``oanix._beneath``), so a
link a guest swaps in for a directory at any moment is refused by the kernel, never
followed out of the sandbox.

Locking: none of its own; called under the namespace's lock (``lock``), while the guest is
parked or gone.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_mod
import tempfile
from collections.abc import Iterable, Iterator
from typing import Final

from ..._beneath import lstat_beneath, open_beneath, parent_beneath, walk_beneath

__all__ = ["HOST_PATH_MAX", "STAMP_AGE_NS", "lstat_all", "read_file", "sha", "stamp_host",
           "staging_root", "walk_host", "write_file"]

_OPEN_WRITE: Final = (os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
                      | getattr(os, "O_CLOEXEC", 0))
_OPEN_READ: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
#: The longest host path a staged file may have (Linux's PATH_MAX less its NUL): a deeper
#: namespace tree cannot be staged and the run raises ``NameTooLong`` naming it.
HOST_PATH_MAX: Final = 4095
#: How far in the past a staged file's mtime is set, so any write by the guest moves it.
STAMP_AGE_NS: Final = 1_000_000_000


def staging_root() -> str:
    """``/dev/shm`` when it exists and is writable, else ``tempfile.gettempdir()``."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def write_file(root: int, rel: str, data: bytes, mtime_ns: int) -> os.stat_result:
    """Write staged file ``rel`` below the directory ``root``, never through a link."""
    fd = open_beneath(root, rel, _OPEN_WRITE, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.utime(fd, ns=(mtime_ns, mtime_ns))
        return os.fstat(fd)
    finally:
        os.close(fd)


def read_file(root: int, rel: str) -> bytes:
    """Read staged file ``rel`` below the directory ``root``, never through a link."""
    fd = open_beneath(root, rel, _OPEN_READ)
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise IsADirectoryError(rel)
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def stamp_host(root: int, rel: str, now_ns: int) -> os.stat_result:
    """Set staged file ``rel``'s times to ``STAMP_AGE_NS`` before ``now_ns``; its stat."""
    stamp = now_ns - STAMP_AGE_NS
    with parent_beneath(root, rel) as (dfd, name):
        os.utime(name, ns=(stamp, stamp), dir_fd=dfd, follow_symlinks=False)
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)


def lstat_all(root: int, rels: Iterable[str]) -> Iterator[tuple[str, os.stat_result]]:
    """``(relative path, lstat)`` of those of the staged paths ``rels`` that exist."""
    for rel in rels:
        st = lstat_beneath(root, rel)
        if st is not None:
            yield rel, st


def walk_host(root: str | int, limit: int | None, exclude: frozenset[str] = frozenset(),
              too_deep: tuple[list[str], int] | None = None
               ) -> Iterator[tuple[str | None, os.stat_result]]:
    """``(relative path, lstat)`` of everything below ``root`` (a directory descriptor,
    or the path of one the host made), every directory entered by descriptor, never
    through a link.

    Directories in ``exclude`` are yielded but not entered; temporary files of
    WorkspaceFs writes are skipped. Yields ``(None, ...)`` once and stops when more than
    ``limit`` entries are found. With ``too_deep = (found, length of root's host path)``,
    an entry whose host path would pass ``HOST_PATH_MAX`` is neither yielded nor entered
    but added to ``found``: the next run could not stage it.
    """
    def keep(crel: str, st: os.stat_result) -> bool:
        if crel.rpartition("/")[2].startswith(".oanix-tmp-"):
            return False
        if too_deep is not None and too_deep[1] + 1 + len(os.fsencode(crel)) > HOST_PATH_MAX:
            too_deep[0].append(crel)
            return False
        return crel.rpartition("/")[0] not in exclude  # an excluded directory is not entered

    for count, (crel, st) in enumerate(walk_beneath(root, keep), 1):
        if limit is not None and count > limit:
            yield None, st
            return
        yield crel, st
