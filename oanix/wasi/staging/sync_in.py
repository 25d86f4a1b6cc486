"""Sync-in: bring a staged copy in line with the namespace, by walking its stats
(``walk``) or re-syncing only the paths a change journal named (``sync_paths``).

A file whose namespace size and mtime are unchanged and not racy (``manifest``) is
trusted; otherwise it is read and compared by sha256, and written to the staging
directory only when its content differs. Files of computed services (FuncFs) are read on
every sync; a file that cannot be read (a write-only control file) is staged empty, so
the guest can write it. Every host access goes through ``hostio`` / ``oanix._beneath``.

Locking: called under the namespace's lock (``lock``), before the guest starts; the host
touches staging only while the guest is parked or gone.
"""

from __future__ import annotations

import os
import stat as stat_mod
import time
from collections.abc import Callable

from ... import paths
from ..._beneath import parent_beneath, remove_beneath
from ...errors import BadFileMode, FsError, NotADirectory, NotFound, PermissionDenied, Unsupported
from ...service import FileService, Stat
from .hostio import sha, write_file
from .manifest import FileRec, Subtree, is_racy, stamp
from .plan import never

__all__ = ["drop_dir", "forget", "make_dir", "sync_file", "sync_paths", "walk"]


def sync_paths(service: FileService, sroot: str, sub: Subtree,
               rels: set[str], window: float | None) -> bool:
    """Re-sync only the paths the journal named (a directory: walked); False if a full
    walk is needed instead."""
    now = time.time()
    now_ns = time.time_ns()
    done: list[str] = []  # everything below these is in line already
    for rel in sorted(rels):  # parents before children
        if any(rel.startswith(d + "/") for d in done):
            continue  # below a directory walked, a file, or a path found gone
        parent = rel.rpartition("/")[0]
        if parent and parent not in sub.dirs:
            return False  # the journal missed its parent: never expected
        done.append(rel)
        try:
            st = service.stat(paths.join(sroot, rel))
        except (NotFound, NotADirectory):
            forget(sub, rel)
            continue
        except FsError:
            return False
        if st.is_dir:
            if rel not in sub.dirs:
                make_dir(sub, rel)
            walk(service, sroot, sub, never, window, rel)
        elif not sync_file(service, sroot, sub, rel, st, sub.files.get(rel), False,
                           now, now_ns, window):
            forget(sub, rel)
    return True


def forget(sub: Subtree, rel: str) -> None:
    """``rel`` is gone from the namespace: drop its staged copy and manifest entry."""
    if rel in sub.files:
        del sub.files[rel]
        remove_beneath(sub.root, rel)
    elif rel in sub.dirs:
        drop_dir(sub, rel)


def walk(service: FileService, sroot: str, sub: Subtree,
         computed: Callable[[str], bool], window: float | None, top: str) -> None:
    """Bring the staged copy of directory ``top`` (relative; "" for the whole subtree)
    in line with ``service`` below ``sroot`` by walking its stats."""
    now = time.time()
    now_ns = time.time_ns()
    seen_files: set[str] = set()
    seen_dirs: set[str] = set()
    files, dirs, exclude = sub.files, sub.dirs, sub.exclude
    some_computed = computed is not never
    seen, get = seen_files.add, files.get
    stack = [top]
    while stack:
        rel = stack.pop()
        try:
            entries = service.scandir(paths.join(sroot, rel) if rel else sroot)
        except (NotFound, NotADirectory) as e:
            if rel == top:
                if not rel:
                    raise e.with_paths(sub.ns_root) from None
                drop_dir(sub, rel)
                return
            continue
        prefix = rel + "/" if rel else ""
        for st in entries:
            crel = prefix + st.name
            if st.is_dir or (exclude and crel in exclude):
                seen_dirs.add(crel)
                if crel not in dirs:
                    make_dir(sub, crel)
                if crel not in exclude:
                    stack.append(crel)
                continue
            rec = get(crel)
            if some_computed:
                is_computed = computed(sub.ns_path(crel))
            elif (rec is not None and not rec.racy and rec.ns_mtime == st.mtime
                  and rec.ns_size == st.size):
                seen(crel)  # unchanged: the common case, kept cheap
                continue
            else:
                is_computed = False
            if (is_computed or rec is None or rec.racy or rec.ns_mtime != st.mtime
                    or rec.ns_size != st.size):
                if sync_file(service, sroot, sub, crel, st, rec, is_computed, now,
                             now_ns, window):
                    seen(crel)
            else:
                seen(crel)
    if top:
        below = top + "/"
        gone_files = [f for f in files if f.startswith(below) and f not in seen_files]
        gone_dirs = [d for d in dirs if d.startswith(below) and d not in seen_dirs]
    else:
        gone_files = ([f for f in files if f not in seen_files]
                      if len(seen_files) != len(files) else [])
        gone_dirs = ([d for d in dirs if d not in seen_dirs]
                     if len(seen_dirs) != len(dirs) else [])
    for crel in gone_files:
        del files[crel]
        remove_beneath(sub.root, crel)
    for crel in sorted(gone_dirs, reverse=True):
        dirs.discard(crel)
        remove_beneath(sub.root, crel)


def make_dir(sub: Subtree, crel: str) -> None:
    if crel in sub.files:
        del sub.files[crel]
    with parent_beneath(sub.root, crel) as (dfd, name):
        try:
            os.mkdir(name, 0o755, dir_fd=dfd)
        except FileExistsError:
            if not stat_mod.S_ISDIR(os.stat(name, dir_fd=dfd,
                                            follow_symlinks=False).st_mode):
                remove_beneath(dfd, name)
                os.mkdir(name, 0o755, dir_fd=dfd)
    sub.dirs.add(crel)


def drop_dir(sub: Subtree, crel: str) -> None:
    prefix = crel + "/"
    for f in [f for f in sub.files if f.startswith(prefix)]:
        del sub.files[f]
    for d in [d for d in sub.dirs if d == crel or d.startswith(prefix)]:
        sub.dirs.discard(d)
    remove_beneath(sub.root, crel)


def sync_file(service: FileService, sroot: str, sub: Subtree, crel: str,
              st: Stat, rec: FileRec | None, computed: bool, now: float,
              now_ns: int, window: float | None) -> bool:
    """Bring one staged file in line with the namespace; False if it vanished."""
    if crel in sub.dirs:
        drop_dir(sub, crel)
    try:
        data = service.read_bytes(paths.join(sroot, crel))
    except (NotFound, NotADirectory):
        return False
    except (PermissionDenied, BadFileMode, Unsupported):
        data = b""  # a write-only file (a control file): the guest may write it
    except FsError:
        return False
    digest = sha(data)
    if rec is not None and rec.digest == digest:
        rec.seen(st.size, st.mtime, now, window)
        return True
    hst = write_file(sub.root, crel, data, stamp(st.mtime, now_ns))
    sub.files[crel] = FileRec(hst.st_size, hst.st_mtime_ns, hst.st_ino, digest,
                              st.size, st.mtime, is_racy(st.mtime, now, window))
    return True
