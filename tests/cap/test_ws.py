"""WsFs + WsConnector + ExecutorManager against real local WebSocket servers (no mocks).

The servers run in a trio run on their own thread (websockets.trio); the connector runs in
an ExecutorManager thread; the test thread is the agent, using files in a Namespace and the
blocking host waits. Every wait is bounded by WAIT, which only stops a hang.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.trio.server import ServerConnection, serve

from oanix import Namespace, errors
from oanix.cap import ExecutorManager, RetryPolicy, WsConnector
from oanix.cap.policy import CapabilityPolicy
from oanix.cap.ws import WsFs
from oanix.errors import InvalidContent

WAIT = 20.0  # generous: only bounds a hang, never asserted
LOCAL = CapabilityPolicy(schemes={"ws"}, hosts={"127.0.0.1"})
FAST = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.05)
MNT = "/cap/ws"


# -- the test servers -----------------------------------------------------------------------


class WsServer:
    """A websockets.trio server on 127.0.0.1, routed by path, on its own thread.

    /echo            echoes every message with its type
    /sink            records messages, sends nothing
    /close-after/N   echoes N messages, then closes with 1000 "bye"
    /binary          sends b"\\x00\\x01\\xff" (binary) then "text" (text), then echoes
    /burst/N         sends N text messages "0".."N-1", then echoes
    /status/N        refuses the handshake with HTTP status N
    /drop-once       first connection: drops the TCP connection (no close frame) after one
                     message; later connections echo
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.lock = threading.Lock()
        self.connects: Counter[str] = Counter()
        self.live: Counter[str] = Counter()
        self.received: dict[str, list[str | bytes]] = {}
        self.closes: list[tuple[str, int | None, str | None]] = []
        self.closed = threading.Condition(self.lock)
        self._started = threading.Event()
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    def url(self, path: str) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()
        self._started.wait(WAIT)

    def stop(self) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(WAIT)

    def wait_connects(self, path: str, n: int) -> None:
        """Wait until ``n`` handlers for ``path`` have started (a connection closed before
        its handler starts is never seen by one: websockets skips the handler)."""
        with self.closed:
            assert self.closed.wait_for(lambda: self.connects[path] >= n, WAIT)

    def wait_close(self, path: str) -> tuple[int | None, str | None]:
        """The close code and reason the server saw on its connection to ``path``."""
        with self.closed:
            assert self.closed.wait_for(
                lambda: any(p == path for p, _, _ in self.closes), WAIT), (
                    self.connects[path], self.live[path], self.closes[-3:])
            return next((c, r) for p, c, r in self.closes if p == path)

    async def _main(self) -> None:
        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(
                serve, self._handler, 0, host="127.0.0.1", ping_interval=None,
                process_request=self._gate, ssl=self.tls))
            self.port = server.listeners[0].socket.getsockname()[1]
            self._started.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def _gate(self, ws: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/status/"):
            with self.lock:
                self.connects[request.path] += 1
            return ws.respond(int(request.path.rsplit("/", 1)[1]), "no\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path
        with self.lock:
            self.connects[path] += 1
            self.live[path] += 1
            self.closed.notify_all()
            nth = self.connects[path]
            got = self.received.setdefault(path, [])
        try:
            if path == "/binary":
                await ws.send(b"\x00\x01\xff")
                await ws.send("text")
            elif path.startswith("/burst/"):
                for i in range(int(path.rsplit("/", 1)[1])):
                    await ws.send(str(i))
            limit = int(path.rsplit("/", 1)[1]) if path.startswith("/close-after/") else None
            while True:
                msg = await ws.recv()
                with self.lock:
                    got.append(msg)
                if path.startswith("/sink"):
                    continue
                if path.startswith("/drop-once") and nth == 1:
                    await trio.aclose_forcefully(ws.stream)
                    return
                await ws.send(msg)
                if limit is not None and len(got) >= limit:
                    await ws.aclose(1000, "bye")
        except ConnectionClosed:
            pass
        finally:
            with self.lock:
                self.live[path] -= 1
                self.closes.append((path, ws.close_code, ws.close_reason))
                self.closed.notify_all()


@pytest.fixture(scope="module")
def server() -> Iterator[WsServer]:
    s = WsServer()
    s.start()
    yield s
    s.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def running(fs: WsFs | None = None, policy: CapabilityPolicy | None = LOCAL,
            **kwargs: Any) -> Iterator[tuple[WsFs, Namespace, ExecutorManager]]:
    fs = fs if fs is not None else WsFs()
    manager = ExecutorManager(WsConnector(fs, policy, **kwargs))
    manager.start_thread()
    ns = Namespace()
    ns.mount(MNT, fs)
    try:
        yield fs, ns, manager
    finally:
        manager.stop()


# -- agent-side helpers: files only, plus the blocking host waits ---------------------------


def open_conn(ns: Namespace, url: str, **extra: Any) -> str:
    with ns.open(f"{MNT}/control", "r+b") as f:
        f.write((json.dumps({"op": "open", "url": url, **extra}) + "\n").encode())
        return f.read().decode().strip()


def close_conn(ns: Namespace, cid: str, **extra: Any) -> None:
    ns.write_bytes(f"{MNT}/control", json.dumps({"op": "close", "id": cid, **extra}).encode())


def status(ns: Namespace, cid: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(ns.read_bytes(f"{MNT}/conns/{cid}/status"))
    return out


def log(ns: Namespace, cid: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ns.read_bytes(f"{MNT}/conns/{cid}/log").splitlines()]


def wait_state(fs: WsFs, cid: str, *states: str) -> str:
    state = fs.wait_state(cid, states, WAIT)
    assert state in states, fs.status(cid)
    return state


def recv(fs: WsFs, ns: Namespace, cid: str) -> bytes:
    assert fs.wait(cid, WAIT), fs.status(cid)
    return ns.read_bytes(f"{MNT}/conns/{cid}/in")


# -- the files, without an executor ---------------------------------------------------------


def test_layout_and_fixed_structure() -> None:
    fs = WsFs()
    ns = Namespace()
    ns.mount(MNT, fs)
    assert ns.listdir(MNT) == ["conns", "control", "status"]
    assert ns.listdir(f"{MNT}/conns") == []
    cid = open_conn(ns, "ws://example.com/x")
    assert cid == "1" and ns.listdir(f"{MNT}/conns") == ["1"]
    assert ns.listdir(f"{MNT}/conns/1") == ["in", "log", "out", "out.bin", "status", "url"]
    assert ns.read_bytes(f"{MNT}/conns/1/url") == b"ws://example.com/x\n"
    assert status(ns, cid)["state"] == "connecting"
    assert json.loads(ns.read_bytes(f"{MNT}/status"))["connecting"] == 1
    assert ns.stat(f"{MNT}/conns/1").is_dir and ns.stat(f"{MNT}/conns/1/log").readonly
    assert not ns.stat(f"{MNT}/conns/1/out").readonly
    with pytest.raises(errors.PermissionDenied):
        ns.write_bytes(f"{MNT}/conns/1/new", b"x")
    with pytest.raises(errors.PermissionDenied):
        ns.open(f"{MNT}/conns/1/out", "r+b")
    with pytest.raises(errors.ReadOnly):
        ns.open(f"{MNT}/conns/1/in", "wb")
    with pytest.raises(errors.ReadOnly):
        ns.write_bytes(f"{MNT}/status", b"{}")
    with pytest.raises(errors.PermissionDenied):
        ns.mkdir(f"{MNT}/conns/9")
    with pytest.raises(errors.PermissionDenied):
        ns.remove(f"{MNT}/conns/1/log")
    with pytest.raises(errors.NotFound) as exc:
        ns.read_bytes(f"{MNT}/conns/2/status")
    assert exc.value.path == f"{MNT}/conns/2/status"
    with pytest.raises(errors.NotADirectory):
        ns.listdir(f"{MNT}/conns/1/log")
    with pytest.raises(errors.IsADirectory):
        ns.open(f"{MNT}/conns/1", "rb")
    with pytest.raises(errors.PermissionDenied):  # not finished yet
        ns.rmdir(f"{MNT}/conns/1")


@pytest.mark.parametrize(("command", "why"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"op": "dial", "url": "ws://h/"}', "unknown op"),
    (b'{"url": "ws://h/", "id": "1"}', "unknown op"),
    (b'{"op": "open"}', "needs \"url\""),
    (b'{"op": "open", "url": "http://h/"}', "not a ws:// or wss://"),
    (b'{"op": "open", "url": "ws://h/", "extra": 1}', "unknown key"),
    (b'{"op": "open", "url": "ws://h/", "reconnect": "yes"}', "reconnect"),
    (b'{"op": "close"}', "needs \"id\""),
    (b'{"op": "close", "id": "7"}', "no WebSocket connection"),
    (b'{"op": "close", "id": "1", "code": 1006}', "close code"),
    (b"\xff\n", "not UTF-8"),
])
def test_bad_control_commands_fail_the_write(command: bytes, why: str) -> None:
    fs = WsFs()
    ns = Namespace()
    ns.mount(MNT, fs)
    fs.connect("ws://h/")
    with pytest.raises(InvalidContent) as exc:
        ns.write_bytes(f"{MNT}/control", command)
    e = exc.value
    assert isinstance(e, errors.InvalidContent) and isinstance(e, ValueError)
    assert e.errno == errno.EINVAL and e.path == f"{MNT}/control" and why in str(e.strerror)
    assert fs.ids() == ["1"] and fs.status("1")["state"] == "connecting"


def test_control_runs_lines_and_reads_the_id_this_file_opened() -> None:
    fs = WsFs()
    ns = Namespace()
    ns.mount(MNT, fs)
    a = ns.open(f"{MNT}/control", "r+b")
    b = ns.open(f"{MNT}/control", "r+b")
    assert a.read() == b""  # opened nothing yet
    b.write(b'{"op": "open", "url": "ws://h/b"}\n')  # runs at the newline
    assert fs.ids() == ["1"]
    a.write(b'{"op": "open", ')
    a.write(b'"url": "ws://h/a"}')  # no newline: runs at the read
    assert a.read() == b"2\n" and b.read() == b"1\n"
    a.seek(0)
    assert a.read() == b"2\n"
    b.close()
    # Several commands in one write; a last line without newline runs at close.
    with ns.open(f"{MNT}/control", "wb") as w:
        w.write(b'{"op": "open", "url": "ws://h/c"}\n{"op": "close", "id": "1"}\n')
        w.write(b'{"op": "close", "id": "2"}')
        assert fs.status("2")["state"] == "connecting"
    assert fs.status("1")["state"] == fs.status("2")["state"] == "closed"
    assert fs.status("1")["closed_by"] == "client"
    a.close()
    w = ns.open(f"{MNT}/control", "wb")
    w.write(b'{"op": "nope"}')
    with pytest.raises(InvalidContent):  # the error of a line run at close
        w.close()
    assert w.closed
    ns.rmdir(f"{MNT}/conns/1")  # finished: can be removed
    assert ns.listdir(f"{MNT}/conns") == ["2", "3"]


def test_out_checks_utf8_size_and_state() -> None:
    fs = WsFs(max_message_bytes=8, max_queue=2)
    ns = Namespace()
    ns.mount(MNT, fs)
    cid = fs.connect("ws://h/")
    with pytest.raises(InvalidContent) as exc:
        ns.write_bytes(f"{MNT}/conns/{cid}/out", b"\xff\xfe")
    assert "out.bin" in str(exc.value.strerror)
    with pytest.raises(errors.NoSpace):
        ns.write_bytes(f"{MNT}/conns/{cid}/out.bin", b"123456789")
    ns.write_bytes(f"{MNT}/conns/{cid}/out", b"")  # nothing written: nothing sent
    ns.write_bytes(f"{MNT}/conns/{cid}/out", "é".encode())
    ns.write_bytes(f"{MNT}/conns/{cid}/out.bin", b"\xff")
    with pytest.raises(errors.NoSpace):  # outbox full
        fs.send(cid, "x")
    assert status(ns, cid)["queued_out"] == 2
    fs.close(cid)  # never claimed: closed at once, queued messages recorded unsent
    st = status(ns, cid)
    assert (st["state"], st["unsent"], st["queued_out"]) == ("closed", 2, 0)
    assert [(e["dir"], e["type"], e["size"]) for e in log(ns, cid)] == [
        ("out", "text", 2), ("out", "binary", 1)]
    assert all("not sent" in e["error"] for e in log(ns, cid))
    with pytest.raises(InvalidContent):
        ns.write_bytes(f"{MNT}/conns/{cid}/out", b"late")
    with pytest.raises(InvalidContent):
        fs.send(cid, b"late")
    with pytest.raises(errors.InvalidArgument):
        fs.connect("https://h/")


# -- through a connector ---------------------------------------------------------------------


def test_echo_text_and_binary_exact_round_trip(server: WsServer) -> None:
    with running() as (fs, ns, _):
        cid = open_conn(ns, server.url("/echo"))
        text = "héllo ✓ \x00 end".encode()
        ns.write_bytes(f"{MNT}/conns/{cid}/out", text)
        assert recv(fs, ns, cid) == text
        blob = bytes(range(256)) * 3
        ns.write_bytes(f"{MNT}/conns/{cid}/out.bin", blob)
        assert recv(fs, ns, cid) == blob
        assert server.received["/echo"][-2:] == [text.decode(), blob]  # frame types kept
        entries = log(ns, cid)
        assert [(e["dir"], e["type"], e["size"]) for e in entries] == [
            ("out", "text", len(text)), ("in", "text", len(text)),
            ("out", "binary", len(blob)), ("in", "binary", len(blob))]
        assert [e["seq"] for e in entries] == [1, 2, 3, 4]
        st = status(ns, cid)
        assert st["state"] == "open" and st["error"] is None and st["opened_at"] is not None
        assert (st["sent"], st["received"], st["queued_in"], st["unsent"]) == (2, 2, 0, 0)
        assert st["sent_bytes"] == st["received_bytes"] == len(text) + len(blob)


def test_fifo_order_of_100_messages(server: WsServer) -> None:
    with running() as (fs, ns, _):
        cid = open_conn(ns, server.url("/echo"))
        for i in range(100):
            ns.write_bytes(f"{MNT}/conns/{cid}/out", f"m{i}".encode())
        got = [recv(fs, ns, cid) for _ in range(100)]
        assert got == [f"m{i}".encode() for i in range(100)]
        assert [e["size"] for e in log(ns, cid) if e["dir"] == "out"] == [
            len(f"m{i}") for i in range(100)]


def test_in_is_a_non_blocking_queue(server: WsServer) -> None:
    with running() as (fs, ns, _):
        cid = open_conn(ns, server.url("/echo"))
        wait_state(fs, cid, "open")
        inp = f"{MNT}/conns/{cid}/in"
        assert ns.read_bytes(inp) == b""  # empty queue: empty file, at once
        assert fs.receive(cid, timeout=0) is None
        ns.write_bytes(f"{MNT}/conns/{cid}/out", b"first")
        ns.write_bytes(f"{MNT}/conns/{cid}/out", b"second")
        assert fs.wait(cid, WAIT)
        idle = ns.open(inp, "rb")  # open without reading takes nothing
        idle.close()
        assert ns.stat(inp).size == 5  # stat peeks, takes nothing
        with ns.open(inp, "rb") as f:
            assert f.read(2) == b"fi"
            assert f.read() == b"rst"  # the same message, not the next one
            assert f.read() == b""
        while fs.status(cid)["queued_in"] < 1:
            assert fs.wait(cid, WAIT)
        assert fs.receive(cid, WAIT) == "second"  # host API: text comes back as str
        assert ns.read_bytes(inp) == b""


def test_log_is_not_destructive_and_capped(server: WsServer) -> None:
    with running(WsFs(max_log=3)) as (fs, ns, _):
        cid = open_conn(ns, server.url("/echo"))
        for word in (b"a", b"bb"):
            ns.write_bytes(f"{MNT}/conns/{cid}/out", word)
            assert recv(fs, ns, cid) == word
        first = ns.read_bytes(f"{MNT}/conns/{cid}/log")
        assert ns.read_bytes(f"{MNT}/conns/{cid}/log") == first
        entries = [json.loads(line) for line in first.splitlines()]
        assert [(e["seq"], e["dir"], e["size"]) for e in entries] == [
            (2, "in", 1), (3, "out", 2), (4, "in", 2)]
        assert all(isinstance(e["ts"], float) for e in entries)
        assert status(ns, cid)["log_dropped"] == 1


def test_server_binary_and_text_messages(server: WsServer) -> None:
    with running() as (fs, ns, _):
        cid = open_conn(ns, server.url("/binary"))
        assert recv(fs, ns, cid) == b"\x00\x01\xff"
        assert fs.receive(cid, WAIT) == "text"
        assert [e["type"] for e in log(ns, cid)] == ["binary", "text"]


def test_server_close_marks_closed(server: WsServer) -> None:
    with running() as (fs, ns, _):
        cid = open_conn(ns, server.url("/close-after/2"))
        for word in (b"1", b"2"):
            ns.write_bytes(f"{MNT}/conns/{cid}/out", word)
        wait_state(fs, cid, "closed", "failed")
        st = status(ns, cid)
        assert (st["state"], st["closed_by"], st["close_code"], st["close_reason"]) == (
            "closed", "server", 1000, "bye")
        assert st["error"] is None and st["closed_at"] is not None
        assert [recv(fs, ns, cid), recv(fs, ns, cid)] == [b"1", b"2"]  # kept after close
        assert fs.receive(cid, WAIT) is None  # finished and empty: no wait
        with pytest.raises(InvalidContent):
            ns.write_bytes(f"{MNT}/conns/{cid}/out", b"3")
        ns.rmdir(f"{MNT}/conns/{cid}")
        assert ns.listdir(f"{MNT}/conns") == []


def test_refused_connection_fails_with_a_message() -> None:
    fs = WsFs()
    cid = fs.connect(f"ws://127.0.0.1:{closed_port()}/")
    fs.send(cid, b"never")  # queued before any executor runs, so it cannot race the refusal
    with running(fs) as (fs, ns, _):
        wait_state(fs, cid, "failed")
        st = status(ns, cid)
        assert st["error"] == "connection" and "cannot connect to 127.0.0.1" in st["message"]
        assert st["unsent"] == 1 and st["opened_at"] is None
        assert "not sent: connection failed" in log(ns, cid)[0]["error"]


def test_refused_handshake_fails_and_only_5xx_is_retried(server: WsServer) -> None:
    with running(reconnect=FAST) as (fs, ns, _):
        forbidden = open_conn(ns, server.url("/status/403"), reconnect=True)
        busy = open_conn(ns, server.url("/status/503"), reconnect=True)
        wait_state(fs, forbidden, "failed")
        wait_state(fs, busy, "failed")
        st = status(ns, forbidden)
        assert st["error"] == "handshake" and "HTTP 403" in st["message"]
        assert st["reconnects"] == 0 and server.connects["/status/403"] == 1
        st = status(ns, busy)
        assert st["error"] == "handshake" and "HTTP 503" in st["message"]
        assert st["reconnects"] == 2 and server.connects["/status/503"] == 3


def test_max_connections_keeps_the_extra_one_connecting(server: WsServer) -> None:
    with running(max_connections=1) as (fs, ns, _):
        a = open_conn(ns, server.url("/echo?a"))
        wait_state(fs, a, "open")
        b = open_conn(ns, server.url("/echo?b"))
        c = open_conn(ns, server.url("/echo?c"))
        ns.write_bytes(f"{MNT}/conns/{a}/out", b"ping")
        assert recv(fs, ns, a) == b"ping"  # the connector is busy and responsive...
        ns.write_bytes(f"{MNT}/conns/{b}/out", b"queued")
        assert status(ns, b)["state"] == "connecting"  # ...yet b waits for a slot
        assert server.connects["/echo?b"] == 0
        close_conn(ns, c)  # never claimed: closed at once
        assert status(ns, c)["state"] == "closed"
        close_conn(ns, a)
        wait_state(fs, b, "open")
        assert recv(fs, ns, b) == b"queued"  # sent once it connected
        assert server.connects["/echo?c"] == 0


def test_close_via_control_sends_a_close_frame_after_queued_messages(
        server: WsServer) -> None:
    with running() as (fs, ns, _):
        cid = open_conn(ns, server.url("/sink?closeme"))
        wait_state(fs, cid, "open")
        server.wait_connects("/sink?closeme", 1)  # its handler runs: it sees the close
        for i in range(5):
            ns.write_bytes(f"{MNT}/conns/{cid}/out", f"last{i}".encode())
        close_conn(ns, cid, code=4001, reason="done")
        wait_state(fs, cid, "closed", "failed")
        assert server.wait_close("/sink?closeme") == (4001, "done")
        assert server.received["/sink?closeme"] == [f"last{i}" for i in range(5)]
        st = status(ns, cid)
        assert (st["state"], st["closed_by"], st["close_code"], st["unsent"]) == (
            "closed", "client", 4001, 0)


def test_policy_denials() -> None:
    fs = WsFs()
    cid = fs.connect("ws://127.0.0.1:9/")
    fs.send(cid, "secret")
    with running(fs, policy=None) as (fs, ns, _):  # default: public addresses only
        wait_state(fs, cid, "failed")
        st = status(ns, cid)
        assert st["error"] == "permission_denied" and "non-public" in st["message"]
        assert st["unsent"] == 1
    wss_only = CapabilityPolicy(schemes={"wss"}, hosts={"127.0.0.1"})
    with running(policy=wss_only) as (fs, ns, _):
        cid = open_conn(ns, "ws://127.0.0.1:9/")
        wait_state(fs, cid, "failed")
        assert "scheme 'ws'" in status(ns, cid)["message"]
    other = CapabilityPolicy(schemes={"ws"}, hosts={"example.com"})
    with running(policy=other) as (fs, ns, _):
        cid = open_conn(ns, "ws://127.0.0.1:9/")
        wait_state(fs, cid, "failed")
        assert "allowlist" in status(ns, cid)["message"]


def test_policy_message_size_limit(server: WsServer) -> None:
    small = CapabilityPolicy(schemes={"ws"}, hosts={"127.0.0.1"}, max_request_bytes=4)
    with running(policy=small) as (fs, ns, _):
        cid = open_conn(ns, server.url("/echo"))
        ns.write_bytes(f"{MNT}/conns/{cid}/out", b"too long")
        ns.write_bytes(f"{MNT}/conns/{cid}/out", b"ok")
        assert recv(fs, ns, cid) == b"ok"
        first = log(ns, cid)[0]
        assert first["size"] == 8 and "over the policy limit" in first["error"]
        assert status(ns, cid)["unsent"] == 1


def test_shutdown_closes_every_connection(server: WsServer) -> None:
    with running(max_connections=2) as (fs, ns, manager):
        ids = [open_conn(ns, server.url(f"/echo?shut{i}")) for i in range(2)]
        waiting = open_conn(ns, server.url("/echo?shut-waiting"))
        for i, cid in enumerate(ids):
            wait_state(fs, cid, "open")
            server.wait_connects(f"/echo?shut{i}", 1)
        manager.stop()
        for cid in ids:
            st = status(ns, cid)
            assert (st["state"], st["closed_by"], st["close_code"]) == (
                "closed", "executor", 1001)
        for i in range(2):
            assert server.wait_close(f"/echo?shut{i}") == (1001, "going away")
        assert status(ns, waiting)["state"] == "connecting"  # left for the next executor


def test_reconnect_after_a_drop(server: WsServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oanix")
    with running(reconnect=FAST) as (fs, ns, _):
        cid = open_conn(ns, server.url("/drop-once"), reconnect=True)
        ns.write_bytes(f"{MNT}/conns/{cid}/out", b"lost")
        server.wait_connects("/drop-once", 2)  # so "after" cannot go down the dead socket
        wait_state(fs, cid, "open")
        ns.write_bytes(f"{MNT}/conns/{cid}/out", b"after")
        assert recv(fs, ns, cid) == b"after"
        st = status(ns, cid)
        assert st["reconnects"] == 1 and st["error"] == "connection"  # the last trouble
        assert server.connects["/drop-once"] == 2
    logged = [r.getMessage() for r in caplog.records if r.name == "oanix.cap.ws.connector"]
    assert len(logged) == 1 and logged[0].startswith(f"websocket {cid}: ")
    assert "reconnecting in" in logged[0]


def test_no_reconnect_means_a_drop_fails(server: WsServer) -> None:
    with running() as (fs, ns, _):
        cid = open_conn(ns, server.url("/drop-once?x"))  # its own first connection
        ns.write_bytes(f"{MNT}/conns/{cid}/out", b"boom")
        wait_state(fs, cid, "failed")
        st = status(ns, cid)
        assert st["error"] == "connection" and "without a close frame" in st["message"]
        assert server.connects["/drop-once?x"] == 1


def test_reconnect_gives_up_after_max_attempts() -> None:
    with running(reconnect=FAST) as (fs, ns, _):
        cid = open_conn(ns, f"ws://127.0.0.1:{closed_port()}/", reconnect=True)
        wait_state(fs, cid, "failed")
        st = status(ns, cid)
        assert st["reconnects"] == 2 and "gave up after 3 attempt(s)" in st["message"]


def test_inbox_back_pressure_keeps_every_message(server: WsServer) -> None:
    with running(WsFs(max_queue=2)) as (fs, ns, _):
        cid = open_conn(ns, server.url("/burst/20"))
        got = []
        for _ in range(20):
            assert fs.wait(cid, WAIT)
            assert fs.status(cid)["queued_in"] <= 2
            got.append(ns.read_bytes(f"{MNT}/conns/{cid}/in"))
        assert got == [str(i).encode() for i in range(20)]


def test_host_api(server: WsServer) -> None:
    with running() as (fs, _ns, _):
        cid = fs.connect(server.url("/echo"))
        fs.send(cid, "text ✓")
        fs.send(cid, b"\x00bin")
        assert fs.receive(cid, WAIT) == "text ✓"
        assert fs.receive(cid, WAIT) == b"\x00bin"
        with pytest.raises(errors.PermissionDenied):
            fs.forget(cid)
        with pytest.raises(errors.InvalidArgument):
            fs.close(cid, code=1001)
        fs.close(cid)
        assert wait_state(fs, cid, "closed") == "closed"
        fs.close(cid)  # idempotent
        fs.forget(cid)
        assert fs.ids() == []
        with pytest.raises(errors.NotFound):
            fs.status(cid)


def test_cancelling_run_closes_connections_with_a_close_frame(server: WsServer) -> None:
    fs = WsFs()
    cid = fs.connect(server.url("/echo?cancel"))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(WsConnector(fs, LOCAL).run)
            assert await trio.to_thread.run_sync(fs.wait_state, cid, ("open",), WAIT)
            await trio.to_thread.run_sync(server.wait_connects, "/echo?cancel", 1)
            nursery.cancel_scope.cancel()

    trio.run(main)
    st = fs.status(cid)
    assert (st["state"], st["error"], st["closed_by"], st["close_code"]) == (
        "closed", None, "executor", 1001)
    assert server.wait_close("/echo?cancel") == (1001, "going away")


def test_wss_with_a_pinned_address_keeps_tls_checks(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    trusted = ssl.create_default_context(cafile=str(cert))
    tls = WsServer(server_ctx)
    tls.start()
    try:
        policy = CapabilityPolicy(schemes={"wss"}, hosts={"127.0.0.1"})
        with running(policy=policy, ssl_context=trusted) as (fs, ns, _):
            cid = open_conn(ns, tls.url("/echo"))
            ns.write_bytes(f"{MNT}/conns/{cid}/out", b"over tls")
            assert recv(fs, ns, cid) == b"over tls"
        with running(policy=policy) as (fs, ns, _):  # system CAs: the cert is not trusted
            cid = open_conn(ns, tls.url("/echo"))
            wait_state(fs, cid, "failed")
            assert "CERTIFICATE_VERIFY_FAILED" in status(ns, cid)["message"]
    finally:
        tls.stop()


def test_short_control_forms() -> None:
    fs = WsFs()
    with fs.open("/control", "w+") as f:
        f.write(b'{"url": "ws://127.0.0.1:9/"}\n')
        f.seek(0)
        cid = f.read().decode().strip()
    assert cid and fs.read_text(f"/conns/{cid}/url").strip() == "ws://127.0.0.1:9/"
    with fs.open("/control", "w") as f:
        f.write(f'{{"id": "{cid}"}}\n'.encode())
    assert json.loads(fs.read_text(f"/conns/{cid}/status"))["state"] in ("closed", "closing")
