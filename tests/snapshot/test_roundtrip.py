"""Each stateful service through a snapshot and back: same files, bytes, mtimes, state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from oanix import (
    CowFs,
    FuncFs,
    MapFs,
    MemFs,
    Namespace,
    OanixEnv,
    TaskFs,
    TaskInfo,
    Unsnapshottable,
    WorkspaceChanged,
    WorkspaceFs,
)
from oanix.cap.http import HttpFs

from .helpers import env_files, files


def roundtrip(tmp_path: Path, env: OanixEnv, **restore: object) -> OanixEnv:
    path = tmp_path / "env.oanix"
    env.snapshot(path)
    return OanixEnv.restore(path, **restore)  # type: ignore[arg-type]


def test_memfs_tree_bytes_mtimes_and_quota(tmp_path: Path) -> None:
    ws = MemFs(max_bytes=1 << 20, max_files=100)
    ws.makedirs("/a/b/c")
    ws.write_bytes("/a/b/c/bin", bytes(range(256)))
    ws.write_text("/a/x.txt", "héllo\n")
    ws.mkdir("/empty")
    with OanixEnv(workspace=ws) as env:
        back = roundtrip(tmp_path, env)
        new = back.workspace
        assert isinstance(new, MemFs)
        assert files(new) == files(ws)
        for p in files(ws):
            assert new.stat(p).mtime == ws.stat(p).mtime, p
        assert (new.max_bytes, new.max_files) == (1 << 20, 100)
        assert new.usage == ws.usage
        back.close()


def test_mapfs_cowfs_whiteouts_and_a_namespace_mounted_inside(tmp_path: Path) -> None:
    base = MapFs({"keep.txt": "k", "gone.txt": "g", "dir/a": "1", "dir/b": "2"},
                 dirs=["/emptydir"], mtime=1234.5)
    cow = CowFs(base)
    cow.write_text("/keep.txt", "changed")
    cow.remove("/gone.txt")
    cow.rmtree("/dir")
    cow.mkdir("/dir")  # opaque: the base's dir/a and dir/b stay hidden
    cow.write_text("/dir/new", "n")
    inner = Namespace()
    inner.mount("/m", MemFs())
    inner.write_text("/m/f", "inner")
    with OanixEnv(workspace=cow, mounts={"/nested": inner, "/ro": base}) as env:
        before = env_files(env)
        back = roundtrip(tmp_path, env)
        assert env_files(back) == before
        assert isinstance(back.workspace, CowFs)
        assert back.workspace.whiteouts == cow.whiteouts
        assert back.workspace.changes() == cow.changes()
        assert back.namespace.stat("/ro/keep.txt").mtime == 1234.5
        # the CowFs base and the /ro mount were one object, and still are
        assert back.workspace.base is next(m.service for m in back.namespace.mounts()
                                           if m.path == "/ro")
        back.close()


def test_mount_table_unions_binds_and_flags(tmp_path: Path) -> None:
    with OanixEnv() as env:
        ns = env.namespace
        a, b = MemFs(), MemFs()
        a.write_text("/x", "a")
        b.write_text("/y", "b")
        ns.mount("/u", a)
        ns.mount("/u", b, mode="after", create=True)
        ns.bind("/u", "/ro-u", readonly=True)
        ns.makedirs("/workspace/d")
        ns.write_text("/workspace/d/f", "f")
        ns.bind("/workspace/d", "/alias")
        back = roundtrip(tmp_path, env)

        def table(e: OanixEnv) -> list[tuple[str, str, str, bool, bool]]:
            return [(m.path, type(m.service).__name__, m.root, m.create, m.readonly)
                    for m in e.namespace.mounts()]

        assert table(back) == table(env)
        assert back.namespace.read_text("/alias/f") == "f"
        back.namespace.write_text("/u/new", "goes to b")  # the create member
        assert back.namespace.read_text("/u/new") == "goes to b"
        with pytest.raises(OSError):
            back.namespace.write_text("/ro-u/z", "no")
        back.close()


def test_task_status_result_and_verifier_area(tmp_path: Path) -> None:
    task = TaskFs(TaskInfo(id="t1", instruction="do", input={"k": [1, 2]}, tags=["a"]),
                  {"origin": "test"}, version=3)
    task.start()
    with OanixEnv(task=task) as env:
        env.namespace.write_text("/task/result.json", '{"answer": 42}')
        task.verifier_view().write_text("/verifier/reward.txt", "0.5")
        task.complete()
        back = roundtrip(tmp_path, env)
        t2 = back.task
        assert t2 is not None
        assert t2.status() == task.status()
        assert t2.result() == {"answer": 42}
        assert t2.reward() == task.reward()
        assert t2.spec == task.spec and t2.metadata == task.metadata
        for name in ("spec.json", "meta.json", "status", "result.json"):
            assert back.namespace.read_bytes(f"/task/{name}") == \
                env.namespace.read_bytes(f"/task/{name}")
        # still the agent's view: the verifier area refuses it, the result is frozen
        with pytest.raises(OSError):
            back.namespace.write_text("/task/verifier/reward.txt", "1")
        with pytest.raises(OSError):
            back.namespace.write_text("/task/result.json", "{}")
        back.close()


def test_logs_bytes_events_and_caps(tmp_path: Path) -> None:
    from oanix import LogsFs

    logs = LogsFs(max_bytes=4096)
    with OanixEnv(logs=logs) as env:
        env.exec("echo out; echo err >&2")
        logs.write_stdout(b"raw \xff bytes\n")
        logs.write_stderr("more\n")
        logs.event("warning", "careful", step=2)
        back = roundtrip(tmp_path, env)
        assert back.logs.stdout() == logs.stdout()
        assert back.logs.stderr() == logs.stderr()
        assert back.logs.events() == logs.events()
        assert back.logs.max_bytes == 4096
        assert back.logs.tail("stdout.log", 1) == logs.tail("stdout.log", 1)
        back.logs.event("info", "after")  # still appends
        assert len(back.logs.events()) == len(logs.events()) + 1
        back.close()


def test_http_requests_pending_finished_and_in_flight(tmp_path: Path) -> None:
    http = HttpFs(default_timeout=7)
    with OanixEnv(capabilities={"http": http}) as env:
        ns = env.namespace
        for i in range(4):
            ns.write_text("/cap/http/request", json.dumps({"url": f"http://h.test/{i}"}))
        ns.write_text("/cap/http/request", "not json")  # finished at once: an error
        taken = http.take_pending()  # 1 in flight
        assert taken is not None
        http.complete(http.take_pending().id, status=201, body=b"done")  # type: ignore[union-attr]
        back = roundtrip(tmp_path, env)
        h2 = next(m.service for m in back.namespace.mounts() if m.path == "/cap/http")
        assert isinstance(h2, HttpFs)
        assert h2.result("2") == http.result("2")  # the response
        assert h2.result("5") == http.result("5")  # the invalid request
        assert h2.result("3") is None and h2.result("4") is None  # still pending
        # in flight at the snapshot: may have been performed, so failed, never redone
        err = h2.result("1")
        assert err is not None and err["error"] == "shutdown"
        assert back.namespace.read_text("/cap/http/last") == "5\n"
        assert [r.id for r in iter(h2.take_pending, None)] == ["3", "4"]
        back.namespace.write_text("/cap/http/request", '{"url": "http://h.test/next"}')
        assert back.namespace.read_text("/cap/http/last") == "6\n"  # ids go on
        back.close()


def test_workspace_by_hash_inline_and_changed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print(1)\n")
    with OanixEnv(workspace=WorkspaceFs(root), cow=True) as env:
        env.exec("echo edit >> src/main.py", check=True)  # lands in the overlay
        env.snapshot(tmp_path / "ref.oanix")
        env.snapshot(tmp_path / "inline.oanix", inline_workspace=True)
        before = env_files(env)
    back = OanixEnv.restore(tmp_path / "ref.oanix")
    assert env_files(back) == before
    base = back.workspace.base  # type: ignore[attr-defined]
    assert isinstance(base, WorkspaceFs) and base.host_path == os.path.realpath(root)
    back.close()

    (root / "src" / "main.py").write_text("print(2)\n")  # the host directory changes
    with pytest.raises(WorkspaceChanged, match="changed since the snapshot"):
        OanixEnv.restore(tmp_path / "ref.oanix")
    forced = OanixEnv.restore(tmp_path / "ref.oanix", accept_changed=True)
    assert forced.namespace.read_text("/workspace/src/main.py") == "print(1)\nedit\n"
    forced.close()
    inlined = OanixEnv.restore(tmp_path / "inline.oanix")  # the copy, in memory
    assert env_files(inlined) == before
    assert isinstance(inlined.workspace.base, MemFs)  # type: ignore[attr-defined]
    assert (root / "src" / "main.py").read_text() == "print(2)\n"  # host untouched
    inlined.close()

    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "src").mkdir()
    (moved / "src" / "main.py").write_text("print(1)\n")
    elsewhere = OanixEnv.restore(tmp_path / "ref.oanix",
                                 workspaces={os.path.realpath(root): moved})
    assert env_files(elsewhere) == before
    elsewhere.close()


def test_an_unsnapshottable_mount_is_named_never_skipped(tmp_path: Path) -> None:
    func = FuncFs().read_only("/now", lambda: "x")
    with OanixEnv(mounts={"/gen": func}) as env:
        with pytest.raises(Unsnapshottable, match=r"^/gen: a FuncFs") as info:
            env.snapshot(tmp_path / "x.oanix")
        assert info.value.mount == "/gen"
    assert not (tmp_path / "x.oanix").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left either


def test_fsspec_under_a_cowfs_is_named_by_its_mount(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    from oanix import FsspecFs

    mem = fsspec.filesystem("memory")
    mem.pipe("/snaptest/a", b"x")
    with OanixEnv(workspace=CowFs(FsspecFs(mem, "/snaptest"))) as env:
        with pytest.raises(Unsnapshottable, match=r"^/workspace: a FsspecFs \(cowfs base\)"
                           ) as info:
            env.snapshot(tmp_path / "x.oanix")
        assert info.value.mount == "/workspace"


def test_a_subclass_is_not_taken_for_its_base(tmp_path: Path) -> None:
    class Special(MemFs):
        pass

    with OanixEnv(mounts={"/s": Special()}) as env, pytest.raises(
            Unsnapshottable, match=r"^/s: a Special"):
        env.snapshot(tmp_path / "x.oanix")


def test_nostr_outbox_inbox_subscriptions_and_the_key_kept_out(tmp_path: Path) -> None:
    from oanix import SnapshotError
    from oanix.cap.nostr import NostrFs

    key = "11" * 32
    nostr = NostrFs(key, ["ws://127.0.0.1:9/"])
    with OanixEnv(capabilities={"nostr": nostr}) as env:
        env.namespace.write_text("/cap/nostr/submit", '{"kind": 1, "content": "hello"}')
        job = nostr.request_job({"kind": 5050, "inputs": [["2+2?", "text"]]})
        nostr.subscribe("mine", [{"kinds": [1], "limit": 5}])
        env.snapshot(tmp_path / "n.oanix")
        assert key.encode() not in (tmp_path / "n.oanix").read_bytes()
        with pytest.raises(SnapshotError, match="needs its secret key"):
            OanixEnv.restore(tmp_path / "n.oanix")
        back = OanixEnv.restore(tmp_path / "n.oanix", keys=[bytes.fromhex(key)])
        n2 = next(m.service for m in back.namespace.mounts() if m.path == "/cap/nostr")
        assert isinstance(n2, NostrFs) and n2.pubkey == nostr.pubkey
        assert n2.status() == nostr.status()
        assert n2.job(job.id) == nostr.job(job.id)
        assert n2.subscriptions() == nostr.subscriptions()
        for p in ("/cap/nostr/last", f"/cap/nostr/outbox/{job.id}.json"):
            assert back.namespace.read_bytes(p) == env.namespace.read_bytes(p)
        back.namespace.write_text("/cap/nostr/submit", '{"kind": 1, "content": "again"}')
        assert n2.status()["outbox"]["pending"] == 3  # signs with the same key
        back.close()


def test_websocket_finished_connections_move_live_ones_are_refused(tmp_path: Path) -> None:
    from oanix.cap.ws import WsFs

    ws = WsFs()
    with OanixEnv(capabilities={"ws": ws}) as env:
        cid = ws.connect("ws://127.0.0.1:9/")
        with pytest.raises(Unsnapshottable, match=r"^/cap/ws: WsFs: .*are live"):
            env.snapshot(tmp_path / "w.oanix")
        ws.close(cid)
        assert ws.status(cid)["state"] in ("closed", "failed")
        # one that talked (through the executor's API, as a connector does), then closed
        talked = ws.connect("ws://127.0.0.1:9/chat")
        link = ws.take_connecting()
        assert link is not None
        link.set_open()
        link.received("first")
        link.received(b"\x00second")
        ws.send(talked, "queued, never sent")
        link.finish("closed", closed_by="server", code=1000, reason="bye")
        env.snapshot(tmp_path / "w.oanix")
        back = OanixEnv.restore(tmp_path / "w.oanix")
        w2 = next(m.service for m in back.namespace.mounts() if m.path == "/cap/ws")
        assert isinstance(w2, WsFs)
        assert w2.status(cid) == ws.status(cid)
        assert w2.status(talked) == ws.status(talked)
        assert back.namespace.read_bytes(f"/cap/ws/conns/{talked}/in") == b"first"
        assert w2.receive(talked) == b"\x00second"
        assert w2.receive(talked) is None
        assert ws.receive(talked) == "first"  # the original still holds its own copy
        for p in ("/cap/ws/status", f"/cap/ws/conns/{cid}/log", f"/cap/ws/conns/{cid}/url",
                  f"/cap/ws/conns/{talked}/log"):
            assert back.namespace.read_bytes(p) == env.namespace.read_bytes(p)
        assert w2.connect("ws://127.0.0.1:9/") == str(int(talked) + 1)  # ids go on
        back.close()
