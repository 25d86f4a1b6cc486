"""Namespace <-> preopen sync: guest changes reach the namespace, host changes reach the
guest, refusals are reported, work is incremental, host dirs are preopened directly."""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oanix import MemFs, Namespace, paths
from oanix.fs import FuncFs, WorkspaceFs
from oanix.service import Stat
from oanix.wasi import Preopen, RunConfig, RunResult, WasiRuntime
from oanix.wasi._inotify import DirWatch

Wasm = Callable[[str], str]


@pytest.fixture(params=["inotify", "scan"])
def runtime(request: pytest.FixtureRequest, runtime: WasiRuntime,
            scanning_runtime: WasiRuntime) -> WasiRuntime:
    """Every test runs twice: guest changes found through inotify, and by scanning."""
    return runtime if request.param == "inotify" else scanning_runtime


def fsops(rt: WasiRuntime, wasm: Wasm, ns: Namespace, *commands: Sequence[str],
          **config: object) -> RunResult:
    argv: list[str] = []
    for cmd in commands:
        if argv:
            argv.append("--")
        argv.extend(cmd)
    return rt.run(wasm("fsops"), ns, RunConfig(argv=argv, **config))  # type: ignore[arg-type]


def make_ns(**mounts: object) -> Namespace:
    ns = Namespace()
    for name, service in mounts.items():
        ns.mount("/" + name, service)  # type: ignore[arg-type]
    return ns


class CountingFs(MemFs):
    """A MemFs that counts whole-file reads, to see what a sync copies."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def _read_bytes(self, path: str) -> bytes:
        self.reads.append(path)
        return super()._read_bytes(path)


class CoarseClockFs(MemFs):
    """A MemFs whose mtimes have whole-second granularity (or no clock at all)."""

    mtime_resolution = 1.0

    def __init__(self, no_clock: bool = False) -> None:
        super().__init__()
        self.no_clock = no_clock

    def _coarse(self, s: Stat) -> Stat:
        return attrs.evolve(s, mtime=0.0 if self.no_clock else float(int(s.mtime)))

    def _stat(self, path: str) -> Stat:
        return self._coarse(super()._stat(path))

    def _scandir(self, path: str) -> list[Stat]:
        return [self._coarse(s) for s in super()._scandir(path)]


# -- guest changes reach the namespace ---------------------------------------------------


def test_guest_writes_deletes_renames_mkdirs(runtime: WasiRuntime, wasm: Wasm) -> None:
    data = MemFs()
    data.write_bytes("/keep", b"k")
    data.write_bytes("/old", b"old content")
    data.write_bytes("/gone", b"x")
    data.makedirs("/emptydir")
    data.makedirs("/tree/sub")
    data.write_bytes("/tree/sub/f", b"f")
    ns = make_ns(data=data)
    res = fsops(runtime, wasm, ns,
                ["write", "/data/new", "new!"], ["append", "/data/keep", "+"],
                ["mv", "/data/old", "/data/renamed"], ["rm", "/data/gone"],
                ["rmdir", "/data/emptydir"], ["mkdir", "/data/made"],
                ["write", "/data/made/inner", "i"], ["rm", "/data/tree/sub/f"],
                ["rmdir", "/data/tree/sub"], ["rmdir", "/data/tree"])
    assert res.ok, res.stderr
    assert data.read_bytes("/new") == b"new!"
    assert data.read_bytes("/keep") == b"k+"
    assert data.read_bytes("/renamed") == b"old content"
    assert data.read_bytes("/made/inner") == b"i"
    assert sorted(data.listdir("/")) == ["keep", "made", "new", "renamed"]
    assert res.changes.added == ("/data/made", "/data/made/inner", "/data/new",
                                 "/data/renamed")
    assert res.changes.modified == ("/data/keep",)
    assert res.changes.deleted == ("/data/emptydir", "/data/gone", "/data/old",
                                   "/data/tree", "/data/tree/sub", "/data/tree/sub/f")
    assert res.changes.refused == ()


def test_guest_sees_namespace_content(runtime: WasiRuntime, wasm: Wasm) -> None:
    a, b = MemFs(), MemFs()
    a.write_bytes("/x", b"from a")
    b.makedirs("/deep/er")
    b.write_bytes("/deep/er/y", b"from b")
    ns = make_ns(a=a, b=b)
    res = fsops(runtime, wasm, ns, ["read", "/a/x"], ["read", "/b/deep/er/y"], ["ls", "/b/deep"],
                ["stat", "/a/x"])
    assert res.stdout == b"from afrom ber\nfile 6\n"


def test_type_changes(runtime: WasiRuntime, wasm: Wasm) -> None:
    data = MemFs()
    data.write_bytes("/f", b"was a file")
    data.makedirs("/d")
    data.write_bytes("/d/x", b"x")
    ns = make_ns(data=data)
    res = fsops(runtime, wasm, ns, ["rm", "/data/f"], ["mkdir", "/data/f"],
                ["write", "/data/f/in", "in"], ["rm", "/data/d/x"], ["rmdir", "/data/d"],
                ["write", "/data/d", "now a file"])
    assert res.ok, res.stderr
    assert data.is_dir("/f") and data.read_bytes("/f/in") == b"in"
    assert data.read_bytes("/d") == b"now a file"
    assert not res.changes.refused


def test_touch_without_content_change_is_not_modified(runtime: WasiRuntime,
                                                      wasm: Wasm) -> None:
    data = MemFs()
    data.write_bytes("/f", b"same")
    ns = make_ns(data=data)
    res = fsops(runtime, wasm, ns, ["write", "/data/f", "same"])
    assert res.ok and not res.changes


# -- host changes reach the guest -----------------------------------------------------------


def test_host_changes_between_runs(runtime: WasiRuntime, wasm: Wasm) -> None:
    data = MemFs()
    data.write_bytes("/f", b"v1")
    ns = make_ns(data=data)
    assert fsops(runtime, wasm, ns, ["read", "/data/f"]).stdout == b"v1"
    data.write_bytes("/f", b"v2")  # same size, right after the run
    data.write_bytes("/g", b"new")
    data.makedirs("/dir")
    assert fsops(runtime, wasm, ns, ["read", "/data/f"], ["ls", "/data"]).stdout == \
        b"v2dir\nf\ng\n"
    data.remove("/g")
    data.rmdir("/dir")
    data.write_bytes("/f", b"longer now")
    assert fsops(runtime, wasm, ns, ["read", "/data/f"], ["ls", "/data"]).stdout == \
        b"longer nowf\n"


@pytest.mark.parametrize("no_clock", [False, True])
def test_same_size_rewrite_in_one_clock_tick(runtime: WasiRuntime, wasm: Wasm,
                                             no_clock: bool) -> None:
    data = CoarseClockFs(no_clock)
    ns = make_ns(data=data)
    for i in range(5):
        content = f"round {i}"
        data.write_bytes("/f", content.encode())  # same size, same (coarse) mtime
        assert fsops(runtime, wasm, ns, ["read", "/data/f"]).stdout == content.encode()


def test_guest_rewrites_in_one_clock_tick(runtime: WasiRuntime, wasm: Wasm) -> None:
    data = MemFs()
    ns = make_ns(data=data)
    for i in range(10):  # runs far shorter than the host's mtime granularity
        res = fsops(runtime, wasm, ns, ["write", "/data/f", f"guest {i}"])
        assert res.ok and data.read_bytes("/f") == f"guest {i}".encode()


def test_host_and_guest_alternate(runtime: WasiRuntime, wasm: Wasm) -> None:
    data = MemFs()
    ns = make_ns(data=data)
    for i in range(5):
        data.write_bytes("/f", f"host {i}".encode())
        res = fsops(runtime, wasm, ns, ["read", "/data/f"], ["write", "/data/f", f"gst {i}!"])
        assert res.stdout == f"host {i}".encode()
        assert data.read_bytes("/f") == f"gst {i}!".encode()


def test_incremental_copy(runtime: WasiRuntime, wasm: Wasm) -> None:
    data = CountingFs()
    for d in range(5):
        data.makedirs(f"/d{d}")
    for i in range(50):
        data.write_bytes(f"/d{i % 5}/f{i}", b"x" * i)
    ns = make_ns(data=data)
    time.sleep(0.1)  # let the files age past the racy window (no timing is asserted)
    assert fsops(runtime, wasm, ns, ["stat", "/data/d1/f11"]).stdout == b"file 11\n"
    assert len(data.reads) == 50
    data.reads.clear()
    data.write_bytes("/d3/f13", b"changed")
    time.sleep(0.1)
    res = fsops(runtime, wasm, ns, ["read", "/data/d3/f13"], ["stat", "/data/d4/f44"])
    assert res.stdout == b"changedfile 44\n"
    assert data.reads == ["/d3/f13"]
    data.reads.clear()
    assert fsops(runtime, wasm, ns, ["stat", "/data/d3/f13"]).ok
    assert data.reads == []


def test_computed_files_are_read_every_run(runtime: WasiRuntime, wasm: Wasm) -> None:
    counter = [0]

    def status() -> str:
        counter[0] += 1
        return f"n={counter[0] % 10}"  # same size every time

    ctl = FuncFs().read_only("/status", status)
    ns = make_ns(ctl=ctl)
    seen = {fsops(runtime, wasm, ns, ["read", "/ctl/status"]).stdout for _ in range(3)}
    assert len(seen) == 3


def test_funcfs_write_file_gets_the_bytes(runtime: WasiRuntime, wasm: Wasm) -> None:
    got: list[bytes] = []
    ctl = (FuncFs().write_only("/cmd", got.append)
           .read_only("/status", lambda: "ok\n"))
    ns = make_ns(ctl=ctl)
    res = fsops(runtime, wasm, ns, ["write", "/ctl/cmd", "restart now"],
                ["read", "/ctl/status"])
    assert res.ok and res.stdout == b"ok\n"
    assert got == [b"restart now"]
    assert res.changes.modified == ("/ctl/cmd",)
    res = fsops(runtime, wasm, ns, ["write", "/ctl/cmd", "stop"])
    assert got == [b"restart now", b"stop"]
    res = fsops(runtime, wasm, ns, ["read", "/ctl/status"])  # no write: no call
    assert got == [b"restart now", b"stop"]
    res = fsops(runtime, wasm, ns, ["write", "/ctl/status", "no"])
    assert res.ok and res.changes.refused[0][0] == "/ctl/status"
    assert "ReadOnly" in res.changes.refused[0][1]
    assert fsops(runtime, wasm, ns, ["read", "/ctl/status"]).stdout == b"ok\n"


def test_run_from_a_callback_of_its_own_run(runtime: WasiRuntime, wasm: Wasm) -> None:
    nested: list[BaseException] = []

    def start_another(data: bytes) -> None:
        try:
            runtime.run(wasm("hello"), ns)
        except BaseException as e:
            nested.append(e)
            raise

    ns = make_ns(ctl=FuncFs().write_only("/run", start_another))
    res = fsops(runtime, wasm, ns, ["write", "/ctl/run", "go"])
    assert res.ok
    assert len(nested) == 1 and "already in progress" in str(nested[0])
    assert [p for p, _ in res.changes.refused] == ["/ctl/run"]
    assert runtime.run(wasm("hello"), ns).ok  # the lock was released


# -- read-only mounts and refusals ------------------------------------------------------------


def test_readonly_mount_is_readonly_for_the_guest(runtime: WasiRuntime, wasm: Wasm) -> None:
    ro = MemFs()
    ro.write_bytes("/f", b"keep")
    ns = Namespace()
    ns.mount("/ro", ro, readonly=True)
    for cmd in (["write", "/ro/f", "x"], ["write", "/ro/new", "x"], ["rm", "/ro/f"],
                ["mkdir", "/ro/d"], ["mv", "/ro/f", "/ro/g"]):
        res = fsops(runtime, wasm, ns, cmd)
        assert res.exit_code == 1 and res.stderr.startswith(b"error: ")
        assert not res.changes
    assert ro.listdir("/") == ["f"] and ro.read_bytes("/f") == b"keep"
    assert fsops(runtime, wasm, ns, ["read", "/ro/f"]).stdout == b"keep"


def test_forced_writable_preopen_reports_refusals(runtime: WasiRuntime, wasm: Wasm) -> None:
    ro = MemFs()
    ro.write_bytes("/f", b"keep")
    ns = Namespace()
    ns.mount("/ro", ro, readonly=True)
    cfg = {"preopens": {"/ro": Preopen("/ro", writable=True)}}
    res = fsops(runtime, wasm, ns, ["write", "/ro/f", "XXXX"], ["write", "/ro/new", "n"],
                ["mkdir", "/ro/d"], ["write", "/ro/d/x", "x"], **cfg)
    assert res.ok  # the guest wrote its staged copy...
    assert ro.listdir("/") == ["f"] and ro.read_bytes("/f") == b"keep"  # ...nothing landed
    refused = dict(res.changes.refused)
    assert set(refused) == {"/ro/f", "/ro/new", "/ro/d", "/ro/d/x"}
    assert refused["/ro/f"].startswith("ReadOnly")
    assert not (res.changes.added or res.changes.modified or res.changes.deleted)
    # the next run sees the namespace again, not the refused writes
    res = fsops(runtime, wasm, ns, ["read", "/ro/f"], ["ls", "/ro"], **cfg)
    assert res.stdout == b"keepf\n"
    res = fsops(runtime, wasm, ns, ["rm", "/ro/f"], **cfg)
    assert dict(res.changes.refused).keys() == {"/ro/f"} and ro.read_bytes("/f") == b"keep"
    assert fsops(runtime, wasm, ns, ["read", "/ro/f"], **cfg).stdout == b"keep"


def test_nested_readonly_mount_in_writable_tree(runtime: WasiRuntime, wasm: Wasm) -> None:
    data, inner = MemFs(), MemFs()
    inner.write_bytes("/f", b"inner")
    ns = Namespace()
    ns.mount("/data", data)
    ns.mount("/data/ro", inner, readonly=True)
    res = fsops(runtime, wasm, ns, ["write", "/data/ok", "y"], ["write", "/data/ro/f", "no"])
    assert res.ok
    assert data.read_bytes("/ok") == b"y" and inner.read_bytes("/f") == b"inner"
    assert res.changes.added == ("/data/ok",)
    assert [p for p, _ in res.changes.refused] == ["/data/ro/f"]


def test_quota_refusal(runtime: WasiRuntime, wasm: Wasm) -> None:
    small = MemFs(max_bytes=10)
    ns = make_ns(q=small)
    res = fsops(runtime, wasm, ns, ["write", "/q/a", "12345"], ["write", "/q/b", "1234567890"])
    assert res.ok
    assert small.read_bytes("/a") == b"12345" and not small.exists("/b")
    assert res.changes.added == ("/q/a",)
    assert res.changes.refused[0][0] == "/q/b" and "NoSpace" in res.changes.refused[0][1]
    assert fsops(runtime, wasm, ns, ["ls", "/q"]).stdout == b"a\n"


def test_explicit_preopens(runtime: WasiRuntime, wasm: Wasm) -> None:
    data = MemFs()
    data.makedirs("/sub")
    data.write_bytes("/sub/f", b"f")
    data.write_bytes("/hidden", b"h")
    ns = make_ns(data=data)
    cfg = {"preopens": {"/data/sub": "/mnt"}}
    res = fsops(runtime, wasm, ns, ["read", "/mnt/f"], ["write", "/mnt/g", "g"], **cfg)
    assert res.ok and res.stdout == b"f" and data.read_bytes("/sub/g") == b"g"
    assert res.changes.added == ("/data/sub/g",)
    res = fsops(runtime, wasm, ns, ["read", "/data/hidden"], **cfg)
    assert res.exit_code == 1  # not preopened: invisible
    res = fsops(runtime, wasm, ns, ["write", "/mnt/x", "x"],
                preopens={"/data/sub": Preopen("/mnt", writable=False)})
    assert res.exit_code == 1 and not data.exists("/sub/x")


def test_nested_explicit_preopens(runtime: WasiRuntime, wasm: Wasm) -> None:
    data = MemFs()
    data.makedirs("/sub")
    ns = make_ns(data=data)
    res = fsops(runtime, wasm, ns, ["write", "/data/sub/x", "x"], ["write", "/data/y", "y"],
                ["ls", "/data"], preopens={"/data": "/data", "/data/sub": "/data/sub"})
    assert res.ok and res.stdout == b"sub\ny\n"
    assert data.read_bytes("/sub/x") == b"x" and data.read_bytes("/y") == b"y"


# -- host directories ------------------------------------------------------------------------


def test_workspace_is_preopened_directly(runtime: WasiRuntime, wasm: Wasm,
                                         tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("old")
    (tmp_path / "mod.txt").write_text("m")
    ns = Namespace()
    ws = WorkspaceFs(tmp_path)
    ns.mount("/ws", ws)
    res = fsops(runtime, wasm, ns, ["read", "/ws/old.txt"], ["write", "/ws/new.txt", "n"],
                ["append", "/ws/mod.txt", "+"], ["rm", "/ws/old.txt"], ["mkdir", "/ws/d"])
    assert res.ok and res.stdout == b"old"
    assert sorted(os.listdir(tmp_path)) == ["d", "mod.txt", "new.txt"]
    assert (tmp_path / "mod.txt").read_text() == "m+"
    assert res.changes.added == ("/ws/d", "/ws/new.txt")
    assert res.changes.modified == ("/ws/mod.txt",)
    assert res.changes.deleted == ("/ws/old.txt",)
    staging = runtime._stagings[id(ns)][1]
    assert os.listdir(staging.base) == ["root"]  # nothing was copied: a read-only root
    assert os.listdir(os.path.join(staging.base, "root")) == ["ws"]  # with a placeholder
    assert fsops(runtime, wasm, ns, ["ls", "/"]).stdout == b"ws\n"
    ws.close()


def test_workspace_is_live_during_the_run(runtime: WasiRuntime, wasm: Wasm,
                                          tmp_path: Path) -> None:
    ns = Namespace()
    ns.mount("/ws", WorkspaceFs(tmp_path))
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            if (tmp_path / "req").exists() and (tmp_path / "req").read_text() == "ping":
                (tmp_path / "resp.tmp").write_text("pong")
                os.replace(tmp_path / "resp.tmp", tmp_path / "resp")
                return
            stop.wait(0.002)

    t = threading.Thread(target=answer)
    t.start()
    try:
        res = runtime.run(wasm("poll"), ns, RunConfig(
            argv=["/ws/req", "ping", "/ws/resp", "30000"], timeout=60))
    finally:
        stop.set()
        t.join()
    assert res.ok and res.stdout == b"pong"


def test_readonly_workspace(runtime: WasiRuntime, wasm: Wasm, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("f")
    ns = Namespace()
    ns.mount("/ws", WorkspaceFs(tmp_path, readonly=True))
    res = fsops(runtime, wasm, ns, ["read", "/ws/f"], ["write", "/ws/g", "g"])
    assert res.stdout == b"f" and res.exit_code == 1
    assert os.listdir(tmp_path) == ["f"]


def test_readonly_workspace_stays_readonly_when_forced(runtime: WasiRuntime, wasm: Wasm,
                                                       tmp_path: Path) -> None:
    (tmp_path / "f").write_text("f")
    ns = Namespace()
    ns.mount("/ws", WorkspaceFs(tmp_path), readonly=True)
    ns.mount("/data", MemFs())
    ns.mount("/data/ws", WorkspaceFs(tmp_path, readonly=True))
    forced = Preopen(writable=True)
    for target in ("/ws", "/data/ws"):
        res = fsops(runtime, wasm, ns, ["write", f"{target}/g", "g"],
                    preopens={"/data": forced, "/ws": forced})
        assert res.exit_code == 1 and b"Operation not permitted" in res.stderr
    assert os.listdir(tmp_path) == ["f"]
    assert fsops(runtime, wasm, ns, ["write", "/data/x", "x"], preopens={"/data": forced}).ok


def test_workspace_below_a_staged_tree(runtime: WasiRuntime, wasm: Wasm,
                                       tmp_path: Path) -> None:
    data = MemFs()
    ns = Namespace()
    ns.mount("/data", data)
    ns.mount("/data/ws", WorkspaceFs(tmp_path))
    res = fsops(runtime, wasm, ns, ["write", "/data/ws/host.txt", "h"],
                ["write", "/data/mem.txt", "m"], ["ls", "/data"])
    assert res.ok and res.stdout == b"mem.txt\nws\n"
    assert (tmp_path / "host.txt").read_text() == "h"
    assert data.read_bytes("/mem.txt") == b"m" and data.listdir("/") == ["mem.txt"]
    assert res.changes.added == ("/data/mem.txt", "/data/ws/host.txt")


def test_mount_table_changes_between_runs(runtime: WasiRuntime, wasm: Wasm,
                                          tmp_path: Path) -> None:
    a, b = MemFs(), MemFs()
    a.write_bytes("/x", b"a")
    b.write_bytes("/y", b"b")
    ns = make_ns(a=a)
    assert fsops(runtime, wasm, ns, ["ls", "/a"]).stdout == b"x\n"
    ns.unmount("/a")
    ns.mount("/b", b)
    res = fsops(runtime, wasm, ns, ["read", "/b/y"], ["stat", "/a"])
    assert res.stdout == b"b" and res.exit_code == 1  # /a is gone for the guest too
    (tmp_path / "h").write_text("host")
    ns.mount("/b/ws", WorkspaceFs(tmp_path))
    res = fsops(runtime, wasm, ns, ["read", "/b/ws/h"], ["write", "/b/ws/new", "n"],
                ["ls", "/b"])
    assert res.stdout == b"hostws\ny\n" and (tmp_path / "new").read_text() == "n"
    assert b.listdir("/") == ["y"]
    staging = runtime._stagings[id(ns)][1]
    assert len(os.listdir(staging.base)) == 1  # only /b is copied


# -- lifecycle ---------------------------------------------------------------------------


def test_staging_removed_with_namespace_and_runtime(wasi_cache_dir: Path, wasm: Wasm,
                                                    tmp_path: Path) -> None:
    rt = WasiRuntime(cache_dir=wasi_cache_dir, staging_dir=tmp_path)
    ns = make_ns(data=MemFs())
    assert fsops(rt, wasm, ns, ["write", "/data/f", "x"]).ok
    base = rt._stagings[id(ns)][1].base
    assert os.path.isdir(base)
    del ns
    gc.collect()
    assert not os.path.exists(base)
    ns2 = make_ns(data=MemFs())
    assert fsops(rt, wasm, ns2, ["write", "/data/f", "x"]).ok
    rt.close()
    assert os.listdir(tmp_path) == []


def test_staging_dir_tampered_with(runtime: WasiRuntime, wasm: Wasm) -> None:
    import shutil

    data = MemFs()
    data.write_bytes("/f", b"f")
    ns = make_ns(data=data)
    assert fsops(runtime, wasm, ns, ["read", "/data/f"]).stdout == b"f"
    shutil.rmtree(runtime._stagings[id(ns)][1].base)
    assert fsops(runtime, wasm, ns, ["read", "/data/f"]).stdout == b"f"


def test_staged_copy_changed_between_runs_is_copied_afresh(runtime: WasiRuntime,
                                                           wasm: Wasm) -> None:
    """Only the sync and the guest write in a staging dir: a copy someone else changed
    between runs is not trusted, whatever the change."""
    if not runtime._watch_changes:
        pytest.skip("scanning runtimes notice only a removed staging dir (documented)")
    data = MemFs()
    data.write_bytes("/f", b"f")
    ns = make_ns(data=data)
    assert fsops(runtime, wasm, ns, ["read", "/data/f"]).stdout == b"f"
    root = runtime._stagings[id(ns)][1]._subtrees["/data"].host
    with open(os.path.join(root, "f"), "wb") as out:
        out.write(b"forged")
    with open(os.path.join(root, "extra"), "wb") as out:
        out.write(b"x")
    res = fsops(runtime, wasm, ns, ["read", "/data/f"], ["ls", "/data"])
    assert res.stdout == b"f" + b"f\n"
    assert not res.changes
    assert data.read_bytes("/f") == b"f" and not data.exists("/extra")


# -- a random interleaving of host and guest changes ------------------------------------------

_names = st.sampled_from(["a", "b", "c", "d/e"])
_contents = st.sampled_from(["", "1", "22", "xy", "yx", "hello"])
_steps = st.lists(st.one_of(
    st.tuples(st.just("host_write"), _names, _contents),
    st.tuples(st.just("host_rm"), _names, st.just("")),
    st.tuples(st.just("guest_write"), _names, _contents),
    st.tuples(st.just("guest_rm"), _names, st.just("")),
    st.tuples(st.just("guest_mv"), _names, _names),
), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_steps)
def test_random_interleavings(runtime: WasiRuntime, wasm: Wasm,
                              steps: list[tuple[str, str, str]]) -> None:
    data = CoarseClockFs()
    data.makedirs("/d")
    ns = make_ns(data=data)
    model: dict[str, str] = {}
    for op, name, arg in steps:
        if op == "host_write":
            data.write_bytes("/" + name, arg.encode())
            model[name] = arg
        elif op == "host_rm":
            if name in model:
                data.remove("/" + name)
                del model[name]
        elif op == "guest_write":
            assert fsops(runtime, wasm, ns, ["write", "/data/" + name, arg]).ok
            model[name] = arg
        elif op == "guest_rm" and name in model:
            assert fsops(runtime, wasm, ns, ["rm", "/data/" + name]).ok
            del model[name]
        elif op == "guest_mv" and name in model and name != arg:
            assert fsops(runtime, wasm, ns, ["mv", "/data/" + name, "/data/" + arg]).ok
            model[arg] = model.pop(name)
        # the namespace matches the model, and so does what the guest reads
        files = {f"{top}/{f}"[1:].lstrip("/"): data.read_text(f"{top}/{f}")
                 for top, _dirs, names in data.walk("/") for f in names}
        assert files == model
        for n, text in model.items():
            assert fsops(runtime, wasm, ns, ["read", "/data/" + n]).stdout == text.encode()


# -- the inotify watcher -------------------------------------------------------------------


def test_dirwatch_reports_touched_entries(tmp_path: Path) -> None:
    w = DirWatch()
    if not w.available:
        pytest.skip("no inotify here")
    (tmp_path / "sub").mkdir()
    (tmp_path / "old").write_text("o")
    assert w.watch("k", {"": str(tmp_path), "sub": str(tmp_path / "sub")})
    assert w.report() == {"k": set()}
    (tmp_path / "new").write_text("n")
    (tmp_path / "sub" / "x").write_text("x")
    os.rename(tmp_path / "old", tmp_path / "renamed")
    assert w.report() == {"k": {"new", "sub/x", "old", "renamed"}}
    (tmp_path / "new").unlink()
    w.drain()
    assert w.report() == {"k": set()}
    (tmp_path / "d2").mkdir()  # a directory appeared: everything must be scanned
    assert w.report() == {"k": None}
    w.forget("k")
    (tmp_path / "late").write_text("l")
    assert w.report() == {}
    w.close()
    assert DirWatch(enabled=False).available is False


def test_dirwatch_rewatching_loses_no_event(tmp_path: Path) -> None:
    """Watching the same directories again (the live bridge does it on every refresh)
    keeps the events already queued and those that arrive meanwhile."""
    w = DirWatch()
    if not w.available:
        pytest.skip("no inotify here")
    (tmp_path / "sub").mkdir()
    dirs = {"": str(tmp_path), "sub": str(tmp_path / "sub")}
    assert w.watch("k", dirs)
    (tmp_path / "sub" / "a").write_text("a")
    assert w.watch("k", dirs)
    (tmp_path / "b").write_text("b")
    assert w.watch("k", dirs)
    assert w.report() == {"k": {"sub/a", "b"}}
    assert w.watch("k", {"": str(tmp_path)})  # sub dropped: its events are not ours
    (tmp_path / "sub" / "c").write_text("c")
    (tmp_path / "d").write_text("d")
    assert w.report() == {"k": {"d"}}
    w.close()


# -- the change journal: only what changed is synced ------------------------------------------


class ScanCountingFs(CoarseClockFs):
    """A journaled MemFs with whole-second mtimes that records the directories listed
    (a namespace walk lists every one) and the files read."""

    def __init__(self) -> None:
        super().__init__()
        self.scans: list[str] = []
        self.reads: list[str] = []

    def _scandir(self, path: str) -> list[Stat]:
        self.scans.append(path)
        return super()._scandir(path)

    def _read_bytes(self, path: str) -> bytes:
        self.reads.append(path)
        return super()._read_bytes(path)

    def clear(self) -> None:
        self.scans.clear()
        self.reads.clear()


def staged_tree(rt: WasiRuntime, ns: Namespace, ns_path: str) -> dict[str, bytes | None]:
    """What the staging dir of ``ns_path`` holds: relative path -> bytes (None: a dir)."""
    staging = rt._stagings[id(ns)][1]
    root = staging._subtrees[ns_path].host
    out: dict[str, bytes | None] = {}
    for top, dirs, files in os.walk(root):
        rel = os.path.relpath(top, root)
        prefix = "" if rel == "." else rel + "/"
        out.update((prefix + d, None) for d in dirs)
        out.update((prefix + f, Path(top, f).read_bytes()) for f in files)
    return out


def ns_tree(fs: MemFs) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for top, dirs, files in fs.walk("/"):
        out.update((paths.join(top, d)[1:], None) for d in dirs)
        out.update((paths.join(top, f)[1:], MemFs._read_bytes(fs, paths.join(top, f)))
                   for f in files)  # not counted by ScanCountingFs
    return out


def _replace(fs: MemFs, path: str, data: bytes | None) -> None:
    """Replace ``path`` by a file with ``data``, or an empty directory (None)."""
    if fs.is_dir(path):
        fs.rmtree(path)
    else:
        fs.remove(path)
    if data is None:
        fs.mkdir(path)
    else:
        fs.write_bytes(path, data)


def _open_write(fs: MemFs, path: str, mode: str, data: bytes) -> None:
    with fs.open(path, mode) as f:
        f.write(data)


def test_journal_sync_sees_every_host_change(runtime: WasiRuntime, wasm: Wasm) -> None:
    data = ScanCountingFs()
    data.makedirs("/d/sub")
    data.write_bytes("/d/sub/a", b"a1")
    data.write_bytes("/d/b", b"b1")
    data.write_bytes("/f", b"f1")
    ns = make_ns(data=data)
    assert fsops(runtime, wasm, ns, ["read", "/data/f"]).stdout == b"f1"
    assert data.scans  # the first run walks
    steps: list[tuple[Callable[[], object], list[str]]] = [
        (lambda: None, []),
        (lambda: data.write_bytes("/f", b"f2"), []),  # same size, same clock tick
        (lambda: data.write_bytes("/new", b"new"), []),
        (lambda: _open_write(data, "/f", "ab", b"+"), []),
        (lambda: _open_write(data, "/d/b", "r+b", b"B"), []),
        (lambda: data.open("/new", "wb").close(), []),  # truncate
        (lambda: data.remove("/new"), []),
        (lambda: data.makedirs("/n1/n2"), ["/n1", "/n1/n2"]),
        (lambda: data.write_bytes("/n1/n2/deep", b"deep"), []),
        # a directory with files moved: walked at its new place
        (lambda: data.rename("/d", "/n1/moved"), ["/n1/moved", "/n1/moved/sub"]),
        (lambda: data.rename("/f", "/n1/n2/deep"), []),  # a file over another
        (lambda: data.rmtree("/n1/moved"), []),  # a dir with files
        (lambda: _replace(data, "/n1/n2/deep", None), ["/n1/n2/deep"]),  # file -> dir
        (lambda: _replace(data, "/n1", b"file"), []),  # dir with files -> file
    ]
    for change, walked in steps:
        change()
        expected = ns_tree(data)
        data.clear()
        res = fsops(runtime, wasm, ns, ["ls", "/data"])
        assert res.ok, res.stderr
        assert staged_tree(runtime, ns, "/data") == expected
        assert sorted(data.scans) == walked  # no walk of the namespace, only of new dirs
    data.clear()
    assert fsops(runtime, wasm, ns, ["read", "/data/n1"]).stdout == b"file"
    assert data.scans == data.reads == []


def test_journal_sync_does_not_read_back_guest_writes(runtime: WasiRuntime,
                                                      wasm: Wasm) -> None:
    data = ScanCountingFs()
    data.write_bytes("/keep", b"k")
    ns = make_ns(data=data)
    assert fsops(runtime, wasm, ns, ["read", "/data/keep"]).ok
    res = fsops(runtime, wasm, ns, ["mkdir", "/data/g"], ["write", "/data/g/x", "gx"],
                ["write", "/data/keep", "K2"], ["mv", "/data/keep", "/data/g/kept"])
    assert res.ok, res.stderr
    assert ns_tree(data) == {"g": None, "g/x": b"gx", "g/kept": b"K2"}
    data.clear()
    assert fsops(runtime, wasm, ns, ["read", "/data/g/kept"]).stdout == b"K2"
    assert data.scans == data.reads == []
    assert staged_tree(runtime, ns, "/data") == ns_tree(data)


def test_journal_sync_restores_refused_guest_changes(runtime: WasiRuntime,
                                                     wasm: Wasm) -> None:
    small = MemFs(max_bytes=8)
    small.write_bytes("/f", b"small")
    ns = make_ns(q=small)
    assert fsops(runtime, wasm, ns, ["read", "/q/f"]).stdout == b"small"
    res = fsops(runtime, wasm, ns, ["write", "/q/f", "far too big"], ["rm", "/q/f2"])
    assert res.changes.refused and small.read_bytes("/f") == b"small"
    assert fsops(runtime, wasm, ns, ["read", "/q/f"]).stdout == b"small"


class TriggerFs(ScanCountingFs):
    """Calls ``hook`` in another thread (and waits for it) when ``/trigger`` is written,
    before or after the write: a host change made while a run's write-back goes on."""

    def __init__(self, when: str) -> None:
        super().__init__()
        self.when = when
        self.hook: Callable[[], None] | None = None
        self.fired = 0

    def _from_another_thread(self) -> None:
        hook, self.hook = self.hook, None  # once
        if hook is not None:
            self.fired += 1
            t = threading.Thread(target=hook)
            t.start()
            t.join()

    def _write_bytes(self, path: str, data: bytes) -> None:
        if path == "/trigger" and self.when == "before":
            self._from_another_thread()
        super()._write_bytes(path, data)
        if path == "/trigger" and self.when == "after":
            self._from_another_thread()


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("target", ["/f", "/trigger", "/newdir"])
def test_host_change_during_write_back_is_seen(runtime: WasiRuntime, wasm: Wasm,
                                               when: str, target: str) -> None:
    data = TriggerFs(when)
    data.write_bytes("/f", b"f1")
    ns = make_ns(data=data)
    assert fsops(runtime, wasm, ns, ["read", "/data/f"]).stdout == b"f1"

    def host() -> None:
        if target == "/newdir":
            data.makedirs("/newdir/x")
        else:
            data.write_bytes(target, b"host")

    data.hook = host
    res = fsops(runtime, wasm, ns, ["write", "/data/trigger", "gst!"])
    assert res.ok, res.stderr
    assert data.fired == 1
    assert fsops(runtime, wasm, ns, ["ls", "/data"]).ok
    assert staged_tree(runtime, ns, "/data") == ns_tree(data)


def test_host_change_while_the_guest_runs_is_seen(runtime: WasiRuntime, wasm: Wasm) -> None:
    data = ScanCountingFs()
    data.write_bytes("/f", b"v000")
    counter = itertools.count(1)

    def status() -> str:
        # read by the sync of /z, after /data's (and maybe before, for its size): another
        # thread changes /data/f while the run holds the namespace
        t = threading.Thread(target=lambda: data.write_bytes(
            "/f", f"v{next(counter):03}".encode()))
        t.start()
        t.join()
        return "ok"

    ns = make_ns(data=data, z=FuncFs().read_only("/status", status))
    before_run = b"v000"
    for i in range(4):
        res = fsops(runtime, wasm, ns, ["read", "/data/f"], ["write", "/data/g", str(i)])
        assert res.ok and res.stdout >= before_run  # what was there before this run
        assert data.read_bytes("/g") == str(i).encode()  # the guest's write went back
        before_run = data.read_bytes("/f")
        assert before_run > res.stdout  # a change while the run was in progress


def test_journal_overflow_falls_back_to_a_walk(runtime: WasiRuntime, wasm: Wasm) -> None:
    from oanix.fs.mem import JOURNAL_SIZE

    data = ScanCountingFs()
    data.write_bytes("/f", b"0")
    ns = make_ns(data=data)
    assert fsops(runtime, wasm, ns, ["read", "/data/f"]).ok
    for i in range(JOURNAL_SIZE + 1):
        data.write_bytes(f"/f{i % 3}", str(i).encode())
    data.clear()
    assert fsops(runtime, wasm, ns, ["read", "/data/f1"]).stdout == str(JOURNAL_SIZE).encode()
    assert data.scans == ["/"]
    assert staged_tree(runtime, ns, "/data") == ns_tree(data)


def test_journal_sync_over_cowfs(runtime: WasiRuntime, wasm: Wasm) -> None:
    from oanix.fs import CowFs, MapFs

    upper = ScanCountingFs()
    cow = CowFs(MapFs({"/base/a": b"a", "/top": b"t"}), upper)
    ns = make_ns(c=cow)
    assert fsops(runtime, wasm, ns, ["read", "/c/base/a"]).stdout == b"a"
    cow.remove("/top")
    cow.write_bytes("/base/a", b"A!")
    upper.clear()
    res = fsops(runtime, wasm, ns, ["ls", "/c"], ["read", "/c/base/a"])
    assert res.stdout == b"base\nA!"
    assert upper.scans == []  # the overlay was not walked
    cow.reset()
    assert fsops(runtime, wasm, ns, ["ls", "/c"]).stdout == b"base\ntop\n"
    assert fsops(runtime, wasm, ns, ["read", "/c/base/a"]).stdout == b"a"


_host_paths = st.sampled_from(["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z"])
_host_ops = st.lists(st.tuples(
    st.sampled_from(["write", "write", "mkdir", "mkdir", "rm", "rmtree", "mv", "append"]),
    _host_paths, _host_paths, st.sampled_from([b"", b"1", b"22", b"xy", b"yx"])),
    max_size=6)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(st.tuples(_host_ops, st.booleans()), min_size=1, max_size=4))
def test_random_host_changes_reach_the_staged_copy(
        runtime: WasiRuntime, wasm: Wasm,
        rounds: list[tuple[list[tuple[str, str, str, bytes]], bool]]) -> None:
    from oanix.errors import FsError

    data = CoarseClockFs()
    ns = make_ns(data=data)
    for ops, guest_writes in rounds:
        for kind, a, b, content in ops:
            with contextlib.suppress(FsError):
                if kind == "write":
                    data.write_bytes(a, content)
                elif kind == "mkdir":
                    data.mkdir(a)
                elif kind == "rm":
                    data.remove(a)
                elif kind == "rmtree":
                    data.rmtree(a)
                elif kind == "mv":
                    data.rename(a, b)
                else:
                    _open_write(data, a, "ab", content)
        cmd = ["write", "/data/g", "guest"] if guest_writes else ["ls", "/data"]
        assert fsops(runtime, wasm, ns, cmd).ok
        assert staged_tree(runtime, ns, "/data") == ns_tree(data)


# -- the guest's root (oanix.wasi.rootview) ----------------------------------------------------


def _root_ns() -> tuple[Namespace, MemFs, MemFs, MemFs]:
    data, tmp, ro = MemFs(), MemFs(), MemFs()
    data.write_bytes("/f", b"f")
    ro.write_bytes("/r", b"r")
    ns = make_ns(data=data, tmp=tmp)
    ns.mount("/ro", ro, readonly=True)
    ns.mount("/empty", MemFs())
    return ns, data, tmp, ro


def test_root_lists_the_top_level(runtime: WasiRuntime, wasm: Wasm) -> None:
    ns, *_ = _root_ns()
    res = fsops(runtime, wasm, ns, ["ls", "/"], ["ls", "/ro"])
    assert res.ok and res.stdout == b"data\nempty\nro\ntmp\nr\n"


def test_root_refuses_what_lies_outside_every_mount(runtime: WasiRuntime,
                                                     wasm: Wasm) -> None:
    ns, _data, _tmp, ro = _root_ns()
    res = fsops(runtime, wasm, ns, ["write", "/stray.txt", "x"], ["mkdir", "/newdir"],
                ["write", "/data/../ro/x", "into the placeholder"])
    assert res.ok, res.stderr
    assert {p for p, _ in res.changes.refused} == {"/stray.txt", "/newdir", "/ro/x"}
    assert not res.changes.added and ro.listdir("/") == ["r"]
    again = fsops(runtime, wasm, ns, ["ls", "/"], ["ls", "/ro"])
    assert again.stdout == b"data\nempty\nro\ntmp\nr\n" and not again.changes


def test_root_puts_back_a_moved_or_removed_mount_point(runtime: WasiRuntime,
                                                        wasm: Wasm) -> None:
    ns, data, _tmp, _ro = _root_ns()
    res = fsops(runtime, wasm, ns, ["write", "/data/g", "g"], ["mv", "/data", "/moved"],
                ["rmdir", "/empty"])
    assert res.ok, res.stderr
    assert dict(res.changes.refused).keys() == {"/data", "/empty"}
    assert res.changes.added == ("/data/g",)  # what the guest wrote inside is kept
    assert sorted(data.listdir("/")) == ["f", "g"]
    assert fsops(runtime, wasm, ns, ["ls", "/"]).stdout == b"data\nempty\nro\ntmp\n"
    assert fsops(runtime, wasm, ns, ["read", "/data/g"]).stdout == b"g"


def test_root_moves_between_mounts(runtime: WasiRuntime, wasm: Wasm) -> None:
    ns, data, tmp, _ro = _root_ns()
    res = fsops(runtime, wasm, ns, ["mv", "/data/f", "/tmp/f"])
    assert res.ok, res.stderr
    assert (res.changes.added, res.changes.deleted) == (("/tmp/f",), ("/data/f",))
    assert tmp.read_bytes("/f") == b"f" and not data.exists("/f")
    # A whole mount moved into another one is moved back, with what it holds.
    res = fsops(runtime, wasm, ns, ["write", "/tmp/t", "t"], ["mv", "/tmp", "/data/sub"])
    assert res.ok, res.stderr
    assert "/tmp" in dict(res.changes.refused) and res.changes.added == ("/tmp/t",)
    assert sorted(tmp.listdir("/")) == ["f", "t"] and not data.exists("/sub")
    assert fsops(runtime, wasm, ns, ["read", "/tmp/t"]).stdout == b"t"


def test_root_changed_between_runs_is_put_back(runtime: WasiRuntime, wasm: Wasm) -> None:
    ns, *_ = _root_ns()
    assert fsops(runtime, wasm, ns, ["ls", "/"]).ok
    staging = runtime._stagings[id(ns)][1]
    root = staging._root
    assert root is not None
    with open(os.path.join(root.host, "planted"), "wb") as out:
        out.write(b"x")
    res = fsops(runtime, wasm, ns, ["ls", "/"])
    assert res.stdout == b"data\nempty\nro\ntmp\n" and not res.changes
