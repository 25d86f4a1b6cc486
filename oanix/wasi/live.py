"""Live mounts: capability services a guest talks to *during* a run.

The preopen sync copies a namespace in before a run and back after it, which is right for
files and wrong for a conversation: a guest that writes ``/cap/http/request`` must be able
to read ``/cap/http/responses/<id>.json`` before it exits. A service that sets
``live = True`` (HttpFs, WsFs, NostrFs) is therefore bridged instead of staged: its files
are mirrored into a host directory that the guest gets as a direct preopen, and while the
guest runs a bridge thread

* delivers every file the guest writes and closes to the service, as one
  ``write_bytes`` (one request, one message, one command), and
* mirrors the service's files into the directory whenever they change (atomically:
  a temporary file renamed into place, so a guest never reads half a response).

A delivery the service refuses is reported in ``RunResult.changes.refused``; so is one
that fails in any other way, so no input a guest writes ends the bridge thread. Writes are
seen through inotify's close-write events; where inotify is unavailable the mount is
staged like any other (no live use), or left out of the guest's view when the service
is usable only live (``LiveOnly``: ProcFs). What a file handle means to the service beyond
"write then close" (WsFs's per-handle ``control`` id, for instance) is not carried: a
guest reads the id from ``last`` or ``status`` instead.

Locking: a bridge is used by one run at a time (runs over a namespace hold its lock); the
bridge thread and the runtime hand over through ``start``/``stop``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import select
import tempfile
import threading
import weakref
from collections.abc import Iterator

from .. import paths
from .._rmtree import remove_tree
from ..errors import FsError, NoSpace, NotADirectory, NotFound
from ..fs.workspace import WorkspaceFs
from ..namespace import Namespace
from ..service import FileService, file_cap, is_live, is_live_only
from ._inotify import IN_CLOSE_WRITE, IN_DONT_FOLLOW, IN_ONLYDIR, DirWatch

__all__ = ["LiveBridge", "LiveViews"]

log = logging.getLogger(__name__)

_TMP = ".oanix-tmp-"  # WorkspaceFs's temporary files
INTERVAL = 0.005


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class LiveBridge:
    """Mirrors ``service`` (mounted at ``ns_path``) into a host directory, both ways.

    Every host-side access to the directory goes through a ``WorkspaceFs`` over it, so
    what the guest plants there (a symlink, a FIFO) is refused, never followed.
    """

    def __init__(self, service: FileService, ns_path: str, parent_dir: str) -> None:
        self.service = service
        self.ns_path = ns_path
        self.dir = tempfile.mkdtemp(prefix="live-", dir=parent_dir)
        self._host = WorkspaceFs(self.dir)
        self._mirrored: dict[str, bytes] = {}  # rel -> digest of what we wrote
        self._write_only: set[str] = set()
        self._dirs: set[str] = {""}
        self._watch = DirWatch(mask=IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW)
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()  # stop() wakes the thread's select
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread: threading.Thread | None = None
        self.refused: list[tuple[str, str]] = []
        self.refresh()

    @property
    def available(self) -> bool:
        return self._watch.available

    # -- service -> directory ---------------------------------------------------------------

    def refresh(self) -> None:
        """Mirror the service's current files into the directory."""
        seen: set[str] = set()
        stack = [""]
        while stack:
            rel = stack.pop()
            try:
                entries = self.service.scandir("/" + rel)
            except (NotFound, NotADirectory):
                continue
            for st in entries:
                crel = f"{rel}/{st.name}" if rel else st.name
                try:
                    if st.is_dir:
                        if crel not in self._dirs:
                            self._host.makedirs("/" + crel, exist_ok=True)
                            self._dirs.add(crel)
                        stack.append(crel)
                        continue
                    seen.add(crel)
                    self._mirror_file(crel)
                except FsError:
                    continue  # the guest put something else there: leave it alone
        for crel in [r for r in self._mirrored if r not in seen]:
            del self._mirrored[crel]
            with contextlib.suppress(FsError):
                self._host.remove("/" + crel)
        self._watch.watch(self, {d: os.path.join(self.dir, d) if d else self.dir
                                 for d in self._dirs})

    def _mirror_file(self, crel: str) -> None:
        if crel in self._write_only:
            return
        try:
            data = self.service.read_bytes("/" + crel)
        except FsError:
            # A write-only file (a request or control file): present and empty, then the
            # guest's to write.
            self._write_only.add(crel)
            if not self._host.exists("/" + crel):
                self._host.write_bytes("/" + crel, b"")
            return
        digest = _digest(data)
        if self._mirrored.get(crel) != digest:
            self._host.write_bytes("/" + crel, data)  # atomic: a temp file renamed
            self._mirrored[crel] = digest

    # -- directory -> service ---------------------------------------------------------------

    def deliver(self) -> None:
        """Hand every file the guest wrote and closed to the service."""
        for _key, rel, mask in self._watch.entries():
            if not mask & IN_CLOSE_WRITE or os.path.basename(rel).startswith(_TMP):
                continue
            target = paths.join(self.ns_path, rel)
            try:
                size = self._host.stat("/" + rel).size
                cap = file_cap(self.service)
                if cap is not None and size > cap:  # refused without reading it
                    raise NoSpace(target, f"{size} bytes: a file here is capped at {cap} "
                                          "bytes")
                data = self._host.read_bytes("/" + rel)
            except NotFound:
                continue
            except FsError as e:  # a symlink or a special file planted by the guest
                self.refused.append((target, e.strerror or str(e)))
                continue
            try:
                self.service.write_bytes("/" + rel, data)
            except FsError as e:
                self.refused.append((target, e.strerror or str(e)))
            except Exception as e:  # a service's bug must not end the bridge
                self.refused.append((target, f"{type(e).__name__}: {e}"))
            else:
                self._mirrored.pop(rel, None)  # show the service's view again

    # -- the run ----------------------------------------------------------------------------

    def start(self) -> None:
        self.refused = []
        self.refresh()
        self._watch.entries()  # our own writes
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 64)  # the last stop's wake-up
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"oanix-live {self.ns_path}")
        self._thread.start()

    def stop(self) -> list[tuple[str, str]]:
        """Stop the bridge thread, deliver what is left; the refusals of this run."""
        self._stop.set()
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.deliver()
        self.refresh()
        return self.refused

    def _loop(self) -> None:
        """Deliver as soon as the guest closes a file (the inotify descriptor wakes the
        thread), and mirror the service every ``INTERVAL`` (it says nothing of its own
        changes)."""
        watch = self._watch.fileno()
        while not self._stop.is_set():
            select.select([watch, self._wake_r], [], [], INTERVAL)
            if self._stop.is_set():
                break
            self.deliver()
            self.refresh()

    def close(self) -> None:
        self._watch.close()
        self._host.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        remove_tree(self.dir)


class LiveViews:
    """Per namespace: a view of it whose live mounts are bridged, and their bridges.

    A view is rebuilt when the namespace's mount table changes. Locking: one lock guards
    the table of views.
    """

    def __init__(self, parent_dir: str) -> None:
        self.parent_dir = parent_dir
        self._lock = threading.Lock()
        self._views: weakref.WeakKeyDictionary[
            Namespace, tuple[object, Namespace | None, list[LiveBridge]]] = (
                weakref.WeakKeyDictionary())

    def view(self, ns: FileService) -> tuple[FileService, list[LiveBridge]]:
        """``ns`` itself when nothing in it is live, else its bridged view."""
        if not isinstance(ns, Namespace):
            return ns, []
        table = ns.snapshot
        with self._lock:
            cached = self._views.get(ns)
            if cached is not None and cached[0] is table:
                view = ns if cached[1] is None else cached[1]  # None: ns (no strong ref)
                return view, cached[2]
            live = [m for m in ns.mounts()
                    if is_live(m.service) and m.root == "/"
                    and len(table.mounts.get(m.path, ())) == 1]
            if cached is not None:
                for old in cached[2]:
                    old.close()
            if not live:
                self._views[ns] = (table, None, [])  # remembered too: the usual case
                return ns, []
            view = ns.fork()
            bridges = []
            for m in live:
                bridge = LiveBridge(m.service, m.path, self.parent_dir)
                if not bridge.available:
                    bridge.close()
                    if is_live_only(m.service):
                        view.unmount(m.path, m.service)
                        log.warning("%s left out of the guest's view: it needs inotify, "
                                    "which is unavailable (the per-user instance limit?)",
                                    m.path)
                    continue
                view.mount(m.path, WorkspaceFs(bridge.dir), readonly=m.readonly)
                bridges.append(bridge)
            self._views[ns] = (table, view, bridges)
            return view, bridges

    @staticmethod
    @contextlib.contextmanager
    def running(bridges: list[LiveBridge]) -> Iterator[list[tuple[str, str]]]:
        """Run the bridges for the duration of a run; yields the list of refusals, filled
        when the block ends."""
        refused: list[tuple[str, str]] = []
        for b in bridges:
            b.start()
        try:
            yield refused
        finally:
            for b in bridges:
                refused.extend(b.stop())

    def close(self) -> None:
        with self._lock:
            for _table, _view, bridges in list(self._views.values()):
                for b in bridges:
                    b.close()
            self._views.clear()
