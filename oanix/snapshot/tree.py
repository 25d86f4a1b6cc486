"""File trees in a snapshot: the ``entries`` list several states share, and the content
hash of a host directory.

An ``entries`` list holds, parents before children::

    ["/dir", "d", mtime]
    ["/dir/file", "f", mtime, {"$blob": "<sha256>"}]

(the root is implied). ``decode_entries`` checks every path (absolute, normalised, not the
root, not given twice, its parent a directory given before it), so a crafted list can
only describe a tree, never reach outside the service it fills.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from .. import paths
from ..errors import FsError, PermissionDenied

if TYPE_CHECKING:
    from ..service import FileService
    from .protocol import SnapshotReader, SnapshotWriter

__all__ = ["Entry", "content_hash", "decode_entries", "encode_entries", "service_entries"]


@attrs.frozen
class Entry:
    """One node of a tree: a directory (``data`` None) or a file."""

    path: str
    mtime: float
    data: bytes | None = None

    @property
    def is_dir(self) -> bool:
        return self.data is None


def encode_entries(entries: list[Entry], w: SnapshotWriter) -> list[list[Any]]:
    """``entries`` as their JSON list (contents as blobs)."""
    out: list[list[Any]] = []
    for e in entries:
        if e.data is None:
            out.append([e.path, "d", e.mtime])
        else:
            out.append([e.path, "f", e.mtime, w.blob(e.data)])
    return out


def decode_entries(value: object, r: SnapshotReader, where: str) -> list[Entry]:
    """The checked entries of a JSON list (see the module docstring).

    Raises:
        CorruptSnapshot: naming ``where`` and the bad entry.
    """
    if not isinstance(value, list):
        raise r.fail(where, "entries is not a list")
    dirs = {"/"}
    seen: set[str] = set()
    out: list[Entry] = []
    for i, item in enumerate(value):
        at = f"{where} entry {i}"
        if not isinstance(item, list) or len(item) not in (3, 4):
            raise r.fail(at, "not a [path, kind, mtime(, blob)] list")
        path = r.path(item[0], at)
        if path == "/" or path in seen:
            raise r.fail(at, f"{path!r} is the root or given twice")
        if paths.dirname(path) not in dirs:
            raise r.fail(at, f"the parent of {path!r} is not a directory given before it")
        mtime = r.field({"mtime": item[2]}, "mtime", float, at)
        seen.add(path)
        if item[1] == "d" and len(item) == 3:
            dirs.add(path)
            out.append(Entry(path, mtime))
        elif item[1] == "f" and len(item) == 4:
            out.append(Entry(path, mtime, r.blob(item[3], at)))
        else:
            raise r.fail(at, f"kind {item[1]!r} is not 'd' or 'f' (with its blob)")
    return out


def service_entries(service: FileService, top: str = "/") -> Iterator[Entry]:
    """Every entry below ``top`` of a service, parents first, names sorted.

    Raises:
        FsError: an entry cannot be read (a WorkspaceFs symlink, for instance).
    """
    stack = [top]
    while stack:
        d = stack.pop()
        for st in reversed(service.scandir(d)):
            p = paths.join(d, st.name)
            if st.is_dir:
                yield Entry(p, st.mtime)
                stack.append(p)
            else:
                yield Entry(p, st.mtime, service.read_bytes(p))


def content_hash(service: FileService) -> str:
    """The SHA-256 of a service's tree, over a canonical walk: from the root, a
    directory's entries in the order of their names' UTF-8 bytes, then the trees of its
    subdirectories in the same order. For each directory ``b"d " + path + b"\\n"``, for each file
    ``b"f " + path + b" " + hex sha256 of its content + b"\\n"``, and for an entry that
    cannot be read (a symlink or special file in a WorkspaceFs) ``b"x " + path + b"\\n"``.
    mtimes are left out: a copy of the same files has the same hash."""
    h = hashlib.sha256()
    stack = ["/"]
    while stack:
        d = stack.pop()
        names = sorted(service.listdir(d), key=lambda n: n.encode("utf-8", "surrogateescape"))
        subdirs: list[str] = []
        for name in names:
            p = paths.join(d, name)
            line = p.encode("utf-8", "surrogateescape")
            try:
                st = service.stat(p)
                if st.is_dir:
                    h.update(b"d " + line + b"\n")
                    subdirs.append(p)
                    continue
                digest = hashlib.sha256(service.read_bytes(p)).hexdigest().encode()
                h.update(b"f " + line + b" " + digest + b"\n")
            except (PermissionDenied, FsError):
                h.update(b"x " + line + b"\n")
        stack.extend(reversed(subdirs))
    return h.hexdigest()
