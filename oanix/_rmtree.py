"""Removing a host directory tree of any depth, never following a link, never failing.

A guest can make a staged tree of any depth (wasmtime resolves its paths one component
at a time, so no ``PATH_MAX`` stops it), so removing one never recurses (``shutil.rmtree``
does below Python 3.13) and never names a path longer than one component: each directory is
opened relative to its parent and left through its ``..``, checked to be the parent it came
from. A directory on another file system (a mount point) is not entered. What cannot be
removed is logged and left; removal never raises, so a leftover directory is never fatal to
the run or the process that finds it.
"""

from __future__ import annotations

import errno
import logging
import os

__all__ = ["remove_tree"]

_log = logging.getLogger("oanix.wasi")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def remove_tree(path: str, dir_fd: int | None = None) -> bool:
    """Remove the directory ``path`` (relative to ``dir_fd`` when given) and everything
    below it, at any depth, without recursion (see the module docstring); nothing if it
    is already gone.

    Returns False when something was left behind; each part left is logged as a warning
    (``logging.getLogger("oanix.wasi")``), never raised.
    """
    try:
        fd = os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return True
    except OSError as e:
        _log.warning("oanix: cannot remove %s: %s", path, e.strerror)
        return False
    left = _Leftovers(path)
    try:
        _empty(fd, left)
    finally:
        os.close(fd)
    try:
        os.rmdir(path, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as e:
        left.note([], "", e)
    return left.report()


class _Leftovers:
    """What a ``remove_tree`` could not remove, logged once at the end (counted past 5)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.count = 0
        self.shown: list[str] = []

    def note(self, frames: list[_Frame], name: str, e: OSError | str) -> None:
        self.count += 1
        if len(self.shown) < 5:
            why = e if isinstance(e, str) else (e.strerror or str(e))
            where = "/".join([*(f.name for f in frames), name]) or "."
            if len(where) > 200:
                where = "..." + where[-200:]
            self.shown.append(f"{where} ({why})")

    def report(self) -> bool:
        if not self.count:
            return True
        more = f" and {self.count - len(self.shown)} more" if self.count > 5 else ""
        _log.warning("oanix: could not remove all of %s, left: %s%s", self.root,
                     "; ".join(self.shown), more)
        return False


class _Frame:
    """A directory entered by ``_empty``: its name in its parent, the parent's identity
    (device, inode) to check ``..`` against, and the parent's subdirectories still to do."""

    __slots__ = ("name", "parent", "pending")

    def __init__(self, name: str, parent: tuple[int, int], pending: list[str]) -> None:
        self.name = name
        self.parent = parent
        self.pending = pending


def _empty(top: int, left: _Leftovers) -> None:
    """Remove everything inside the open directory ``top``, depth first with an explicit
    stack (one descriptor open at a time besides ``top``'s)."""
    st = os.fstat(top)
    dev, here = st.st_dev, (st.st_dev, st.st_ino)
    frames: list[_Frame] = []
    fd = top
    try:
        pending = _clear_files(fd, frames, left)
        while True:
            if pending:
                child = pending.pop()
                try:
                    cfd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    left.note(frames, child, e)
                    continue
                cst = os.fstat(cfd)
                if cst.st_dev != dev:  # a mount point: what is there is not ours
                    os.close(cfd)
                    left.note(frames, child, "another file system is mounted there")
                    continue
                frames.append(_Frame(child, here, pending))
                if fd != top:
                    os.close(fd)
                fd, here = cfd, (cst.st_dev, cst.st_ino)
                pending = _clear_files(fd, frames, left)
                continue
            if not frames:
                return
            frame = frames.pop()
            up = top if not frames else os.open("..", _DIR_FLAGS, dir_fd=fd)
            ust = os.fstat(up)
            os.close(fd)
            fd = up
            if (ust.st_dev, ust.st_ino) != frame.parent:  # moved while we were below
                left.note(frames, frame.name, "moved during removal")
                return
            here, pending = frame.parent, frame.pending
            try:
                os.rmdir(frame.name, dir_fd=fd)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno != errno.ENOTEMPTY:  # ENOTEMPTY: what is left is reported
                    left.note(frames, frame.name, e)
    except OSError as e:  # a descriptor operation failed: give up on the rest
        left.note(frames, "", e)
    finally:
        if fd != top:
            os.close(fd)


def _clear_files(fd: int, frames: list[_Frame], left: _Leftovers) -> list[str]:
    """Unlink the non-directories in ``fd``; the names of its subdirectories."""
    with os.scandir(fd) as it:
        entries = list(it)
    dirs = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                dirs.append(entry.name)
                continue
            os.unlink(entry.name, dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError as e:
            left.note(frames, entry.name, e)
    return dirs
