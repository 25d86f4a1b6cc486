"""Stop-and-copy migration between two real processes, against a real local HTTP server
that counts the requests it gets: every request is performed exactly once."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from oanix import Draining, OanixEnv
from oanix.cap.http import HttpFs

ROOT = Path(__file__).resolve().parents[2]


class Counting(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Counting

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        with self.server.lock:
            self.server.hits[parts.path] += 1
        ms = int(parse_qs(parts.query).get("ms", ["0"])[0])
        time.sleep(ms / 1000)
        body = f"served {parts.path} pid-independent".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[Counting]:
    srv = Counting()
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


COMMON = """
import json, sys
from oanix import OanixEnv, errors
from oanix.cap import CapabilityPolicy, HttpExecutor
from oanix.cap.http import HttpFs
base, path = sys.argv[1], sys.argv[2]
policy = CapabilityPolicy(schemes={"http"}, hosts={"127.0.0.1"})
"""

# Process 1: one slow request in flight (one executor slot), the rest queued behind it,
# then migrate at once; afterwards the drained capability refuses new requests.
FIRST = COMMON + """
from oanix import migrate
http = HttpFs()
env = OanixEnv(capabilities={"http": http},
               executors=[HttpExecutor(http, policy, max_concurrent=1)])
env.exec("true")  # starts the executors
ns = env.namespace
ids = []
for i in range(8):
    ms = 1500 if i == 0 else 0
    ns.write_text("/cap/http/request", json.dumps({"url": f"{base}/count/{i}?ms={ms}"}))
    ids.append(ns.read_text("/cap/http/last").strip())
    if i == 0:
        while http.counts()["in_flight"] == 0:  # the slow one is on its way
            pass
migrate(env, path, timeout=30)
counts = http.counts()
try:
    http.submit({"url": f"{base}/count/late"})
    refused = None
except errors.Draining as e:
    refused = e.errno
print(json.dumps({"ids": ids, "counts": counts, "refused": refused,
                  "done_here": {i: http.result(i) is not None for i in ids}}))
"""

# Process 2: resume with an executor of its own and wait for every request.
SECOND = COMMON + """
from oanix import resume
env = resume(path, executors=lambda caps: [HttpExecutor(caps["http"], policy)])
http = next(m.service for m in env.namespace.mounts() if m.path == "/cap/http")
out = {}
for rid in json.loads(sys.argv[3]):
    res = http.wait(rid, timeout=60)
    out[rid] = None if res is None else [res.get("status"), res.get("body"), res.get("error")]
env.exec("echo '{\\"url\\": \\"%s/count/after\\"}' > /cap/http/request" % base, check=True)
last = env.namespace.read_text("/cap/http/last").strip()
after = http.wait(last, timeout=60)
out["after"] = [last, after and after.get("status")]
env.close()
print(json.dumps(out))
"""


def _run(script: str, *args: str) -> dict[str, Any]:
    res = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                         text=True, cwd=ROOT, timeout=180,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def test_pending_requests_move_and_each_is_performed_once(server: Counting,
                                                          tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{server.server_address[1]}"
    snap = str(tmp_path / "moving.oanix")
    first = _run(FIRST, base, snap)
    ids = first["ids"]
    assert ids == [str(i) for i in range(1, 9)]
    assert first["refused"] == errno.EBUSY  # drained: no new work
    assert first["done_here"]["1"] is True  # in flight: finished in process 1
    moved = [rid for rid, done in first["done_here"].items() if not done]
    assert moved, "some requests must still be pending when the move starts"
    assert first["counts"]["in_flight"] == 0

    second = _run(SECOND, base, snap, json.dumps(ids))
    for i, rid in enumerate(ids):
        status, body, error = second[rid]
        assert (status, error) == (200, None), (rid, second[rid])
        assert body.startswith(f"served /count/{i} ")
    assert second["after"] == ["9", 200]  # ids go on in the new process
    with server.lock:
        hits = dict(server.hits)
    assert hits == {**{f"/count/{i}": 1 for i in range(8)}, "/count/after": 1}


def test_draining_refuses_new_requests_and_hands_nothing_out(tmp_path: Path) -> None:
    http = HttpFs()
    with OanixEnv(capabilities={"http": http}) as env:
        ns = env.namespace
        ns.write_text("/cap/http/request", '{"url": "http://h.test/a"}')
        http.drain()
        with pytest.raises(Draining) as info:
            ns.write_text("/cap/http/request", '{"url": "http://h.test/b"}')
        assert info.value.errno == errno.EBUSY
        r = env.exec("echo '{\"url\": \"http://h.test/c\"}' > /cap/http/request")
        assert r.exit_code != 0 and b"draining" in r.stderr
        assert http.take_pending() is None  # the pending one stays for the snapshot
        assert http.counts()["pending"] == 1
        assert ns.listdir("/cap/http/pending") == ["1.json"]
        http.undrain()
        req = http.take_pending()
        assert req is not None and req.id == "1"
        ns.write_text("/cap/http/request", '{"url": "http://h.test/d"}')
        assert ns.read_text("/cap/http/last") == "2\n"


def test_a_failed_migration_leaves_the_environment_running(tmp_path: Path) -> None:
    from oanix import FuncFs, Unsnapshottable, migrate

    http = HttpFs()
    with OanixEnv(capabilities={"http": http},
                  mounts={"/gen": FuncFs().read_only("/x", lambda: "x")}) as env:
        with pytest.raises(Unsnapshottable, match=r"^/gen"):
            migrate(env, tmp_path / "m.oanix")
        env.namespace.write_text("/cap/http/request", '{"url": "http://h.test/a"}')
        assert env.exec("echo still here").stdout == b"still here\n"
    assert not (tmp_path / "m.oanix").exists()


NOSTR_FIRST = """
import json, sys
from oanix import OanixEnv, errors, migrate
from oanix.cap.nostr import NostrFs
relay, path = sys.argv[1], sys.argv[2]
nostr = NostrFs("22" * 32, [relay])
env = OanixEnv(capabilities={"nostr": nostr})  # no connector here: nothing sent yet
ids = []
for i in range(3):
    env.namespace.write_text("/cap/nostr/submit",
                             json.dumps({"kind": 1, "content": f"moving {i}"}))
    ids.append(env.namespace.read_text("/cap/nostr/last").strip())
migrate(env, path)
try:
    nostr.publish({"kind": 1, "content": "late"})
    refused = None
except errors.Draining as e:
    refused = e.errno
print(json.dumps({"ids": ids, "refused": refused}))
"""

NOSTR_SECOND = """
import json, sys, time
from oanix import resume
from oanix.cap import NostrRelayConnector
relay, path, ids = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
env = resume(path, keys=["22" * 32], executors=lambda caps: [
    NostrRelayConnector(caps["nostr"], [relay], ping_interval=None)])
nostr = next(m.service for m in env.namespace.mounts() if m.path == "/cap/nostr")
deadline = time.monotonic() + 60
while time.monotonic() < deadline and any(nostr.outbox_state(i) != "completed" for i in ids):
    time.sleep(0.05)
print(json.dumps({i: nostr.outbox_state(i) for i in ids}))
env.close()
"""


def _relay_events(url: str, ids: list[str]) -> list[str]:
    """The ids of the events the relay holds among ``ids`` (one per stored copy)."""
    from websockets.sync.client import connect

    found: list[str] = []
    with connect(url) as ws:
        ws.send(json.dumps(["REQ", "check", {"ids": ids}]))
        while True:
            msg = json.loads(ws.recv(timeout=30))
            if msg[0] == "EOSE":
                return found
            if msg[0] == "EVENT":
                found.append(msg[2]["id"])


def test_nostr_events_move_and_the_relay_keeps_each_once(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "cap"))
    try:
        from nostr_relay_fixture import RelayProcess, find_relay_executable
    finally:
        sys.path.remove(str(ROOT / "tests" / "cap"))
    exe = find_relay_executable()
    if exe is None:
        pytest.skip("nostr-relay not found")
    (tmp_path / "relay").mkdir()
    relay = RelayProcess(exe, tmp_path / "relay")
    try:
        relay.start()
    except (OSError, RuntimeError) as e:
        pytest.skip(f"nostr-relay could not start: {e}")
    try:
        snap = str(tmp_path / "nostr.oanix")
        first = _run(NOSTR_FIRST, relay.url, snap)
        assert first["refused"] == errno.EBUSY
        second = _run(NOSTR_SECOND, relay.url, snap, json.dumps(first["ids"]))
        assert second == {i: "completed" for i in first["ids"]}
        assert sorted(_relay_events(relay.url, first["ids"])) == sorted(first["ids"])
    finally:
        relay.stop()
