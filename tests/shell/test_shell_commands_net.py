"""curl and wget through a real HttpFs + HttpExecutor to a real local HTTP server: the
requests go through the capability and its policy, never straight to a socket."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from oanix import MemFs, Namespace
from oanix.cap import ExecutorManager, HttpExecutor, RetryPolicy
from oanix.cap.http import HttpFs
from oanix.cap.policy import CapabilityPolicy
from oanix.shell import Shell


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/ok":
            self._send(200, b"ok\n", {"Content-Type": "text/plain"})
        elif self.path.startswith("/echo"):
            self._send(200, json.dumps({
                "method": self.command, "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body.decode("utf-8", "replace")}).encode(),
                {"Content-Type": "application/json"})
        elif self.path == "/missing":
            self._send(404, b"not here\n")
        elif self.path == "/redirect":
            self._send(302, b"", {"Location": "/ok"})
        elif self.path == "/bytes":
            self._send(200, bytes(range(256)))
        else:
            self._send(500, b"boom")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


@pytest.fixture
def shell() -> Iterator[Shell]:
    http = HttpFs()
    manager = ExecutorManager()
    policy = CapabilityPolicy(schemes={"http"}, hosts={"127.0.0.1"})
    manager.register(HttpExecutor(http, policy, retry=RetryPolicy(max_attempts=1)))
    manager.start_thread()
    ns = Namespace()
    ns.mount("/", MemFs())
    ns.makedirs("/work")
    ns.mount("/cap/http", http)
    try:
        yield Shell(ns, cwd="/work")
    finally:
        manager.stop()


def test_curl_get_post_headers_and_write_out(shell: Shell, server: str) -> None:
    r = shell.exec(f"curl -s {server}/ok")
    assert (r.stdout, r.exit_code) == (b"ok\n", 0), r.stderr
    r = shell.exec(f"curl -sS -X PUT -H 'X-Agent: a1' -d 'a=1' -d b=2 {server}/echo")
    echo = json.loads(r.stdout)
    assert (echo["method"], echo["body"], echo["headers"]["X-Agent"]) == ("PUT", "a=1&b=2", "a1")
    assert echo["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    r = shell.exec(f"printf 'line1\\nline2\\n' > body; curl -s --data-binary @body {server}/echo;"
                   f" echo; curl -s -d @body {server}/echo")
    first, second = r.stdout.split(b"\n", 1)
    assert json.loads(first)["body"] == "line1\nline2\n"
    assert json.loads(second)["body"] == "line1line2"
    assert json.loads(first)["method"] == "POST"
    r = shell.exec(f"curl -s --json '{{\"k\": 1}}' {server}/echo | jq -r .headers.Accept")
    assert r.stdout == b"application/json\n", r.stderr
    r = shell.exec(f"curl -s -o /dev/null -w '%{{http_code}}\\n' {server}/missing")
    assert r.stdout == b"404\n"
    r = shell.exec(f"curl -s -w '%{{http_code}} %{{content_type}}' -o out {server}/ok; cat out")
    assert r.stdout == b"200 text/plainok\n"


def test_curl_fail_include_head_redirect_and_output_files(shell: Shell, server: str) -> None:
    r = shell.exec(f"curl -sf {server}/missing; echo \" $?\"")
    assert r.stdout == b" 22\n"
    r = shell.exec(f"curl -sSf {server}/missing")
    assert r.exit_code == 22 and b"returned error: 404" in r.stderr
    r = shell.exec(f"curl -s {server}/missing")
    assert (r.stdout, r.exit_code) == (b"not here\n", 0)
    r = shell.exec(f"curl -si {server}/ok")
    assert r.stdout.startswith(b"HTTP/1.1 200 OK\r\n") and r.stdout.endswith(b"\r\n\r\nok\n")
    r = shell.exec(f"curl -sI {server}/ok")
    assert r.stdout.startswith(b"HTTP/1.1 200") and r.stdout.endswith(b"\r\n\r\n")
    r = shell.exec(f"curl -s {server}/redirect; echo; curl -sL {server}/redirect")
    assert r.stdout == b"\nok\n"
    r = shell.exec(f"curl -sO {server}/bytes && curl -s {server}/ok -o saved && "
                   "wc -c < bytes && cat saved")
    assert r.stdout == b"256\nok\n", r.stderr
    r = shell.exec(f"curl -s {server}/bytes | sha256sum")
    import hashlib
    assert r.stdout.split()[0].decode() == hashlib.sha256(bytes(range(256))).hexdigest()


def test_curl_policy_denial_and_no_capability(shell: Shell, server: str) -> None:
    r = shell.exec("curl -sS http://10.1.2.3/secret")
    assert r.exit_code == 7 and b"curl: (7)" in r.stderr and r.stdout == b""
    bare = Shell(Namespace())
    r = bare.exec(f"curl {server}/ok")
    assert r.exit_code == 7
    assert b"no HTTP capability is mounted at /cap/http" in r.stderr
    assert bare.exec(f"curl -s {server}/ok").stderr == b""
    r = bare.exec(f"wget -q {server}/ok")
    assert r.exit_code == 4


def test_wget(shell: Shell, server: str) -> None:
    r = shell.exec(f"wget -q -O - {server}/ok")
    assert (r.stdout, r.exit_code) == (b"ok\n", 0)
    r = shell.exec(f"wget -q {server}/bytes && wc -c < bytes; wget -q -O f {server}/redirect;"
                   " cat f")
    assert r.stdout == b"256\nok\n"
    r = shell.exec(f"wget -q {server}/missing; echo $?")
    assert r.stdout == b"8\n"
    r = shell.exec(f"wget -qO- --post-data 'x=1' {server}/echo")
    assert json.loads(r.stdout)["body"] == "x=1"
