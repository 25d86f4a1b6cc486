"""The manifest of a staged subtree and the timestamp rule that lets it trust a stat.

Per subtree (``Subtree``): its staging directory, held by a descriptor, and per staged
file (``FileRec``) the staged copy's (size, mtime_ns, inode) as the last sync left it,
its sha256, and the namespace's (size, mtime) as seen then.

The racy-timestamp rule (racy-git): a file whose namespace size and mtime are unchanged
is trusted, unless its mtime was not safely older than the moment it was last checked
(within 50 ms, or 2 s for whole-second mtimes, or always for a service with no clock,
mtime 0; a service that declares ``mtime_resolution`` gets twice that, at least 1 ms);
then its content is compared by sha256. On the guest side every staged file gets an mtime
at least one second in the past (``stamp``), so any write by the guest moves its mtime.

Locking: none of its own; a subtree belongs to one ``NamespaceStaging``, used under the
namespace's lock (``lock``).
"""

from __future__ import annotations

import contextlib
import os
from typing import Final

import attrs

from ... import paths
from ..._beneath import remove_beneath
from ...errors import NameTooLong
from ...service import FileService, mtime_resolution
from ..quota import Quota
from .hostio import HOST_PATH_MAX, STAMP_AGE_NS
from .journal import Cursor, Tracker

__all__ = ["FileRec", "PreparedPreopen", "Subtree", "clock_window", "is_racy", "stamp"]

_RACY_WINDOW: Final = 0.05
_RACY_WINDOW_COARSE: Final = 2.0
_RACY_WINDOW_MIN: Final = 0.001


def clock_window(service: FileService) -> float | None:
    """How close to a sync a namespace mtime of ``service`` must be to be racy, when the
    service says how fine its clock is (``mtime_resolution``, seconds); None: unknown.
    """
    res = mtime_resolution(service)
    return None if res is None else max(2.0 * res, _RACY_WINDOW_MIN)


def is_racy(ns_mtime: float, checked: float, window: float | None = None) -> bool:
    """Whether a namespace mtime was too close to the moment it was seen to vouch for the
    content (racy-git): a same-size rewrite in the same clock tick would keep it. The
    window is the service's (``clock_window``), else 50 ms, or 2 s for whole seconds."""
    if ns_mtime == 0 or ns_mtime != ns_mtime:
        return True
    if window is None:
        window = _RACY_WINDOW_COARSE if ns_mtime == int(ns_mtime) else _RACY_WINDOW
    return ns_mtime + window > checked


@attrs.define
class FileRec:
    """What the manifest knows of one staged file."""

    size: int  # staged copy, as left by the last sync
    mtime_ns: int
    ino: int
    digest: bytes
    ns_size: int  # namespace side, as seen at ``checked``
    ns_mtime: float
    racy: bool  # the namespace stat alone cannot vouch for the content

    def seen(self, ns_size: int, ns_mtime: float, checked: float,
             window: float | None) -> None:
        self.ns_size, self.ns_mtime = ns_size, ns_mtime
        self.racy = is_racy(ns_mtime, checked, window)


def stamp(ns_mtime: float, now_ns: int) -> int:
    """The mtime given to a staged file: the namespace's, but at least 1 s in the past."""
    want = int(ns_mtime * 1e9) if ns_mtime == ns_mtime else 0
    return min(want, now_ns - STAMP_AGE_NS)


@attrs.frozen
class PreparedPreopen:
    """One directory handed to wasmtime: ``host`` shown at ``guest``."""

    host: str
    guest: str
    writable: bool


@attrs.define(eq=False)
class Subtree:
    """One staged subtree: its staging directory and manifest, kept between runs."""

    ns_root: str
    host: str
    files: dict[str, FileRec] = attrs.field(factory=dict)
    dirs: set[str] = attrs.field(factory=set)
    exclude: frozenset[str] = frozenset()
    watched: frozenset[str] | None = None  # the dirs the DirWatch covers, None: none
    journal: Cursor | None = None  # where the namespace side stood at the last sync
    tracking: Tracker | None = None  # during a write-back
    ino: int = 0  # the staging directory's inode (a root member's is checked after a run)
    quota: Quota = (None, None)  # its plan's
    write_limit: int | None = None  # the write-back refuses a staged file larger than this
    _anchor: int = -1  # a descriptor that keeps ``ino`` from being reused while we look
    _preopen: PreparedPreopen | None = None

    def preopen(self, guest: str, writable: bool) -> PreparedPreopen:
        """This staged copy shown at ``guest`` (kept: most runs ask for the same)."""
        p = self._preopen
        if p is None or p.guest != guest or p.writable != writable:
            p = self._preopen = PreparedPreopen(self.host, guest, writable)
        return p

    def host_path(self, rel: str) -> str:
        """Where ``rel`` is staged. Raises NameTooLong past the host's path length."""
        if not rel:
            return self.host
        host = os.path.join(self.host, rel)
        if len(host) > HOST_PATH_MAX // 4 and len(os.fsencode(host)) > HOST_PATH_MAX:
            raise NameTooLong(self.ns_path(rel), f"too deep to stage for a wasm guest: its "
                              f"host path would pass {HOST_PATH_MAX} bytes")
        return host

    @property
    def root(self) -> int:
        """The staging directory's descriptor: every host access below it is resolved
        from here, never through a link (``oanix._beneath``)."""
        return self._anchor

    def ns_path(self, rel: str) -> str:
        return paths.join(self.ns_root, rel) if rel else self.ns_root

    def reset(self) -> None:
        self.files.clear()
        self.dirs.clear()
        self.watched = None
        self.journal = None
        self.tracking = None
        parent, name = os.path.split(self.host)
        remove_beneath(parent, name)  # a link in its place goes, never what it names
        os.makedirs(self.host, mode=0o700, exist_ok=True)
        self.anchor()

    def anchor(self) -> None:
        """Hold the staging directory as it is now: its inode, kept from reuse by an
        open descriptor (a guest that removes it cannot have a new one take its number).
        A link in its place is refused (OSError), never anchored."""
        self.drop()
        self._anchor = os.open(self.host, getattr(os, "O_PATH", os.O_RDONLY)
                               | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.ino = os.fstat(self._anchor).st_ino

    def drop(self) -> None:
        """Let go of the staging directory's descriptor."""
        if self._anchor >= 0:
            with contextlib.suppress(OSError):
                os.close(self._anchor)
            self._anchor = -1
