"""WsFs: WebSocket connections as files (Plan 9 ``/net`` in spirit): the file is the API.

An agent writes commands and messages to files; an executor
(``oanix.cap.ws.connector.WsConnector``) holds the sockets. Mounted at ``/cap/ws``::

    control               read-write: one JSON command per line (below); reading it gives
                          the id of the connection this open file opened, and a newline
    status                read-only: JSON counts per state
    conns/<id>/url        read-only: the URL, and a newline
    conns/<id>/status     read-only: JSON state of the connection (below)
    conns/<id>/out        write-only: each open-write-close sends ONE text message (UTF-8)
    conns/<id>/out.bin    write-only: each open-write-close sends ONE binary message
    conns/<id>/in         read-only queue: each open file takes the next message at its
                          first read; an empty queue reads as an empty file, at once
    conns/<id>/log        read-only: JSON Lines, one per message in or out (not destructive)

A shell does, as with ``/net/tcp/clone``::

    exec 3<>/cap/ws/control
    echo '{"op": "open", "url": "wss://relay.example/"}' >&3
    read id <&3
    echo -n hello > /cap/ws/conns/$id/out
    cat /cap/ws/conns/$id/in

Commands (one JSON object per line; a line runs when its newline is written, a last line
without one when the file is read or closed)::

    {"op": "open", "url": "ws://..." | "wss://...", "reconnect": false}
    {"op": "close", "id": "3", "code": 1000, "reason": ""}      code and reason optional

``op`` may be left out: ``{"url": ...}`` opens and ``{"id": ...}`` closes.

A command that cannot run (bad JSON, unknown op or key, missing field, a URL that is not
ws/wss, an unknown id) makes that write (or the read or close that ran it) raise
``InvalidContent`` (EINVAL) naming the control file and saying what is
wrong; nothing is done. Writing to ``out`` text that is not UTF-8, or to a finished
connection, raises ``InvalidContent`` from ``close``; a message over ``max_message_bytes``
or a full outbox raises ``NoSpace``. An open-close of ``out`` with nothing written sends
nothing (use the host ``send`` for an empty message).

``in`` never blocks: an open file that finds the queue empty reads as empty. The message's
type is not in ``in`` (a text message reads as its UTF-8 bytes); it is in ``log``. To wait,
host code calls ``wait`` or ``receive``. The inbox holds at most ``max_queue`` messages;
when it is full the executor stops reading the socket (the server feels back-pressure)
until the agent takes one.

Connection states: ``connecting`` (waiting for an executor slot, handshaking, or waiting
to reconnect) -> ``open`` -> ``closing`` (the agent asked to close) -> ``closed``; any
state -> ``failed``. ``closed`` means a close handshake (by the agent, the server or the
executor's shutdown); ``failed`` means no connection could be made or it was lost without
one. After a reconnect, ``error`` and ``message`` keep the last trouble while the state
is ``open`` again. A finished (closed or failed) connection keeps its files until ``rmdir
conns/<id>`` (or ``forget``). Messages still queued in ``out`` when a connection finishes
are never silently dropped: each is counted in ``unsent`` and logged with an error.

File formats (UTF-8 JSON)::

    conns/<id>/status  {"id", "url", "state", "reconnect", "error": null | kind,
                        "message": null | str, "close_code", "close_reason",
                        "closed_by": null | "client" | "server" | "executor",
                        "sent", "sent_bytes", "received", "received_bytes",
                        "queued_out", "queued_in", "unsent", "reconnects", "log_dropped",
                        "created_at", "opened_at", "closed_at"}
                       kind: permission_denied timeout connection handshake
                       message_too_large protocol shutdown error
    conns/<id>/log     {"seq", "dir": "in" | "out", "type": "text" | "binary", "size",
                        "ts"} per line, in the order things happened: an in message when
                        it arrived, an out message when it was handed to the socket or,
                        with "error": why, when it was given up. ``seq`` numbers the
                        messages of a connection (an out message gets its number when it
                        is accepted). Beyond ``max_log`` lines the oldest go.
    status             {"connecting", "open", "closing", "closed", "failed", "ids",
                        "last_id"}

Host API: ``connect(url) -> id`` (not ``open``, which opens files), ``send(id, str |
bytes)`` (a str is a text message), ``receive(id, timeout) -> str | bytes | None`` and
``wait(id, timeout)`` (blocking, any thread but the executor's), ``wait_state``,
``close(id)``, ``status(id)``, ``forget(id)``.
The executor API is ``wakeup``, ``take_connecting`` and the ``WsLink`` methods.

Locking: one ``threading.Condition`` guards every connection; no I/O runs under it, and
``Wakeup.set`` (which only schedules a trio callback) is called outside it.
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self

import attrs
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from ... import paths
from ...errors import (
    FsError,
    InvalidArgument,
    InvalidContent,
    IsADirectory,
    NoSpace,
    NotADirectory,
    NotFound,
    PermissionDenied,
)
from ...files import (
    BufferFile,
    CappedFile,
    ModeFile,
    check_write_only,
    find_fixed,
    id_order,
    read_only_file,
)
from ...service import FileService, OpenMode, Stat, check_open
from ...values import dumps_compact, dumps_pretty, load_json
from ..wakeup import Wakeup

if TYPE_CHECKING:
    from ...snapshot.protocol import SnapshotReader, SnapshotWriter

__all__ = ["FINAL_STATES", "MAX_CONTROL_LINE", "InvalidContent", "WsErrorKind", "WsFs",
           "WsLink", "WsOutgoing", "WsState"]

WsState = Literal["connecting", "open", "closing", "closed", "failed"]
WsErrorKind = Literal["permission_denied", "timeout", "connection", "handshake",
                      "message_too_large", "protocol", "shutdown", "error"]
MessageType = Literal["text", "binary"]
FINAL_STATES: Final = frozenset({"closed", "failed"})
_STATES: Final = ("connecting", "open", "closing", "closed", "failed")
_ROOT: Final = ("conns", "control", "status")
_CONN: Final = ("in", "log", "out", "out.bin", "status", "url")
_OUT: Final = {"out": "text", "out.bin": "binary"}
MAX_CONTROL_LINE: Final = 64 << 10
"""The most bytes of an unfinished line a ``control`` file holds."""
_OPEN_KEYS: Final = frozenset({"op", "url", "reconnect"})
_CLOSE_KEYS: Final = frozenset({"op", "id", "code", "reason"})


class _Invalid(Exception):
    """A command that cannot run; converted to InvalidContent or InvalidArgument."""


@attrs.frozen
class WsOutgoing:
    """A message waiting in (or taken from) a connection's outbox."""

    seq: int
    type: MessageType
    data: bytes
    ts: float


@attrs.frozen
class _CloseRequest:
    code: int
    reason: str


@attrs.define(eq=False)
class _Conn:
    id: str
    url: str
    reconnect: bool
    created_at: float
    state: WsState = "connecting"
    claimed: bool = False
    error: WsErrorKind | None = None
    message: str | None = None
    close_code: int | None = None
    close_reason: str | None = None
    closed_by: str | None = None
    close_request: _CloseRequest | None = None
    outbox: deque[WsOutgoing] = attrs.Factory(deque)
    inbox: deque[tuple[MessageType, bytes]] = attrs.Factory(deque)
    log: deque[bytes] = attrs.Factory(deque)
    log_dropped: int = 0
    seq: int = 0
    sent: int = 0
    sent_bytes: int = 0
    received: int = 0
    received_bytes: int = 0
    unsent: int = 0
    reconnects: int = 0
    opened_at: float | None = None
    closed_at: float | None = None
    outgoing: Wakeup = attrs.Factory(Wakeup)
    space: Wakeup = attrs.Factory(Wakeup)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "state": self.state,
                "reconnect": self.reconnect, "error": self.error, "message": self.message,
                "close_code": self.close_code, "close_reason": self.close_reason,
                "closed_by": self.closed_by, "sent": self.sent,
                "sent_bytes": self.sent_bytes, "received": self.received,
                "received_bytes": self.received_bytes, "queued_out": len(self.outbox),
                "queued_in": len(self.inbox), "unsent": self.unsent,
                "reconnects": self.reconnects, "log_dropped": self.log_dropped,
                "created_at": self.created_at, "opened_at": self.opened_at,
                "closed_at": self.closed_at}


def _checked_url(url: str, r: SnapshotReader, where: str) -> str:
    try:
        return _check_url(url)
    except _Invalid as e:
        raise r.fail(where, str(e)) from None


def _check_url(url: object) -> str:
    if not isinstance(url, str) or not url:
        raise _Invalid('open needs "url": "ws://..." or "wss://..."')
    try:
        parse_uri(url)
    except InvalidURI as e:
        raise _Invalid(f"url {url!r} is not a ws:// or wss:// URL: {e}") from None
    return url


def _parse_command(line: bytes) -> dict[str, Any]:
    try:
        obj = load_json(line, "command")
    except InvalidContent as e:
        raise _Invalid(f"command is {e.strerror}") from None
    if not isinstance(obj, dict):
        raise _Invalid(f"command must be a JSON object, not {type(obj).__name__}")
    if "op" not in obj and ("url" in obj) != ("id" in obj):
        # the short forms: {"url": ...} opens, {"id": ...} closes
        obj = {"op": "open" if "url" in obj else "close", **obj}
    op = obj.get("op")
    keys = {"open": _OPEN_KEYS, "close": _CLOSE_KEYS}.get(op) if isinstance(op, str) else None
    if keys is None:
        raise _Invalid(f'unknown op {op!r}: use {{"op": "open", "url": ...}} or '
                       '{"op": "close", "id": ...}')
    unknown = set(obj) - keys
    if unknown:
        raise _Invalid(f"unknown key(s) {sorted(unknown)} for {op}; allowed: {sorted(keys)}")
    return obj


def _close_args(obj: Mapping[str, Any]) -> tuple[str, int, str]:
    cid = obj.get("id")
    if not isinstance(cid, str) or not cid:
        raise _Invalid('close needs "id": "<connection id>" (a string)')
    code = obj.get("code", 1000)
    if isinstance(code, bool) or not isinstance(code, int) or not (
            code == 1000 or 3000 <= code <= 4999):
        raise _Invalid(f"close code must be 1000 or in 3000-4999, not {code!r}")
    reason = obj.get("reason", "")
    if not isinstance(reason, str) or len(reason.encode("utf-8")) > 123:
        raise _Invalid("close reason must be a string of at most 123 UTF-8 bytes")
    return cid, code, reason


class WsFs(FileService):
    """The WebSocket capability's files; see the module docstring for the protocol.

    ``max_connections`` caps the connections held (finished ones count until forgotten;
    over it an open raises ``NoSpace``); ``max_queue`` caps each inbox and outbox in
    messages; ``max_message_bytes`` caps an outgoing message, and an ``out`` / ``out.bin``
    file as it grows (a write past it raises ``NoSpace``, nothing past the cap is held,
    and the message is not sent); ``max_log`` the lines kept in each ``log``. An unfinished
    ``control`` line is capped at ``MAX_CONTROL_LINE`` (64 KiB) the same way.

    Locking: one ``threading.Condition`` guards every connection and counter; no I/O and
    no wakeup runs under it.
    """

    live = True  # the WASI bridge mirrors it while a guest runs

    def __init__(self, *, max_connections: int = 1000, max_queue: int = 1000,
                 max_message_bytes: int = 1 << 20, max_log: int = 1000) -> None:
        for name, value in (("max_connections", max_connections), ("max_queue", max_queue),
                            ("max_message_bytes", max_message_bytes), ("max_log", max_log)):
            if value < 1:
                raise InvalidArgument(f"{name} must be >= 1, not {value!r}")
        self.max_connections = max_connections
        self.max_queue = max_queue
        self.max_message_bytes = max_message_bytes
        self.max_file_bytes = max_message_bytes  # what a file written here may hold
        self.max_log = max_log
        self._cond = threading.Condition()
        self._conns: dict[str, _Conn] = {}
        self._next = 1
        self._last: str | None = None
        self._created = time.time()
        #: Set whenever a connection is opened; an executor's dispatcher awaits it.
        self.wakeup = Wakeup()

    # -- host API -------------------------------------------------------------------------

    def connect(self, url: str, *, reconnect: bool = False) -> str:
        """Ask for a connection to ``url`` and return its id (state ``connecting``).

        Raises:
            InvalidArgument: ``url`` is not a ws:// or wss:// URL.
            NoSpace: ``max_connections`` connections are held.
        """
        try:
            return self._open_conn(_check_url(url), bool(reconnect), "/control")
        except _Invalid as e:
            raise InvalidArgument(str(e)) from None

    def _open_conn(self, url: str, reconnect: bool, path: str) -> str:
        with self._cond:
            if len(self._conns) >= self.max_connections:
                raise NoSpace(path, f"{self.max_connections} connections are held: close "
                              "and rmdir finished ones first")
            cid = str(self._next)
            self._next += 1
            self._last = cid
            self._conns[cid] = _Conn(cid, url, reconnect, time.time())
        self.wakeup.set()
        return cid

    def send(self, cid: str, data: str | bytes) -> None:
        """Queue one message on ``cid``: a str is sent as text, bytes as binary.

        Raises:
            NotFound: no connection ``cid``.
            InvalidContent: the connection is closing or finished.
            NoSpace: the message is over ``max_message_bytes`` or the outbox is full.
        """
        if isinstance(data, str):
            self._queue(cid, "text", data.encode("utf-8"), f"/conns/{cid}/out")
        else:
            self._queue(cid, "binary", bytes(data), f"/conns/{cid}/out.bin")

    def _queue(self, cid: str, kind: MessageType, data: bytes, path: str) -> None:
        if len(data) > self.max_message_bytes:
            raise NoSpace(path, f"message of {len(data)} bytes is over the limit of "
                          f"{self.max_message_bytes} bytes")
        with self._cond:
            conn = self._get(cid, path)
            if conn.state not in ("connecting", "open"):
                raise InvalidContent(path, f"connection {cid} is {conn.state}: nothing more "
                                     "can be sent on it")
            if len(conn.outbox) >= self.max_queue:
                raise NoSpace(path, f"the outbox of connection {cid} holds {self.max_queue} "
                              "unsent messages")
            conn.outbox.append(WsOutgoing(self._next_seq(conn), kind, data, time.time()))
            wake = conn.outgoing
        wake.set()

    def receive(self, cid: str, timeout: float | None = None) -> str | bytes | None:
        """Take the next message of ``cid``, waiting up to ``timeout`` seconds (forever if
        None): a str for a text message, bytes for a binary one; None on timeout or when
        the connection finished with an empty inbox. Any thread but the executor's.

        Raises:
            NotFound: no connection ``cid``.
        """
        with self._cond:
            conn = self._wait_for(cid, timeout, _has_message_or_ended)
            if conn is None or not conn.inbox:
                return None
            kind, data = conn.inbox.popleft()
            wake = conn.space
        wake.set()
        return data.decode("utf-8") if kind == "text" else data

    def wait(self, cid: str, timeout: float | None = None) -> bool:
        """Block until ``cid`` has a message to take (True), or until ``timeout`` or the
        connection finished with an empty inbox (False). Any thread but the executor's.

        Raises:
            NotFound: no connection ``cid``.
        """
        with self._cond:
            conn = self._wait_for(cid, timeout, _has_message_or_ended)
            return conn is not None and bool(conn.inbox)

    def wait_state(self, cid: str, states: Iterable[str], timeout: float | None = None
                   ) -> str | None:
        """Block until ``cid``'s state is one of ``states`` and return it (None on timeout).

        Raises:
            NotFound: no connection ``cid``.
        """
        wanted = frozenset(states)
        with self._cond:
            conn = self._wait_for(cid, timeout, lambda c: c.state in wanted)
            return None if conn is None else conn.state

    def _wait_for(self, cid: str, timeout: float | None, ready: Callable[[_Conn], bool]
                  ) -> _Conn | None:
        """Wait (lock held) until ``ready(conn)``; the connection, or None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not ready(conn := self._get(cid, cid)):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._cond.wait(left)
        return conn

    def close(self, cid: str, code: int = 1000, reason: str = "") -> None:
        """Ask to close ``cid`` with a close frame (``code``, ``reason``); queued messages
        are sent first. A connection no executor has taken yet closes at once; closing a
        closing or finished connection does nothing.

        Raises:
            NotFound: no connection ``cid``.
            InvalidArgument: ``code`` or ``reason`` is not a valid close frame.
        """
        try:
            cid, code, reason = _close_args({"id": cid, "code": code, "reason": reason})
        except _Invalid as e:
            raise InvalidArgument(str(e)) from None
        self._close(cid, code, reason, "client", cid)

    def _close(self, cid: str, code: int, reason: str, by: str, path: str) -> None:
        with self._cond:
            conn = self._get(cid, path)
            if conn.state in FINAL_STATES or conn.state == "closing":
                return
            if not conn.claimed:
                self._finish_locked(conn, "closed", None, None, closed_by=by, code=code,
                                    reason=reason)
                return
            conn.state = "closing"
            conn.closed_by = by
            conn.close_request = _CloseRequest(code, reason)
            self._cond.notify_all()
        conn.outgoing.set()
        conn.space.set()  # a receiver held back by a full inbox stops waiting

    def status(self, cid: str) -> dict[str, Any]:
        """The JSON of ``conns/<cid>/status`` as a dict. Raises NotFound."""
        with self._cond:
            return self._get(cid, cid).to_json()

    def ids(self) -> list[str]:
        """The ids of the connections held, oldest first."""
        with self._cond:
            return list(self._conns)

    def forget(self, cid: str) -> None:
        """Drop finished connection ``cid`` and its files.

        Raises:
            NotFound: no connection ``cid``.
            PermissionDenied: it is not finished (close it first).
        """
        self._forget(cid, cid)

    def _forget(self, cid: str, path: str) -> None:
        with self._cond:
            conn = self._get(cid, path)
            if conn.state not in FINAL_STATES:
                raise PermissionDenied(path, f"connection {cid} is {conn.state}: close it "
                                       "before removing it")
            del self._conns[cid]

    # -- executor API -----------------------------------------------------------------------

    def take_connecting(self) -> WsLink | None:
        """Claim the oldest connection no executor has taken, or None.

        From then on the executor owns its socket and must finish it (``WsLink.finish``).
        """
        with self._cond:
            for conn in self._conns.values():
                if not conn.claimed and conn.state == "connecting":
                    conn.claimed = True
                    return WsLink(self, conn)
        return None

    def _next_seq(self, conn: _Conn) -> int:
        conn.seq += 1
        return conn.seq

    def _log(self, conn: _Conn, entry: dict[str, Any]) -> None:
        conn.log.append((dumps_compact(entry) + "\n").encode("utf-8"))
        if len(conn.log) > self.max_log:
            conn.log.popleft()
            conn.log_dropped += 1

    def _finish_locked(self, conn: _Conn, state: Literal["closed", "failed"],
                       error: WsErrorKind | None, message: str | None, *,
                       closed_by: str | None = None, code: int | None = None,
                       reason: str | None = None) -> None:
        conn.state = state
        conn.error, conn.message = error, message
        conn.closed_by = closed_by if state == "closed" else conn.closed_by
        conn.close_code, conn.close_reason = code, reason
        conn.closed_at = time.time()
        conn.close_request = None
        why = f"not sent: connection {state}" + (f" ({message})" if message else "")
        while conn.outbox:
            msg = conn.outbox.popleft()
            conn.unsent += 1
            self._log(conn, {"seq": msg.seq, "dir": "out", "type": msg.type,
                             "size": len(msg.data), "ts": time.time(), "error": why})
        self._cond.notify_all()

    def _take(self, cid: str, path: str) -> tuple[MessageType, bytes] | None:
        with self._cond:
            conn = self._get(cid, path)
            if not conn.inbox:
                return None
            taken = conn.inbox.popleft()
            wake = conn.space
        wake.set()
        return taken

    # -- lookup ---------------------------------------------------------------------------

    def _get(self, cid: str, path: str) -> _Conn:
        conn = self._conns.get(cid)
        if conn is None:
            raise NotFound(path, f"no WebSocket connection with id {cid!r}")
        return conn

    def _resolve(self, path: str) -> tuple[str | None, str | None]:
        """``(conn id, file name)`` of a path under /conns; raises NotFound."""
        parts = paths.parts(path)
        if len(parts) > 1 and parts[0] in ("control", "status"):
            raise NotADirectory(path)
        if not parts or parts[0] != "conns":
            raise NotFound(path)
        if len(parts) == 1:
            return None, None
        with self._cond:
            self._get(parts[1], path)
        if len(parts) == 2:
            return parts[1], None
        if len(parts) == 3 and parts[2] in _CONN:
            return parts[1], parts[2]
        if len(parts) > 3 and parts[2] in _CONN:
            raise NotADirectory(path)
        raise NotFound(path)

    def _snapshot(self, path: str) -> bytes | None:
        """The content of a read-only file, or None for a file with live content."""
        if path == "/status":
            with self._cond:
                counts = {s: 0 for s in _STATES}
                for c in self._conns.values():
                    counts[c.state] += 1
                return dumps_pretty({**counts, "ids": list(self._conns),
                                     "last_id": self._last})
        if path == "/control":
            return None
        cid, name = self._resolve(path)
        if cid is None or name is None:
            raise IsADirectory(path)
        with self._cond:
            conn = self._get(cid, path)
            if name == "url":
                return (conn.url + "\n").encode("utf-8")
            if name == "status":
                return dumps_pretty(conn.to_json())
            if name == "log":
                return b"".join(conn.log)
            if name == "in":
                return conn.inbox[0][1] if conn.inbox else b""
        return None

    # -- primitives -----------------------------------------------------------------------

    def _stat(self, path: str) -> Stat:
        name = paths.basename(path)
        if path == "/" or path == "/conns" or (path.count("/") == 2
                                               and path.startswith("/conns/")):
            return Stat(name, len(self._listdir(path)), True, self._created, readonly=True)
        content = self._snapshot(path)
        if content is None:  # control, out, out.bin
            return Stat(name, 0, False, time.time())
        return Stat(name, len(content), False, time.time(), readonly=True)

    def _listdir(self, path: str) -> list[str]:
        if path == "/":
            return list(_ROOT)
        if path == "/conns":
            with self._cond:
                return sorted(self._conns, key=id_order)
        if path in ("/control", "/status"):
            raise NotADirectory(path)
        _cid, name = self._resolve(path)
        if name is not None:
            raise NotADirectory(path)
        return list(_CONN)

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        content = find_fixed(self, path, mode, self._snapshot, lambda p: PermissionDenied(
            p, "WsFs files are fixed: write to /control to open a connection"))
        name = paths.basename(path)
        if path == "/control":
            check_open(path, mode, Stat(name, 0, False))
            return _ControlFile(self, mode, path)
        cid = paths.parts(path)[1] if path.startswith("/conns/") else ""
        if name in _OUT:
            check_write_only(path, mode, f"{name} is write-only: read in or log")
            with self._cond:
                state = self._get(cid, path).state
            if state not in ("connecting", "open"):
                raise InvalidContent(path, f"connection {cid} is {state}: nothing more can "
                                     "be sent on it")
            kind: MessageType = "text" if name == "out" else "binary"
            return CappedFile(self.max_message_bytes, mode,
                              path, "a message",
                              on_close=lambda data: self._send_file(cid, kind, data, path))
        assert content is not None
        if name != "in":
            return read_only_file(path, mode, content)
        check_open(path, mode, Stat(name, len(content), False, readonly=True))
        return _InFile(self, cid, mode, path)

    def _send_file(self, cid: str, kind: MessageType, data: bytes, path: str) -> None:
        if not data:
            return
        if kind == "text":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InvalidContent(path, f"out takes UTF-8 text ({e}); write binary "
                                     "messages to out.bin") from None
        self._queue(cid, kind, data, path)

    def _run_command(self, line: bytes, path: str) -> str | None:
        """Run one control line; the id of a connection it opened, else None."""
        if not line.strip():
            return None
        try:
            obj = _parse_command(line)
            if obj["op"] == "open":
                url = _check_url(obj.get("url"))
                reconnect = obj.get("reconnect", False)
                if not isinstance(reconnect, bool):
                    raise _Invalid(f"reconnect must be true or false, not {reconnect!r}")
                return self._open_conn(url, reconnect, path)
            cid, code, reason = _close_args(obj)
            with self._cond:
                if cid not in self._conns:
                    raise _Invalid(f"no WebSocket connection with id {cid!r}")
            self._close(cid, code, reason, "client", path)
            return None
        except _Invalid as e:
            raise InvalidContent(path, str(e)) from None

    def _rmdir(self, path: str) -> None:
        cid, name = self._resolve(path)
        if cid is None or name is not None:
            raise PermissionDenied(path, "only conns/<id> of a finished connection can be "
                                   "removed")
        self._forget(cid, path)

    def _refused(self, path: str, op: str) -> FsError:
        return PermissionDenied(path, f"WsFs structure is fixed: {op} is not supported")

    # -- snapshots (oanix.snapshot) ---------------------------------------------------------

    snapshot_kind: ClassVar[str] = "wsfs"
    _STATE_KEYS: ClassVar[tuple[str, ...]] = (
        "id", "url", "state", "reconnect", "error", "message", "close_code", "close_reason",
        "closed_by", "sent", "sent_bytes", "received", "received_bytes", "unsent",
        "reconnects", "log_dropped", "created_at", "opened_at", "closed_at")

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        """``{"max_connections", "max_queue", "max_message_bytes", "max_log", "next",
        "last", "created_at", "conns": [{the fields of conns/<id>/status but the queue
        lengths, "log": blob of conns/<id>/log, "inbox": [[type, blob], ...]}]}``.

        A socket cannot move to another process, so only finished (closed or failed)
        connections are written.

        Raises:
            InvalidArgument: a connection is not finished (close it first); the snapshot
                raises it as ``Unsnapshottable`` naming the mount point.
        """
        with self._cond:
            live = [c.id for c in self._conns.values() if c.state not in FINAL_STATES]
            if live:
                raise InvalidArgument(f"WebSocket connection(s) {live} are live: a "
                                      f"socket cannot move; close them first")
            conns = [{**{k: v for k, v in c.to_json().items() if k in self._STATE_KEYS},
                      "log": w.blob(b"".join(c.log)),
                      "inbox": [[t, w.blob(d)] for t, d in c.inbox]}
                     for c in self._conns.values()]
            return {"max_connections": self.max_connections, "max_queue": self.max_queue,
                    "max_message_bytes": self.max_message_bytes, "max_log": self.max_log,
                    "next": self._next, "last": self._last, "created_at": self._created,
                    "conns": conns}

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> Self:
        """The WsFs of ``state``: its finished connections, with their logs and the
        messages not read yet. Raises CorruptSnapshot: a bad field."""
        where = "wsfs"
        fs = cls(**{k: r.field(state, k, int, where) for k in (
            "max_connections", "max_queue", "max_message_bytes", "max_log")})
        fs._next = r.field(state, "next", int, where)
        last = state.get("last")
        if last is not None and not isinstance(last, str):
            raise r.fail(where, "last is not a string")
        fs._last = last
        fs._created = r.field(state, "created_at", float, where)
        for i, c in enumerate(r.field(state, "conns", list, where)):
            at = f"{where} conn {i}"
            if not isinstance(c, dict) or set(c) != {*cls._STATE_KEYS, "log", "inbox"}:
                raise r.fail(at, "not a connection")
            cid = r.field(c, "id", str, at)
            if not cid.isdigit() or cid in fs._conns or int(cid) >= fs._next:
                raise r.fail(at, f"id {cid!r:.20} is not a fresh id below next")
            if c["state"] not in FINAL_STATES:
                raise r.fail(at, f"state {c['state']!r:.20} is not a finished one")
            conn = _Conn(cid, _checked_url(r.field(c, "url", str, at), r, at),
                         r.field(c, "reconnect", bool, at), r.field(c, "created_at", float, at))
            for k in cls._STATE_KEYS[2:]:
                if k not in ("reconnect", "created_at"):
                    value = c[k]
                    if isinstance(value, float | int | str | bool) or value is None:
                        setattr(conn, k, value)
                    else:
                        raise r.fail(at, f"{k} is a {type(value).__name__}")
            conn.log.extend(line + b"\n" for line in
                            r.blob(c["log"], at).split(b"\n")[:-1])
            for item in r.field(c, "inbox", list, at):
                if not (isinstance(item, list) and len(item) == 2
                        and item[0] in ("text", "binary")):
                    raise r.fail(at, "inbox holds [type, blob] pairs")
                conn.inbox.append((item[0], r.blob(item[1], at)))
            fs._conns[cid] = conn
        return fs


class WsLink:
    """An executor's hold on one claimed connection: what it reads and reports.

    ``outgoing`` is set when there is something to send or a close to make, ``space`` when
    the inbox frees room; each has one waiter, the executor's task for this connection.
    Thread safety: every method takes the WsFs lock.
    """

    def __init__(self, fs: WsFs, conn: _Conn) -> None:
        self._fs = fs
        self._conn = conn
        self.id = conn.id
        self.url = conn.url
        self.reconnect = conn.reconnect
        self.outgoing = conn.outgoing
        self.space = conn.space

    @property
    def state(self) -> WsState:
        with self._fs._cond:
            return self._conn.state

    def close_request(self) -> tuple[int, str, str] | None:
        """``(code, reason, by)`` once the agent (by ``client``) or the executor (by
        ``executor``) asked to close, else None."""
        with self._fs._cond:
            c = self._conn
            req = c.close_request
            return None if req is None else (req.code, req.reason, c.closed_by or "client")

    def request_close(self, code: int, reason: str) -> None:
        """Ask this connection to close on the executor's behalf (shutdown)."""
        self._fs._close(self.id, code, reason, "executor", self.id)

    def set_open(self) -> None:
        """Record that the handshake succeeded (a closing connection stays closing)."""
        with self._fs._cond:
            c = self._conn
            if c.state == "connecting":
                c.state = "open"
            c.opened_at = time.time()
            self._fs._cond.notify_all()

    def set_reconnecting(self, error: WsErrorKind, message: str) -> None:
        """Record a lost connection that will be tried again: back to ``connecting``."""
        with self._fs._cond:
            c = self._conn
            if c.state == "open":
                c.state = "connecting"
            c.error, c.message = error, message
            c.reconnects += 1
            self._fs._cond.notify_all()

    def next_outgoing(self) -> WsOutgoing | tuple[int, str] | None:
        """Take the next message to send; once the outbox is empty, the close request
        ``(code, reason)`` if any; else None."""
        with self._fs._cond:
            c = self._conn
            if c.outbox:
                return c.outbox.popleft()
            req = c.close_request
            return None if req is None else (req.code, req.reason)

    def unsend(self, msg: WsOutgoing) -> None:
        """Put back ``msg`` (its send failed) at the head of the outbox."""
        with self._fs._cond:
            self._conn.outbox.appendleft(msg)

    def sent(self, msg: WsOutgoing) -> None:
        """Record that ``msg`` was handed to the socket."""
        with self._fs._cond:
            c = self._conn
            c.sent += 1
            c.sent_bytes += len(msg.data)
            self._fs._log(c, {"seq": msg.seq, "dir": "out", "type": msg.type,
                              "size": len(msg.data), "ts": time.time()})

    def drop(self, msg: WsOutgoing, why: str) -> None:
        """Record that ``msg`` will never be sent, and why."""
        with self._fs._cond:
            c = self._conn
            c.unsent += 1
            self._fs._log(c, {"seq": msg.seq, "dir": "out", "type": msg.type,
                              "size": len(msg.data), "ts": time.time(), "error": why})

    def has_space(self) -> bool:
        """Whether the inbox can take one more message (always, once a close is asked
        for: the few messages still in flight are kept rather than held up)."""
        with self._fs._cond:
            c = self._conn
            return len(c.inbox) < self._fs.max_queue or c.close_request is not None

    def received(self, data: str | bytes) -> None:
        """Add a received message to the inbox (text for a str, binary for bytes)."""
        kind: MessageType = "text" if isinstance(data, str) else "binary"
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        with self._fs._cond:
            c = self._conn
            c.inbox.append((kind, raw))
            c.received += 1
            c.received_bytes += len(raw)
            self._fs._log(c, {"seq": self._fs._next_seq(c), "dir": "in", "type": kind,
                              "size": len(raw), "ts": time.time()})
            self._fs._cond.notify_all()

    def finish(self, state: Literal["closed", "failed"], error: WsErrorKind | None = None,
               message: str | None = None, *, closed_by: str | None = None,
               code: int | None = None, reason: str | None = None) -> None:
        """Finish the connection; messages still queued are recorded as unsent."""
        with self._fs._cond:
            self._fs._finish_locked(self._conn, state, error, message, closed_by=closed_by,
                                    code=code, reason=reason)


class _ControlFile(ModeFile):
    """An open ``control``: runs each complete line written; reads give the id of the
    last connection this file opened. Used by one thread at a time, like any file."""

    def __init__(self, fs: WsFs, mode: OpenMode, name: str) -> None:
        super().__init__(mode, name)
        self._fs = fs
        self._pending = bytearray()
        self._reply = b""

    def write(self, b: Any) -> int:
        self._check(self._mode.write, "writing")
        data = bytes(memoryview(b).cast("B"))
        nl = data.rfind(b"\n")
        unfinished = len(data) - nl - 1 if nl >= 0 else len(self._pending) + len(data)
        if unfinished > MAX_CONTROL_LINE:
            raise NoSpace(self.name, f"a control line is capped at {MAX_CONTROL_LINE} "
                                     f"bytes: {unfinished} refused; nothing of this write "
                                     "taken")
        self._pending += data
        while (nl := self._pending.find(b"\n")) >= 0:
            line = bytes(self._pending[:nl])
            del self._pending[:nl + 1]
            self._run(line)
        return len(data)

    def _run(self, line: bytes) -> None:
        cid = self._fs._run_command(line, self.name)
        if cid is not None:
            self._reply, self._pos = f"{cid}\n".encode(), 0

    def _flush_pending(self) -> None:
        if self._pending:
            line = bytes(self._pending)
            self._pending.clear()
            self._run(line)

    def readinto(self, b: Any) -> int:
        self._check(self._mode.read, "reading")
        self._flush_pending()
        view = memoryview(b).cast("B")
        chunk = self._reply[self._pos:self._pos + len(view)]
        view[:len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move within the reply (writes are commands and have no position)."""
        return self._seek_to(self._seek_target(offset, whence, lambda: len(self._reply)))

    def truncate(self, size: int | None = None) -> int:
        self._check(self._mode.write, "writing")
        return 0

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._flush_pending()
        finally:
            super().close()


class _InFile(BufferFile):
    """An open ``in``: takes the next message at its first read (none: an empty file)."""

    def __init__(self, fs: WsFs, cid: str, mode: OpenMode, name: str) -> None:
        super().__init__(bytearray(), mode, name)
        self._fs = fs
        self._cid = cid
        self._taken = False

    def _check_readable(self) -> None:
        super()._check_readable()
        if not self._taken:
            self._taken = True
            taken = self._fs._take(self._cid, self.name)
            if taken is not None:
                buf = self._buf
                assert isinstance(buf, bytearray)
                buf += taken[1]


def _has_message_or_ended(conn: _Conn) -> bool:
    return bool(conn.inbox) or conn.state in FINAL_STATES
