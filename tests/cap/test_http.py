"""HttpFs + HttpExecutor + ExecutorManager against a real local HTTP server (no mocks)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.to_thread
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from oanix import Namespace, errors
from oanix.cap import ExecutorManager, HttpExecutor, RetryPolicy
from oanix.cap.http import HttpFs
from oanix.cap.policy import CapabilityPolicy

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.05)
WAIT = 20.0  # generous: only bounds a hang, never asserted


# -- the test server ----------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.active = 0
        self.max_active = 0
        self.seen_headers: list[list[tuple[str, str]]] = []
        self.release = threading.Event()
        self.barrier = threading.Barrier(5, timeout=WAIT)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on purpose (timeouts, too-large bodies)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        srv = self.server
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with srv.lock:
            srv.hits[parts.path] += 1
            count = srv.hits[parts.path]
            srv.active += 1
            srv.max_active = max(srv.max_active, srv.active)
            srv.seen_headers.append(list(self.headers.items()))
        try:
            self._route(parts.path, query, body, count)
        finally:
            with srv.lock:
                srv.active -= 1

    def _route(self, path: str, query: dict[str, str], body: bytes, count: int) -> None:
        srv = self.server
        if path == "/ok":
            self._send(200, b"ok")
        elif path == "/echo":
            self._send(200, json.dumps({
                "method": self.command, "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("utf-8", "replace")}).encode(),
                {"Content-Type": "application/json", "X-Dup": "1"})
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), f"status {path}".encode())
        elif path == "/flaky":
            if count <= 2:
                self._send(503, b"try later", {"Retry-After": "0"})
            else:
                self._send(200, b"finally")
        elif path == "/slow":
            time.sleep(int(query.get("ms", "100")) / 1000)
            self._send(200, b"slow")
        elif path == "/hold":
            srv.release.wait(WAIT)
            self._send(200, b"released")
        elif path == "/barrier":
            try:
                srv.barrier.wait()
            except threading.BrokenBarrierError:
                self._send(500, b"barrier broken")
            else:
                self._send(200, b"together")
        elif path == "/long-retry-after":
            if count == 1:
                self._send(429, b"slow down", {"Retry-After": "3600"})
            else:
                self._send(200, b"thanks")
        elif path == "/cookie":
            self._send(200, b"cookie", {"Set-Cookie": "session=abc; Path=/"})
        elif path == "/redirect":
            self._send(302, b"", {"Location": "/ok"})
        elif path == "/drop":
            self.close_connection = True
        elif path == "/huge":
            n = int(query.get("bytes", "1000000"))
            if query.get("chunked"):
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 8192
                sent = 0
                try:
                    while sent < n:
                        piece = chunk[: n - sent]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        sent += len(piece)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    self.close_connection = True
            else:
                self._send(200, b"x" * n)
        else:
            self._send(404, b"no such endpoint")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.barrier.abort()
        srv.shutdown()
        srv.server_close()
        thread.join()


def local_policy(**kw: Any) -> CapabilityPolicy:
    """A policy allowing the test server: http, and 127.0.0.1 explicitly by IP."""
    kw.setdefault("schemes", {"http"})
    kw.setdefault("hosts", {"127.0.0.1"})
    return CapabilityPolicy(**kw)


def with_executor(fs: HttpFs, policy: CapabilityPolicy,
                  body: Callable[[HttpExecutor], Awaitable[None]], **kw: Any) -> None:
    """Run ``body(executor)`` under trio with the executor running in a nursery."""
    kw.setdefault("retry", FAST_RETRY)

    async def main() -> None:
        executor = HttpExecutor(fs, policy, **kw)
        async with trio.open_nursery() as nursery:
            await nursery.start(executor.run)
            with trio.fail_after(WAIT * 2):
                await body(executor)
            await executor.aclose()

    trio.run(main)


def send(fs: HttpFs, request: dict[str, Any]) -> str:
    """Write ``request`` to the request file and read its id back from ``last``."""
    fs.write_text("/request", json.dumps(request))
    return fs.read_text("/last").strip()


def result_file(fs: HttpFs, rid: str) -> tuple[str, dict[str, Any]]:
    """``("responses" | "errors", content)``, checking there is exactly one file."""
    found = [(d, json.loads(fs.read_bytes(f"/{d}/{rid}.json")))
             for d in ("responses", "errors") if fs.exists(f"/{d}/{rid}.json")]
    assert len(found) == 1, (rid, found)
    assert not fs.exists(f"/pending/{rid}.json")
    return found[0]


# -- end to end ------------------------------------------------------------------------------


def test_methods_end_to_end_in_a_nursery(server: Server) -> None:
    fs = HttpFs()
    results: dict[str, dict[str, Any]] = {}

    async def body(_: HttpExecutor) -> None:
        ids = {m: send(fs, {"method": m, "url": server.url("/echo"), "body": f"{m} body",
                            "headers": {"X-Agent": "a1"}})
               for m in ("GET", "POST", "PUT", "DELETE")}
        ids["patch"] = send(fs, {"method": "patch", "url": server.url("/echo"),
                                 "body_base64": "AAEC"})
        for m, rid in ids.items():
            assert await fs.wait_async(rid, WAIT) is not None
            results[m] = json.loads(fs.read_bytes(f"/responses/{rid}.json"))

    with_executor(fs, local_policy(), body)
    for m in ("GET", "POST", "PUT", "DELETE"):
        r = results[m]
        assert (r["status"], r["reason"], r["method"], r["attempts"]) == (200, "OK", m, 1)
        echo = json.loads(r["body"])
        assert echo["method"] == m and echo["body"] == f"{m} body"
        assert ["X-Agent", "a1"] in echo["headers"]
        assert ["Content-Type", "application/json"] in r["headers"]
        assert r["duration_ms"] >= 0 and r["url"] == server.url("/echo")
    assert json.loads(results["patch"]["body"])["method"] == "PATCH"
    assert json.loads(fs.read_bytes("/status")) == {
        "pending": 0, "in_flight": 0, "completed": 5, "failed": 0, "last_id": "5",
        "default_timeout": 30.0}


def test_sync_caller_with_the_manager_thread(server: Server) -> None:
    fs = HttpFs()
    manager = ExecutorManager()
    manager.register(HttpExecutor(fs, local_policy(), retry=FAST_RETRY))
    manager.start_thread()
    try:
        methods = ["GET", "POST", "PUT", "DELETE"] * 3
        ids = [send(fs, {"method": m, "url": server.url("/echo"), "body": str(i)})
               for i, m in enumerate(methods)]
        results = [fs.wait(rid, WAIT) for rid in ids]
        from_thread: list[str] = []
        t = threading.Thread(target=lambda: from_thread.append(
            fs.submit({"url": server.url("/ok")})))
        t.start()
        t.join()
        assert fs.wait(from_thread[0], WAIT) is not None
    finally:
        manager.stop()
    for i, res in enumerate(results):
        assert res is not None and res["status"] == 200
        echo = json.loads(res["body"])
        assert (echo["method"], echo["body"]) == (methods[i], str(i))
    assert fs.result(from_thread[0]) is not None
    assert fs.result(from_thread[0])["body"] == "ok"  # type: ignore[index]
    manager.stop()  # idempotent


def test_manager_running_in_the_callers_trio_run(server: Server) -> None:
    fs = HttpFs()
    manager = ExecutorManager(HttpExecutor(fs, local_policy()))
    out: list[dict[str, Any] | None] = []

    async def main() -> None:
        async with manager.running():
            out.append(await fs.wait_async(fs.submit({"url": server.url("/ok")}), WAIT))
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            out.append(await fs.wait_async(fs.submit({"url": server.url("/ok")}), WAIT))
            await manager.aclose()

    trio.run(main)
    assert [r["status"] for r in out if r is not None] == [200, 200]


def test_namespace_only(server: Server) -> None:
    fs = HttpFs()
    ns = Namespace()
    ns.mount("/cap/http", fs)
    manager = ExecutorManager(HttpExecutor(fs, local_policy()))
    manager.start_thread()
    try:
        with ns.open("/cap/http/request", "w") as f:
            f.write(json.dumps({"method": "POST", "url": server.url("/echo"),
                                "body": "hi"}).encode())
        rid = ns.read_text("/cap/http/last").strip()
        deadline = time.monotonic() + WAIT
        while not ns.exists(f"/cap/http/responses/{rid}.json"):
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        manager.stop()
    assert ns.listdir("/cap") == ["http"]
    assert ns.listdir("/cap/http") == ["errors", "last", "pending", "request", "responses",
                                       "status"]
    assert ns.listdir("/cap/http/responses") == [f"{rid}.json"]
    assert ns.listdir("/cap/http/pending") == [] and ns.listdir("/cap/http/errors") == []
    resp = json.loads(ns.read_bytes(f"/cap/http/responses/{rid}.json"))
    assert json.loads(resp["body"])["body"] == "hi"
    assert ns.stat(f"/cap/http/responses/{rid}.json").size == len(
        ns.read_bytes(f"/cap/http/responses/{rid}.json"))
    assert json.loads(ns.read_text("/cap/http/status"))["completed"] == 1
    ns.remove(f"/cap/http/responses/{rid}.json")
    assert ns.listdir("/cap/http/responses") == []
    with pytest.raises(errors.NotFound) as exc:
        ns.read_bytes(f"/cap/http/responses/{rid}.json")
    assert exc.value.path == f"/cap/http/responses/{rid}.json"


# -- retries, timeouts, failures ------------------------------------------------------------


def test_retry_on_503_then_success(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oanix")
    fs = HttpFs()
    out: list[str] = []

    async def body(_: HttpExecutor) -> None:
        out.append(send(fs, {"url": server.url("/flaky")}))
        await fs.wait_async(out[0], WAIT)

    with_executor(fs, local_policy(), body)
    kind, res = result_file(fs, out[0])
    assert kind == "responses"
    assert (res["status"], res["body"], res["attempts"]) == (200, "finally", 3)
    assert server.hits["/flaky"] == 3
    # each retry is logged with its reason
    retries = [r.getMessage() for r in caplog.records if r.name == "oanix.cap.http.executor"]
    assert [m.split(" retrying")[0] for m in retries] == [
        f"http request {out[0]}: attempt {n}: status 503 Service Unavailable;" for n in (1, 2)]


def test_4xx_not_retried_and_exhausted_5xx_is_a_response(server: Server) -> None:
    fs = HttpFs()
    ids: list[str] = []

    async def body(_: HttpExecutor) -> None:
        ids.extend([send(fs, {"url": server.url("/status/404")}),
                    send(fs, {"url": server.url("/status/500")}),
                    send(fs, {"url": server.url("/status/503")})])
        for rid in ids:
            await fs.wait_async(rid, WAIT)

    with_executor(fs, local_policy(), body)
    got = [result_file(fs, rid) for rid in ids]
    assert [(k, r["status"], r["attempts"]) for k, r in got] == [
        ("responses", 404, 1), ("responses", 500, 1), ("responses", 503, 3)]
    assert (server.hits["/status/404"], server.hits["/status/500"],
            server.hits["/status/503"]) == (1, 1, 3)


def test_timeout_gives_an_error_file(server: Server) -> None:
    fs = HttpFs()
    ids: list[str] = []

    async def body(_: HttpExecutor) -> None:
        ids.append(send(fs, {"url": server.url("/slow?ms=3000"), "timeout": 0.1}))
        await fs.wait_async(ids[0], WAIT)

    with_executor(fs, local_policy(), body, retry=RetryPolicy(max_attempts=2,
                                                              initial_delay=0.01))
    kind, res = result_file(fs, ids[0])
    assert kind == "errors"
    assert (res["error"], res["attempts"]) == ("timeout", 2)
    assert "within 0.1 s" in res["message"]


def test_dropped_connection_retried_then_error(server: Server) -> None:
    fs = HttpFs()
    ids: list[str] = []

    async def body(_: HttpExecutor) -> None:
        ids.append(send(fs, {"url": server.url("/drop")}))
        await fs.wait_async(ids[0], WAIT)

    with_executor(fs, local_policy(), body)
    kind, res = result_file(fs, ids[0])
    assert (kind, res["error"], res["attempts"]) == ("errors", "connection", 3)
    assert "RemoteProtocolError" in res["message"]
    assert server.hits["/drop"] == 3


def test_connection_refused_is_a_connection_error() -> None:
    fs = HttpFs()
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ids: list[str] = []

    async def body(_: HttpExecutor) -> None:
        ids.append(send(fs, {"url": f"http://127.0.0.1:{port}/"}))
        await fs.wait_async(ids[0], WAIT)

    with_executor(fs, local_policy(), body)
    kind, res = result_file(fs, ids[0])
    assert (kind, res["error"], res["attempts"]) == ("errors", "connection", 3)


@pytest.mark.parametrize("chunked", [False, True])
def test_huge_body_is_response_too_large(server: Server, chunked: bool) -> None:
    fs = HttpFs()
    ids: list[str] = []
    query = "&chunked=1" if chunked else ""

    async def body(_: HttpExecutor) -> None:
        ids.append(send(fs, {"url": server.url(f"/huge?bytes=300000{query}")}))
        ids.append(send(fs, {"url": server.url(f"/huge?bytes=1000{query}")}))
        for rid in ids:
            await fs.wait_async(rid, WAIT)

    with_executor(fs, local_policy(max_response_bytes=100_000), body)
    kind, res = result_file(fs, ids[0])
    assert (kind, res["error"], res["attempts"]) == ("errors", "response_too_large", 1)
    assert "response too large" in res["message"]
    kind, res = result_file(fs, ids[1])
    assert kind == "responses" and res["body"] == "x" * 1000


def test_request_body_limit(server: Server) -> None:
    fs = HttpFs()
    ids: list[str] = []

    async def body(_: HttpExecutor) -> None:
        ids.append(send(fs, {"method": "POST", "url": server.url("/echo"), "body": "x" * 11}))
        await fs.wait_async(ids[0], WAIT)

    with_executor(fs, local_policy(max_request_bytes=10), body)
    kind, res = result_file(fs, ids[0])
    assert (kind, res["error"], res["attempts"]) == ("errors", "request_too_large", 0)
    assert "over the limit of 10 bytes" in res["message"]
    assert server.hits["/echo"] == 0


BAD_REQUESTS = [
    (b"{not json", "not valid JSON"),
    (b'{"method": "GET"}', "missing url"),
    (b'{"method": "FETCH", "url": "http://127.0.0.1/"}', "unknown method"),
    (b'{"url": "http://127.0.0.1/", "headers": ["a", "b"]}', "headers must be a JSON object"),
    (b'{"url": "http://127.0.0.1/", "headers": {"A": 1}}', "must have a string value"),
    (b'{"url": "http://127.0.0.1/", "body": "a", "body_base64": "YQ=="}', "not both"),
    (b'{"url": "http://127.0.0.1/", "body_base64": "***"}', "not valid base64"),
    (b'{"url": "http://127.0.0.1/", "timeout": -1}', "timeout must be"),
    (b'{"url": "http://127.0.0.1/", "hedaers": {}}', "unknown key"),
    (b'{"url": "ftp://127.0.0.1/"}', "not an absolute http(s) URL"),
    (b'[1, 2]', "must be a JSON object"),
    (b"\xff\xfe", "not UTF-8"),
]


def test_bad_requests_get_error_files_and_the_executor_keeps_running(server: Server) -> None:
    fs = HttpFs()
    bad: list[str] = []
    good: list[str] = []

    async def body(_: HttpExecutor) -> None:
        for data, _msg in BAD_REQUESTS:
            with fs.open("/request", "wb") as f:  # close succeeds
                f.write(data)
            bad.append(fs.read_text("/last").strip())
        fs.write_bytes("/request", b"  \n")  # blank: ignored, no id
        assert fs.read_text("/last").strip() == bad[-1]
        good.append(send(fs, {"url": server.url("/ok")}))
        await fs.wait_async(good[0], WAIT)

    with_executor(fs, local_policy(), body)
    assert len(set(bad)) == len(BAD_REQUESTS)
    for rid, (_data, msg) in zip(bad, BAD_REQUESTS, strict=True):
        kind, res = result_file(fs, rid)
        assert (kind, res["error"], res["attempts"]) == ("errors", "invalid_request", 0)
        assert msg in res["message"], (msg, res["message"])
    assert result_file(fs, good[0])[1]["status"] == 200
    assert fs.counts() == {"pending": 0, "in_flight": 0, "completed": 1,
                           "failed": len(BAD_REQUESTS)}


# -- policy -----------------------------------------------------------------------------------


def run_one(fs: HttpFs, policy: CapabilityPolicy, url: str) -> tuple[str, dict[str, Any]]:
    ids: list[str] = []

    async def body(_: HttpExecutor) -> None:
        ids.append(send(fs, {"url": url}))
        await fs.wait_async(ids[0], WAIT)

    with_executor(fs, policy, body)
    return result_file(fs, ids[0])


def test_policy_denies_a_host_not_allowed(server: Server,
                                          caplog: pytest.LogCaptureFixture) -> None:
    kind, res = run_one(HttpFs(), local_policy(hosts={"api.example.com"}), server.url("/ok"))
    denials = [r for r in caplog.records if r.name == "oanix.cap.http.executor"]
    assert [r.levelno for r in denials] == [logging.WARNING]
    assert "denied by the policy" in denials[0].getMessage()
    assert "not in the allowlist" in denials[0].getMessage()
    assert (kind, res["error"], res["attempts"]) == ("errors", "permission_denied", 1)
    assert "'127.0.0.1'" in res["message"] and "not in the allowlist" in res["message"]
    assert server.url("/ok") in res["message"]
    assert server.hits["/ok"] == 0


def test_policy_denies_loopback_unless_allowed(server: Server) -> None:
    port = server.server_address[1]
    # "localhost" is allowed by name, but it resolves to loopback: denied after resolution
    wide = CapabilityPolicy(schemes={"http"}, hosts={"localhost"})
    kind, res = run_one(HttpFs(), wide, f"http://localhost:{port}/ok")
    assert (kind, res["error"]) == ("errors", "permission_denied")
    assert "non-public address" in res["message"] and "localhost" in res["message"]
    # with allow_private the same name works
    kind, res = run_one(HttpFs(), CapabilityPolicy(schemes={"http"}, hosts={"localhost"},
                                                   allow_private=True),
                        f"http://localhost:{port}/ok")
    assert (kind, res["status"]) == ("responses", 200)
    assert server.hits["/ok"] == 1


def test_policy_denies_a_loopback_literal_not_allowed_by_ip(server: Server) -> None:
    port = server.server_address[1]
    policy = CapabilityPolicy(schemes={"http"}, hosts={"*.0.0.1"})  # a pattern, not the IP
    kind, res = run_one(HttpFs(), policy, f"http://127.0.0.1:{port}/ok")
    assert (kind, res["error"]) == ("errors", "permission_denied")
    assert "non-public address 127.0.0.1" in res["message"]
    assert server.hits["/ok"] == 0


def test_check_url_rules() -> None:
    p = CapabilityPolicy(hosts={"api.example.com", "*.wiki.org", "10.1.2.3", "8.8.8.8"})
    p.check_url("https://api.example.com/x")
    p.check_url("https://API.Example.com./x")
    p.check_url("https://en.wiki.org/")
    p.check_url("https://a.b.wiki.org/")
    p.check_url("https://10.1.2.3/")  # private, but allowed by IP
    p.check_url("https://8.8.8.8/")
    for url, words in [
        ("http://api.example.com/", "scheme 'http'"),
        ("https://wiki.org/", "not in the allowlist"),
        ("https://evil.com/", "not in the allowlist"),
        ("https://xwiki.org/", "not in the allowlist"),
        ("file:///etc/passwd", "no host"),
    ]:
        with pytest.raises(errors.PermissionDenied) as exc:
            p.check_url(url)
        assert words in str(exc.value) and exc.value.path == url
    with pytest.raises(errors.PermissionDenied):
        CapabilityPolicy().check_url("https://example.com/")  # empty hosts: deny all
    anyip = CapabilityPolicy(hosts={"127.0.0.1", "::1", "169.254.169.254"})
    anyip.check_url("https://127.0.0.1/")
    private = CapabilityPolicy(hosts={"*.example.com"}, allow_private=True)
    private.check_url("https://a.example.com/")


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.1", "192.168.1.1", "172.16.0.1",
                                "169.254.169.254", "224.0.0.1", "0.0.0.0", "100.64.0.1",
                                "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "240.0.0.1"])
def test_non_public_addresses_are_denied(ip: str) -> None:
    import ipaddress

    p = CapabilityPolicy(hosts={"example.com"})
    with pytest.raises(errors.PermissionDenied) as exc:
        p.check_address("example.com", ipaddress.ip_address(ip))
    assert "non-public" in str(exc.value)
    CapabilityPolicy(hosts={"example.com"}, allow_private=True).check_address(
        "example.com", ipaddress.ip_address(ip))
    p.check_address("example.com", ipaddress.ip_address("93.184.216.34"))


def test_resolve_checks_every_address() -> None:
    async def main() -> None:
        p = CapabilityPolicy(hosts={"localhost"})
        with pytest.raises(errors.PermissionDenied):
            await p.resolve("localhost", 80)
        assert "127.0.0.1" in await CapabilityPolicy(hosts={"localhost"}, allow_private=True
                                                     ).resolve("localhost", 80)
        with pytest.raises(errors.PermissionDenied, match="not in the allowlist"):
            await p.resolve("example.com", 80)
        with pytest.raises(errors.FsError, match="cannot resolve"):
            await CapabilityPolicy(hosts={"no-such-host.invalid"}).resolve(
                "no-such-host.invalid", 80)

    trio.run(main)


def test_policy_repr_hides_secrets_and_validates() -> None:
    p = CapabilityPolicy(hosts={"a.com"}, secrets={"A.com": {"Authorization": "Bearer zzz"}})
    assert "zzz" not in repr(p)
    assert p.secret_headers("a.com") == {"Authorization": "Bearer zzz"}
    assert p.secret_headers("b.com") == {}
    assert hash(p) == hash(CapabilityPolicy(hosts={"a.com"},
                                            secrets={"a.com": {"Authorization": "Bearer zzz"}}))
    with pytest.raises(errors.InvalidArgument):
        CapabilityPolicy(max_response_bytes=0)
    with pytest.raises(errors.InvalidArgument):
        CapabilityPolicy(hosts="a.com")
    with pytest.raises(errors.InvalidArgument) as exc:
        CapabilityPolicy(secrets={"a.com": {"X-Key": "zzz\r\nEvil: 1"}})
    assert "zzz" not in str(exc.value)


def test_injected_secret_reaches_the_server_but_never_the_namespace(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Bearer s3cret-token-value"
    fs = HttpFs()
    ns = Namespace()
    ns.mount("/cap/http", fs)
    policy = local_policy(secrets={"127.0.0.1": {"Authorization": secret}})
    contents: list[bytes] = []

    def snapshot() -> None:
        for dirpath, _dirs, files in ns.walk("/"):
            for name in files:
                if name != "request":
                    contents.append(ns.read_bytes(f"{dirpath}/{name}"))

    ids: list[str] = []

    async def body(_: HttpExecutor) -> None:
        # the agent's own Authorization header is replaced by the host's secret
        ids.append(send(fs, {"url": server.url("/hold"),
                             "headers": {"authorization": "agent-guess"}}))
        while server.active < 1:
            await trio.sleep(0.001)
        snapshot()  # the request is in flight: pending/<id>.json exists
        assert json.loads(ns.read_bytes(f"/cap/http/pending/{ids[0]}.json"))["state"] == \
            "in_flight"
        server.release.set()
        await fs.wait_async(ids[0], WAIT)
        ids.append(send(fs, {"url": "http://127.0.0.1:1/nowhere", "timeout": 0.5}))
        await fs.wait_async(ids[1], WAIT)
        # denied (the scheme), to the host the secret is for
        ids.append(send(fs, {"url": server.url("/ok").replace("http:", "https:")}))
        await fs.wait_async(ids[2], WAIT)

    with_executor(fs, policy, body, retry=RetryPolicy(max_attempts=1))
    snapshot()
    sent = dict((k.lower(), v) for k, v in server.seen_headers[0])
    assert sent["authorization"] == secret
    assert [k.lower() for k, _ in server.seen_headers[0]].count("authorization") == 1
    assert len(contents) >= 7  # last, status, pending, response, error files
    assert all(b"s3cret" not in c for c in contents)
    assert result_file(fs, ids[0])[0] == "responses"
    assert result_file(fs, ids[1])[0] == "errors"
    assert result_file(fs, ids[2])[1]["error"] == "permission_denied"
    # the records (the denial among them) never hold the secret, whatever their level
    assert any(r.levelno == logging.WARNING and "denied" in r.getMessage()
               for r in caplog.records)
    assert all("s3cret" not in logging.Formatter().format(r) for r in caplog.records)


# -- shutdown and concurrency ----------------------------------------------------------------


def test_shutdown_with_requests_in_flight(server: Server) -> None:
    fs = HttpFs()
    ids: list[str] = []

    async def body(executor: HttpExecutor) -> None:
        ids.extend(send(fs, {"url": server.url("/hold")}) for _ in range(10))
        while fs.counts()["in_flight"] < 4 or server.active < 4:
            await trio.sleep(0.001)
        await executor.aclose()

    with_executor(fs, local_policy(), body, max_concurrent=4, shutdown_grace=0)
    assert fs.counts() == {"pending": 6, "in_flight": 0, "completed": 0, "failed": 4}
    shut = [rid for rid in ids if fs.exists(f"/errors/{rid}.json")]
    assert len(shut) == 4
    for rid in shut:
        _kind, res = result_file(fs, rid)
        assert res["error"] == "shutdown" and "executor shut down" in res["message"]
    waiting = [rid for rid in ids if rid not in shut]
    assert all(fs.exists(f"/pending/{rid}.json") for rid in waiting)
    # a new executor finishes the rest: every accepted request ends in exactly one file
    server.release.set()

    async def finish(_: HttpExecutor) -> None:
        for rid in waiting:
            await fs.wait_async(rid, WAIT)

    with_executor(fs, local_policy(), finish)
    assert [result_file(fs, rid)[0] for rid in ids].count("responses") == 6


def test_shutdown_grace_lets_in_flight_requests_finish(server: Server) -> None:
    fs = HttpFs()
    ids: list[str] = []

    async def body(executor: HttpExecutor) -> None:
        ids.extend(send(fs, {"url": server.url("/hold")}) for _ in range(3))
        while server.active < 3:
            await trio.sleep(0.001)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(executor.aclose)
            await trio.sleep(0.01)
            server.release.set()

    with_executor(fs, local_policy(), body, shutdown_grace=WAIT)
    assert [result_file(fs, rid)[1]["status"] for rid in ids] == [200, 200, 200]


def test_cancelling_the_executor_fails_in_flight_requests(server: Server) -> None:
    fs = HttpFs()
    ids: list[str] = []

    async def main() -> None:
        executor = HttpExecutor(fs, local_policy())
        async with trio.open_nursery() as nursery:
            await nursery.start(executor.run)
            ids.extend(send(fs, {"url": server.url("/hold")}) for _ in range(2))
            with trio.fail_after(WAIT):
                while server.active < 2:
                    await trio.sleep(0.001)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert [result_file(fs, rid)[1]["error"] for rid in ids] == ["shutdown", "shutdown"]


def test_concurrency_limit(server: Server) -> None:
    fs = HttpFs()
    ids: list[str] = []

    async def body(_: HttpExecutor) -> None:
        ids.extend(send(fs, {"url": server.url("/barrier")}) for _ in range(50))
        for rid in ids:
            await fs.wait_async(rid, WAIT)

    with_executor(fs, local_policy(), body, max_concurrent=5)
    # the barrier only opens for 5 simultaneous requests, so exactly 5 ran at once
    assert [result_file(fs, rid)[1]["status"] for rid in ids] == [200] * 50
    assert server.max_active == 5


def test_policy_max_connections_caps_the_executor() -> None:
    ex = HttpExecutor(HttpFs(), local_policy(max_connections=3), max_concurrent=10)
    assert ex.max_concurrent == 3
    with pytest.raises(errors.InvalidArgument):
        HttpExecutor(HttpFs(), local_policy(), max_concurrent=0)


# -- the files, without an executor ----------------------------------------------------------


def test_file_structure_and_errors() -> None:
    fs = HttpFs()
    assert fs.listdir("/") == ["errors", "last", "pending", "request", "responses", "status"]
    assert fs.read_bytes("/last") == b""
    rid = fs.submit({"method": "POST", "url": "https://example.com/", "body": "b",
                     "headers": {"A": "1"}, "timeout": 5})
    pending = json.loads(fs.read_bytes(f"/pending/{rid}.json"))
    assert pending["state"] == "pending" and pending["body"] == "b"
    assert pending["headers"] == {"A": "1"} and pending["timeout"] == 5.0
    assert fs.stat(f"/pending/{rid}.json").readonly
    assert fs.stat("/pending").is_dir and fs.stat("/pending").size == 1
    assert not fs.stat("/request").readonly
    with pytest.raises(errors.PermissionDenied):
        fs.read_bytes("/request")
    with pytest.raises(errors.PermissionDenied):
        fs.open("/request", "r+b")
    with pytest.raises(errors.ReadOnly):
        fs.write_bytes("/status", b"x")
    with pytest.raises(errors.ReadOnly):
        fs.write_bytes(f"/pending/{rid}.json", b"x")
    with pytest.raises(errors.PermissionDenied):
        fs.write_bytes("/responses/new.json", b"x")
    with pytest.raises(errors.PermissionDenied):
        fs.remove(f"/pending/{rid}.json")
    with pytest.raises(errors.PermissionDenied):
        fs.mkdir("/d")
    with pytest.raises(errors.IsADirectory):
        fs.open("/pending", "rb")
    with pytest.raises(errors.IsADirectory):
        fs.remove("/pending")
    with pytest.raises(errors.NotADirectory):
        fs.listdir("/status")
    with pytest.raises(errors.NotADirectory):
        fs.stat("/status/x")
    with pytest.raises(errors.NotFound):
        fs.stat("/responses/99.json")
    with pytest.raises(errors.NotFound):
        fs.stat("/nope")
    with pytest.raises(errors.NotFound):
        fs.result("99")
    assert fs.wait(rid, 0.01) is None
    # the executor side, driven by hand
    req = fs.take_pending()
    assert req is not None and req.id == rid and req.body == b"b"
    assert json.loads(fs.read_bytes(f"/pending/{rid}.json"))["state"] == "in_flight"
    assert fs.take_pending() is None
    assert fs.complete(rid, status=201, headers=[("A", "1"), ("A", "2")], body=b"\xff")
    assert not fs.complete(rid, status=200) and not fs.fail(rid, "error", "late")
    res = json.loads(fs.read_bytes(f"/responses/{rid}.json"))
    assert res["headers"] == [["A", "1"], ["A", "2"]] and res["body_base64"] == "/w=="
    assert fs.wait(rid) == res
    fs.remove(f"/responses/{rid}.json")
    with pytest.raises(errors.NotFound):
        fs.wait(rid)
    with pytest.raises(errors.PermissionDenied):
        fs.remove("/status")


def test_wait_async_times_out_and_wakes() -> None:
    fs = HttpFs()
    rid = fs.submit({"url": "https://example.com/"})

    async def main() -> None:
        assert await fs.wait_async(rid, 0.01) is None
        async with trio.open_nursery() as nursery:
            async def finish() -> None:
                await trio.to_thread.run_sync(lambda: fs.fail(rid, "error", "boom"))
            nursery.start_soon(finish)
            res = await fs.wait_async(rid, WAIT)
        assert res is not None and res["message"] == "boom"

    trio.run(main)


@given(attempt=st.integers(1, 20), retry_after=st.none() | st.floats(0, 1e6))
def test_retry_delay_bounds(attempt: int, retry_after: float | None) -> None:
    r = RetryPolicy(max_attempts=5, initial_delay=0.1, max_delay=2.0, factor=3.0)
    d = r.delay(attempt, retry_after)
    if retry_after is None:
        assert 0 <= d <= min(2.0, 0.1 * 3.0 ** (attempt - 1))
    else:
        assert d == min(retry_after, 2.0)


def test_retry_policy_validation() -> None:
    with pytest.raises(errors.InvalidArgument):
        RetryPolicy(max_attempts=0)
    with pytest.raises(errors.InvalidArgument):
        RetryPolicy(initial_delay=-1)
    assert RetryPolicy().retry_statuses == {429, 502, 503, 504}


def test_unresolvable_host_is_a_retried_connection_error() -> None:
    policy = CapabilityPolicy(schemes={"http"}, hosts={"no-such-host.invalid"})
    kind, res = run_one(HttpFs(), policy, "http://no-such-host.invalid/")
    assert (kind, res["error"], res["attempts"]) == ("errors", "connection", 3)
    assert "cannot resolve host" in res["message"]


def test_many_threads_submit_while_the_executor_runs(server: Server) -> None:
    fs = HttpFs()
    manager = ExecutorManager(HttpExecutor(fs, local_policy(), max_concurrent=4))
    manager.start_thread()
    ids: list[str] = []
    lock = threading.Lock()

    def agent(n: int) -> None:
        for i in range(10):
            rid = fs.submit({"method": "POST", "url": server.url("/echo"), "body": f"{n}.{i}"})
            with lock:
                ids.append(rid)

    try:
        threads = [threading.Thread(target=agent, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = [fs.wait(rid, WAIT) for rid in ids]
    finally:
        manager.stop()
    assert len(set(ids)) == 80 and all(r is not None for r in results)
    bodies = sorted(json.loads(r["body"])["body"] for r in results if r is not None)
    assert bodies == sorted(f"{n}.{i}" for n in range(8) for i in range(10))
    assert fs.counts() == {"pending": 0, "in_flight": 0, "completed": 80, "failed": 0}


class Sleeper:
    """An executor without aclose: the manager cancels it."""

    def __init__(self) -> None:
        self.state = "new"

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.state = "running"
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self.state = "cancelled"


class Broken:
    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        raise ValueError("cannot start")


def test_manager_runs_any_executor_and_reports_start_failures() -> None:
    sleeper = Sleeper()
    manager = ExecutorManager()
    assert manager.register(sleeper) is sleeper and manager.executors == [sleeper]
    manager.start_thread()
    assert sleeper.state == "running"
    with pytest.raises(RuntimeError, match="already running"):
        manager.start_thread()
    with pytest.raises(RuntimeError, match="before the manager starts"):
        manager.register(Sleeper())
    manager.stop()
    assert sleeper.state == "cancelled"
    manager.start_thread()  # restartable
    manager.stop()
    broken = ExecutorManager(Broken())
    with pytest.raises(RuntimeError, match="failed to start") as exc:
        broken.start_thread()
    assert isinstance(exc.value.__cause__, BaseException)
    broken.stop()  # nothing to stop


def test_retry_after_is_capped_redirects_and_cookies_are_not_followed(server: Server) -> None:
    fs = HttpFs()
    ids: list[str] = []

    async def body(_: HttpExecutor) -> None:
        # Retry-After: 3600 is capped at max_delay (0.05 s), else this would hang
        ids.append(send(fs, {"url": server.url("/long-retry-after")}))
        ids.append(send(fs, {"url": server.url("/redirect")}))
        for rid in ids:
            await fs.wait_async(rid, WAIT)
        ids.append(send(fs, {"url": server.url("/cookie")}))
        await fs.wait_async(ids[-1], WAIT)
        ids.append(send(fs, {"url": server.url("/echo")}))
        await fs.wait_async(ids[-1], WAIT)

    with_executor(fs, local_policy(), body)
    res = [result_file(fs, rid)[1] for rid in ids]
    assert (res[0]["status"], res[0]["attempts"]) == (200, 2)
    assert res[1]["status"] == 302 and ["Location", "/ok"] in res[1]["headers"]
    assert server.hits["/ok"] == 0
    assert ["Set-Cookie", "session=abc; Path=/"] in res[2]["headers"]
    echoed = [k.lower() for k, _ in json.loads(res[3]["body"])["headers"]]
    assert "cookie" not in echoed


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_manager_in_thread_from_any_event_loop(server: Server, anyio_backend: str) -> None:
    """An asyncio program runs the trio executors on the manager's thread; running them in
    its own loop is refused with a message naming the way that works."""
    fs = HttpFs()
    manager = ExecutorManager(HttpExecutor(fs, local_policy(), retry=FAST_RETRY))
    if anyio_backend == "asyncio":
        with pytest.raises(RuntimeError, match="in_thread"):
            async with manager.running():
                pass
        with pytest.raises(RuntimeError, match="in_thread"):
            await manager.run()
    async with manager.in_thread():
        rid = fs.submit({"url": server.url("/flaky")})
        result = await anyio.to_thread.run_sync(fs.wait, rid, WAIT)
        ticks = 0
        with anyio.fail_after(WAIT):  # the loop is free while the request is in flight
            rid2 = fs.submit({"url": server.url("/slow?ms=200")})
            while fs.result(rid2) is None:
                await anyio.sleep(0.01)
                ticks += 1
    assert result is not None and (result["status"], result["body"]) == (200, "finally")
    assert ticks > 0
    async with manager.in_thread():  # stopped cleanly: it starts again
        assert await anyio.to_thread.run_sync(
            fs.wait, fs.submit({"url": server.url("/ok")}), WAIT) is not None
