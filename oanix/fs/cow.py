"""CowFs: a copy-on-write overlay of a writable upper service on any base service."""

from __future__ import annotations

import contextlib
import io
import threading
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

import attrs

from .. import paths
from ..changes import Changes, unified_diff
from ..errors import (
    AlreadyExists,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotEmpty,
    NotFound,
    PermissionDenied,
)
from ..service import FileService, OpenMode, Stat, change_journal, check_open, transfer
from .mem import JOURNAL_SIZE, MemFs

if TYPE_CHECKING:
    from ..snapshot.protocol import SnapshotReader, SnapshotWriter

__all__ = ["CowFs"]

_ISSUED: Final = 64  # generations remembered for changed_since


def _generation(service: FileService) -> int | None:
    """``service.generation`` when it keeps a change journal, else None."""
    journal = change_journal(service)
    return None if journal is None else journal.generation


class CowFs(FileService):
    """An overlay, like Linux overlayfs: writes go to ``upper`` (a new MemFs by default),
    ``base`` is never changed except by ``commit``.

    A path resolves to the upper entry if there is one, else to the base entry unless a
    whiteout hides it. Removing something the base has records a whiteout (a set of paths;
    a whiteout on a directory hides everything the base has below it). A directory of the
    base removed and then created again is opaque: the whiteout stays, so the base entries
    below it stay hidden. Listing a directory merges upper and base, minus whiteouts.
    Opening a base file for writing copies it up first (with its parent directories);
    renaming a base file or directory copies its visible subtree up under the new name and
    whites out the old one. Errors follow POSIX as Linux orders them (for rename: both
    parents, then the source, then the target).

    ``changes()`` describes the difference from the base; ``commit()`` applies it to the
    base; ``reset()`` drops it; ``fork()`` makes a second overlay that starts from this
    one's view and then changes apart.

    A file opened for reading from the base keeps reading the base after a copy-up (as on
    overlayfs). ``upper`` may be given non-empty (to resume an overlay) but whiteouts are
    not persisted in it.

    Change journal (as MemFs's): ``generation`` and ``changed_since`` combine the upper's
    journal with the whiteouts this overlay added or dropped. They need an upper and a
    base that keep a journal (MemFs, MapFs), and ``changed_since`` is None whenever the
    base changed (a MapFs base never does), or for a generation not among the last
    64 handed out.

    Locking: one re-entrant lock guards the overlay state (the upper tree and the
    whiteouts); every primitive, ``changes``, ``diff``, ``commit``, ``reset`` and
    ``fork`` hold it for their whole duration, so each is atomic with respect to the
    others. Open file objects are
    the upper's (or, read-only, the base's) and follow their locking. Other users of the
    base or the upper bypass the lock.
    """

    def __init__(self, base: FileService, upper: FileService | None = None) -> None:
        self.base = base
        self.upper: FileService = MemFs() if upper is None else upper
        self._whiteouts: set[str] = set()
        self._lock = threading.RLock()
        self._own_gen = 0  # whiteout changes so far; one journal entry each
        self._own: deque[tuple[str, ...]] = deque(maxlen=JOURNAL_SIZE)
        # generation handed out -> (upper's, own, base's): the generation is their sum,
        # which grows with every change of any of them.
        self._issued: dict[int, tuple[int, int, int]] = {}

    @property
    def generation(self) -> int:
        """A number that grows with every change; pass it to ``changed_since`` later."""
        with self._lock:
            parts = (_generation(self.upper) or 0, self._own_gen,
                     _generation(self.base) or 0)
            gen = sum(parts)
            self._issued.pop(gen, None)
            self._issued[gen] = parts
            if len(self._issued) > _ISSUED:
                del self._issued[next(iter(self._issued))]
            return gen

    def changed_since(self, generation: int) -> list[str] | None:
        """The paths changed after ``generation`` (sorted), or None when that cannot be
        told: the upper or the base keeps no journal, the base changed, the upper's journal
        cannot tell, or ``generation`` is unknown (see the class docstring)."""
        with self._lock:
            parts = self._issued.get(generation)
            if parts is None:
                return None
            upper_gen, own_gen, base_gen = parts
            upper = change_journal(self.upper)
            if _generation(self.base) != base_gen or upper is None:
                return None
            changed = upper.changed_since(upper_gen)
            n = self._own_gen - own_gen
            if changed is None or n > len(self._own):
                return None
            out = set(changed)
            for i in range(len(self._own) - n, len(self._own)):
                out.update(self._own[i])
            return sorted(out)

    def _note(self, changed: tuple[str, ...]) -> None:
        """Journal a change of the whiteouts (under the lock)."""
        self._own_gen += 1
        self._own.append(changed)

    @property
    def whiteouts(self) -> frozenset[str]:
        """The paths whose base entries (and everything below them) are hidden."""
        with self._lock:
            return frozenset(self._whiteouts)

    # -- resolution -----------------------------------------------------------------------

    def _hidden(self, path: str) -> bool:
        """Whether the base entry at ``path`` is hidden by a whiteout at or above it."""
        if not self._whiteouts:
            return False
        while True:
            if path in self._whiteouts:
                return True
            if path == "/":
                return False
            path = paths.dirname(path)

    def _base_stat(self, path: str) -> Stat | None:
        """The base's own stat of ``path`` (whiteouts ignored), None if it has nothing."""
        try:
            return self.base.stat(path)
        except (NotFound, NotADirectory):
            return None

    def _base_has(self, path: str) -> bool:
        """Whether the base contributes a visible entry at ``path``."""
        return not self._hidden(path) and self._base_stat(path) is not None

    def _resolve(self, path: str) -> tuple[bool, Stat]:
        """``(in_upper, stat)`` of the visible entry. Raises NotFound, NotADirectory."""
        try:
            return True, self.upper.stat(path)
        except NotFound:
            pass
        if self._hidden(path):
            raise NotFound(path)
        return False, self.base.stat(path)

    def _find(self, path: str) -> tuple[bool, Stat] | None:
        try:
            return self._resolve(path)
        except NotFound:
            return None

    def _require_dir(self, path: str, for_path: str) -> None:
        """Check that ``path`` is a visible directory, naming ``for_path`` in errors."""
        try:
            _, st = self._resolve(path)
        except (NotFound, NotADirectory) as e:
            raise e.with_paths(for_path) from None
        if not st.is_dir:
            raise NotADirectory(for_path)

    def _names(self, path: str) -> list[str]:
        """The merged entries of visible directory ``path``."""
        names: set[str] = set()
        with contextlib.suppress(NotFound, NotADirectory):
            names.update(self.upper.listdir(path))
        if not self._hidden(path):
            with contextlib.suppress(NotFound, NotADirectory):
                names.update(n for n in self.base.listdir(path)
                             if paths.join(path, n) not in self._whiteouts)
        return sorted(names)

    # -- changing the overlay -------------------------------------------------------------

    def _copy_up_dirs(self, path: str) -> None:
        """Create visible directory ``path`` and its ancestors in the upper."""
        missing: list[str] = []
        while not self.upper.exists(path):
            missing.append(path)
            path = paths.dirname(path)
        for d in reversed(missing):
            self.upper.mkdir(d)

    def _whiteout(self, path: str) -> None:
        """Hide the base at and below ``path`` (whiteouts below it become redundant)."""
        self._whiteouts = {w for w in self._whiteouts if not paths.is_within(w, path)}
        self._whiteouts.add(path)
        self._note((path,))

    def _drop(self, path: str, in_upper: bool, is_dir: bool) -> None:
        """Make the visible ``path`` (a file, or an empty directory) disappear."""
        base_has = self._base_has(path)
        if in_upper:
            if is_dir:
                self.upper.rmdir(path)
            else:
                self.upper.remove(path)
        if base_has:
            self._whiteout(path)

    # -- primitives -----------------------------------------------------------------------

    def _stat(self, path: str) -> Stat:
        with self._lock:
            _, st = self._resolve(path)
            size = len(self._names(path)) if st.is_dir else st.size
            return Stat(paths.basename(path), size, st.is_dir, st.mtime)

    def _listdir(self, path: str) -> list[str]:
        with self._lock:
            _, st = self._resolve(path)
            if not st.is_dir:
                raise NotADirectory(path)
            return self._names(path)

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        with self._lock:
            found = self._find(path)
            st = None if found is None else attrs.evolve(found[1], readonly=False)
            check_open(path, mode, st)
            if found is not None and (found[0] or not mode.write):
                layer = self.upper if found[0] else self.base
                return layer._open(path, mode)
            parent = paths.dirname(path)
            if found is None:
                self._require_dir(parent, path)
            self._copy_up_dirs(parent)
            if found is not None and not mode.truncate:
                transfer(self.base, path, self.upper, path)
            return self.upper._open(path, mode)

    def _mkdir(self, path: str) -> None:
        with self._lock:
            if path == "/":
                raise AlreadyExists(path)
            parent = paths.dirname(path)
            self._require_dir(parent, path)
            if self._find(path) is not None:
                raise AlreadyExists(path)
            self._copy_up_dirs(parent)
            self.upper.mkdir(path)

    def _remove(self, path: str) -> None:
        with self._lock:
            in_upper, st = self._resolve(path)
            if st.is_dir:
                raise IsADirectory(path)
            self._drop(path, in_upper, False)

    def _rmdir(self, path: str) -> None:
        with self._lock:
            if path == "/":
                raise PermissionDenied(path, "cannot remove the root")
            in_upper, st = self._resolve(path)
            if not st.is_dir:
                raise NotADirectory(path)
            if self._names(path):
                raise NotEmpty(path)
            self._drop(path, in_upper, True)

    def _rename(self, src: str, dst: str) -> None:
        with self._lock:
            if src == "/" or dst == "/":
                raise PermissionDenied(src, "cannot rename the root", dst)
            self._require_dir(paths.dirname(src), src)
            self._require_dir(paths.dirname(dst), dst)
            found = self._find(src)
            if found is None:
                raise NotFound(src, None, dst)
            src_upper, sst = found
            if src == dst:
                return
            if sst.is_dir and paths.is_within(dst, src):
                raise InvalidPath(src, "cannot move a directory into itself", dst)
            target = self._find(dst)
            if target is not None:
                dst_upper, dstat = target
                if dstat.is_dir and paths.is_within(src, dst):
                    raise NotEmpty(dst)  # the target contains the source (Linux order)
                if dstat.is_dir and not sst.is_dir:
                    raise IsADirectory(dst)
                if sst.is_dir and not dstat.is_dir:
                    raise NotADirectory(dst)
                if dstat.is_dir and self._names(dst):
                    raise NotEmpty(dst)
                self._drop(dst, dst_upper, dstat.is_dir)
            self._copy_up_dirs(paths.dirname(dst))
            base_has_src = self._base_has(src)
            if src_upper and not (sst.is_dir and base_has_src):
                # the upper holds everything visible at src: move it there
                self.upper.rename(src, dst)
            else:
                transfer(self, src, self.upper, dst)
                if src_upper:
                    self.upper.rmtree(src)
            if base_has_src:
                self._whiteout(src)

    # -- changes --------------------------------------------------------------------------

    def _base_tree(self, path: str) -> dict[str, bool]:
        """``{path: is_dir}`` for ``path`` and everything below it in the base."""
        st = self._base_stat(path)
        if st is None:
            return {}
        found = {path: st.is_dir}
        if st.is_dir:
            for top, dirs, files in self.base.walk(path):
                found.update((paths.join(top, d), True) for d in dirs)
                found.update((paths.join(top, f), False) for f in files)
        return found

    def _same_content(self, path: str, base_size: int) -> bool:
        if self.upper.stat(path).size != base_size:
            return False
        return self.upper.read_bytes(path) == self.base.read_bytes(path)

    def changes(self) -> Changes:
        """What differs between the visible tree and the base (see ``Changes``)."""
        with self._lock:
            upper: dict[str, bool] = {}
            for top, dirs, files in self.upper.walk("/"):
                upper.update((paths.join(top, d), True) for d in dirs)
                upper.update((paths.join(top, f), False) for f in files)
            added: set[str] = set()
            modified: set[str] = set()
            deleted: set[str] = set()
            gone = set(self._whiteouts)  # roots of base subtrees possibly hidden
            for path, is_dir in upper.items():
                bst = self._base_stat(path)
                if bst is None:
                    added.add(path)
                elif bst.is_dir != is_dir:
                    added.add(path)
                    gone.add(path)
                elif not is_dir and not self._same_content(path, bst.size):
                    modified.add(path)
            deleted_dirs: set[str] = set()
            for root in gone:
                for path, is_dir in self._base_tree(root).items():
                    if upper.get(path) != is_dir:
                        deleted.add(path)
                        if is_dir:
                            deleted_dirs.add(path)
            return Changes(tuple(sorted(added)), tuple(sorted(modified)),
                           tuple(sorted(deleted)),
                           added_dirs=tuple(sorted(p for p in added if upper[p])),
                           deleted_dirs=tuple(sorted(deleted_dirs)))

    def diff(self, context: int = 3) -> str:
        """``changes()`` as a unified diff from the base (see ``unified_diff``)."""
        with self._lock:
            return unified_diff(self.base, self, self.changes(), context=context)

    def commit(self) -> Changes:
        """Write the changes into the base, then ``reset``; returns what was applied.

        Raises:
            FsError: the base refused a change (``ReadOnly`` for a read-only base), naming
                the path. The overlay is left intact and shows the same tree; the base may
                hold part of the changes, and calling ``commit`` again resumes.
        """
        with self._lock:
            ch = self.changes()
            for path in reversed(ch.deleted):
                st = self._base_stat(path)
                if st is not None:
                    (self.base.rmdir if st.is_dir else self.base.remove)(path)
            for path in ch.added:
                if self.upper.is_dir(path):
                    if not self.base.is_dir(path):
                        self.base.mkdir(path)
                else:
                    transfer(self.upper, path, self.base, path)
            for path in ch.modified:
                transfer(self.upper, path, self.base, path)
            self.reset()
            return ch

    def fork(self, upper: FileService | None = None) -> CowFs:
        """A second overlay over the same base that shows what this one shows now.

        The upper's files are copied into ``upper`` (a new MemFs by default) and the
        whiteouts with them; from then on the two overlays change apart, and neither
        sees the other's writes. Both stand on the same base, so each one's ``changes()``
        is complete: what was done before the fork, then what was done on that side.
        ``commit()`` of either writes into that shared base, where the other then sees
        it wherever it has not changed the path itself (as two overlayfs mounts would).
        """
        with self._lock:
            child = CowFs(self.base, MemFs() if upper is None else upper)
            for name in self.upper.listdir("/"):
                top = paths.join("/", name)
                transfer(self.upper, top, child.upper, top)
            child._whiteouts = set(self._whiteouts)
            return child

    def reset(self) -> None:
        """Drop every change: empty the upper and forget the whiteouts."""
        with self._lock:
            for name in self.upper.listdir("/"):
                self.upper.rmtree(paths.join("/", name))
            if self._whiteouts:
                self._note(tuple(self._whiteouts))
            self._whiteouts.clear()

    # -- snapshots (oanix.snapshot) ---------------------------------------------------------

    snapshot_kind: ClassVar[str] = "cowfs"

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        """``{"base": object id, "upper": object id, "whiteouts": [path, ...]}``: the
        base by reference (its own state is its own object), under the overlay lock."""
        with self._lock:
            return {"base": w.ref(self.base, "cowfs base"),
                    "upper": w.ref(self.upper, "cowfs upper"),
                    "whiteouts": sorted(self._whiteouts)}

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> Self:
        """The overlay of ``state``. Raises CorruptSnapshot: a bad field or reference."""
        fs = cls(r.obj(state.get("base"), "cowfs base", FileService),
                 r.obj(state.get("upper"), "cowfs upper", FileService))
        whiteouts = r.strings(state.get("whiteouts"), "cowfs whiteouts")
        fs._whiteouts = {r.path(p, "cowfs whiteouts") for p in whiteouts}
        return fs
