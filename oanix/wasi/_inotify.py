"""DirWatch: which entries of watched directories changed (Linux inotify, via ctypes).

Used by the preopen sync to look, after a run, only at the files the guest touched
instead of walking every staged file. Anything this cannot vouch for (no inotify on this
system, too many watches or instances, a queue overflow, a directory created, deleted or
moved) is reported as "unknown", and the caller falls back to a full scan.

Locking: none; a DirWatch belongs to one NamespaceStaging, used under its namespace lock.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import fcntl
import os
import struct
import sys
import termios
from typing import Final

__all__ = ["IN_CLOSE_WRITE", "IN_DONT_FOLLOW", "IN_ONLYDIR", "DirWatch", "WatchReport"]

IN_MODIFY: Final = 0x00000002
IN_CLOSE_WRITE: Final = 0x00000008
IN_ATTRIB: Final = 0x00000004
IN_MOVED_FROM: Final = 0x00000040
IN_MOVED_TO: Final = 0x00000080
IN_CREATE: Final = 0x00000100
IN_DELETE: Final = 0x00000200
IN_DELETE_SELF: Final = 0x00000400
IN_MOVE_SELF: Final = 0x00000800
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
IN_ONLYDIR: Final = 0x01000000
IN_DONT_FOLLOW: Final = 0x02000000
IN_ISDIR: Final = 0x40000000
IN_NONBLOCK: Final = 0o4000
IN_CLOEXEC: Final = 0o2000000

_MASK: Final = (IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
                | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
_STRUCTURE: Final = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
_EVENT: Final = struct.Struct("iIII")

WatchReport = dict[object, set[str] | None]
"""Per key: the relative paths of the entries that changed (created, written, deleted,
renamed from or to), or None when the whole tree must be scanned."""


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The C library the interpreter already links (find_library would run ldconfig).
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC: Final = _libc()


class DirWatch:
    """One inotify instance watching directories, each under a key and a relative path."""

    def __init__(self, enabled: bool = True, mask: int = _MASK) -> None:
        self._mask = mask
        self._fd = -1
        self._wds: dict[int, tuple[object, str]] = {}
        self._by_key: dict[object, list[int]] = {}
        self._broken: set[object] = set()  # keys whose watches are incomplete
        self._nread = array.array("i", [0])  # FIONREAD's answer
        if _LIBC is not None and enabled:
            self._fd = _LIBC.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)

    @property
    def available(self) -> bool:
        return self._fd >= 0

    def fileno(self) -> int:
        """The inotify descriptor (readable when events wait), for ``select``; -1 when
        unavailable."""
        return self._fd

    def watch(self, key: object, dirs: dict[str, str]) -> bool:
        """Watch exactly ``dirs`` (``{relative path: host path}``) for ``key``, replacing
        its previous watches. False (and ``key`` always unknown) if that failed.

        A directory watched before stays watched without a gap (adding a watch the
        instance has returns the same descriptor), so no event in it is lost while the
        set of directories changes around it.
        """
        if _LIBC is None or self._fd < 0:
            self.forget(key)
            return False
        old = self._by_key.get(key, [])
        wds: list[int] = []
        for rel, host in dirs.items():
            wd = _LIBC.inotify_add_watch(self._fd, os.fsencode(host), self._mask)
            if wd < 0:  # drop every watch of the key: it is broken until watched again
                self._by_key[key] = list({*old, *wds})
                self.forget(key)
                self._broken.add(key)
                return False
            wds.append(wd)
            self._wds[wd] = (key, rel)
        kept = set(wds)
        self._by_key[key] = wds
        self._broken.discard(key)
        for wd in old:
            if wd not in kept and self._wds.pop(wd, None) is not None:
                _LIBC.inotify_rm_watch(self._fd, wd)
        return True

    def forget(self, key: object) -> None:
        """Stop watching for ``key``."""
        self._broken.discard(key)
        for wd in self._by_key.pop(key, ()):
            if self._wds.pop(wd, None) is not None and _LIBC is not None and self._fd >= 0:
                _LIBC.inotify_rm_watch(self._fd, wd)

    def report(self) -> WatchReport:
        """What changed since the last ``report`` (or ``drain``), per watched key."""
        out: WatchReport = {key: set() for key in self._by_key}
        for key in self._broken:
            out[key] = None
        for wd, mask, name in self._events():
            if mask & IN_Q_OVERFLOW:
                return dict.fromkeys(out)
            hit = self._wds.get(wd)
            if hit is None:
                continue  # a watch removed on purpose
            key, rel = hit
            dirty = out.get(key)
            if dirty is None:
                continue
            if (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)
                    or (mask & IN_ISDIR and mask & _STRUCTURE)):
                out[key] = None
            elif name:
                entry = os.fsdecode(name)
                dirty.add(f"{rel}/{entry}" if rel else entry)
        return out

    def entries(self) -> list[tuple[object, str, int]]:
        """The events since the last call, as ``(key, relative path, mask)``; an overflow
        or a broken watch gives ``(key, "", IN_Q_OVERFLOW)``."""
        out: list[tuple[object, str, int]] = [(key, "", IN_Q_OVERFLOW)
                                              for key in self._broken]
        for wd, mask, name in self._events():
            hit = self._wds.get(wd)
            if mask & IN_Q_OVERFLOW:
                out.extend((key, "", IN_Q_OVERFLOW) for key in self._by_key)
            elif hit is not None and name:
                key, rel = hit
                entry = os.fsdecode(name)
                out.append((key, f"{rel}/{entry}" if rel else entry, mask))
        return out

    def drain(self) -> None:
        """Forget the events so far (the sync's own writes)."""
        for _ in self._events():
            pass

    def pending(self) -> int:
        """How many bytes of events wait to be read (one ioctl: cheaper than a read that
        finds nothing, which is the usual case after a run that wrote nothing)."""
        if self._fd < 0:
            return 0
        try:
            fcntl.ioctl(self._fd, termios.FIONREAD, self._nread, True)
        except OSError:
            return 1  # let the read say what is wrong
        return self._nread[0]

    def _events(self) -> list[tuple[int, int, bytes]]:
        events: list[tuple[int, int, bytes]] = []
        while (size := self.pending()) > 0:
            try:
                buf = os.read(self._fd, max(size, 1 << 12))
            except BlockingIOError:
                return events
            except OSError:
                return [(-1, IN_Q_OVERFLOW, b"")]
            pos = 0
            while pos + _EVENT.size <= len(buf):
                wd, mask, _cookie, length = _EVENT.unpack_from(buf, pos)
                start = pos + _EVENT.size
                events.append((wd, mask, buf[start:start + length].rstrip(b"\0")))
                pos = start + length
        return events

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        self._wds.clear()
        self._by_key.clear()
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        self.close()
