"""Processes as files: a guest asks its environment to run a command line.

CPython for WASI cannot fork, yet agents' scripts and tasks' tests call ``subprocess``.
``ProcFs`` gives the sandbox a process capability in the spirit of Plan 9's ``/proc``
and ``/net``: a guest writes one JSON request to ``request`` and reads the outcome from
``done/<id>.json``::

    request          write-only: {"id", "argv": [...] | "command": "...", "cwd", "env",
                     "stdin_b64", "timeout"}; "id" is the caller's (letters, digits, - _)
    done/<id>.json   {"id", "status", "stdout_b64", "stderr_b64", "timed_out", "error"}
                     removable once read

The service only parses and records; ``runner(request) -> ProcResult`` runs the command
(``OanixEnv`` supplies one that runs it over the files of the run that asked, so a child
sees what its parent wrote and the parent sees what the child wrote). The write of a
request returns once the command has finished; a bad request still ends in a
``done`` file naming the fault, as long as it carries a usable id.

``live = True``: the WASI bridge delivers a guest's request while the guest runs, so a
guest can wait for its answer (``oanix.wasi.guest_subprocess`` does, for ``subprocess``).

Locking: one lock guards the table of results; runs are not serialised by the service
(the runner decides).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import attrs

from .. import paths
from ..errors import (
    FsError,
    InvalidContent,
    IsADirectory,
    NotADirectory,
    NotFound,
    PermissionDenied,
)
from ..files import BufferFile, check_write_only, read_only_file, refuse_dir
from ..service import FileService, OpenMode, Stat
from ..values import dumps_line, load_json

__all__ = ["ProcFs", "ProcRequest", "ProcResult", "Runner"]

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_REQUEST: Final = 64 << 20
"""The largest request accepted (its stdin included), in bytes."""
MAX_RESULTS: Final = 256
"""Finished results kept before the oldest is dropped (a guest removes what it read)."""
MAX_RESULT_BYTES: Final = 64 << 20
"""The bytes of finished results kept before the oldest are dropped (the newest stays)."""


@attrs.frozen
class ProcRequest:
    """One command line to run: ``argv`` (run as given) or ``command`` (``sh -c``)."""

    id: str
    argv: tuple[str, ...] | None
    command: str | None
    cwd: str | None = None
    env: dict[str, str] | None = None
    stdin: bytes = b""
    timeout: float | None = None


@attrs.frozen
class ProcResult:
    """What a command did; ``error`` says why it could not run at all."""

    status: int
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    error: str | None = None

    def to_json(self, rid: str) -> dict[str, Any]:
        return {"id": rid, "status": self.status,
                "stdout_b64": base64.b64encode(self.stdout).decode(),
                "stderr_b64": base64.b64encode(self.stderr).decode(),
                "timed_out": self.timed_out, "error": self.error}


Runner = Callable[[ProcRequest], ProcResult]


def parse_request(data: bytes) -> ProcRequest:
    """The request in ``data``.

    Raises:
        InvalidContent: naming the field at fault (its message starts with the id, when
            there is a usable one, as ``<id>: ``).
    """
    if len(data) > MAX_REQUEST:
        raise InvalidContent("/request", f"a request is at most {MAX_REQUEST} bytes")
    doc = load_json(data, "/request", max_bytes=MAX_REQUEST)
    if not isinstance(doc, dict):
        raise InvalidContent("/request", "a request is a JSON object")
    rid = doc.get("id")
    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        raise InvalidContent("/request", '"id" must be 1-64 letters, digits, "-" or "_"')

    def bad(field: str, why: str) -> InvalidContent:
        return InvalidContent("/request", f"{rid}: {field!r} {why}")

    argv, command = doc.get("argv"), doc.get("command")
    if (argv is None) == (command is None):
        raise bad("argv", 'or "command": exactly one is needed')
    if argv is not None and (not isinstance(argv, list) or not argv
                             or not all(isinstance(a, str) for a in argv)):
        raise bad("argv", "must be a non-empty list of strings")
    if command is not None and not isinstance(command, str):
        raise bad("command", "must be a string")
    cwd = doc.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not cwd.startswith("/")):
        raise bad("cwd", "must be an absolute path")
    env = doc.get("env")
    if env is not None and (not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
        raise bad("env", "must map strings to strings")
    timeout = doc.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(
            timeout, int | float) or not 0 < timeout < 1e9):
        raise bad("timeout", "must be a positive number of seconds")
    try:
        stdin = base64.b64decode(doc.get("stdin_b64") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise bad("stdin_b64", "is not base64") from None
    return ProcRequest(rid, tuple(argv) if argv is not None else None, command, cwd,
                       env, stdin, float(timeout) if timeout is not None else None)


class ProcFs(FileService):
    """The process capability (see the module docstring); ``runner`` runs requests."""

    live = True
    live_only = True  # a guest waits for its answer: staged after the run, none would come

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._lock = threading.Lock()
        self._done: dict[str, bytes] = {}  # id -> the JSON of its result, oldest first
        self._bytes = 0  # their total size
        self._created = time.time()

    # -- requests ---------------------------------------------------------------------------

    def submit(self, data: bytes) -> None:
        """Run the request in ``data`` and record its result under its id.

        Raises:
            InvalidContent: the request has no usable id (otherwise a fault is recorded
                in ``done/<id>.json``).
        """
        try:
            req = parse_request(data)
        except InvalidContent as e:
            rid, sep, why = (e.strerror or "").partition(": ")
            if sep and _ID.fullmatch(rid):
                self._record(rid, ProcResult(127, error=why))
                return
            raise
        try:
            result = self._runner(req)
        except Exception as e:  # the runner's fault reaches the caller as a result
            result = ProcResult(127, error=f"{type(e).__name__}: {e}")
        self._record(req.id, result)

    def _record(self, rid: str, result: ProcResult) -> None:
        data = dumps_line(result.to_json(rid))
        with self._lock:
            self._bytes -= len(self._done.pop(rid, b""))
            self._done[rid] = data
            self._bytes += len(data)
            while len(self._done) > 1 and (len(self._done) > MAX_RESULTS
                                           or self._bytes > MAX_RESULT_BYTES):
                self._bytes -= len(self._done.pop(next(iter(self._done))))

    # -- the file tree ----------------------------------------------------------------------

    def _result(self, path: str) -> bytes:
        parent, name = paths.split(path)
        if parent != "/done":
            if parent == "/" and name not in ("request", "done"):
                raise NotFound(path)
            if parent in ("/request",):
                raise NotADirectory(path)
            raise NotFound(path)
        with self._lock:
            data = self._done.get(name[:-5]) if name.endswith(".json") else None
        if data is None:
            raise NotFound(path)
        return data

    def _stat(self, path: str) -> Stat:
        if path in ("/", "/done"):
            return Stat(paths.basename(path), len(self._listdir(path)), True, self._created,
                        readonly=True)
        if path == "/request":
            return Stat("request", 0, False, self._created)
        return Stat(paths.basename(path), len(self._result(path)), False, readonly=True)

    def _listdir(self, path: str) -> list[str]:
        if path == "/":
            return ["done", "request"]
        if path == "/done":
            with self._lock:
                return [f"{rid}.json" for rid in self._done]
        self._stat(path)
        raise NotADirectory(path)

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        if path in ("/", "/done"):
            refuse_dir(path, mode)
        if path == "/request":
            check_write_only(path, mode, "request is write-only: read done/<id>.json")
            return BufferFile(bytearray(), mode, path, on_close=self.submit)
        try:
            data = self._result(path)
        except NotFound:
            if mode.create and path.startswith("/done/"):
                raise PermissionDenied(path, "only the service writes done/") from None
            raise
        return read_only_file(path, mode, data)

    def _read_bytes(self, path: str) -> bytes:
        if path == "/request":
            raise PermissionDenied(path, "request is write-only: read done/<id>.json")
        if path in ("/", "/done"):
            raise IsADirectory(path)
        return self._result(path)

    def _write_bytes(self, path: str, data: bytes) -> None:
        if path == "/request":
            self.submit(data)
        else:
            super()._write_bytes(path, data)

    def _remove(self, path: str) -> None:
        self._result(path)
        with self._lock:
            self._bytes -= len(self._done.pop(paths.basename(path)[:-5], b""))

    def _refused(self, path: str, op: str) -> FsError:
        return PermissionDenied(path, f"ProcFs files are fixed: {op} is not supported")
