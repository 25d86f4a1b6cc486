"""HttpFs: HTTP as files (Plan 9 webfs(4) in spirit): the file is the API.

An agent writes a request file; an executor (``oanix.cap.http.executor.HttpExecutor``) performs
it; the answer appears as a file. Mounted at ``/cap/http``::

    request               write-only: each open-write-close is ONE request (JSON, below)
    last                  read-only: the id of the latest accepted request, and a newline
    status                read-only: JSON counts per state
    pending/<id>.json     read-only: an accepted request not finished yet
    responses/<id>.json   read-only: the HTTP response (any status, 4xx and 5xx included)
    errors/<id>.json      read-only: why no response could be obtained

A shell does ``echo '{"url": "https://example.com/"}' > /cap/http/request`` then
``id=$(cat /cap/http/last)`` and reads ``responses/$id.json`` or ``errors/$id.json``.
``last`` is per HttpFs: give each agent its own HttpFs, or have concurrent writers learn
their id another way (host code calls ``submit``, which returns it).

The request file holds one JSON object::

    {"method": "POST",                       optional, default GET; GET POST PUT PATCH
                                             DELETE HEAD OPTIONS (any case)
     "url": "https://api.example.com/x",     required, absolute http(s) URL
     "headers": {"Content-Type": "..."},     optional, str: str
     "body": "text" | "body_base64": "...",  optional, one of them (text is sent as UTF-8)
     "timeout": 10}                          optional seconds per attempt, default 30
                                             (``default_timeout``), at most ``max_timeout``

An empty (or all-blank) write is ignored: no id. Anything else is accepted and gets an id
(``1``, ``2``, ... per HttpFs), even when it is malformed (bad JSON, no url, an unknown
method or key, headers that are not an object): such a request goes straight to
``errors/<id>.json`` with ``"error": "invalid_request"`` and a message saying what is wrong,
and closing the file succeeds. Every accepted request ends in exactly one response or error
file; a finished request's file may be removed (``rm``) to free memory. Policy (allowlist,
size limits, injected secrets) is the executor's business: secrets never appear here.

File formats (JSON objects, UTF-8)::

    pending/<id>.json    {"id", "state": "pending"|"in_flight", "method", "url", "headers",
                          "body"|"body_base64", "timeout", "created_at"}
    responses/<id>.json  {"id", "method", "url", "status", "reason", "headers": [[name,
                          value], ...] (in order, duplicates kept), "body" (when it decodes
                          as UTF-8) | "body_base64", "duration_ms" (from the first
                          attempt, retries included), "attempts"}
    errors/<id>.json     {"id", "method", "url" (both null for an invalid request),
                          "error": kind, "message", "attempts"}
                          kind: invalid_request permission_denied request_too_large
                          response_too_large timeout connection shutdown error
    status               {"pending", "in_flight", "completed", "failed", "last_id",
                          "default_timeout"}

Host API: ``submit(dict) -> id``; ``wait(id, timeout)`` (blocking, any thread) and
``await wait_async(id, timeout)`` (trio) return the finished file's JSON as a dict;
an executor awaits ``wakeup.wait()`` (set after every accepted valid request, from the
submitting thread; one executor per HttpFs) and calls ``take_pending``, ``complete`` and
``fail``.

Locking: one ``threading.Condition`` guards all state; every method holds it briefly and
wakes the executor and waiters outside it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self

import attrs
import trio

from ... import paths
from ...errors import (
    Draining,
    FsError,
    InvalidArgument,
    InvalidContent,
    IsADirectory,
    NotADirectory,
    NotFound,
    PermissionDenied,
)
from ...files import (
    CappedFile,
    check_capped,
    check_write_only,
    find_fixed,
    id_order,
    read_only_file,
)
from ...service import FileService, OpenMode, Stat
from ...values import dumps_pretty, load_json
from ..policy import url_origin, valid_header
from ..wakeup import Wakeup

if TYPE_CHECKING:
    from ...snapshot.protocol import SnapshotReader, SnapshotWriter

__all__ = ["DEFAULT_MAX_REQUEST_FILE", "METHODS", "ErrorKind", "HttpFs", "HttpRequest"]

DEFAULT_MAX_REQUEST_FILE: Final = 16 << 20
"""``HttpFs.max_file_bytes``'s default: 16 MiB."""

METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
ErrorKind = Literal["invalid_request", "permission_denied", "request_too_large",
                    "response_too_large", "timeout", "connection", "shutdown", "error"]
_KEYS: Final = frozenset({"method", "url", "headers", "body", "body_base64", "timeout"})
_DIRS: Final = ("errors", "pending", "responses")
_ROOT_NAMES: Final = ("errors", "last", "pending", "request", "responses", "status")


class _Invalid(Exception):
    """A request file that cannot be a request; the message tells the agent why."""


@attrs.frozen
class HttpRequest:
    """An accepted, valid request, as the executor receives it (no secrets in it)."""

    id: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    timeout: float
    created_at: float

    def to_json(self, state: str) -> dict[str, Any]:
        """The content of ``pending/<id>.json`` in ``state``."""
        out: dict[str, Any] = {"id": self.id, "state": state, "method": self.method,
                               "url": self.url, "headers": dict(self.headers)}
        out.update(_body_json(self.body))
        out.update(timeout=self.timeout, created_at=self.created_at)
        return out


def _body_json(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode("ascii")}


def _dump(obj: Mapping[str, Any]) -> bytes:
    return dumps_pretty(obj, indent=1)


def _parse(data: bytes, default_timeout: float, max_timeout: float
           ) -> tuple[str, str, tuple[tuple[str, str], ...], bytes, float]:
    """``(method, url, headers, body, timeout)`` of a request file; raises _Invalid."""
    try:
        obj = load_json(data, "request")
    except InvalidContent as e:
        raise _Invalid(f"request is {e.strerror}") from None
    return _validate(obj, default_timeout, max_timeout)


def _validate(obj: object, default_timeout: float, max_timeout: float
              ) -> tuple[str, str, tuple[tuple[str, str], ...], bytes, float]:
    if not isinstance(obj, dict):
        raise _Invalid(f"request must be a JSON object, not {type(obj).__name__}")
    unknown = set(obj) - _KEYS
    if unknown:
        raise _Invalid(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    method = obj.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _Invalid(f"unknown method {method!r}; use one of {sorted(METHODS)}")
    url = obj.get("url")
    if not isinstance(url, str) or not url:
        raise _Invalid("missing url: the request needs \"url\": \"https://...\"")
    try:
        scheme, host = url_origin(url)
    except InvalidArgument as e:
        raise _Invalid(str(e)) from None
    if scheme not in ("http", "https") or not host:
        raise _Invalid(f"url {url!r} is not an absolute http(s) URL")
    headers = obj.get("headers", {})
    if not isinstance(headers, dict):
        raise _Invalid(f"headers must be a JSON object of strings, not "
                       f"{type(headers).__name__}")
    pairs: list[tuple[str, str]] = []
    for name, value in headers.items():
        if not isinstance(value, str):
            raise _Invalid(f"header {name!r} must have a string value, not {value!r}")
        if not valid_header(name, value):
            raise _Invalid(f"invalid header {name!r}: {value!r}")
        pairs.append((name, value))
    if "body" in obj and "body_base64" in obj:
        raise _Invalid("give either body or body_base64, not both")
    body = b""
    if "body" in obj:
        if not isinstance(obj["body"], str):
            raise _Invalid("body must be a string (use body_base64 for bytes)")
        body = obj["body"].encode("utf-8")
    elif "body_base64" in obj:
        try:
            body = base64.b64decode(str(obj["body_base64"]), validate=True)
        except (binascii.Error, ValueError) as e:
            raise _Invalid(f"body_base64 is not valid base64: {e}") from None
    timeout = obj.get("timeout", default_timeout)
    if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
            or not math.isfinite(timeout) or not 0 < timeout <= max_timeout):
        raise _Invalid(f"timeout must be a number of seconds in (0, {max_timeout}], "
                       f"not {timeout!r}")
    return method.upper(), url, tuple(pairs), body, float(timeout)


@attrs.define
class _Finished:
    kind: Literal["responses", "errors"]
    content: bytes
    mtime: float


class HttpFs(FileService):
    """The HTTP capability's files; see the module docstring for the protocol.

    ``default_timeout`` applies to requests without ``timeout``; ``max_timeout`` bounds it.
    ``max_file_bytes`` caps a request file (``DEFAULT_MAX_REQUEST_FILE``, 16 MiB: room for
    the policy's default 10 MiB body in base64): a write past it raises ``NoSpace`` as the
    file grows (nothing past the cap is held) and the file is not submitted.

    Locking: one ``threading.Condition`` guards every map and counter; no I/O and no
    callback runs under it.
    """

    live = True  # the WASI bridge mirrors it while a guest runs
    _draining = False  # see drain()

    is_computed: ClassVar[bool] = True  # files are snapshots computed per open (as FuncFs)

    def __init__(self, *, default_timeout: float = 30.0, max_timeout: float = 300.0,
                 max_file_bytes: int = DEFAULT_MAX_REQUEST_FILE) -> None:
        if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, int) or (
                max_file_bytes < 1):
            raise InvalidArgument(f"max_file_bytes must be an int >= 1, not "
                                  f"{max_file_bytes!r}")
        self.default_timeout = default_timeout
        self.max_timeout = max_timeout
        self.max_file_bytes = max_file_bytes
        self._cond = threading.Condition()
        self._next = 1
        self._last: str | None = None
        self._pending: dict[str, HttpRequest] = {}
        self._in_flight: dict[str, HttpRequest] = {}
        self._finished: dict[str, _Finished] = {}
        self._completed = 0
        self._failed = 0
        self.wakeup = Wakeup()
        """Set after every accepted valid request: the executor awaits it (one consumer)."""
        self._waiters: dict[str, list[Callable[[], None]]] = {}
        self._created = time.time()

    # -- host API: submitting and waiting -------------------------------------------------

    def submit(self, request: Mapping[str, Any]) -> str:
        """Accept ``request`` (the JSON object of a request file) and return its id.

        A malformed request is accepted too and finishes at once in ``errors/<id>.json``.
        """
        try:
            fields = _validate(dict(request), self.default_timeout, self.max_timeout)
        except _Invalid as e:
            return self._accept_invalid(str(e))
        return self._accept(*fields)

    def _submit_bytes(self, data: bytes) -> None:
        if not data.strip():
            return
        try:
            fields = _parse(data, self.default_timeout, self.max_timeout)
        except _Invalid as e:
            self._accept_invalid(str(e))
            return
        self._accept(*fields)

    def _new_id(self) -> str:
        self._refuse_if_draining("/request")
        rid = str(self._next)
        self._next += 1
        self._last = rid
        return rid

    def _accept(self, method: str, url: str, headers: tuple[tuple[str, str], ...],
                body: bytes, timeout: float) -> str:
        with self._cond:
            rid = self._new_id()
            self._pending[rid] = HttpRequest(rid, method, url, headers, body, timeout,
                                             time.time())
        self.wakeup.set()
        return rid

    def _accept_invalid(self, message: str) -> str:
        with self._cond:
            rid = self._new_id()
            self._finish(rid, "errors", {"id": rid, "method": None, "url": None,
                                         "error": "invalid_request", "message": message,
                                         "attempts": 0})
        self._wake_waiters(rid)
        return rid

    def result(self, rid: str) -> dict[str, Any] | None:
        """The JSON of ``rid``'s response or error file, or None while it is not finished.

        Raises:
            NotFound: no such id, or its file was removed.
        """
        with self._cond:
            return self._result_locked(rid)

    def _result_locked(self, rid: str) -> dict[str, Any] | None:
        fin = self._finished.get(rid)
        if fin is not None:
            # our own file, as written: only its size is not bounded here
            out: dict[str, Any] = load_json(fin.content, f"{fin.kind}/{rid}.json",
                                            max_bytes=len(fin.content))
            return out
        if rid in self._pending or rid in self._in_flight:
            return None
        raise NotFound(rid, f"no HTTP request with id {rid!r} (never accepted, or removed)")

    def wait(self, rid: str, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until ``rid`` finishes and return its file's JSON (None on timeout).

        Usable from any thread except the executor's own trio thread.

        Raises:
            NotFound: see ``result``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while (res := self._result_locked(rid)) is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return res

    async def wait_async(self, rid: str, timeout: float | None = None
                         ) -> dict[str, Any] | None:
        """``wait`` for trio callers: wakes when ``rid`` finishes, without polling.

        Raises:
            NotFound: see ``result``.
        """
        token = trio.lowlevel.current_trio_token()
        event = trio.Event()
        trio_thread = threading.get_ident()

        def wake() -> None:
            if threading.get_ident() == trio_thread:
                event.set()  # finished by a task of this run: no need to go through a queue
                return
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(event.set)

        with self._cond:
            res = self._result_locked(rid)
            if res is not None:
                return res
            self._waiters.setdefault(rid, []).append(wake)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                await event.wait()
        finally:
            with self._cond:
                waiters = self._waiters.get(rid)
                if waiters is not None and wake in waiters:
                    waiters.remove(wake)
                    if not waiters:
                        del self._waiters[rid]
        return self.result(rid)

    # -- executor API ---------------------------------------------------------------------

    def take_pending(self) -> HttpRequest | None:
        """Move the oldest pending request to in flight and return it (None if none)."""
        with self._cond:
            if not self._pending or self._draining:
                return None
            rid = next(iter(self._pending))
            req = self._in_flight[rid] = self._pending.pop(rid)
            return req

    def complete(self, rid: str, *, status: int, reason: str = "",
                 headers: Sequence[tuple[str, str]] = (), body: bytes = b"",
                 duration_ms: float = 0.0, attempts: int = 1) -> bool:
        """Finish in-flight ``rid`` with an HTTP response.

        Returns False (and records nothing) when ``rid`` is not in flight: it was already
        finished, so every request keeps exactly one result.
        """
        with self._cond:
            req = self._in_flight.pop(rid, None)
            if req is None:
                return False
            content: dict[str, Any] = {
                "id": rid, "method": req.method, "url": req.url, "status": status,
                "reason": reason, "headers": [[n, v] for n, v in headers]}
            content.update(_body_json(body))
            content.update(duration_ms=round(duration_ms, 3), attempts=attempts)
            self._finish(rid, "responses", content)
            self._completed += 1
        self._wake_waiters(rid)
        return True

    def fail(self, rid: str, error: ErrorKind, message: str, attempts: int = 0) -> bool:
        """Finish pending or in-flight ``rid`` with an error file.

        Returns False (and records nothing) when ``rid`` was already finished.
        """
        with self._cond:
            req = self._in_flight.pop(rid, None) or self._pending.pop(rid, None)
            if req is None:
                return False
            self._finish(rid, "errors", {"id": rid, "method": req.method, "url": req.url,
                                         "error": error, "message": message,
                                         "attempts": attempts})
        self._wake_waiters(rid)
        return True

    def _finish(self, rid: str, kind: Literal["responses", "errors"],
                content: Mapping[str, Any]) -> None:
        """Record ``rid``'s result; call with the lock held."""
        self._finished[rid] = _Finished(kind, _dump(content), time.time())
        if kind == "errors":
            self._failed += 1
        self._cond.notify_all()

    def _wake_waiters(self, rid: str) -> None:
        with self._cond:
            waiters = self._waiters.pop(rid, [])
        for fn in waiters:
            fn()

    def counts(self) -> dict[str, int]:
        """Requests per state: pending, in_flight, completed (responses), failed (errors)."""
        with self._cond:
            return {"pending": len(self._pending), "in_flight": len(self._in_flight),
                    "completed": self._completed, "failed": self._failed}

    # -- files ----------------------------------------------------------------------------

    def _status(self) -> bytes:
        counts = self.counts()
        with self._cond:
            last = self._last
        return _dump({**counts, "last_id": last, "default_timeout": self.default_timeout})

    def _last_bytes(self) -> bytes:
        with self._cond:
            return b"" if self._last is None else self._last.encode("ascii") + b"\n"

    def _content(self, path: str) -> bytes | None:
        """The content of read-only file ``path``; None for ``request``.

        Raises:
            NotFound, NotADirectory, IsADirectory: ``path`` is not a file here.
        """
        parent, name = paths.split(path)
        if parent == "/":
            if name == "request":
                return None
            if name == "status":
                return self._status()
            if name == "last":
                return self._last_bytes()
            if name in _DIRS:
                raise IsADirectory(path)
            raise NotFound(path)
        top, dname = paths.split(parent)
        if top != "/" or dname not in _DIRS:
            if top == "/" and dname in ("request", "status", "last"):
                raise NotADirectory(path)
            raise NotFound(path)
        rid = name[:-5] if name.endswith(".json") else None
        with self._cond:
            if dname == "pending" and rid is not None:
                if rid in self._pending:
                    return _dump(self._pending[rid].to_json("pending"))
                if rid in self._in_flight:
                    return _dump(self._in_flight[rid].to_json("in_flight"))
            fin = self._finished.get(rid) if rid is not None else None
            if fin is not None and fin.kind == dname:
                return fin.content
        raise NotFound(path)

    def _stat(self, path: str) -> Stat:
        name = paths.basename(path)
        if path == "/" or path[1:] in _DIRS:
            return Stat(name, len(self._listdir(path)), True, self._created, readonly=True)
        content = self._content(path)
        if content is None:
            return Stat(name, 0, False, self._created)
        return Stat(name, len(content), False, time.time(), readonly=True)

    def _listdir(self, path: str) -> list[str]:
        if path == "/":
            return list(_ROOT_NAMES)
        if path[1:] not in _DIRS:
            self._content(path)  # raises NotFound / NotADirectory
            raise NotADirectory(path)
        with self._cond:
            if path == "/pending":
                ids = [*self._in_flight, *self._pending]
            else:
                kind = path[1:]
                ids = [rid for rid, fin in self._finished.items() if fin.kind == kind]
        return [f"{rid}.json" for rid in sorted(ids, key=id_order)]

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        self._refuse_if_draining(path, mode)
        content = find_fixed(self, path, mode, self._content, lambda p: PermissionDenied(
            p, "HttpFs files are fixed: write to /request"))
        if content is None:
            check_write_only(path, mode, "request is write-only: read last, then "
                             "responses/<id>.json or errors/<id>.json")
            return CappedFile(self.max_file_bytes, mode, path,
                              "a request file", on_close=self._submit_bytes)
        return read_only_file(path, mode, content)

    def _read_bytes(self, path: str) -> bytes:
        content = self._content(path)
        if content is None:
            raise PermissionDenied(path, "request is write-only")
        return content

    def _write_bytes(self, path: str, data: bytes) -> None:
        if path == "/request":
            check_capped(path, len(data), self.max_file_bytes, "a request file")
            self._submit_bytes(data)
        else:
            super()._write_bytes(path, data)

    def _remove(self, path: str) -> None:
        parent, name = paths.split(path)
        if parent in ("/responses", "/errors") and name.endswith(".json"):
            with self._cond:
                fin = self._finished.get(name[:-5])
                if fin is not None and fin.kind == parent[1:]:
                    del self._finished[name[:-5]]
                    return
        self._content(path)  # raises NotFound / IsADirectory for what is not a file
        raise PermissionDenied(path, "only finished responses/ and errors/ files can be "
                               "removed")

    def _refused(self, path: str, op: str) -> FsError:
        return PermissionDenied(path, f"HttpFs structure is fixed: {op} is not supported")

    # -- draining and snapshots (oanix.snapshot) ---------------------------------------------

    def drain(self) -> None:
        """Accept no new request (writing ``request`` or ``submit`` raises ``Draining``)
        and hand no pending one to an executor; in-flight requests go on. For a
        stop-and-copy move: what is still pending moves with the snapshot."""
        with self._cond:
            self._draining = True

    def _refuse_if_draining(self, path: str, mode: OpenMode | None = None) -> None:
        """Raise Draining for a new request (``mode``: an open of ``path``) while draining."""
        if self._draining and path == "/request" and (mode is None or mode.write):
            raise Draining(path, "the HTTP capability is draining (its environment is "
                                 "moving): no new requests")

    def undrain(self) -> None:
        """Accept and hand out requests again (a move given up)."""
        with self._cond:
            self._draining = False
        self.wakeup.set()

    def wait_in_flight(self, timeout: float | None = None) -> bool:
        """Block until no request is in flight; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    snapshot_kind: ClassVar[str] = "httpfs"

    def snapshot_state(self, w: SnapshotWriter) -> dict[str, Any]:
        """``{"default_timeout", "max_timeout", "max_file_bytes", "next": the next id,
        "last", "created_at", "completed", "failed", "pending": [request, ...],
        "in_flight": [request, ...], "finished": [{"id", "kind": "responses" | "errors",
        "mtime", "content": blob of the file}, ...]}``; a request is ``{"id", "method",
        "url", "headers": [[name, value], ...], "body": blob, "timeout", "created_at"}``.
        A restored HttpFs performs the pending requests, and fails the ones that were in
        flight with ``shutdown`` (they may have been performed: never twice)."""
        def req(r: HttpRequest) -> dict[str, Any]:
            return {"id": r.id, "method": r.method, "url": r.url,
                    "headers": [list(h) for h in r.headers], "body": w.blob(r.body),
                    "timeout": r.timeout, "created_at": r.created_at}

        with self._cond:
            return {"default_timeout": self.default_timeout, "max_timeout": self.max_timeout,
                    "max_file_bytes": self.max_file_bytes, "next": self._next,
                    "last": self._last, "created_at": self._created,
                    "completed": self._completed, "failed": self._failed,
                    "pending": [req(r) for r in self._pending.values()],
                    "in_flight": [req(r) for r in self._in_flight.values()],
                    "finished": [{"id": rid, "kind": f.kind, "mtime": f.mtime,
                                  "content": w.blob(f.content)}
                                 for rid, f in self._finished.items()]}

    @classmethod
    def restore_state(cls, state: Mapping[str, Any], r: SnapshotReader) -> Self:
        """The HttpFs of ``state`` (see ``snapshot_state``), not draining.

        Raises:
            CorruptSnapshot: a bad field or request, or an id given twice.
        """
        where = "httpfs"
        fs = cls(default_timeout=r.field(state, "default_timeout", float, where),
                 max_timeout=r.field(state, "max_timeout", float, where),
                 max_file_bytes=r.field(state, "max_file_bytes", int, where))
        fs._next = r.field(state, "next", int, where)
        last = state.get("last")
        if last is not None and not isinstance(last, str):
            raise r.fail(where, f"last is {last!r:.40}")
        fs._last = last
        fs._created = r.field(state, "created_at", float, where)
        fs._completed = r.field(state, "completed", int, where)
        fs._failed = r.field(state, "failed", int, where)
        seen: set[str] = set()

        def rid_of(obj: Mapping[str, Any], at: str) -> str:
            rid = r.field(obj, "id", str, at)
            if not rid.isdigit() or rid in seen or int(rid) >= fs._next:
                raise r.fail(at, f"id {rid!r:.40} is not a fresh id below next")
            seen.add(rid)
            return rid

        def request(obj: object, at: str) -> HttpRequest:
            if not isinstance(obj, dict):
                raise r.fail(at, "a request is not an object")
            headers = r.field(obj, "headers", list, at)
            if not all(isinstance(h, list) and len(h) == 2 for h in headers):
                raise r.fail(at, "headers are not [name, value] pairs")
            try:
                method, url, pairs, body, timeout = _validate(
                    {"method": r.field(obj, "method", str, at),
                     "url": r.field(obj, "url", str, at), "headers": dict(headers),
                     "body_base64": base64.b64encode(r.blob(obj.get("body"), at)).decode(),
                     "timeout": r.field(obj, "timeout", float, at)},
                    fs.default_timeout, fs.max_timeout)
            except _Invalid as e:
                raise r.fail(at, str(e)) from None
            return HttpRequest(rid_of(obj, at), method, url, pairs, body, timeout,
                               r.field(obj, "created_at", float, at))

        for i, obj in enumerate(r.field(state, "pending", list, where)):
            req = request(obj, f"{where} pending {i}")
            fs._pending[req.id] = req
        for i, obj in enumerate(r.field(state, "finished", list, where)):
            at = f"{where} finished {i}"
            if not isinstance(obj, dict) or obj.get("kind") not in ("responses", "errors"):
                raise r.fail(at, "not a finished request")
            fs._finished[rid_of(obj, at)] = _Finished(
                obj["kind"], r.blob(obj.get("content"), at), r.field(obj, "mtime", float, at))
        for i, obj in enumerate(r.field(state, "in_flight", list, where)):
            req = request(obj, f"{where} in_flight {i}")
            with fs._cond:
                fs._finish(req.id, "errors", {
                    "id": req.id, "method": req.method, "url": req.url, "error": "shutdown",
                    "message": "in flight when the environment was snapshotted: it may "
                               "have been performed, and is not performed again",
                    "attempts": 0})
        if fs._pending:
            fs.wakeup.set()
        return fs


def _id_key(rid: str) -> tuple[int, str]:
    return (int(rid), rid) if rid.isdigit() else (0, rid)
