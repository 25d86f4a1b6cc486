"""SqlFs: SQL over a database the host names, as files. Mounted at ``/cap/sql``::

    query     write-only: each open-write-close is ONE query: SQL text (one statement),
              or a JSON object {"sql": "...", "params": [...] | {"name": ...}}
    result    read-only: the JSON result of this SqlFs's latest query
    schema    read-only: the database's CREATE statements, one per line

A shell does ``echo 'SELECT name FROM users LIMIT 3' > /cap/sql/query`` then
``cat /cap/sql/result``. Parameters are JSON scalars, or ``{"base64": "..."}`` for a blob.
The query runs when the file is closed, before ``close`` returns; in a wasm run the
service is live, so a guest reads ``result`` right after writing ``query``. The result
is per SqlFs: give each agent its own (they may name one database).

The result file::

    {"id": n, "columns": ["name", ...], "rows": [["ann", ...], ...], "row_count": 3,
     "truncated": false, "changes": 0}
    {"id": n, "error": kind, "message": "..."}       the query did not run, or failed

A blob comes back as ``{"base64": "..."}``, an infinite float as ``"Infinity"`` or
``"-Infinity"``. ``truncated`` is true when rows were left out to stay within
``max_rows`` rows or ``max_result_bytes`` bytes of JSON. Error kinds: ``invalid_query``
(not one statement, bad JSON or params), ``read_only`` (a write to a read-only database),
``not_authorized`` (ATTACH, VACUUM INTO, a PRAGMA that is not a read of the schema,
load_extension, transaction control), ``timeout`` (it ran past ``timeout`` seconds),
``too_large`` (one value over ``max_result_bytes``), ``sql_error`` (what SQLite said: a
syntax error, no such table), ``error`` (anything else). A Python traceback never
reaches the file.

Read-only unless the host passes ``writable=True``, by three locks, each enough alone:
the file is opened with ``mode=ro`` (SQLite refuses every write), ``PRAGMA query_only``
is set, and an authorizer refuses what could reach another file or lift the others:
ATTACH/DETACH (and VACUUM INTO, through a limit of 0 attached databases), every PRAGMA
but schema introspection, ``load_extension`` (also never enabled), and BEGIN/COMMIT/
SAVEPOINT (each query is one transaction, so no agent holds a lock between queries).
``writable=True`` lifts only the first two.

Bounds, so an agent cannot hang or flood the host: a query runs at most ``timeout``
seconds (a progress handler interrupts it; a write waits at most that long for another
process's lock), any one string or blob is at most ``max_result_bytes`` (SQLite's length
limit), the result holds at most ``max_rows`` rows and ``max_result_bytes`` bytes, and a
query file at most ``max_file_bytes``.

Locking: one lock guards the connection and the result; a query holds it while it runs
(at most ``timeout`` seconds), so queries of one SqlFs run one at a time.
"""

from __future__ import annotations

import base64
import binascii
import math
import sqlite3
import threading
import time
from typing import Any, BinaryIO, ClassVar, Final

from .. import paths
from .._sqlite import connect, translate
from ..errors import (
    InvalidContent,
    IsADirectory,
    NoSpace,
    NotADirectory,
    NotFound,
    PermissionDenied,
)
from ..files import BufferFile, CappedFile
from ..service import FileService, OpenMode, Stat, check_open
from ..values import dumps_compact, dumps_pretty, load_json, parse_count, parse_duration

__all__ = ["INTROSPECTION_PRAGMAS", "SqlFs"]

_FILES: Final = ("query", "result", "schema")

INTROSPECTION_PRAGMAS: Final = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "collation_list", "function_list", "pragma_list", "user_version",
    "application_id", "schema_version", "page_count", "page_size", "encoding",
    "foreign_keys"})
"""The PRAGMAs a query may run: reads of the schema. Those that can set a value
(``user_version``, ``foreign_keys``, ...) only without an argument."""

_PRAGMAS_WITH_ARG: Final = frozenset({"table_info", "table_xinfo", "index_list",
                                      "index_info", "index_xinfo", "foreign_key_list",
                                      "table_list"})
_DENIED_FUNCTIONS: Final = frozenset({"load_extension", "fts3_tokenizer"})
_NO_ATTACH: Final = ("ATTACH, DETACH and VACUUM INTO are not allowed: a query sees one "
                     "database and writes no other file")
_PROGRESS_STEPS: Final = 1000  # SQLite VM instructions between two looks at the clock


class _Refused(Exception):
    """A query refused before it ran: ``kind`` and a message for the result file."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class SqlFs(FileService):
    """Queries on the SQLite database at ``path``; see the module docstring.

    ``writable`` allows writes (and creates a missing file); otherwise the file must
    exist. ``timeout`` is seconds per query (a number or ``"500ms"``), ``max_rows`` and
    ``max_result_bytes`` bound a result, ``max_file_bytes`` a query file.

    Raises:
        NotFound, PermissionDenied: the database cannot be opened.
        InvalidContent: ``path`` is not an SQLite database.
        InvalidArgument: a bound that is not a positive number.
    """

    live = True  # the WASI bridge mirrors it while a guest runs
    is_computed: ClassVar[bool] = True  # result and schema change without a write here

    def __init__(self, path: str, *, writable: bool = False, timeout: float | str = 2.0,
                 max_rows: int = 1000, max_result_bytes: int = 1 << 20,
                 max_file_bytes: int = 1 << 20) -> None:
        self.path = path
        self.writable = writable
        self.timeout = parse_duration(timeout, "timeout")
        self.max_rows = parse_count(max_rows, "max_rows", minimum=1)
        self.max_result_bytes = parse_count(max_result_bytes, "max_result_bytes",
                                            minimum=64, maximum=1 << 30)
        self.max_file_bytes = parse_count(max_file_bytes, "max_file_bytes", minimum=64,
                                          maximum=1 << 30)
        self._conn = connect(path, readonly=not writable, create=writable)
        try:
            self._setup()
        except sqlite3.Error as exc:
            self._conn.close()
            raise translate(exc, path, "opening a database for SqlFs") from None
        self._lock = threading.Lock()
        self._closed = False
        self._queries = 0
        self._result = b""
        self._result_mtime = self._created = time.time()
        self._deadline = math.inf
        self._denied = ""

    def _setup(self) -> None:
        conn = self._conn
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # "not a database"
        if not self.writable:
            conn.execute("PRAGMA query_only = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, self.max_result_bytes)
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, self.max_file_bytes)
        conn.set_authorizer(self._authorize)
        conn.set_progress_handler(self._progress, _PROGRESS_STEPS)

    def close(self) -> None:
        """Close the database. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> SqlFs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqlFs({self.path!r}, writable={self.writable})"

    # -- the guards (called by SQLite, under the lock) -------------------------------------

    def _authorize(self, action: int, arg1: str | None, arg2: str | None,
                   db: str | None, trigger: str | None) -> int:
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return self._deny(_NO_ATTACH)
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if name not in INTROSPECTION_PRAGMAS or (
                    arg2 is not None and name not in _PRAGMAS_WITH_ARG):
                return self._deny(f"PRAGMA {arg1}{'' if arg2 is None else ' = ' + arg2} is "
                                  "not allowed: only reads of the schema "
                                  f"({', '.join(sorted(INTROSPECTION_PRAGMAS))})")
        elif action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() in _DENIED_FUNCTIONS:
                return self._deny(f"the function {arg2}() is not allowed")
        elif action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
            return self._deny("transaction control is not allowed: each query is one "
                              "transaction")
        return sqlite3.SQLITE_OK

    def _deny(self, why: str) -> int:
        self._denied = why
        return sqlite3.SQLITE_DENY

    def _progress(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    # -- queries --------------------------------------------------------------------------

    def execute(self, sql: str, params: list[Any] | dict[str, Any] | None = None
                ) -> dict[str, Any]:
        """Run one query (as a ``query`` file would) and return the result's JSON; it
        also becomes the ``result`` file."""
        with self._lock:
            self._queries += 1
            result = {"id": self._queries, **self._run(sql, [] if params is None else params)}
            self._result = dumps_pretty(result, indent=1)
            self._result_mtime = time.time()
        return result

    def _submit(self, data: bytes) -> None:
        if not data.strip():
            return
        try:
            sql, params = _parse(data)
        except _Refused as e:
            with self._lock:
                self._queries += 1
                self._result = dumps_pretty({"id": self._queries, "error": e.kind,
                                             "message": str(e)}, indent=1)
                self._result_mtime = time.time()
            return
        self.execute(sql, params)

    def _run(self, sql: str, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        """The result of ``sql`` (without its id); call with the lock held."""
        if self._closed:
            return {"error": "error", "message": f"the SqlFs of {self.path} is closed"}
        self._denied = ""
        self._deadline = time.monotonic() + self.timeout
        conn = self._conn
        try:
            cur = conn.execute(sql, _params(params))
            columns = [d[0] for d in cur.description or ()]
            rows: list[list[Any]] = []
            size = 0
            truncated = False
            while True:
                row = cur.fetchone()
                if row is None:
                    break
                out = [_json_value(v) for v in row]
                size += len(dumps_compact(out).encode("utf-8")) + 2
                if len(rows) >= self.max_rows or size > self.max_result_bytes:
                    truncated = True
                    break
                rows.append(out)
            changes = max(cur.rowcount, 0)
            cur.close()
            return {"columns": columns, "rows": rows, "row_count": len(rows),
                    "truncated": truncated, "changes": changes}
        except _Refused as e:
            return {"error": e.kind, "message": str(e)}
        except (sqlite3.Error, sqlite3.Warning) as e:
            return self._sql_error(e)
        except Exception as e:  # never a traceback in the result file
            return {"error": "error", "message": f"{type(e).__name__}: {e}"}
        finally:
            self._deadline = math.inf
            if conn.in_transaction and not self._closed:
                conn.execute("ROLLBACK")

    def _sql_error(self, e: sqlite3.Error | sqlite3.Warning) -> dict[str, Any]:
        text = str(e)
        if ("not authorized" in text or "authorization denied" in text) and self._denied:
            return {"error": "not_authorized", "message": self._denied}
        if "too many attached databases" in text:
            return {"error": "not_authorized", "message": _NO_ATTACH}
        if "interrupted" in text:
            return {"error": "timeout",
                    "message": f"the query ran past its {self.timeout:g} s and was stopped"}
        if "readonly database" in text or "query_only" in text:
            return {"error": "read_only", "message": f"the database is read-only: {text}"}
        if "string or blob too big" in text:
            return {"error": "too_large",
                    "message": f"a value over {self.max_result_bytes} bytes: {text}"}
        if "one statement at a time" in text:
            return {"error": "invalid_query", "message": "a query file holds one SQL "
                                                         "statement"}
        if isinstance(e, sqlite3.ProgrammingError | sqlite3.InterfaceError):
            return {"error": "invalid_query", "message": text}
        return {"error": "sql_error", "message": text}

    def _schema(self) -> bytes:
        with self._lock:
            if self._closed:
                return b""
            self._deadline = time.monotonic() + self.timeout
            try:
                rows = self._conn.execute(
                    "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid"
                ).fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, self.path, "schema") from None
            finally:
                self._deadline = math.inf
        return "".join(" ".join(r[0].split()) + ";\n" for r in rows).encode("utf-8")

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
        if name == "schema":
            return self._schema()
        raise NotFound(path)

    def _stat(self, path: str) -> Stat:
        if path == "/":
            return Stat("", len(_FILES), True, self._created, readonly=True)
        content = self._content(path)
        name = paths.basename(path)
        if content is None:
            return Stat(name, 0, False, self._created)
        mtime = self._result_mtime if name == "result" else time.time()
        return Stat(name, len(content), False, mtime, readonly=True)

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

    def _open(self, path: str, mode: OpenMode) -> BinaryIO:
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
            return CappedFile(self.max_file_bytes, mode, path,  # type: ignore[return-value]
                              "a query file", on_close=self._submit)
        check_open(path, mode, Stat(paths.basename(path), len(content), False,
                                    readonly=True))
        return BufferFile(content, mode, path)  # type: ignore[return-value]

    def _write_bytes(self, path: str, data: bytes) -> None:
        if path == "/query":
            if len(data) > self.max_file_bytes:
                raise NoSpace(path, f"a query file is capped at {self.max_file_bytes} "
                                    f"bytes: {len(data)} bytes refused; nothing run")
            self._submit(data)
        else:
            super()._write_bytes(path, data)

    def _refused(self, path: str, op: str) -> PermissionDenied:
        return PermissionDenied(path, f"SqlFs files are fixed: {op} is not supported")


def _parse(data: bytes) -> tuple[str, list[Any] | dict[str, Any]]:
    """The SQL and parameters of a query file; raises _Refused."""
    if data.lstrip()[:1] != b"{":
        try:
            return data.decode("utf-8"), []
        except UnicodeDecodeError as e:
            raise _Refused("invalid_query", f"the query is not UTF-8: {e}") from None
    try:
        obj = load_json(data, "query")
    except InvalidContent as e:
        raise _Refused("invalid_query", f"the query is {e.strerror}") from None
    if not isinstance(obj, dict) or set(obj) - {"sql", "params"} or not isinstance(
            obj.get("sql"), str):
        raise _Refused("invalid_query", 'a JSON query is {"sql": "...", "params": [...] or '
                                        '{...}} (params optional)')
    params = obj.get("params", [])
    if not isinstance(params, list | dict):
        raise _Refused("invalid_query", "params must be a JSON array or object")
    return obj["sql"], params


def _params(params: list[Any] | dict[str, Any]) -> list[Any] | dict[str, Any]:
    """JSON parameters as SQLite values: ``{"base64": ...}`` is a blob."""
    if isinstance(params, dict):
        return {str(k): _param(v, f"params[{k!r}]") for k, v in params.items()}
    return [_param(v, f"params[{i}]") for i, v in enumerate(params)]


def _param(value: Any, where: str) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"],
                                                                           str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise _Refused("invalid_query", f"{where}: not valid base64: {e}") from None
    raise _Refused("invalid_query", f"{where}: a parameter is a JSON scalar or "
                                    f'{{"base64": "..."}}, not {value!r}')


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return "Infinity" if value > 0 else "-Infinity"  # SQLite stores no NaN
    return value
