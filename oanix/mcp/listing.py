"""A directory's entries as the tools and the resource listing show them.

``Namespace.scandir`` of a mount point stats each entry and fails as a whole when one
stat is refused (a host workspace's symlink out of its root, say); a listing should
still show the rest, so it falls back to one stat per name and reports the names it
could not stat apart.

Locking: none; a function of its arguments.
"""

from __future__ import annotations

from .. import paths
from ..errors import FsError
from ..service import FileService, Stat

__all__ = ["entries"]


def entries(ns: FileService, directory: str) -> tuple[list[Stat], list[str]]:
    """The stats of ``directory``'s entries sorted by name, and the names that could not
    be stat'ed (sorted).

    Raises:
        FsError: ``directory`` cannot be listed (NotFound, NotADirectory, ...).
    """
    try:
        found = ns.scandir(directory)
    except FsError:
        names = ns.listdir(directory)
        found, refused = [], []
        for name in names:
            try:
                found.append(ns.stat(paths.join(directory, name)))
            except FsError:
                refused.append(name)
        return sorted(found, key=lambda st: st.name), sorted(refused)
    return sorted(found, key=lambda st: st.name), []
