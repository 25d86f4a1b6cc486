"""SqlFs: SQL over a database the host names, as files. Mounted at ``/cap/sql``::

    query     write-only: each open-write-close is ONE query: SQL text (one statement),
              or a JSON object {"sql": "...", "params": [...] | {"name": ...}}
    result    read-only: the JSON result of this SqlFs's latest query

A shell does ``echo 'SELECT name FROM users LIMIT 3' > /cap/sql/query`` then
``cat /cap/sql/result`` (``SELECT sql FROM sqlite_schema`` shows the tables). Parameters
are JSON scalars, or ``{"base64": "..."}`` for a blob. The query runs when the file is
closed, before ``close`` returns; in a wasm run the service is live, so a guest reads
``result`` right after writing ``query``. The result is per SqlFs: give each agent its
own (they may name one database).

The result file::

    {"id": n, "columns": ["name", ...], "rows": [["ann", ...], ...], "row_count": 3,
     "truncated": false, "changes": 0}
    {"id": n, "error": kind, "message": "..."}       the query did not run, or failed

A blob comes back as ``{"base64": "..."}``, an infinite float as ``"Infinity"`` or
``"-Infinity"``, text that is not UTF-8 with U+FFFD for the bad bytes. ``truncated`` is
true when rows were left out to stay within ``max_rows`` rows or ``max_result_bytes``
bytes of JSON; ``changes`` counts the rows a write changed. Error kinds: ``invalid_query``
(not one statement, bad JSON or params), ``read_only`` (a write to a read-only database),
``not_authorized`` (ATTACH, VACUUM INTO, a PRAGMA that is not a read of the schema,
load_extension, transaction control), ``timeout`` (it ran past ``timeout`` seconds),
``too_large`` (one value over ``max_result_bytes``), ``sql_error`` (what SQLite said: a
syntax error, no such table, a lock held too long), ``error`` (anything else). A Python
traceback never reaches the file.

Read-only unless the host passes ``writable=True``, by three locks, each enough alone:
the file is opened with ``mode=ro`` (SQLite refuses every write), ``PRAGMA query_only``
is set, and an authorizer refuses what could reach another file or lift the others:
ATTACH/DETACH (and VACUUM INTO, through a limit of 0 attached databases), every PRAGMA
but schema introspection, ``load_extension`` (also never enabled), and BEGIN/COMMIT/
SAVEPOINT (each query is one transaction, so no agent holds a lock between queries).
``writable=True`` lifts only the first two.

Bounds, so an agent cannot hang or flood the host: queries run in a separate process
(``_sql_worker``, started on the first query); a query is stopped at ``timeout`` seconds
by SQLite's progress handler, and one stuck inside a single SQL function (``instr`` or
``LIKE`` over megabyte strings) is killed with its process ``KILL_GRACE`` seconds later
(the next query starts a new one; a write in progress is rolled back by SQLite). A write
waits at most ``timeout`` for another process's lock. Any one string or blob is at most
``max_result_bytes`` (SQLite's length limit), a result at most ``max_rows`` rows and
``max_result_bytes`` bytes of JSON, a query file at most ``max_file_bytes``.

Locking: one lock guards the worker process and the result; a query holds it while it
runs (at most ``timeout + KILL_GRACE`` seconds), so the queries of one SqlFs run one at a
time.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from typing import Any, ClassVar, Final

from .. import paths
from .._sqlite import connect, translate
from ..errors import (
    InvalidContent,
    IsADirectory,
    NotADirectory,
    NotFound,
    PermissionDenied,
)
from ..files import BufferFile, CappedFile, check_capped
from ..service import FileService, OpenMode, Stat, check_open
from ..values import dumps_pretty, load_json, parse_count, parse_duration
from . import _sql_worker
from ._sql_worker import INTROSPECTION_PRAGMAS, timeout_error

__all__ = ["INTROSPECTION_PRAGMAS", "KILL_GRACE", "SqlFs"]

KILL_GRACE: Final = 0.5
"""Seconds past its timeout after which a query's process is killed."""

_FILES: Final = ("query", "result")
_WORKER: Final = os.path.abspath(_sql_worker.__file__)


class SqlFs(FileService):
    """Queries on the SQLite database at ``path``; see the module docstring.

    ``writable`` allows writes (and creates a missing file); otherwise the file must
    exist. ``timeout`` is seconds per query (a number or ``"500ms"``), ``max_rows`` and
    ``max_result_bytes`` bound a result, ``max_file_bytes`` a query file. Use it as a
    context manager, or call ``close`` (which ends its query process).

    Raises:
        NotFound, PermissionDenied: the database cannot be opened.
        InvalidContent: ``path`` is not an SQLite database.
        InvalidArgument: a bound that is not a positive number.
    """

    live = True  # the WASI bridge mirrors it while a guest runs
    is_computed: ClassVar[bool] = True  # the result changes without a write to it

    def __init__(self, path: str, *, writable: bool = False, timeout: float | str = 2.0,
                 max_rows: int = 1000, max_result_bytes: int = 1 << 20,
                 max_file_bytes: int = 1 << 20) -> None:
        self.path = path
        self.writable = writable
        self.timeout = parse_duration(timeout, "timeout", maximum=3600)
        self.max_rows = parse_count(max_rows, "max_rows", minimum=1)
        self.max_result_bytes = parse_count(max_result_bytes, "max_result_bytes",
                                            minimum=64, maximum=1 << 30)
        self.max_file_bytes = parse_count(max_file_bytes, "max_file_bytes", minimum=64,
                                          maximum=1 << 30)
        conn = connect(path, readonly=not writable, create=writable)
        try:  # refuse a file that is not a database now, with a typed error
            conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        except sqlite3.Error as exc:
            raise translate(exc, path, "opening a database for SqlFs") from None
        finally:
            conn.close()
        self._lock = threading.Lock()
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._queries = 0
        self._result = b""
        self._result_mtime = self._created = time.time()

    def close(self) -> None:
        """End the query process. Idempotent."""
        with self._lock:
            self._closed = True
            self._stop_worker()

    def __enter__(self) -> SqlFs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqlFs({self.path!r}, writable={self.writable})"

    # -- the query process (under the lock) ------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {"path": self.path, "writable": self.writable, "timeout": self.timeout,
                "max_rows": self.max_rows, "max_result_bytes": self.max_result_bytes,
                "max_sql_bytes": self.max_file_bytes}

    def _worker(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._stop_worker()
            # -I -S: no environment, no site-packages; the worker needs the stdlib only
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", _WORKER], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
            except OSError as e:
                raise _WorkerFailed({"error": "error", "message": "cannot start the query "
                                     f"process: {e}"}) from None
            # an SqlFs dropped without close() (or alive at exit) still ends its process
            self._finalizer = weakref.finalize(self, _end_process, self._proc)
            answer = self._ask(self._settings(), 30.0)
            if "error" in answer:
                self._stop_worker()
                raise _WorkerFailed(answer)
        return self._proc

    def _stop_worker(self) -> None:
        self._proc = None
        if self._finalizer is not None:
            self._finalizer()  # _end_process, once
            self._finalizer = None

    def _ask(self, message: dict[str, Any], limit: float) -> dict[str, Any]:
        """Send one JSON line to the worker and read its one-line answer within ``limit``
        seconds; a worker that overruns is killed (answered as a timeout)."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            line = json.dumps(message, allow_nan=False).encode("utf-8") + b"\n"
        except (TypeError, ValueError) as e:
            return {"error": "invalid_query", "message": f"params are not JSON data: {e}"}
        try:
            proc.stdin.write(line)
            proc.stdin.flush()
        except OSError:
            return self._died()
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + limit
        chunks: list[bytes] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self._stop_worker()
                return timeout_error(self.timeout)
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return self._died()
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                break
        data = b"".join(chunks)
        try:
            answer: dict[str, Any] = load_json(data, "the query process's answer",
                                               max_bytes=len(data))
        except InvalidContent as e:
            self._stop_worker()
            return {"error": "error", "message": str(e.strerror)}
        return answer

    def _died(self) -> dict[str, Any]:
        proc = self._proc
        code = None if proc is None else proc.poll()
        self._stop_worker()
        return {"error": "error", "message": f"the query process ended (exit {code}); the "
                                             "next query starts a new one"}

    # -- queries --------------------------------------------------------------------------

    def execute(self, sql: str, params: list[Any] | dict[str, Any] | None = None
                ) -> dict[str, Any]:
        """Run one query (as a ``query`` file would) and return the result's JSON; it
        also becomes the ``result`` file."""
        with self._lock:
            result = self._run(sql, [] if params is None else params)
            return self._record(result)

    def _record(self, result: dict[str, Any]) -> dict[str, Any]:
        """Number ``result`` and make it the result file; call with the lock held."""
        self._queries += 1
        result = {"id": self._queries, **result}
        self._result = dumps_pretty(result, indent=1)
        self._result_mtime = time.time()
        return result

    def _run(self, sql: str, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        if self._closed:
            return {"error": "error", "message": f"the SqlFs of {self.path} is closed"}
        try:
            self._worker()
        except _WorkerFailed as e:
            return e.answer
        return self._ask({"sql": sql, "params": params}, self.timeout + KILL_GRACE)

    def _submit(self, data: bytes) -> None:
        if not data.strip():
            return
        parsed = _parse(data)
        with self._lock:
            if isinstance(parsed, dict):
                self._record(parsed)
            else:
                self._record(self._run(*parsed))

    # -- files ----------------------------------------------------------------------------

    def _content(self, path: str) -> bytes | None:
        """The content of ``path``; None for ``query``."""
        if path == "/":
            raise IsADirectory(path)
        parent, name = paths.split(path)
        if parent != "/":
            if paths.parts(path)[0] in _FILES:
                raise NotADirectory(path)
            raise NotFound(path)
        if name == "query":
            return None
        if name == "result":
            with self._lock:
                return self._result
        raise NotFound(path)

    def _stat(self, path: str) -> Stat:
        if path == "/":
            return Stat("", len(_FILES), True, self._created, readonly=True)
        content = self._content(path)
        name = paths.basename(path)
        if content is None:
            return Stat(name, 0, False, self._created)
        return Stat(name, len(content), False, self._result_mtime, readonly=True)

    def _listdir(self, path: str) -> list[str]:
        if path != "/":
            self._content(path)
            raise NotADirectory(path)
        return list(_FILES)

    def _read_bytes(self, path: str) -> bytes:
        content = self._content(path)
        if content is None:
            raise PermissionDenied(path, "query is write-only: read result")
        return content

    def _open(self, path: str, mode: OpenMode) -> io.RawIOBase:
        try:
            content = self._content(path)
        except NotFound:
            if mode.create and paths.dirname(path) == "/":
                raise PermissionDenied(path, "SqlFs files are fixed: write to /query"
                                       ) from None
            raise
        except IsADirectory:
            check_open(path, mode, Stat("", 0, True, readonly=True))
            raise
        if content is None:
            check_open(path, mode, Stat("query", 0, False))
            if mode.read:
                raise PermissionDenied(path, "query is write-only: read result")
            return CappedFile(self.max_file_bytes, mode, path,
                              "a query file", on_close=self._submit)
        check_open(path, mode, Stat(paths.basename(path), len(content), False,
                                    readonly=True))
        return BufferFile(content, mode, path)

    def _write_bytes(self, path: str, data: bytes) -> None:
        if path == "/query":
            check_capped(path, len(data), self.max_file_bytes, "a query file")
            self._submit(data)
        else:
            super()._write_bytes(path, data)

    def _refused(self, path: str, op: str) -> PermissionDenied:
        return PermissionDenied(path, f"SqlFs files are fixed: {op} is not supported")


def _end_process(proc: subprocess.Popen[bytes]) -> None:
    """Kill the query process ``proc``, reap it and close its pipes."""
    with contextlib.suppress(OSError):
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


class _WorkerFailed(Exception):
    """The query process could not open the database; ``answer`` says why."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer.get("message"))
        self.answer = answer


def _parse(data: bytes) -> tuple[str, list[Any] | dict[str, Any]] | dict[str, Any]:
    """The SQL and parameters of a query file, or the error result saying why not."""
    def invalid(message: str) -> dict[str, Any]:
        return {"error": "invalid_query", "message": message}

    if data.lstrip()[:1] != b"{":
        try:
            return data.decode("utf-8"), []
        except UnicodeDecodeError as e:
            return invalid(f"the query is not UTF-8: {e}")
    try:
        obj = load_json(data, "query")
    except InvalidContent as e:
        return invalid(f"the query is {e.strerror}")
    if not isinstance(obj, dict) or set(obj) - {"sql", "params"} or not isinstance(
            obj.get("sql"), str):
        return invalid('a JSON query is {"sql": "...", "params": [...] or {...}} (params '
                       "optional)")
    params = obj.get("params", [])
    if not isinstance(params, list | dict):
        return invalid("params must be a JSON array or object")
    return obj["sql"], params
