"""Write-back: after a run, the guest's changes to a staged copy go into the namespace.

The staged files and directories are compared with the manifest (all of them, or only
the entries the guest touched); files whose stat changed are compared by sha256 and
written back only when their content differs. Type changes go first, then new
directories, new and modified files, then deletions, so a rename (a delete plus an add)
never loses content. A change the namespace refuses is reported in ``Changes.refused``
and forgotten by the manifest, so the next sync puts the staged copy back in line.
Symlinks and special files the guest made are reported refused and removed, never
followed. With a change journal, each namespace change is made inside ``own``, so it is
not read back by the next sync (``journal.Tracker``).

Locking: called under the namespace's lock (``lock``) after the guest is gone or parked;
every host access is descriptor-relative and no-follow (``hostio``).
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
import time
from collections.abc import Iterator

from ... import paths
from ..._beneath import open_dir_beneath, remove_beneath
from ...errors import FsError, NotFound
from ...service import FileService
from .changelog import ChangeLog, reason
from .hostio import HOST_PATH_MAX, lstat_all, read_file, sha, stamp_host, walk_host
from .journal import Cursor, Tracker, journal_rels
from .manifest import FileRec, Subtree, is_racy
from .sync_in import drop_dir

__all__ = ["write_back"]


def write_back(ns: FileService, sub: Subtree, log: ChangeLog, dirty: set[str] | None
               ) -> None:
    """Write the guest's changes to ``sub`` into ``ns``: every staged entry (``dirty``
    None) or only those in ``dirty``; what is refused goes to ``log``. With a change
    journal, where it stands after the write-back is recorded in ``sub.journal``. Raises
    OSError when the staging directory itself fails."""
    refused = len(log.refused)
    sub.tracking = Tracker.following(sub.journal)
    _write_changes(ns, sub, log, dirty)
    _after_write_back(sub, log.refused[refused:])


def _write_changes(ns: FileService, sub: Subtree, log: ChangeLog,
               dirty: set[str] | None) -> None:
    now_ns = time.time_ns()
    scanned = _scan(sub, log, dirty)
    if scanned is None:
        scanned = _scan(sub, log, None)
        assert scanned is not None
    scan_files, scan_dirs, known_files, known_dirs = scanned
    # What changed, by comparison with the manifest.
    added_dirs = sorted(d for d in scan_dirs if d not in sub.dirs)
    gone_dirs = [d for d in known_dirs if d not in scan_dirs]
    writes: list[tuple[str, bytes, bool]] = []  # (rel, data, is_new)
    for rel, st in scan_files.items():
        rec = sub.files.get(rel)
        if rec is not None and (st.st_size, st.st_mtime_ns, st.st_ino) == (
                rec.size, rec.mtime_ns, rec.ino):
            continue
        if sub.write_limit is not None and st.st_size > sub.write_limit:
            _refuse_large(sub, rel, st.st_size, log)
            continue
        data = read_file(sub.root, rel)
        if rec is not None and sha(data) == rec.digest:
            _restamp(sub, rel, rec, now_ns)
            continue
        writes.append((rel, data, rec is None))
    gone_files = [f for f in known_files if f not in scan_files]
    # Type changes first (a file became a directory or the reverse), then adds and
    # modifications, then the remaining deletions: a rename never loses the content.
    refused_dirs: list[str] = []
    for rel in sorted(f for f in gone_files if f in scan_dirs):
        _ns_delete(ns, sub, rel, False, log)
    for rel in sorted((d for d in gone_dirs if d in scan_files), reverse=True):
        _ns_delete_tree(ns, sub, rel, log)
    for rel in added_dirs:
        p = sub.ns_path(rel)
        if any(paths.is_within(rel, r) for r in refused_dirs):
            log.refused.append((p, "parent directory was refused"))
            continue
        try:
            with _own(sub, rel):
                ns.mkdir(p)
        except FsError as e:
            if not ns.is_dir(p):
                log.refused.append((p, reason(e)))
                refused_dirs.append(rel)
                continue
        sub.dirs.add(rel)
        log.added.append(p)
    for rel in refused_dirs:
        drop_dir(sub, rel)
    for rel, data, is_new in sorted(writes):
        p = sub.ns_path(rel)
        if any(paths.is_within(rel, r) for r in refused_dirs):
            log.refused.append((p, "parent directory was refused"))
            continue
        checked = time.time()
        try:
            with _own(sub, rel):
                ns.write_bytes(p, data)
        except FsError as e:
            log.refused.append((p, reason(e)))
            if is_new:
                remove_beneath(sub.root, rel)
            sub.files.pop(rel, None)  # the next sync restores the namespace's copy
            continue
        (log.added if is_new else log.modified).append(p)
        try:
            nst = ns.stat(p)
            ns_size, ns_mtime = nst.size, nst.mtime
        except FsError:
            ns_size, ns_mtime = -1, float("nan")
        hst = stamp_host(sub.root, rel, now_ns)
        sub.files[rel] = FileRec(hst.st_size, hst.st_mtime_ns, hst.st_ino, sha(data),
                                 ns_size, ns_mtime, is_racy(ns_mtime, checked))
    for rel in sorted(f for f in gone_files if f in sub.files):
        _ns_delete(ns, sub, rel, False, log)
    for rel in sorted((d for d in gone_dirs if d in sub.dirs), reverse=True):
        _ns_delete(ns, sub, rel, True, log)


def _scan(sub: Subtree, log: ChangeLog, dirty: set[str] | None
          ) -> tuple[dict[str, os.stat_result], set[str], list[str], list[str]] | None:
    """The staged files and dirs now, and the manifest entries they are compared with:
    everything, or (``dirty``) only the entries the guest touched. None when a partial
    scan found a directory it does not know (then scan everything)."""
    scan_files: dict[str, os.stat_result] = {}
    scan_dirs: set[str] = set()
    exclude = sub.exclude
    too_deep: list[str] = []
    if dirty is None:
        walk: Iterator[tuple[str | None, os.stat_result]] = walk_host(
            sub.root, None, exclude, (too_deep, len(os.fsencode(sub.host))))
        placeholders: set[str] = set(exclude)
    else:
        placeholders = {p.rpartition("/")[0] for p in dirty} & exclude
        walk = lstat_all(sub.root, [p for p in dirty if p.rpartition("/")[0] not in exclude])
    for rel, st in walk:
        assert rel is not None
        if stat_mod.S_ISDIR(st.st_mode):
            if dirty is not None and rel not in sub.dirs:
                return None
            scan_dirs.add(rel)
        elif stat_mod.S_ISREG(st.st_mode):
            scan_files[rel] = st
        else:
            kind = "symbolic link" if stat_mod.S_ISLNK(st.st_mode) else "special file"
            log.refused.append((sub.ns_path(rel), f"Unsupported: {kind} not copied"))
            remove_beneath(sub.root, rel)
    for rel in placeholders:
        _clear_placeholder(sub, rel, log)
    for rel in too_deep:  # nested past what the host's paths reach: not copied back
        log.refused.append((sub.ns_path(rel), f"NameTooLong: nested too deep to copy "
                            f"back (host paths stop at {HOST_PATH_MAX} bytes)"))
        remove_beneath(sub.root, rel)  # from the descriptor: too long to name
    if dirty is None:
        return scan_files, scan_dirs, list(sub.files), [
            d for d in sub.dirs if d not in exclude]
    return (scan_files, scan_dirs, [p for p in dirty if p in sub.files],
            [p for p in dirty if p in sub.dirs and p not in exclude])


def _ns_delete(ns: FileService, sub: Subtree, rel: str, is_dir: bool,
               log: ChangeLog) -> None:
    p = sub.ns_path(rel)
    try:
        with _own(sub, rel):
            if is_dir:
                ns.rmdir(p)
            else:
                ns.remove(p)
    except NotFound:
        pass
    except FsError as e:
        log.refused.append((p, reason(e)))
    else:
        log.deleted.append(p)
    # Either way the manifest forgets it: a refused deletion is restored by the next
    # sync, which finds it in the namespace but not in the manifest.
    if is_dir:
        sub.dirs.discard(rel)
    else:
        sub.files.pop(rel, None)

def _ns_delete_tree(ns: FileService, sub: Subtree, rel: str,
                    log: ChangeLog) -> None:
    prefix = rel + "/"
    for f in sorted((f for f in sub.files if f.startswith(prefix)), reverse=True):
        _ns_delete(ns, sub, f, False, log)
    for d in sorted((d for d in sub.dirs if d.startswith(prefix)), reverse=True):
        _ns_delete(ns, sub, d, True, log)
    _ns_delete(ns, sub, rel, True, log)


def _clear_placeholder(sub: Subtree, rel: str, log: ChangeLog) -> None:
    try:
        fd = open_dir_beneath(sub.root, rel)
    except OSError:
        return
    try:
        names = os.listdir(fd)
    except OSError:
        return
    finally:
        os.close(fd)
    for name in names:
        log.refused.append((sub.ns_path(f"{rel}/{name}"),
                            "Unsupported: written below a directory preopened apart"))
        remove_beneath(sub.root, f"{rel}/{name}")


def _restamp(sub: Subtree, rel: str, rec: FileRec, now_ns: int) -> None:
    hst = stamp_host(sub.root, rel, now_ns)
    rec.size, rec.mtime_ns, rec.ino = hst.st_size, hst.st_mtime_ns, hst.st_ino


def _refuse_large(sub: Subtree, rel: str, size: int, log: ChangeLog) -> None:
    """Refuse a staged file larger than its preopen may hold, without reading it (a
    sparse file can claim any size); the next sync restores the namespace's copy."""
    log.refused.append((sub.ns_path(rel), f"NoSpace: {size} bytes, more than the "
                                          f"{sub.write_limit} bytes this preopen may hold"))
    remove_beneath(sub.root, rel)
    sub.files.pop(rel, None)


def _own(sub: Subtree, rel: str) -> contextlib.AbstractContextManager[None]:
    """Around one namespace change the write-back makes at ``rel`` (see ``Tracker``)."""
    return sub.tracking.own(rel) if sub.tracking is not None else contextlib.nullcontext()


def _after_write_back(sub: Subtree, refused: list[tuple[str, str]]) -> None:
    """Record where the journal stands after the write-back: the changes since the
    sync that were not the write-back's own, and the refused paths (the manifest
    forgot them), are re-synced by the next sync."""
    tracker, sub.tracking = sub.tracking, None
    last = sub.journal
    if tracker is None or last is None:
        return
    done = tracker.finish()
    sub.journal = None
    if done is None:
        return
    gen, changed = done
    changed.update(paths.join(tracker.sroot, paths.relative_to(p, sub.ns_root))
                   for p, _ in refused if paths.is_within(p, sub.ns_root))
    rels = journal_rels(sub.exclude, tracker.sroot, changed)
    if rels is not None:
        sub.journal = Cursor(last.service, last.sroot, gen, rels)
