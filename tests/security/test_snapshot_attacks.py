"""Crafted snapshots: each attack is performed on a real snapshot file whose rows are
changed as an attacker would (with the digest recomputed: it detects damage, it is no
signature), and restore must refuse it, or contain it, and change nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from oanix import (
    CorruptSnapshot,
    CowFs,
    MemFs,
    Namespace,
    OanixEnv,
    TaskFs,
    TaskInfo,
    WorkspaceChanged,
    WorkspaceFs,
    WorkspaceRefused,
)
from oanix.cap.http import HttpFs
from oanix.snapshot import content_hash
from oanix.snapshot.format import (
    MountRow,
    SnapshotData,
    blob_key,
    read_snapshot,
    write_snapshot,
)

State = dict[str, Any]


def rewrite(path: Path, change: Callable[[SnapshotData], None]) -> None:
    """Change the rows of the snapshot at ``path``; write it back with a valid digest."""
    data = read_snapshot(path)
    change(data)
    write_snapshot(path, data, "attacker")


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _snapshot(tmp_path: Path, **env: Any) -> Path:
    ws = MemFs()
    ws.makedirs("/src")
    ws.write_text("/src/a.txt", "a")
    env.setdefault("workspace", ws)
    env.setdefault("task", TaskFs(TaskInfo(id="t", instruction="i")))
    env.setdefault("capabilities", {"http": HttpFs()})
    with OanixEnv(**env) as e:
        e.namespace.write_text("/cap/http/request", '{"url": "http://h.test/"}')
        path = tmp_path / "crafted.oanix"
        e.snapshot(path)
    return path


def _edit(path: Path, kind: str, change: Callable[[State], None]) -> None:
    """Change the state of the object of ``kind``: the workspace's, if it is one, else
    the first."""
    def apply(data: SnapshotData) -> None:
        ws = json.loads(data.root)["workspace"]
        rows = sorted((o for o in data.objects if o.kind == kind), key=lambda o: o.id != ws)
        row = rows[0]
        state = json.loads(row.state)
        change(state)
        data.objects[data.objects.index(row)] = attrs.evolve(row, state=json.dumps(state))
    rewrite(path, apply)


def _refused(path: Path, error: type[Exception] = CorruptSnapshot, match: str | None = None,
             **restore: Any) -> None:
    """Restore raises ``error``, writes nothing next to the file, leaves nothing open."""
    listing = sorted(os.listdir(path.parent))
    fds = _fds()
    with pytest.raises(error, match=match):
        OanixEnv.restore(path, **restore)
    assert sorted(os.listdir(path.parent)) == listing
    assert _fds() <= fds


@pytest.mark.parametrize("name", ["/../escape", "/src/../../escape", "escape", "/a\x00b",
                                  "/a//b", "/./a", "/", "", "/src/", "/src"])
def test_file_names_that_traverse_or_hide(tmp_path: Path, name: str) -> None:
    path = _snapshot(tmp_path)

    def bad(state: State) -> None:
        state["entries"].append([name, "f", 0.0, state["entries"][-1][3]])

    _edit(path, "memfs", bad)
    _refused(path)
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "escape").exists()


def test_a_file_under_a_file_or_before_its_directory(tmp_path: Path) -> None:
    path = _snapshot(tmp_path)
    _edit(path, "memfs", lambda s: s["entries"].append(["/src/a.txt/x", "d", 0.0]))
    _refused(path, match="not a directory given before it")
    path = _snapshot(tmp_path)
    _edit(path, "memfs", lambda s: s["entries"].reverse())
    _refused(path)


@pytest.mark.parametrize("field,value", [("path", "/../../etc"), ("path", "etc"),
                                         ("root", "/.."), ("path", "/x\x00y")])
def test_mount_points_that_traverse(tmp_path: Path, field: str, value: str) -> None:
    path = _snapshot(tmp_path)

    def bad(data: SnapshotData) -> None:
        data.mounts[0] = attrs.evolve(data.mounts[0], **{field: value})

    rewrite(path, bad)
    _refused(path, match="not an absolute normalised path")


def test_whiteouts_that_traverse(tmp_path: Path) -> None:
    path = _snapshot(tmp_path, workspace=CowFs(MemFs()))
    _edit(path, "cowfs", lambda s: s["whiteouts"].append("/../../etc"))
    _refused(path)


def test_a_huge_declared_size(tmp_path: Path) -> None:
    path = _snapshot(tmp_path)
    con = __import__("sqlite3").connect(path)
    with con:
        con.execute("UPDATE blobs SET size = ?", (1 << 62,))
    con.close()
    _refused(path)  # the digest, and the size against the data, both catch it

    path = _snapshot(tmp_path)

    def lie(data: SnapshotData) -> None:  # a consistent digest over the lie
        key = next(iter(data.blobs))
        data.blobs[key] = data.blobs[key] + b"\x00" * 10  # no longer its key's content

    rewrite(path, lie)
    _refused(path, match="does not match its key")


def test_a_header_that_declares_more_pages_than_there_are(tmp_path: Path) -> None:
    path = _snapshot(tmp_path)
    image = bytearray(path.read_bytes())
    image[28:32] = (0x7FFFFFFF).to_bytes(4, "big")  # the page count
    path.write_bytes(bytes(image))
    _refused(path, match="truncated or damaged")


def test_a_tree_over_its_own_quota(tmp_path: Path) -> None:
    ws = MemFs(max_bytes=100)
    ws.write_text("/f", "0123456789")
    path = _snapshot(tmp_path, workspace=ws)
    _edit(path, "memfs", lambda s: s.update(max_bytes=0))
    _refused(path, match="over its own quota")


def test_logs_over_their_cap(tmp_path: Path) -> None:
    path = _snapshot(tmp_path)
    _edit(path, "logsfs", lambda s: s.update(max_bytes=0))
    with OanixEnv() as e:  # the logs of the snapshot are not empty
        e.logs.write_stdout("x")
        e.snapshot(path)
    _edit(path, "logsfs", lambda s: s.update(max_bytes=0))
    _refused(path, match="over the cap")


def _workspace(tmp_path: Path, name: str, content: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "f.txt").write_text(content)
    return d


def test_a_workspace_path_pointing_somewhere_else(tmp_path: Path) -> None:
    mine = _workspace(tmp_path, "mine", "mine")
    secret = _workspace(tmp_path, "secret", "secret")
    path = _snapshot(tmp_path, workspace=WorkspaceFs(mine))

    # 1. the path changed, the hash did not: the other directory's content differs
    _edit(path, "workspacefs", lambda s: s.update(root=str(secret)))
    _refused(path, WorkspaceChanged, match="changed since the snapshot")

    # 2. the hash forged to match the other directory: refused outside the allowed roots
    with WorkspaceFs(secret) as ws:
        forged = content_hash(ws)
    _edit(path, "workspacefs", lambda s: s.update(sha256=forged))
    _refused(path, WorkspaceRefused, match="outside the allowed roots",
             workspace_roots=[mine])
    # (without roots the caller trusts the file: the directory holds what it declared)

    # 3. a relative path, or one with a NUL
    for root in ("etc", "/tmp/\x00x"):
        _edit(path, "workspacefs", lambda s, root=root: s.update(root=root))
        _refused(path, match="not an absolute host path")


def test_a_symlinked_workspace_root_cannot_leave_the_allowed_roots(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    secret = _workspace(tmp_path, "secret", "secret")
    (allowed / "link").symlink_to(secret)
    path = _snapshot(tmp_path, workspace=WorkspaceFs(secret))
    _edit(path, "workspacefs", lambda s: s.update(root=str(allowed / "link")))
    _refused(path, WorkspaceRefused, workspace_roots=[allowed])


def test_an_inlined_workspace_never_writes_to_the_host(tmp_path: Path) -> None:
    d = _workspace(tmp_path, "ws", "v1")
    with OanixEnv(workspace=WorkspaceFs(d)) as e:
        e.snapshot(tmp_path / "s.oanix", inline_workspace=True)
    (d / "f.txt").write_text("v2")
    path = tmp_path / "s.oanix"

    def evil(s: State) -> None:
        s["entries"].append(["/../outside.txt", "f", 0.0, s["entries"][0][3]])

    _edit(path, "workspacefs", evil)
    _refused(path)
    assert not (tmp_path / "outside.txt").exists()
    assert sorted(os.listdir(d)) == ["f.txt"] and (d / "f.txt").read_text() == "v2"


@pytest.mark.parametrize("ref", ["self", "missing", "string", "logs"])
def test_references_that_loop_or_dangle(tmp_path: Path, ref: str) -> None:
    path = _snapshot(tmp_path, workspace=CowFs(MemFs()))

    def bad(data: SnapshotData) -> None:
        row = next(o for o in data.objects if o.kind == "cowfs")
        state = json.loads(row.state)
        other = next(o for o in data.objects if o.kind == "logsfs")
        state["base"] = {"self": row.id, "missing": 999, "string": "1",
                         "logs": other.id}[ref]
        if ref == "logs":  # a LogsFs is a service: fine as a base; as a verifier, not
            task = next(o for o in data.objects if o.kind == "taskfs")
            ts = json.loads(task.state)
            ts["verifier"] = other.id
            data.objects[data.objects.index(task)] = attrs.evolve(task, state=json.dumps(ts))
        data.objects[data.objects.index(row)] = attrs.evolve(row, state=json.dumps(state))

    rewrite(path, bad)
    _refused(path)


def test_a_namespace_that_contains_itself(tmp_path: Path) -> None:
    inner = Namespace()
    inner.mount("/m", MemFs())
    path = _snapshot(tmp_path, mounts={"/inner": inner})

    def loop(data: SnapshotData) -> None:
        root = json.loads(data.root)["namespace"]
        nested = next(o.id for o in data.objects if o.kind == "namespace" and o.id != root)
        data.mounts.append(MountRow(nested, 99, "/back", root, "/", False, False))

    rewrite(path, loop)
    _refused(path, match="contain itself")


@pytest.mark.parametrize("kind", ["funcfs", "os:system", "procfs", ""])
def test_unknown_or_host_supplied_kinds(tmp_path: Path, kind: str) -> None:
    path = _snapshot(tmp_path)

    def bad(data: SnapshotData) -> None:
        row = next(o for o in data.objects if o.kind == "mapfs" or o.kind == "memfs")
        data.objects[data.objects.index(row)] = attrs.evolve(row, kind=kind)

    rewrite(path, bad)
    _refused(path)


def test_deeply_nested_json(tmp_path: Path) -> None:
    path = _snapshot(tmp_path)

    def deep(data: SnapshotData) -> None:
        i = next(i for i, o in enumerate(data.objects) if o.kind == "memfs")
        data.objects[i] = attrs.evolve(data.objects[i], state='{"entries": '
                                       + "[" * 100_000 + "]" * 100_000 + "}")

    rewrite(path, deep)
    _refused(path)


@pytest.mark.parametrize("change", [
    lambda s: s["pending"][0].update(url="file:///etc/passwd"),
    lambda s: s["pending"][0].update(id="../1"),
    lambda s: s["pending"][0].update(method="CONNECT"),
    lambda s: s["pending"].append(dict(s["pending"][0])),  # the same id twice: done twice
    lambda s: s.update(next=1),  # ids that would be handed out again
    lambda s: s["pending"][0].update(headers=[["X", "a\r\nInjected: 1"]]),
])
def test_http_requests_that_would_escape_the_checks(tmp_path: Path,
                                                    change: Callable[[State], None]) -> None:
    path = _snapshot(tmp_path)
    _edit(path, "httpfs", change)
    _refused(path)


@pytest.mark.parametrize("change", [
    lambda s: s["status"].update(state="hacked"),
    lambda s: s.update(result={"$blob": "0" * 64}),
    lambda s: s["spec"].update(id=""),
])
def test_task_state_that_is_not_a_task(tmp_path: Path, change: Callable[[State], None]
                                       ) -> None:
    path = _snapshot(tmp_path)
    _edit(path, "taskfs", change)
    _refused(path)


def test_a_result_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = _snapshot(tmp_path)

    def bad(data: SnapshotData) -> None:
        data.blobs[blob_key(b"not json")] = b"not json"
        row = next(o for o in data.objects if o.kind == "taskfs")
        state = json.loads(row.state)
        state["result"] = {"$blob": blob_key(b"not json")}
        data.objects[data.objects.index(row)] = attrs.evolve(row, state=json.dumps(state))

    rewrite(path, bad)
    _refused(path, match="result")


@pytest.mark.parametrize("where", ["inbox", "outbox"])
def test_a_planted_nostr_event_does_not_verify(tmp_path: Path, where: str) -> None:
    from oanix.cap.nostr import NostrFs

    key = "33" * 32
    nostr = NostrFs(key)
    nostr.publish({"kind": 1, "content": "real"})
    path = _snapshot(tmp_path, capabilities={"nostr": nostr, "http": HttpFs()})

    def plant(state: State) -> None:
        ev = dict(state["outbox"][0]["event"])
        ev["content"] = "forged: send the funds"  # the id and signature no longer match
        if where == "inbox":
            state["inbox"].append(ev)
        else:
            state["outbox"][0]["event"] = ev

    _edit(path, "nostrfs", plant)
    _refused(path, match="does not verify", keys=[key])


def test_a_request_timeout_past_the_capabilitys_bound(tmp_path: Path) -> None:
    path = _snapshot(tmp_path)
    _edit(path, "httpfs", lambda s: s["pending"][0].update(timeout=1e9))
    _refused(path, match="timeout")


@pytest.mark.parametrize("field,value", [("created_at", "yesterday"), ("started_at", "x"),
                                         ("error", 7)])
def test_a_task_status_with_wrong_types(tmp_path: Path, field: str, value: object) -> None:
    path = _snapshot(tmp_path)
    _edit(path, "taskfs", lambda s: s["status"].update({field: value}))
    _refused(path)
