"""The namespace's files as MCP resources: ``oanix:///workspace/a.txt`` names the file
``/workspace/a.txt``.

A listing walks the namespace breadth first and stops after ``MAX_VISITED`` entries, so
it stays bounded on any tree; it leaves out ``/cap``, whose files are capabilities (a
read there may act) rather than data. Any file can still be read by its URI; reads go
through the namespace, like the tools' (see ``oanix.mcp.tools``).

Locking: none; functions of their arguments.
"""

from __future__ import annotations

from collections import deque
from urllib.parse import quote, unquote, urlsplit

import attrs

from .. import paths
from ..errors import FsError, InvalidArgument
from ..service import FileService

__all__ = ["MAX_LISTED", "MAX_VISITED", "SCHEME", "ListedFile", "list_files", "path_of",
           "uri_of"]

SCHEME = "oanix"
MAX_LISTED = 1_000
"""Files one listing names at most."""
MAX_VISITED = 10_000
"""Namespace entries one listing looks at, at most."""
SKIPPED = ("/cap",)


def uri_of(path: str) -> str:
    """The resource URI of namespace path ``path``."""
    return f"{SCHEME}://" + quote(paths.normalize(path))


def path_of(uri: str) -> str:
    """The namespace path a resource URI names.

    Raises:
        InvalidArgument: ``uri`` is not an ``oanix:///...`` URI (naming it).
    """
    parts = urlsplit(uri)
    if parts.scheme != SCHEME or parts.netloc or parts.query or parts.fragment:
        raise InvalidArgument(f"resource {uri!r}: expected {SCHEME}:///<path>")
    return paths.normalize(unquote(parts.path) or "/")


@attrs.frozen
class ListedFile:
    """A file a listing found."""

    path: str
    size: int


def list_files(ns: FileService, *, max_listed: int = MAX_LISTED,
               max_visited: int = MAX_VISITED) -> list[ListedFile]:
    """The files of ``ns``, breadth first, names sorted within a directory, outside
    ``/cap``; at most ``max_listed``, after looking at ``max_visited`` entries at most.
    A directory that cannot be listed is passed over."""
    found: list[ListedFile] = []
    todo = deque(["/"])
    visited = 0
    while todo and len(found) < max_listed and visited < max_visited:
        directory = todo.popleft()
        try:
            found_here = sorted(ns.scandir(directory), key=lambda st: st.name)
        except FsError:
            continue
        for st in found_here[:max_visited - visited]:
            visited += 1
            path = paths.join(directory, st.name)
            if st.is_dir:
                if path not in SKIPPED:
                    todo.append(path)
            elif len(found) < max_listed:
                found.append(ListedFile(path, st.size))
    return found
